"""VGG for 32x32 inputs as in the NAD paper (VGG11 with batch norm, one input channel).

``features`` is one nn.Sequential of 3x3 convolutions + batch norm + ReLU and 2x2
max-pooling, so the parameter names (``features.N``, ``classifier.0/3/6``) are those of the
authors' checkpoints. Five poolings bring 32x32 down to 1x1, hence the 512-wide classifier.
"""
import torch.nn as nn

CONFIGS = {"VGG11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]}


class VGG(nn.Module):
    """x [B, num_channels, 32, 32] -> logits [B, num_classes].

    config: a key of CONFIGS; batch_norm: a BatchNorm2d after every convolution."""

    def __init__(self, config="VGG11", batch_norm=True, num_channels=3, num_classes=10):
        super().__init__()
        layers, in_channels = [], num_channels
        for width in CONFIGS[config]:
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(in_channels, width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(512, num_classes))
        # the authors' initialisation of the convolutions: N(0, 2 / (k * k * out_channels)), bias 0
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def VGG11_bn(num_channels=3, num_classes=10):
    return VGG("VGG11", True, num_channels, num_classes)
