"""Normalisation layers placed in front of a model, so that attacks work on images in [0, 1].

Their mean and std are non-persistent buffers: a checkpoint holds the bare network only, like
the authors' ``model.t7`` files. The layer of DCT-flipped data, whose mean is an image, is
utils.common.data.TransformFlippedLayer (it needs the DCT).
"""
import torch
import torch.nn as nn


class TransformLayer(nn.Module):
    """``(x - mean) / std`` per channel. mean, std: sequences of C floats (or a mean image
    [C, H, W] set by a subclass). dtype: of the buffers; float64 keeps the constants exact (a
    float32 layer cast with ``.double()`` holds their float32 roundings)."""

    def __init__(self, mean, std, dtype=torch.float32):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=dtype).view(-1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=dtype).view(-1, 1, 1),
                             persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std
