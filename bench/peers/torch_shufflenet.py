"""PyTorch twin of duet's ShuffleNetV2 (src/duet/models/shufflenet_v2.cpp; Ma et al. 2018) with
torchvision's state_dict names (conv1.0/conv1.1, stage{2,3,4}.{i}.branch1.{0,1,2,3},
stage{2,3,4}.{i}.branch2.{0,1,3,4,5,6}, conv5.0/conv5.1, fc), written with plain torch.nn (no
torchvision import). The "small" stem (3x3 stride-1 conv, no max-pool) suits 28x28/32x32 inputs."""
import torch
import torch.nn as nn

STAGE_CHANNELS = {0.5: [24, 48, 96, 192, 1024], 1.0: [24, 116, 232, 464, 1024],
                  1.5: [24, 176, 352, 704, 1024], 2.0: [24, 244, 488, 976, 2048]}
STAGE_REPEATS = [4, 8, 4]


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def conv_bn(cin, cout, kernel, stride, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return layers + [nn.ReLU()] if relu else layers


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(*conv_bn(cin, cin, 3, stride, groups=cin, relu=False),
                                         *conv_bn(cin, half, 1, 1))
        else:
            assert cin == cout
            self.branch1 = nn.Sequential()
        b2_in = cin if stride > 1 else half
        self.branch2 = nn.Sequential(*conv_bn(b2_in, half, 1, 1),
                                     *conv_bn(half, half, 3, stride, groups=half, relu=False),
                                     *conv_bn(half, half, 1, 1))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, width_mult=1.0, in_channels=1, num_classes=10, stem="small"):
        super().__init__()
        assert stem in ("small", "imagenet")
        ch = STAGE_CHANNELS[float(width_mult)]
        stride = 2 if stem == "imagenet" else 1
        self.conv1 = nn.Sequential(*conv_bn(in_channels, ch[0], 3, stride))
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else None
        cin = ch[0]
        for i, (repeats, cout) in enumerate(zip(STAGE_REPEATS, ch[1:4])):
            units = [InvertedResidual(cin, cout, 2)]
            units += [InvertedResidual(cout, cout, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            cin = cout
        self.conv5 = nn.Sequential(*conv_bn(cin, ch[4], 1, 1))
        self.fc = nn.Linear(ch[4], num_classes)

    def forward(self, x):
        x = self.conv1(x)
        if self.maxpool is not None:
            x = self.maxpool(x)
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


def from_config(cfg):
    """The twin of a duet model config with family "shufflenet_v2"."""
    size = cfg.get("image_size", 28)
    return ShuffleNetV2(width_mult=cfg.get("width_mult", 1.0), in_channels=cfg.get("in_channels", 1),
                        num_classes=cfg.get("num_classes", 10),
                        stem=cfg.get("stem", "small" if size < 64 else "imagenet"))
