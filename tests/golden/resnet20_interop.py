#!/usr/bin/python3
"""ResNet-20 checkpoints between PyTorch and duet, both directions.

  /usr/bin/python3 tests/golden/resnet20_interop.py make
      builds ResNet-20 in PyTorch (bench/peers/torch_resnet.py), gives its BatchNorms non-trivial
      running statistics, and writes tests/golden/resnet20_pytorch.safetensors: the state_dict
      (PyTorch names), the duet model config in __metadata__ so `duet info -m` and duet's loader
      accept it, plus "input" (4x1x28x28) and PyTorch's eval-mode "logits".
  /usr/bin/python3 tests/golden/resnet20_interop.py check FILE
      loads a checkpoint written by duet (state_dict names, plus "input" and duet's "logits"),
      runs it in PyTorch and exits 1 when max |logits difference| > 1e-4.
The Python safetensors package is not available, so the format is read and written here.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peers"))
from torch_resnet import CifarResNet  # noqa: E402

CONFIG = {"arch": "resnet20", "depth": 20, "family": "resnet", "image_size": 28,
          "in_channels": 1, "num_classes": 10, "width": 16}
NP = {"F32": np.float32, "I64": np.int64}
NAMES = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}


def write(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = torch.from_numpy(
            np.frombuffer(data[b:end], dtype=NP[e["dtype"]]).reshape(e["shape"]).copy())
    return out


def make():
    torch.manual_seed(20)
    model = CifarResNet()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        logits = model(x)
    tensors = dict(model.state_dict())
    tensors["input"] = x
    tensors["logits"] = logits
    path = os.path.join(HERE, "resnet20_pytorch.safetensors")
    write(path, tensors, {"duet.config": json.dumps(CONFIG), "duet.format_version": "1",
                          "generator": "tests/golden/resnet20_interop.py", "torch": torch.__version__})
    print(f"{path}: {len(tensors)} tensors")


def check(path):
    t = read(path)
    x, expected = t.pop("input"), t.pop("logits")
    model = CifarResNet()
    model.load_state_dict(t, strict=True)
    model.eval()
    with torch.no_grad():
        diff = (model(x) - expected).abs().max().item()
    print(f"max |pytorch - duet| logits = {diff:.3g}")
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) == 2 and sys.argv[1] == "make":
        make()
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        print(__doc__)
        sys.exit(2)
