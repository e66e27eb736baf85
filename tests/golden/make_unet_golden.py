#!/usr/bin/python3
"""Regenerates tests/golden/unet_golden.safetensors: a small duet UNet (bench/peers/torch_unet.py,
attention both inside a level and in the middle, channel changes on every skip) run forward and
backward in PyTorch. Holds the parameters (state_dict keys), inputs x / t / y, the output, the
backward seed grad_output (loss = sum(output * grad_output)), grad.input and grad.<param> for every
parameter. The config is stored in the metadata under "config".

    /usr/bin/python3 tests/golden/make_unet_golden.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peers"))
from make_golden import save_safetensors  # noqa: E402
from torch_unet import from_config  # noqa: E402

CONFIG = {"family": "unet", "in_channels": 2, "image_size": 8, "num_classes": 3,
          "channels": [8, 16], "blocks_down": 1, "blocks_up": 2, "attention_levels": [1],
          "mid_attention": True, "heads": 2, "embed_dim": 16, "groups": 4}


def main():
    torch.manual_seed(3)
    model = from_config(CONFIG)
    # The zero-initialised output conv would hide every gradient behind it: give it values.
    with torch.no_grad():
        model.conv_out.weight.normal_(0, 0.2)
        model.conv_out.bias.normal_(0, 0.2)
    x = torch.randn(3, 2, 8, 8, requires_grad=True)
    t = torch.tensor([0.0, 0.37, 1.0])
    y = torch.tensor([0, 2, 3])  # 3 = "no class"
    out = model(x, t, y)
    grad_output = torch.randn_like(out)
    (out * grad_output).sum().backward()
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tensors.update({"input": x.detach(), "t": t, "y": y.to(torch.int64), "output": out.detach(),
                    "grad_output": grad_output, "grad.input": x.grad})
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad
    save_safetensors(os.path.join(HERE, "unet_golden.safetensors"), tensors,
                     {"config": json.dumps(CONFIG), "torch": torch.__version__})


if __name__ == "__main__":
    main()
