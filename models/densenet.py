"""The CIFAR DenseNet121 of both papers: growth rate 32, dense blocks of 6, 12, 24, 16
bottleneck layers (``dense1..4``) joined by transitions that halve the channels and the
resolution (``trans1..3``), a final batch norm ``bn`` and a ``linear`` classifier.

Parameter names and shapes are those of the authors' checkpoints (HMT CIFAR-10 DenseNet121; the
NAD DenseNet121 is the same network with ``num_channels=1, num_classes=1``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    """BN-ReLU-conv1x1 (4 * growth) then BN-ReLU-conv3x3 (growth); the new ``growth`` channels
    are concatenated in front of the input's."""

    def __init__(self, in_planes, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], dim=1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 to ``out_planes`` channels, then 2x2 average pooling."""

    def __init__(self, in_planes, out_planes):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet121(nn.Module):
    """x [B, num_channels, H, W] (32x32 in the papers) -> logits [B, num_classes]."""

    def __init__(self, num_channels=3, num_classes=10, growth=32, blocks=(6, 12, 24, 16)):
        super().__init__()
        planes = 2 * growth
        self.conv1 = nn.Conv2d(num_channels, planes, 3, padding=1, bias=False)
        for i, n in enumerate(blocks, start=1):
            layers = [Bottleneck(planes + j * growth, growth) for j in range(n)]
            setattr(self, f"dense{i}", nn.Sequential(*layers))
            planes += n * growth
            if i < len(blocks):
                setattr(self, f"trans{i}", Transition(planes, planes // 2))
                planes //= 2
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.trans1(self.dense1(out))
        out = self.trans2(self.dense2(out))
        out = self.trans3(self.dense3(out))
        out = F.relu(self.bn(self.dense4(out)))
        # the original pools a 4x4 map with a 4x4 window: the global average on 32x32 inputs
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))
