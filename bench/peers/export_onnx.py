#!/usr/bin/python3
"""Exports a duet checkpoint to ONNX through its PyTorch twin, for the ONNX Runtime peer of
`duet bench infer` (bench/peers/ort_infer.js).

Usage: /usr/bin/python3 bench/peers/export_onnx.py CHECKPOINT.safetensors OUT.onnx [OPSET]
Reads the safetensors file by hand (the python safetensors package is not available), builds the
twin from __metadata__["duet.config"] with torch_models.build, loads every tensor by name
(strict), switches to eval mode and exports with a dynamic batch axis: input "input"
[N, C, H, W], output "logits" [N, classes]. On success prints one line starting with "ok";
on failure one line starting with "error" and exits non-zero, so the caller can show it as is.
"""
import json
import os
import struct
import sys

# safetensors dtype -> torch dtype name (resolved after torch is imported)
DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
          "I64": "int64", "I32": "int32", "I8": "int8", "U8": "uint8"}


def read_checkpoint(path, torch):
    """Returns (config dict, {name: tensor}) of a duet checkpoint."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    if "duet.config" not in meta:
        raise ValueError(f"{path}: __metadata__ has no 'duet.config' (not a duet checkpoint)")
    config = json.loads(meta["duet.config"])
    data = memoryview(raw)[8 + n:]
    tensors = {}
    for name, e in header.items():
        if e["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {e['dtype']}")
        begin, end = e["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError(f"{path}: tensor {name!r} data_offsets {begin}..{end} out of range")
        dtype = getattr(torch, DTYPES[e["dtype"]])
        buf = bytearray(data[begin:end])
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"]).clone()
    return config, tensors


def main(argv):
    if len(argv) not in (3, 4):
        print("error usage: export_onnx.py CHECKPOINT OUT.onnx [OPSET]", flush=True)
        return 2
    ckpt, out = argv[1], argv[2]
    opset = int(argv[3]) if len(argv) == 4 else 13
    try:
        import torch
    except ImportError as e:
        print(f"error PyTorch is not available to /usr/bin/python3 ({e}); "
              f"install the Debian package python3-torch", flush=True)
        return 3
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_models

    try:
        config, tensors = read_checkpoint(ckpt, torch)
    except (OSError, ValueError, KeyError) as e:
        print(f"error {e}", flush=True)
        return 1
    try:
        model = torch_models.build(config)
    except SystemExit as e:  # torch_models reports an unknown family this way
        print(f"error {e}", flush=True)
        return 1
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        print(f"error {ckpt}: weights do not fit the PyTorch twin: "
              f"{' '.join(str(e).split())}", flush=True)
        return 1
    model.eval()
    shape = [1, config.get("in_channels", 1), config.get("image_size", 28),
             config.get("image_size", 28)]
    example = torch.zeros(shape)
    torch.onnx.export(model, example, out, opset_version=opset, input_names=["input"],
                      output_names=["logits"], do_constant_folding=True,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print(f"ok opset {opset} torch {torch.__version__}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
