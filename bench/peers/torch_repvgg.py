"""PyTorch twin of duet's RepVGG (src/duet/models/repvgg.cpp), train-time or deploy form, with the
official RepVGG state_dict names (stage0.rbr_dense.conv, stage0.rbr_dense.bn, stage0.rbr_1x1.*,
stage1.0.rbr_identity.*, ..., stage1.0.rbr_reparam in the deploy form, linear), so checkpoints
move between the two by name. Widths min(64, 64a), 64a, 128a, 256a, 512b; stage0 keeps stride 1
when image_size < 64, every other stage starts with a stride-2 block."""
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, kernel, stride, padding):
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, padding, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(cout))
    return seq


class RepVGGBlock(nn.Module):
    def __init__(self, cin, cout, stride, deploy=False):
        super().__init__()
        if deploy:
            self.rbr_reparam = nn.Conv2d(cin, cout, 3, stride, 1, bias=True)
        else:
            self.rbr_identity = nn.BatchNorm2d(cin) if stride == 1 and cin == cout else None
            self.rbr_dense = conv_bn(cin, cout, 3, stride, 1)
            self.rbr_1x1 = conv_bn(cin, cout, 1, stride, 0)

    def forward(self, x):
        if hasattr(self, "rbr_reparam"):
            return F.relu(self.rbr_reparam(x))
        y = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            y = y + self.rbr_identity(x)
        return F.relu(y)


def widths(a, b):
    return [min(64, int(64 * a)), int(64 * a), int(128 * a), int(256 * a), int(512 * b)]


class RepVGG(nn.Module):
    def __init__(self, a=0.75, b=2.5, blocks=(1, 2, 4, 14, 1), in_channels=1, num_classes=10,
                 image_size=28, deploy=False):
        super().__init__()
        assert len(blocks) == 5 and blocks[0] == 1
        w = widths(a, b)
        self.stage0 = RepVGGBlock(in_channels, w[0], 1 if image_size < 64 else 2, deploy)
        cin = w[0]
        for s in range(1, 5):
            stage = []
            for i in range(blocks[s]):
                stage.append(RepVGGBlock(cin, w[s], 2 if i == 0 else 1, deploy))
                cin = w[s]
            setattr(self, f"stage{s}", nn.ModuleList(stage))
        self.linear = nn.Linear(w[4], num_classes)

    def forward(self, x):
        x = self.stage0(x)
        for s in (self.stage1, self.stage2, self.stage3, self.stage4):
            for block in s:
                x = block(x)
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def from_config(cfg):
    """The twin of a duet model config with family "repvgg" (the JSON stored in checkpoints)."""
    return RepVGG(a=cfg.get("a", 0.75), b=cfg.get("b", 2.5), blocks=cfg.get("blocks", (1, 2, 4, 14, 1)),
                  in_channels=cfg.get("in_channels", 1), num_classes=cfg.get("num_classes", 10),
                  image_size=cfg.get("image_size", 28), deploy=cfg.get("deploy", False))
