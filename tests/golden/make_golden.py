#!/usr/bin/python3
"""Regenerates the PyTorch golden values in tests/golden/*.safetensors.

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_golden.py

Each file holds one small block's inputs, parameters and buffers (PyTorch state_dict keys, values
before the forward), its output, the backward seed "grad_output" (loss = sum(output * grad_output)),
"grad.input", "grad.<param>" for every parameter, and for BatchNorm "after.<buffer>" (running
statistics after the train-mode forward). Everything is float32 except num_batches_tracked (I64).
The safetensors writer is written out below because the Python safetensors package is not
installed.
"""
import json
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


def save_safetensors(path, tensors, metadata):
    """Writes `tensors` (name -> tensor, in insertion order) contiguously after a JSON header
    padded with spaces to a multiple of 8 bytes."""
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name, t in tensors.items():
        dtype, np_dtype = DTYPES[t.dtype]
        data = t.detach().contiguous().cpu().numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


class BasicBlock(nn.Module):
    """CIFAR ResNet basic block with a projection shortcut (conv1x1 + BN) when downsampling."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class GnSiluConv(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, cin)
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=True)

    def forward(self, x):
        return self.conv(F.silu(self.norm(x)))


def randomise_norms(module):
    """Affine params away from 1/0 (and BN running stats away from 0/1) so that they matter."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.3)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def golden(module, input_shape, path, extra_meta):
    randomise_norms(module)
    module.train()
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    x = torch.randn(*input_shape, requires_grad=True)
    out = module(x)
    grad_output = torch.randn_like(out)
    (out * grad_output).sum().backward()

    tensors = {"input": x.detach()}
    tensors.update(before)
    tensors["output"] = out.detach()
    tensors["grad_output"] = grad_output
    tensors["grad.input"] = x.grad
    for name, p in module.named_parameters():
        tensors["grad." + name] = p.grad
    params = dict(module.named_parameters())
    for name, v in module.state_dict().items():
        if name not in params:
            tensors["after." + name] = v.detach().clone()
    meta = {"generator": "tests/golden/make_golden.py", "torch": torch.__version__}
    meta.update(extra_meta)
    save_safetensors(path, tensors, meta)
    print(f"{os.path.relpath(path)}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    golden(BasicBlock(8, 16, 2), (2, 8, 10, 10),
           os.path.join(HERE, "resnet_basic_block.safetensors"),
           {"module": "conv3x3(s2)-bn-relu-conv3x3-bn + conv1x1(s2)-bn, add, relu; train mode",
            "bn_eps": "1e-05", "bn_momentum": "0.1"})
    torch.manual_seed(1)
    golden(GnSiluConv(16, 8, 4), (2, 16, 7, 7),
           os.path.join(HERE, "gn_silu_conv_block.safetensors"),
           {"module": "groupnorm(4 groups)-silu-conv3x3(pad 1, bias)", "gn_eps": "1e-05"})


if __name__ == "__main__":
    main()
