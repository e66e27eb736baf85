#!/usr/bin/python3
"""Golden values for duet's RepVGG and ViT (tests/models/test_repvgg_vit.cpp).

  /usr/bin/python3 tests/golden/make_models_golden_m2.py

builds the PyTorch twins (bench/peers/torch_repvgg.py, torch_vit.py) at reduced sizes on
1x28x28 inputs, 10 classes, batch 2, seeded, one thread, and writes
tests/golden/models_m2.safetensors. For each model prefix P in {repvgg, vit}:

  P.param.<key>    the state_dict before anything runs (RepVGG: BN affine parameters and running
                   statistics randomised, so every branch and the fusion have non-trivial values;
                   ViT: weights of unit-ish scale, so attention is far from uniform)
  P.input          [2, 1, 28, 28]
  P.grad_seed      [2, 10]; the scalar loss is sum(logits_train * grad_seed)
  P.logits_train   train-mode forward (BN on batch statistics)
  P.grad.input     d loss / d input
  P.grad.<key>     d loss / d parameter, for every parameter
  P.after.<key>    RepVGG only: BN running statistics and counters after the train-mode forward
  P.logits_eval    eval-mode forward of the same input after that step (running statistics)

__metadata__ holds each model's duet config as JSON under "P.config".
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peers"))
import torch_repvgg  # noqa: E402
import torch_vit  # noqa: E402
from resnet20_interop import write  # noqa: E402  (the hand-written safetensors writer)

CONFIGS = {
    # widths 8, 8, 16, 32, 128; stage1..3 have identity branches in their second blocks
    "repvgg": {"family": "repvgg", "a": 0.125, "b": 0.25, "blocks": [1, 2, 2, 2, 1],
               "in_channels": 1, "num_classes": 10, "image_size": 28, "deploy": False},
    "vit": {"family": "vit", "patch": 4, "dim": 48, "depth": 2, "heads": 3, "mlp_ratio": 4.0,
            "in_channels": 1, "num_classes": 10, "image_size": 28},
}
MODULES = {"repvgg": torch_repvgg, "vit": torch_vit}


def randomise_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def randomise_vit(model):
    # timm's 0.02 init leaves attention nearly uniform and logits tiny; larger, varied weights make
    # the softmax, the norms and every gradient matter at the test's tolerance.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
            elif isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, m.in_features ** -0.5)
                m.bias.normal_(0.0, 0.1)
        model.cls_token.normal_(0.0, 0.5)
        model.pos_embed.normal_(0.0, 0.5)


def golden(prefix, seed):
    torch.manual_seed(seed)
    model = MODULES[prefix].from_config(CONFIGS[prefix])
    randomise_bn(model) if prefix == "repvgg" else randomise_vit(model)
    out = {f"{prefix}.param.{k}": v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    seed_grad = torch.randn(2, 10)
    model.train()
    logits = model(x)
    (logits * seed_grad).sum().backward()
    out[f"{prefix}.input"] = x.detach()
    out[f"{prefix}.grad_seed"] = seed_grad
    out[f"{prefix}.logits_train"] = logits.detach()
    out[f"{prefix}.grad.input"] = x.grad
    for k, p in model.named_parameters():
        out[f"{prefix}.grad.{k}"] = p.grad
    for k, b in model.named_buffers():
        out[f"{prefix}.after.{k}"] = b.clone()
    model.eval()
    with torch.no_grad():
        out[f"{prefix}.logits_eval"] = model(x.detach())
    n = sum(p.numel() for p in model.parameters())
    grads = [p.grad.abs().max().item() for p in model.parameters()]
    print(f"{prefix}: {n} parameters, max |logits| {logits.abs().max().item():.3g}, "
          f"max |grad| per parameter in [{min(grads):.3g}, {max(grads):.3g}], "
          f"max |input grad| {x.grad.abs().max().item():.3g}")
    return out


def main():
    torch.set_num_threads(1)
    tensors = {}
    tensors.update(golden("repvgg", 2021))
    tensors.update(golden("vit", 2020))
    meta = {f"{k}.config": json.dumps(v) for k, v in CONFIGS.items()}
    meta.update({"generator": "tests/golden/make_models_golden_m2.py", "torch": torch.__version__})
    path = os.path.join(HERE, "models_m2.safetensors")
    write(path, tensors, meta)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
