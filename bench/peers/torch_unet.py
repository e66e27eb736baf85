"""PyTorch twin of duet's residual UNet (src/duet/models/unet.cpp): same layers, same state_dict
names (time_embed.{0,2}, class_embed, conv_in, down.L.res.I.*, down.L.attn.I.*, down.L.downsample,
mid.{0,1,2}, up.L.res.I.*, up.L.upsample, norm_out, conv_out), so weights move by name. Used by the
golden tests (tests/golden/make_unet_golden.py) and the generation benchmark."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim):
    half = dim // 2
    k = torch.arange(half, dtype=torch.float64)
    freqs = torch.exp(-math.log(10000.0) * k / half)
    arg = 1000.0 * t.double()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1).float()


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.emb_proj = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class AttentionBlock(nn.Module):
    def __init__(self, channels, heads, groups):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, d, h * w).permute(1, 0, 2, 4, 3)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        a = (att @ v).permute(0, 1, 3, 2).reshape(n, c, h, w)
        return x + self.proj(a)


class Level(nn.Module):
    def __init__(self):
        super().__init__()
        self.res = nn.ModuleList()


class UNet(nn.Module):
    def __init__(self, in_channels=1, image_size=28, num_classes=10, channels=(32, 64, 128),
                 blocks_down=2, blocks_up=3, attention_levels=(), mid_attention=True, heads=4,
                 embed_dim=128, groups=8):
        super().__init__()
        ch, e, g = list(channels), embed_dim, groups
        self.ch0 = ch[0]
        self.time_embed = nn.Sequential(nn.Linear(ch[0], e), nn.SiLU(), nn.Linear(e, e))
        self.class_embed = nn.Embedding(num_classes + 1, e)
        self.conv_in = nn.Conv2d(in_channels, ch[0], 3, 1, 1)
        skips, width = [ch[0]], ch[0]
        self.down = nn.ModuleList()
        for lvl, c in enumerate(ch):
            level = Level()
            if lvl in attention_levels:
                level.attn = nn.ModuleList()
            for _ in range(blocks_down):
                level.res.append(ResBlock(width, c, e, g))
                width = c
                if lvl in attention_levels:
                    level.attn.append(AttentionBlock(width, heads, g))
                skips.append(width)
            if lvl + 1 < len(ch):
                level.downsample = nn.Conv2d(width, width, 3, 2, 1)
                skips.append(width)
            self.down.append(level)
        mid = [ResBlock(width, width, e, g)]
        if mid_attention:
            mid.append(AttentionBlock(width, heads, g))
        mid.append(ResBlock(width, width, e, g))
        self.mid = nn.ModuleList(mid)
        up = [None] * len(ch)
        for lvl in reversed(range(len(ch))):
            level = Level()
            if lvl in attention_levels:
                level.attn = nn.ModuleList()
            for _ in range(blocks_up):
                level.res.append(ResBlock(width + skips.pop(), ch[lvl], e, g))
                width = ch[lvl]
                if lvl in attention_levels:
                    level.attn.append(AttentionBlock(width, heads, g))
            if lvl > 0:
                level.upsample = nn.Conv2d(width, width, 3, 1, 1)
            up[lvl] = level
        self.up = nn.ModuleList(up)
        self.norm_out = nn.GroupNorm(g, width)
        self.conv_out = nn.Conv2d(width, in_channels, 3, 1, 1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def encode(self, x, t, y):
        """Down path and middle: (middle feature map, skips, embedding), as duet's UNet::encode."""
        emb = self.time_embed(timestep_embedding(t, self.ch0)) + self.class_embed(y)
        h = self.conv_in(x)
        skips = [h]
        for level in self.down:
            for i, block in enumerate(level.res):
                h = block(h, emb)
                if hasattr(level, "attn"):
                    h = level.attn[i](h)
                skips.append(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
                skips.append(h)
        h = self.mid[0](h, emb)
        if len(self.mid) == 3:
            h = self.mid[1](h)
        return self.mid[-1](h, emb), skips, emb

    def forward(self, x, t, y):
        h, skips, emb = self.encode(x, t, y)
        for level in reversed(self.up):
            for i, block in enumerate(level.res):
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
                if hasattr(level, "attn"):
                    h = level.attn[i](h)
            if hasattr(level, "upsample"):
                h = level.upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def from_config(cfg):
    """The twin of a duet model config with family "unet"."""
    keys = ["in_channels", "image_size", "num_classes", "channels", "blocks_down", "blocks_up",
            "attention_levels", "mid_attention", "heads", "embed_dim", "groups"]
    return UNet(**{k: cfg[k] for k in keys if k in cfg})
