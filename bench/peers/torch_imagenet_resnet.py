"""PyTorch twin of duet's ImageNet-style ResNet (src/duet/models/imagenet_resnet.cpp): ResNet-18/34
built from basic blocks with torchvision's state_dict names (conv1, bn1, layer{1..4}.{i}.{conv1,bn1,
conv2,bn2,downsample.0,downsample.1}, fc), written with plain torch.nn (no torchvision import).
The "small" stem (3x3 stride-1 conv, no max-pool) is the usual adaptation for 28x28/32x32 inputs."""
import torch.nn as nn
import torch.nn.functional as F

BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ImageNetResNet(nn.Module):
    def __init__(self, depth=18, width=64, in_channels=1, num_classes=10, stem="small"):
        super().__init__()
        assert depth in BLOCKS and stem in ("small", "imagenet")
        w = width
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, w, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, w, 3, 1, 1, bias=False)
            self.maxpool = None
        self.bn1 = nn.BatchNorm2d(w)
        blocks = BLOCKS[depth]
        self.layer1 = self._stage(w, w, blocks[0], 1)
        self.layer2 = self._stage(w, 2 * w, blocks[1], 2)
        self.layer3 = self._stage(2 * w, 4 * w, blocks[2], 2)
        self.layer4 = self._stage(4 * w, 8 * w, blocks[3], 2)
        self.fc = nn.Linear(8 * w, num_classes)

    @staticmethod
    def _stage(cin, cout, n, stride):
        return nn.Sequential(*[BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                               for i in range(n)])

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            out = self.maxpool(out)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def from_config(cfg):
    """The twin of a duet model config with family "imagenet_resnet"."""
    size = cfg.get("image_size", 28)
    return ImageNetResNet(depth=cfg.get("depth", 18), width=cfg.get("width", 64),
                          in_channels=cfg.get("in_channels", 1),
                          num_classes=cfg.get("num_classes", 10),
                          stem=cfg.get("stem", "small" if size < 64 else "imagenet"))
