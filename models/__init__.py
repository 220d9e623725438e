"""Architectures of both papers and the normalisation layers put in front of them.

``build_model(dataset, name)`` returns the bare network (what a checkpoint holds);
``normalized(model, layer)`` puts a normalisation layer in front of it.
"""
import torch.nn as nn

from .densenet import DenseNet121
from .lenet import LeNet
from .normalization import TransformFlippedLayer, TransformLayer
from .resnet import imagenet_resnet50, mnist_resnet18
from .resnet_cifar import ResNet18
from .vgg import VGG, VGG11_bn, VGG19, VGG19_bn

ARCHITECTURES = {
    "MNIST": {
        "LeNet": lambda: LeNet(num_channels=1, num_classes=10, padding=2),
        "ResNet18": lambda: mnist_resnet18(num_classes=10),
    },
    "CIFAR10": {
        "ResNet18": ResNet18,
        "VGG19": VGG19,
        "VGG19_bn": VGG19_bn,
        "DenseNet121": DenseNet121,
    },
    "ImageNet": {
        "ResNet50": imagenet_resnet50,
    },
}


def build_model(dataset, name):
    """A freshly initialised network ``name`` for ``dataset`` (a key of ARCHITECTURES)."""
    try:
        return ARCHITECTURES[dataset][name]()
    except KeyError:
        known = ", ".join(ARCHITECTURES.get(dataset, {})) or "none"
        raise ValueError(f"unknown model {name!r} for {dataset}; choose one of: {known}") from None


def normalized(model, layer):
    """``nn.Sequential(layer, model)``: the model seen from images in [0, 1]."""
    return nn.Sequential(layer, model)


__all__ = ["LeNet", "TransformLayer", "TransformFlippedLayer", "build_model", "normalized",
           "mnist_resnet18", "imagenet_resnet50", "ARCHITECTURES",
           "ResNet18", "VGG", "VGG19", "VGG19_bn", "VGG11_bn", "DenseNet121"]
