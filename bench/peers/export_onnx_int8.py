#!/usr/bin/python3
"""Writes the ONNX QDQ form of a duet int8 checkpoint (`duet quantize`), so that ONNX Runtime runs
its own int8 kernels on the very same quantised network as the peer of `duet bench infer -m INT8`.

Usage: /usr/bin/python3 bench/peers/export_onnx_int8.py INT8.safetensors OUT.onnx [--exact]

The graph is written directly with the onnx helper API from the checkpoint tensors (folded convs
with bias; I8 weights with `weight_scale`, `input_scale`, `input_zero_point` for the layers listed
in the config's "quantization" section; float weights for layers kept in float):
- the input of every int8 conv: QuantizeLinear to uint8 with duet's input scale and zero point,
  then Clip to [0, 127] (a uint8 Clip, cheap): duet's activations are 7-bit (kernels/conv2d_int8.h),
  so both sides saturate at the same code; then DequantizeLinear -> Conv.
- weights: int8 codes with duet's per-output-channel scales (DequantizeLinear axis 0), bias float.
- every int8 conv output is followed by QuantizeLinear, which is what lets ONNX Runtime's QDQ
  fusion turn it into QLinearConv (without it ORT runs a float Conv on dequantised weights). After
  conv1 (ReLU) that Q uses conv2's input scale, so the codes equal duet's. duet keeps conv2's and
  the shortcut's outputs in float up to the residual add; ORT needs a scale there, which this
  script min-max calibrates on 64 N(0, 1) images (the distribution `bench infer` feeds both sides)
  by simulating duet's int8 network with torch. Those extra requantisations (and the quantised
  residual that the add then reads) are where ORT's logits differ from duet's.
--exact leaves them out (conv2 / shortcut outputs and the residual stay float, as in duet): a
check that the rest is duet's network, since ORT's logits then match duet's closely; but ORT
cannot fuse those convs into QLinearConv and runs them in float, so it is not for timing.
Supports the folded CIFAR ResNet family (the shipped resnet20). Prints one "ok ..." line, or one
"error ..." line and exits non-zero, like export_onnx.py.
"""
import os
import sys

CALIB_IMAGES = 64
CALIB_SEED = 20240601


def affine_u8(lo, hi, levels):
    """(scale, zero point) covering [min(lo, 0), max(hi, 0)] with codes 0..levels-1."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (levels - 1) if hi > lo else 1.0
    zp = int(min(max(round(-lo / scale), 0), levels - 1))
    return scale, zp


class Network:
    """The folded ResNet read from the checkpoint: a stem conv and stages of basic blocks."""

    def __init__(self, config, tensors):
        if config.get("family") != "resnet" or config.get("stem", "cifar") != "cifar":
            raise ValueError(f"family {config.get('family')!r} is not supported by "
                             "export_onnx_int8.py (folded CIFAR-stem resnet only)")
        q = config.get("quantization") or {}
        if q.get("format") != "int8-folded":
            raise ValueError("config field quantization.format: expected \"int8-folded\" "
                             "(write the checkpoint with `duet quantize`)")
        self.t = tensors
        self.int8 = set(q.get("int8_layers", []))
        self.stages = []  # [[block prefix, ...], ...]
        for s in range(1, 10):
            blocks = []
            while f"body.{s}.{len(blocks)}.conv1.weight" in tensors:
                blocks.append(f"body.{s}.{len(blocks)}")
            if not blocks:
                break
            self.stages.append(blocks)
        if "body.0.weight" not in tensors or not self.stages or "fc.weight" not in tensors:
            raise ValueError("tensors body.0.*, body.1.0.conv1.* and fc.* expected "
                             "(a folded resnet checkpoint)")
        for name in self.int8:
            if self.t.get(name + ".weight") is None or str(self.t[name + ".weight"].dtype) != "torch.int8":
                raise ValueError(f"{name}: listed in quantization.int8_layers but its weight is not I8")

    def is_int8(self, conv):
        return conv in self.int8

    def input_quant(self, conv):
        return (float(self.t[conv + ".input_scale"][0]), int(self.t[conv + ".input_zero_point"][0]))

    def stride(self, stage, block):
        # resnet.cpp: the first block of every stage after the first halves the resolution.
        return 2 if stage > 0 and block == 0 else 1


def simulate(net, x, torch):
    """duet's int8 forward in float64 on x; returns {conv: (min, max)} of the outputs of int8
    conv2/shortcut convs before the residual add (the scales ORT needs and duet has not)."""
    import torch.nn.functional as F
    ranges = {}

    def conv(name, h, stride, pad):
        w = net.t[name + ".weight"].double()
        if net.is_int8(name):
            s, zp = net.input_quant(name)
            inv = 1.0 / torch.tensor(s, dtype=torch.float32)  # duet multiplies by a float inverse
            qx = torch.clamp(torch.round(h.float() * inv) + zp, 0, 127)
            h = (qx.double() - zp) * s
            w = w * net.t[name + ".weight_scale"].double().view(-1, 1, 1, 1)
        return F.conv2d(h, w, net.t[name + ".bias"].double(), stride, pad)

    h = torch.relu(conv("body.0", x.double(), 1, 1))
    for si, blocks in enumerate(net.stages):
        for bi, b in enumerate(blocks):
            stride = net.stride(si, bi)
            y1 = torch.relu(conv(b + ".conv1", h, stride, 1))
            y2 = conv(b + ".conv2", y1, 1, 1)
            res = h
            if b + ".shortcut.weight" in net.t:
                res = conv(b + ".shortcut", h, stride, 0)
                ranges[b + ".shortcut"] = (float(res.min()), float(res.max()))
            ranges[b + ".conv2"] = (float(y2.min()), float(y2.max()))
            h = torch.relu(y2 + res)
    return ranges


class Builder:
    """Accumulates ONNX nodes and initializers."""

    def __init__(self, onnx, numpy):
        self.onnx, self.np = onnx, numpy
        self.helper, self.nh = onnx.helper, onnx.numpy_helper
        self.nodes, self.inits, self.names = [], [], set()

    def const(self, name, array):
        if name not in self.names:
            self.inits.append(self.nh.from_array(array, name))
            self.names.add(name)
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def qparams(self, tag, scale, zp):
        return (self.const(tag + ".scale", self.np.array(scale, self.np.float32)),
                self.const(tag + ".zero_point", self.np.array(zp, self.np.uint8)))

    def quantize(self, x, tag, scale, zp):
        s, z = self.qparams(tag, scale, zp)
        return self.node("QuantizeLinear", [x, s, z], tag + ".q")

    def dequantize(self, q, tag, scale, zp):
        s, z = self.qparams(tag, scale, zp)
        return self.node("DequantizeLinear", [q, s, z], tag + ".dq")


def export(net, out, torch, onnx, np, exact):
    torch.manual_seed(CALIB_SEED)
    shape = [CALIB_IMAGES, net.t["body.0.weight"].shape[1], net.image_size, net.image_size]
    ranges = simulate(net, torch.randn(shape), torch)
    g = Builder(onnx, np)
    lo7 = g.const("code.0", np.array(0, np.uint8))
    hi7 = g.const("code.127", np.array(127, np.uint8))

    def conv_node(name, x_float, x_q, stride, pad):
        """Conv `name` on an input given as float (x_float) and/or as uint8 codes with this
        conv's own scale (x_q: (tensor, scale, zp)); returns its output tensor (float)."""
        bias = g.const(name + ".bias", net.t[name + ".bias"].numpy())
        attrs = dict(strides=[stride, stride], pads=[pad] * 4,
                     kernel_shape=list(net.t[name + ".weight"].shape[2:]))
        if not net.is_int8(name):
            if x_float is None:
                x_float = g.dequantize(x_q[0], name + ".in", x_q[1], x_q[2])
            w = g.const(name + ".weight", net.t[name + ".weight"].numpy())
            return g.node("Conv", [x_float, w, bias], name + ".out", **attrs)
        s, zp = net.input_quant(name)
        if x_q is not None and (x_q[1], x_q[2]) == (s, zp):
            codes = x_q[0]
        else:
            if x_float is None:
                x_float = g.dequantize(x_q[0], name + ".from", x_q[1], x_q[2])
            codes = g.quantize(x_float, name + ".in", s, zp)
        codes = g.node("Clip", [codes, lo7, hi7], name + ".in.7bit")
        xd = g.dequantize(codes, name + ".in", s, zp)
        w = g.const(name + ".weight", net.t[name + ".weight"].numpy())
        ws = g.const(name + ".weight_scale", net.t[name + ".weight_scale"].numpy())
        wz = g.const(name + ".weight_zero_point",
                     np.zeros(net.t[name + ".weight"].shape[0], np.int8))
        wd = g.node("DequantizeLinear", [w, ws, wz], name + ".weight.dq", axis=0)
        return g.node("Conv", [xd, wd, bias], name + ".out", **attrs)

    def requantize(name, y):
        """Q/DQ on an int8 conv's output, calibrated: ORT fuses DQ-Conv-Q into QLinearConv."""
        if exact:
            return y
        scale, zp = affine_u8(*ranges[name], 256)
        return g.dequantize(g.quantize(y, name + ".out", scale, zp), name + ".out", scale, zp)

    def next_input_quant(si, bi):
        """The input quantisation the block after (si, bi) wants, or None (float / last)."""
        if bi + 1 < len(net.stages[si]):
            nxt = net.stages[si][bi + 1]
        elif si + 1 < len(net.stages):
            nxt = net.stages[si + 1][0]
        else:
            return None
        return net.input_quant(nxt + ".conv1") if net.is_int8(nxt + ".conv1") else None

    y = g.node("Relu", [conv_node("body.0", "input", None, 1, 1)], "body.0.relu")
    # The block input: float, and/or uint8 codes (tensor, scale, zp) when the previous block's
    # add ended with a Q (the input of QLinearAdd and of the next int8 convs).
    h_float, h_q = y, None
    first = net.stages[0][0] + ".conv1"
    if net.is_int8(first):
        s, zp = net.input_quant(first)
        h_q = (g.quantize(y, "body.0.out", s, zp), s, zp)
        h_float = y if exact else None
    for si, blocks in enumerate(net.stages):
        for bi, b in enumerate(blocks):
            stride = net.stride(si, bi)
            c1 = g.node("Relu", [conv_node(b + ".conv1", h_float, h_q, stride, 1)], b + ".conv1.relu")
            c1_q = None
            if net.is_int8(b + ".conv2"):
                s, zp = net.input_quant(b + ".conv2")
                c1_q, c1 = (g.quantize(c1, b + ".conv1.act", s, zp), s, zp), None
            c2 = conv_node(b + ".conv2", c1, c1_q, 1, 1)
            if net.is_int8(b + ".conv2"):
                c2 = requantize(b + ".conv2", c2)
            if b + ".shortcut.weight" in net.t:
                res = conv_node(b + ".shortcut", h_float, h_q, stride, 0)
                if net.is_int8(b + ".shortcut"):
                    res = requantize(b + ".shortcut", res)
            elif h_float is not None:
                res = h_float
            else:  # the quantised residual, as ORT's own quantiser would write it
                res = g.dequantize(h_q[0], b + ".residual", h_q[1], h_q[2])
            y = g.node("Relu", [g.node("Add", [c2, res], b + ".add")], b + ".relu")
            nq = next_input_quant(si, bi)
            h_float, h_q = y, None
            if nq is not None:
                h_q = (g.quantize(y, b + ".out", nq[0], nq[1]), nq[0], nq[1])
                if not exact:  # the next block reads its residual from these codes too
                    h_float = None
    pooled = g.node("GlobalAveragePool", [h_float], "pool")
    flat = g.node("Flatten", [pooled], "flatten", axis=1)
    fw = g.const("fc.weight", net.t["fc.weight"].numpy())
    fb = g.const("fc.bias", net.t["fc.bias"].numpy())
    g.node("Gemm", [flat, fw, fb], "logits", transB=1)

    T = onnx.TensorProto
    c = shape[1]
    graph = onnx.helper.make_graph(
        g.nodes, "duet_int8",
        [onnx.helper.make_tensor_value_info("input", T.FLOAT, ["batch", c, net.image_size,
                                                                net.image_size])],
        [onnx.helper.make_tensor_value_info("logits", T.FLOAT,
                                            ["batch", net.t["fc.weight"].shape[0]])],
        g.inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)],
                                   producer_name="duet export_onnx_int8.py")
    model.ir_version = 8  # onnx 1.12 writes 8 for opset 13; keep it explicit for older runtimes
    onnx.checker.check_model(model)
    onnx.save(model, out)
    return 0 if exact else sum(1 for name in ranges if net.is_int8(name))


def main(argv):
    if len(argv) not in (3, 4) or (len(argv) == 4 and argv[3] != "--exact"):
        print("error usage: export_onnx_int8.py INT8.safetensors OUT.onnx [--exact]", flush=True)
        return 2
    ckpt, out, exact = argv[1], argv[2], len(argv) == 4
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print(f"error numpy/PyTorch are not available to /usr/bin/python3 ({e}); "
              f"install the Debian package python3-torch", flush=True)
        return 3
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as e:
        print(f"error the onnx package is not available to /usr/bin/python3 ({e}); "
              f"install the Debian package python3-onnx", flush=True)
        return 3
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from export_onnx import read_checkpoint

    try:
        config, tensors = read_checkpoint(ckpt, torch)
        net = Network(config, tensors)
        net.image_size = int(config.get("image_size", 28))
        calibrated = export(net, out, torch, onnx, np, exact)
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"error {ckpt}: {e}", flush=True)
        return 1
    except onnx.checker.ValidationError as e:
        print(f"error the written graph is not valid ONNX: {' '.join(str(e).split())}", flush=True)
        return 1
    print(f"ok QDQ opset 13 onnx {onnx.__version__}: {len(net.int8)} int8 convs with duet's "
          f"scales (uint8 activations clipped to [0, 127], int8 weights per channel), "
          f"{calibrated} conv outputs before residual adds calibrated on {CALIB_IMAGES} N(0,1) "
          f"images{' (--exact: none requantised)' if exact else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
