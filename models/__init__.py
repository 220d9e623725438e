"""Architectures of both papers and the normalisation layers put in front of them.

``build_model(dataset, name)`` returns the bare network (what a checkpoint holds);
``normalized(model, layer)`` puts a normalisation layer in front of it.
"""
import torch.nn as nn

from .densenet import DenseNet121
from .lenet import LeNet, LeNetNoPool
from .logreg import LogReg
from .mlp import MLP
from .normalization import TransformLayer
from .resnet import imagenet_resnet50, mnist_resnet18
from .resnet_cifar import ResNet18
from .vgg import VGG, VGG19, VGG11_bn, VGG19_bn

ARCHITECTURES = {
    "MNIST": {
        "LeNet": lambda: LeNet(num_channels=1, num_classes=10, padding=2),
        "ResNet18": lambda: mnist_resnet18(num_classes=10),
        "MLP": lambda: MLP(28 * 28, 10),
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

# The NAD paper's architectures on 32x32 inputs: name -> constructor(num_channels, num_classes)
# (one output for NAD estimation, two for the directional-bias experiment, 3 -> 10 on CIFAR-10).
NAD_ARCHITECTURES = {
    "LogReg": lambda num_channels=1, num_classes=1: LogReg(num_channels * 32 * 32, num_classes),
    "LeNet": lambda num_channels=1, num_classes=1: LeNet(num_channels, num_classes, padding=0),
    "LeNetNoPool": lambda num_channels=1, num_classes=1: LeNetNoPool(num_channels, num_classes),
    "VGG11": lambda num_channels=1, num_classes=1: VGG11_bn(num_channels, num_classes),
    "ResNet18": lambda num_channels=1, num_classes=1: ResNet18(num_channels, num_classes),
    "DenseNet121": lambda num_channels=1, num_classes=1: DenseNet121(num_channels, num_classes),
}


# networks whose first layer (by name) is affine in the input: DeepFool can stop its backward
# passes there (utils.hmt.deepfool, ``stem``), which for LeNet's one-channel first convolution is
# most of the cost of a step on a CPU
AFFINE_STEMS = {"LeNet": "conv1"}


def deepfool_stem(name):
    """The DeepFool stem of a ``normalized`` network ``name`` (the name of its first layer
    inside ``normalized``'s Sequential), or None when it has none."""
    return f"1.{AFFINE_STEMS[name]}" if name in AFFINE_STEMS else None


def build_nad_model(name, num_channels=1, num_classes=1):
    """A freshly initialised NAD-paper network ``name`` (a key of NAD_ARCHITECTURES)."""
    try:
        constructor = NAD_ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of: "
                         f"{', '.join(NAD_ARCHITECTURES)}") from None
    return constructor(num_channels=num_channels, num_classes=num_classes)


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


__all__ = ["LeNet", "LeNetNoPool", "MLP", "TransformLayer", "build_model", "normalized",
           "mnist_resnet18", "imagenet_resnet50", "ARCHITECTURES",
           "ResNet18", "VGG", "VGG19", "VGG19_bn", "VGG11_bn", "DenseNet121",
           "LogReg", "NAD_ARCHITECTURES", "build_nad_model", "AFFINE_STEMS", "deepfool_stem"]
