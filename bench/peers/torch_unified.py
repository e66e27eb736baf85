"""PyTorch twin of duet's unified model (src/duet/models/unified.h): a UNet (torch_unet.py) whose
encoder, run on the clean image at t = 0 with the "no class" label, also feeds a classification
head: GroupNorm -> SiLU -> global average pooling of the middle's feature map -> Linear. Same
state_dict names as duet ("unet.*", "head_norm.*", "head.*")."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_unet import UNet


class UnifiedNet(nn.Module):
    def __init__(self, **unet_args):
        super().__init__()
        self.unet = UNet(**unet_args)
        width = self.unet.mid[0].conv2.out_channels
        self.head_norm = nn.GroupNorm(self.unet.norm_out.num_groups, width)
        self.head = nn.Linear(width, self.unet.class_embed.num_embeddings - 1)

    def encode(self, x):
        """The UNet's down path and middle at t = 0 with the "no class" label."""
        n = x.shape[0]
        null = self.unet.class_embed.num_embeddings - 1
        return self.unet.encode(x, torch.zeros(n), torch.full((n,), null, dtype=torch.int64))[0]

    def features(self, x):
        return F.silu(self.head_norm(self.encode(x))).mean(dim=(2, 3))

    def forward(self, x):
        """Classification logits; generation is self.unet(x, t, y)."""
        return self.head(self.features(x))


def from_config(cfg):
    """The twin of a duet model config with family "unified"."""
    keys = ["in_channels", "image_size", "num_classes", "channels", "blocks_down", "blocks_up",
            "attention_levels", "mid_attention", "heads", "embed_dim", "groups"]
    return UnifiedNet(**{k: cfg[k] for k in keys if k in cfg})
