#!/usr/bin/python3
"""Regenerates tests/golden/models_m1.safetensors: whole-model golden values for duet's
ImageNet-style ResNet-18 and ShuffleNetV2, computed by their PyTorch twins
(bench/peers/torch_imagenet_resnet.py, bench/peers/torch_shufflenet.py).

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_models_golden_m1.py

Two models on a [2, 1, 28, 28] input with 10 classes and the small stem: ResNet-18 at width 8
(prefix "resnet18.") and ShuffleNetV2 0.5x (prefix "shufflenet."), narrow enough for a small
file; plus ResNet-18 at width 4 with the ImageNet stem (7x7 stride-2 conv, 3x3 stride-2 max-pool)
on [2, 1, 64, 64] (prefix "resnet18_imagenet_stem."). The duet config of each is in __metadata__
under "<prefix>config". Per model:

  <prefix><state_dict key>   every parameter and buffer, values before any forward; BN affine
                             parameters are randomised and the running statistics come from a few
                             train-mode passes over other random batches, then perturbed, so that
                             eval-mode activations stay O(1) and the statistics matter. Conv and
                             linear weights are rounded to bfloat16 before anything is computed
                             and stored as BF16 (exact, half the bytes; duet widens them to f32 on
                             load); everything else is F32 (num_batches_tracked I64)
  <prefix>input              the [2, 1, S, S] input
  <prefix>train.logits       train-mode forward (BatchNorm uses batch statistics)
  <prefix>train.grad.input   d loss / d input with loss = sum(logits^2)
  <prefix>train.grad.<param> the same for a few parameters (see GRAD_PARAMS)
  <prefix>after.<buffer>     a few BatchNorm running statistics after the train-mode forward
  <prefix>eval.logits, <prefix>eval.grad.input, <prefix>eval.grad.<param>
                             the same in eval mode, starting again from the stored state

The safetensors writer is make_golden.py's (the Python safetensors package is not installed);
BF16 entries reach it as their raw 16-bit patterns (an int16 view) under the name "BF16".
"""
import json
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peers"))
import make_golden  # noqa: E402
import torch_models  # noqa: E402

make_golden.DTYPES[torch.int16] = ("BF16", "<i2")  # bf16 bit patterns, see round_weights

MODELS = [
    ("resnet18.", {"family": "imagenet_resnet", "depth": 18, "width": 8, "in_channels": 1,
                   "num_classes": 10, "image_size": 28, "stem": "small"}, 18),
    ("shufflenet.", {"family": "shufflenet_v2", "width_mult": 0.5, "in_channels": 1,
                     "num_classes": 10, "image_size": 28, "stem": "small"}, 5),
    ("resnet18_imagenet_stem.", {"family": "imagenet_resnet", "depth": 18, "width": 4,
                                 "in_channels": 1, "num_classes": 10, "image_size": 64,
                                 "stem": "imagenet"}, 64),
]
# Gradients stored per model: the stem, a downsampling shortcut / a depthwise conv in both kinds
# of unit, a BN affine pair deep in the net, and the head's bias.
GRAD_PARAMS = {
    "resnet18.": ["conv1.weight", "bn1.weight", "layer2.0.downsample.0.weight",
                  "layer3.1.conv2.weight", "layer4.1.bn2.weight", "layer4.1.bn2.bias",
                  "fc.bias"],
    "shufflenet.": ["conv1.0.weight", "conv1.1.bias", "stage2.0.branch1.0.weight",
                    "stage3.1.branch2.3.weight", "stage4.3.branch2.5.weight",
                    "conv5.1.weight", "fc.bias"],
    "resnet18_imagenet_stem.": ["conv1.weight", "bn1.bias", "layer1.0.conv1.weight",
                                "layer4.0.downsample.0.weight", "fc.bias"],
}
AFTER_BUFFERS = {
    "resnet18.": ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                  "layer4.1.bn2.running_mean", "layer4.1.bn2.running_var"],
    "shufflenet.": ["conv1.1.running_mean", "conv1.1.running_var",
                    "stage4.3.branch2.6.running_mean", "stage4.3.branch2.6.running_var"],
    "resnet18_imagenet_stem.": ["bn1.running_mean", "bn1.running_var"],
}


def set_statistics(model, size):
    """BN affine parameters away from 1/0; running statistics measured on random batches
    (cumulative average), then perturbed so they differ from any batch's statistics."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.3)
            m.momentum = None
        model.train()
        for _ in range(4):
            model(torch.randn(8, 1, size, size))
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn_like(m.running_mean))
            m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))


def round_weights(model):
    """Rounds conv and linear weights to bfloat16 in place; returns their names."""
    names = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(p.to(torch.bfloat16).float())
                names.append(name)
    return names


def forward_backward(model, x, prefix, mode, tensors):
    model.train(mode == "train")
    model.zero_grad()
    xi = x.clone().requires_grad_(True)
    logits = model(xi)
    logits.square().sum().backward()
    tensors[f"{prefix}{mode}.logits"] = logits.detach()
    tensors[f"{prefix}{mode}.grad.input"] = xi.grad
    params = dict(model.named_parameters())
    for name in GRAD_PARAMS[prefix]:
        tensors[f"{prefix}{mode}.grad.{name}"] = params[name].grad.clone()
    print(f"  {prefix}{mode}: max |logits| {logits.abs().max().item():.4g}, "
          f"max |grad.input| {xi.grad.abs().max().item():.4g}")


def main():
    torch.set_num_threads(1)
    tensors, meta = {}, {"generator": "tests/golden/make_models_golden_m1.py",
                         "torch": torch.__version__, "loss": "sum(logits^2)"}
    for prefix, cfg, seed in MODELS:
        torch.manual_seed(seed)
        model = torch_models.build(cfg)
        bf16 = set(round_weights(model))
        set_statistics(model, cfg["image_size"])
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for k, v in state.items():
            tensors[prefix + k] = v.to(torch.bfloat16).view(torch.int16) if k in bf16 else v
        x = torch.randn(2, 1, cfg["image_size"], cfg["image_size"])
        tensors[prefix + "input"] = x
        forward_backward(model, x, prefix, "train", tensors)
        after = model.state_dict()
        for name in AFTER_BUFFERS[prefix]:
            tensors[f"{prefix}after.{name}"] = after[name].detach().clone()
        model.load_state_dict(state)
        forward_backward(model, x, prefix, "eval", tensors)
        meta[prefix + "config"] = json.dumps(cfg, sort_keys=True)
    path = os.path.join(HERE, "models_m1.safetensors")
    make_golden.save_safetensors(path, tensors, meta)
    print(f"{os.path.relpath(path)}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
