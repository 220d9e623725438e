"""ResNets built from torchvision (for MNIST and ImageNet)."""
import torch.nn as nn
from torchvision.models import resnet18, resnet50


def mnist_resnet18(num_classes=10):
    """torchvision's ResNet18 with a 1-channel 7x7 stride-2 first convolution (HMT, MNIST)."""
    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def imagenet_resnet50(num_classes=1000):
    """torchvision's ResNet50 with random weights (HMT, ImageNet)."""
    return resnet50(weights=None, num_classes=num_classes)
