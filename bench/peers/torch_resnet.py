"""PyTorch twin of duet's CIFAR-style ResNet (src/duet/models/resnet.cpp): same layers, same
state_dict names (conv1, bn1, layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}, fc),
so checkpoints move between the two by name. Used by the interop tests and the benchmarks."""
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


class CifarResNet(nn.Module):
    def __init__(self, depth=20, width=16, in_channels=1, num_classes=10):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        w = width
        self.conv1 = nn.Conv2d(in_channels, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = self._stage(w, w, n, 1)
        self.layer2 = self._stage(w, 2 * w, n, 2)
        self.layer3 = self._stage(2 * w, 4 * w, n, 2)
        self.fc = nn.Linear(4 * w, num_classes)

    @staticmethod
    def _stage(cin, cout, n, stride):
        return nn.Sequential(*[BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                               for i in range(n)])

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def from_config(cfg):
    """The twin of a duet model config with family "resnet" (the JSON stored in checkpoints)."""
    return CifarResNet(depth=cfg.get("depth", 20), width=cfg.get("width", 16),
                       in_channels=cfg.get("in_channels", 1), num_classes=cfg.get("num_classes", 10))
