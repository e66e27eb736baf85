"""Builds the PyTorch twin of any duet model from its JSON config (the one duet stores in a
checkpoint's __metadata__ under "duet.config", or prints with `duet info --arch NAME --json`).

Each family's twin lives in its own module beside this one and exposes from_config(cfg); the
twin uses duet's state_dict names, so weights move between the two by name."""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# duet config "family" -> module holding its twin
FAMILY_MODULES = {
    "resnet": "torch_resnet",
    "imagenet_resnet": "torch_imagenet_resnet",
    "shufflenet_v2": "torch_shufflenet",
    "repvgg": "torch_repvgg",
    "vit": "torch_vit",
    "unet": "torch_unet",
    "unified": "torch_unified",
}


def build(cfg):
    family = cfg.get("family")
    if family not in FAMILY_MODULES:
        raise SystemExit(f"torch_models: no PyTorch twin for family {family!r} "
                         f"(known: {', '.join(sorted(FAMILY_MODULES))})")
    return importlib.import_module(FAMILY_MODULES[family]).from_config(cfg)
