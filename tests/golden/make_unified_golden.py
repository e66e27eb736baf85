#!/usr/bin/python3
"""Regenerates tests/golden/unified_golden.safetensors: a small duet unified model
(bench/peers/torch_unified.py: the UNet of make_unet_golden.py with a classification head on its
encoder) classifying a batch in PyTorch, forward and backward. Holds the parameters (state_dict
keys), the input, the logits, the backward seed grad_output (loss = sum(logits * grad_output)),
grad.input and grad.<param> for every parameter the classification reaches (the decoder's get
none). The config is stored in the metadata under "config".

    /usr/bin/python3 tests/golden/make_unified_golden.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peers"))
from make_golden import save_safetensors  # noqa: E402
from torch_unified import from_config  # noqa: E402

CONFIG = {"family": "unified", "in_channels": 2, "image_size": 8, "num_classes": 3,
          "channels": [8, 16], "blocks_down": 1, "blocks_up": 2, "attention_levels": [1],
          "mid_attention": True, "heads": 2, "embed_dim": 16, "groups": 4}


def main():
    torch.manual_seed(5)
    model = from_config(CONFIG)
    x = torch.randn(3, 2, 8, 8, requires_grad=True)
    logits = model(x)
    grad_output = torch.randn_like(logits)
    (logits * grad_output).sum().backward()
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tensors.update({"input": x.detach(), "output": logits.detach(), "grad_output": grad_output,
                    "grad.input": x.grad})
    for name, p in model.named_parameters():
        if p.grad is not None:
            tensors["grad." + name] = p.grad
    save_safetensors(os.path.join(HERE, "unified_golden.safetensors"), tensors,
                     {"config": json.dumps(CONFIG), "torch": torch.__version__})


if __name__ == "__main__":
    main()
