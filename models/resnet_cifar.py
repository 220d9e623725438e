"""The CIFAR-10 ResNet18 of both papers: a 3x3 stride-1 stem (no max-pooling), four stages of
two basic blocks, a 1x1 convolution + batch norm ``shortcut`` where the shape changes, global
average pooling and a ``linear`` classifier.

Parameter names and shapes are those of the authors' checkpoints (HMT CIFAR-10 ResNet18; the
NAD ResNet18 is the same network with ``num_channels=1, num_classes=1``).
"""
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); ``stride`` 2 halves H and W."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """x [B, num_channels, H, W] (32x32 in the papers) -> logits [B, num_classes]."""

    def __init__(self, num_channels=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths, strides, in_planes = (64, 128, 256, 512), (1, 2, 2, 2), 64
        for i, (planes, stride) in enumerate(zip(widths, strides), start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(in_planes, planes, stride),
                                                     BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        # the original pools a 4x4 map with a 4x4 window: the global average on 32x32 inputs
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
