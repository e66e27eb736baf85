"""PyTorch twin of duet's Vision Transformer (src/duet/models/vit.cpp) with timm's state_dict
names (cls_token, pos_embed, patch_embed.proj, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
mlp.fc2}, norm, head), so checkpoints move between the two by name. Pre-norm blocks, LayerNorm
eps 1e-6, exact GELU, class token, learned position embedding, head on the class token."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_channels, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, patch=4, dim=192, depth=12, heads=3, mlp_ratio=4.0, in_channels=1,
                 num_classes=10, image_size=28):
        super().__init__()
        assert image_size % patch == 0 and dim % heads == 0
        num_patches = (image_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.patch_embed = PatchEmbed(in_channels, dim, patch)
        self.blocks = nn.Sequential(*[Block(dim, heads, int(dim * mlp_ratio)) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        # timm's init: trunc-normal(0.02) for the tokens and linear weights, zero linear biases
        # (truncated at +-2 std, as duet does); the patch conv keeps PyTorch's default.
        for p in (self.cls_token, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def from_config(cfg):
    """The twin of a duet model config with family "vit" (the JSON stored in checkpoints)."""
    return VisionTransformer(patch=cfg.get("patch", 4), dim=cfg.get("dim", 192),
                             depth=cfg.get("depth", 12), heads=cfg.get("heads", 3),
                             mlp_ratio=cfg.get("mlp_ratio", 4.0),
                             in_channels=cfg.get("in_channels", 1),
                             num_classes=cfg.get("num_classes", 10),
                             image_size=cfg.get("image_size", 28))
