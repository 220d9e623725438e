"""Datasets as in-memory tensors, with the normalisation layer that goes in front of a model.

Images are float32 [N, C, H, W] in [0, 1] (or their DCT-flipped version), labels int64 [N].
Nothing here reaches the network unless ``download=True``.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models import TransformFlippedLayer, TransformLayer

from .dct import flip
from .errors import UserError

ROOT = Path(__file__).resolve().parents[1]
MNIST_SAMPLE = ROOT / "Datasets" / "mnist_sample" / "mnist_sample.npz"
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


@dataclass
class ImageData:
    """A train and a test split plus how a model must normalise them.

    name: 'MNIST' or 'MNIST_flipped'; source: one line saying where the images came from."""
    name: str
    source: str
    train: TensorDataset
    test: TensorDataset
    normalization: torch.nn.Module

    @property
    def shape(self):
        return tuple(self.test.tensors[0].shape[1:])


def _to_float(images_uint8):
    return torch.as_tensor(images_uint8, dtype=torch.float32).unsqueeze(1) / 255.0


def _full_mnist(data_dir, download):
    from torchvision.datasets import MNIST
    try:
        sets = [MNIST(str(data_dir), train=t, download=download) for t in (True, False)]
    except RuntimeError:
        return None
    return [(_to_float(s.data), s.targets.long()) for s in sets]


def _sample_mnist():
    if not MNIST_SAMPLE.is_file():
        raise UserError(f"the bundled MNIST sample {MNIST_SAMPLE} is missing; restore it with "
                        f"'git checkout Datasets/' or use --data full")
    with np.load(MNIST_SAMPLE) as f:
        return [(_to_float(f[f"{s}_images"]), torch.as_tensor(f[f"{s}_labels"]).long())
                for s in ("train", "test")]


def load_mnist(source="auto", data_dir="data", download=False, transform=None):
    """MNIST as an :class:`ImageData`.

    source: 'full' (torchvision's MNIST under ``data_dir``; downloaded only if ``download``),
    'sample' (the 10,000 real digits bundled in Datasets/mnist_sample, 8,000 train / 2,000
    test), or 'auto' (full MNIST when it is on disk, else the sample).
    transform: None, or 'flipped' to replace every image x by ``flip(x)`` (done once, here)."""
    if transform not in (None, "flipped"):
        raise UserError(f"MNIST has no {transform!r} variant; use flipped or none")
    flipped = transform == "flipped"
    if source not in ("auto", "full", "sample"):
        raise UserError(f"unknown data source {source!r}; use auto, full or sample")
    splits, where = None, None
    if source in ("auto", "full"):
        splits = _full_mnist(data_dir, download)
        where = f"full MNIST from {data_dir}"
        if splits is None and source == "full":
            raise UserError(f"MNIST was not found under {data_dir}; pass --download to fetch it "
                            f"there, --data-dir with its location, or --data sample")
    if splits is None:
        splits = _sample_mnist()
        where = "bundled MNIST sample (8,000 train / 2,000 test real digits, Datasets/mnist_sample)"
    (xtr, ytr), (xte, yte) = splits
    shape = tuple(xtr.shape[1:])
    if flipped:
        xtr, xte = flip(xtr), flip(xte)
        norm = TransformFlippedLayer(MNIST_MEAN, MNIST_STD, shape)
    else:
        norm = TransformLayer(MNIST_MEAN, MNIST_STD)
    name = "MNIST_flipped" if flipped else "MNIST"
    return ImageData(name, where, TensorDataset(xtr, ytr), TensorDataset(xte, yte), norm)
