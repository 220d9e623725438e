"""Normalisation layers placed in front of a model, so that attacks work on images in [0, 1].

Their mean and std are non-persistent buffers: a checkpoint holds the bare network only, like
the authors' ``model.t7`` files.
"""
import torch
import torch.nn as nn

from utils.dct import flip


class TransformLayer(nn.Module):
    """``(x - mean) / std`` per channel. mean, std: sequences of C floats. dtype: of the
    buffers; float64 keeps the constants exact (a float32 layer cast with ``.double()`` holds
    their float32 roundings)."""

    def __init__(self, mean, std, dtype=torch.float32):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=dtype).view(-1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=dtype).view(-1, 1, 1),
                             persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class TransformFlippedLayer(TransformLayer):
    """Normalisation of DCT-flipped images: the mean image is ``flip(ones) * mean``, std unchanged.

    shape: (C, H, W) of the images.
    """

    def __init__(self, mean, std, shape, dtype=torch.float32):
        super().__init__(mean, std, dtype)
        self.mean = flip(torch.ones(tuple(shape), dtype=dtype)) * self.mean
