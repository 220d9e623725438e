"""Datasets as in-memory tensors, with the normalisation layer that goes in front of a model.

Images are float32 [N, C, H, W] in [0, 1] (or their DCT-flipped version), labels int64 [N].
Nothing here reaches the network unless ``download=True``.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models import TransformLayer

from .dct import flip, low_pass
from .errors import UserError
from .safe_pickle import UnsafePickle, load_plain

ROOT = Path(__file__).resolve().parents[2]
MNIST_SAMPLE = ROOT / "Datasets" / "mnist_sample" / "mnist_sample.npz"
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
MNIST_LOW_PASS_BANDWIDTH = 14  # the low-pass MNIST keeps the top-left 14x14 DCT block


class TransformFlippedLayer(TransformLayer):
    """Normalisation of DCT-flipped images (the authors' TransformFlippedLayer): the mean image
    is ``flip(ones) * mean``, std unchanged. shape: (C, H, W) of the images."""

    def __init__(self, mean, std, shape, dtype=torch.float32):
        super().__init__(mean, std, dtype)
        self.mean = flip(torch.ones(tuple(shape), dtype=dtype)) * self.mean


@dataclass
class ImageData:
    """A train and a test split plus how a model must normalise them.

    name: 'MNIST' or 'MNIST_flipped' (CIFAR10[_variant], ImageNet[_flipped]); source: one line
    saying where the images came from. train/test are TensorDatasets, except for ImageNet:
    ImageFolder datasets that read (and transform) each image from disk when indexed, and no
    train split (None) unless asked for."""
    name: str
    source: str
    train: TensorDataset
    test: TensorDataset
    normalization: torch.nn.Module

    @property
    def shape(self):
        if not isinstance(self.test, TensorDataset):  # a Dataset read from disk (ImageNet)
            return tuple(self.test[0][0].shape)
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
                        f"'git checkout Datasets/' or use `data` full")
    with np.load(MNIST_SAMPLE) as f:
        return [(_to_float(f[f"{s}_images"]), torch.as_tensor(f[f"{s}_labels"]).long())
                for s in ("train", "test")]


def load_mnist(source="auto", data_dir="data", download=False, transform=None):
    """MNIST as an :class:`ImageData`.

    source: 'full' (torchvision's MNIST under ``data_dir``; downloaded only if ``download``),
    'sample' (the 10,000 real digits bundled in Datasets/mnist_sample, 8,000 train / 2,000
    test), or 'auto' (full MNIST when it is on disk, else the sample).
    transform (done once, here): None; 'flipped' (every image x -> flip(x)); 'low_pass' (only
    the top-left 14x14 DCT block kept, normalised with the mean and std of the processed train
    set: the MNIST counterpart of the paper's low-pass CIFAR-10)."""
    if transform not in (None, "flipped", "low_pass"):
        raise UserError(f"MNIST has no {transform!r} variant; use flipped, low_pass or none")
    if source not in ("auto", "full", "sample"):
        raise UserError(f"unknown data source {source!r}; use auto, full or sample")
    splits, where = None, None
    if source in ("auto", "full"):
        splits = _full_mnist(data_dir, download)
        where = f"full MNIST from {data_dir}"
        if splits is None and source == "full":
            raise UserError(f"MNIST was not found under {data_dir}; pass `download` to fetch it "
                            f"there, `data_dir` with its location, or `data` sample")
    if splits is None:
        splits = _sample_mnist()
        where = ("bundled MNIST sample (8,000 train / 2,000 test real digits, "
                 "Datasets/mnist_sample)")
    (xtr, ytr), (xte, yte) = splits
    (xtr, xte), norm, variant = _variant(transform, (xtr, xte), MNIST_MEAN, MNIST_STD,
                                         MNIST_LOW_PASS_BANDWIDTH, lambda f, x: f(x))
    name = "MNIST" + (f"_{transform}" if transform else "")
    return ImageData(name, where + variant, TensorDataset(xtr, ytr), TensorDataset(xte, yte),
                     norm)


def _variant(transform, splits, mean, std, band, apply):
    """The images of ``splits`` (train first) after ``transform`` (None, 'flipped' or
    'low_pass': the top-left ``band`` x ``band`` DCT block kept), ``apply(f, x)`` applying a
    transform f to a split; with the normalisation layer of the result (flipped: the flipped
    mean image; low-pass: the per-channel mean and std of the processed train split) and what
    to add to the data's description."""
    if transform == "flipped":
        splits = tuple(apply(flip, x) for x in splits)
        return splits, TransformFlippedLayer(mean, std, tuple(splits[0].shape[1:])), ""
    if transform == "low_pass":
        splits = tuple(apply(lambda x: low_pass(x, band), x) for x in splits)
        return (splits, TransformLayer(*_channel_mean_std(splits[0])),
                f" (low-pass: {band}x{band} DCT block)")
    return splits, TransformLayer(mean, std), ""


def kept_energy(images, transformed):
    """The share of the energy of ``images`` [N, ...] that ``transformed`` (the same images after
    a filter) keeps: sum ||transformed||^2 / sum ||images||^2 (orthogonal filters such as the
    DCT band filters keep the rest nowhere)."""
    return float(transformed.double().square().sum() / images.double().square().sum())


def images_at(dataset, indices):
    """The images [len(indices), C, H, W] at ``indices`` of a TensorDataset, or of any dataset
    of (image, label) pairs, read one by one (so ImageNet never has to fit in memory)."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[0][torch.as_tensor(np.asarray(indices), dtype=torch.long)]
    return torch.stack([dataset[int(i)][0] for i in indices])


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
LOW_PASS_BANDWIDTH = 16


CIFAR10_FOLDER = "cifar-10-batches-py"  # CIFAR-10's python version, under --data-dir
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST = ["test_batch"]


def _read_cifar10_batch(path):
    """(images uint8 [n, 3, 32, 32], labels int64 [n]) of one batch file of CIFAR-10's python
    version: a pickled dict with 'data' (uint8 [n, 3072], channel-major rows) and 'labels' (n
    ints in 0..9), read as plain data (utils.common.safe_pickle: no code in the file runs)."""
    redo = f"delete {path.parent} and pass `download` to fetch CIFAR-10 again"
    try:
        batch = load_plain(path)
    except UnsafePickle as e:
        raise UserError(f"the CIFAR-10 file {path} was refused as unsafe: it is not plain data "
                        f"(it names {e}); {redo}") from None
    except Exception as e:  # pickle raises many types for damaged files
        raise UserError(f"the CIFAR-10 file {path} is damaged ({type(e).__name__}); {redo}") \
            from None
    if isinstance(batch, dict):
        batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = batch.get("data") if isinstance(batch, dict) else None
    labels = batch.get("labels") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32 and isinstance(labels, list)
            and len(labels) == len(data)
            and all(isinstance(v, int) and 0 <= v < 10 for v in labels)):
        raise UserError(f"the CIFAR-10 file {path} holds no CIFAR-10 batch (a dict of uint8 "
                        f"'data' [n, 3072] and n 'labels' from 0 to 9); {redo}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _download_cifar10(data_dir):
    """Fetch and unpack CIFAR-10's python version into ``data_dir`` (checked against its md5)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive
    try:
        download_and_extract_archive(CIFAR10.url, str(data_dir), filename=CIFAR10.filename,
                                     md5=CIFAR10.tgz_md5)
    except (OSError, RuntimeError) as e:
        raise UserError(f"CIFAR-10 could not be downloaded to {data_dir} ({e}); check the "
                        f"network or put {CIFAR10_FOLDER} there yourself") from None


def _full_cifar10(data_dir, download):
    """[(images [N, 3, 32, 32] in [0, 1], labels [N])] for train and test, or None if absent."""
    folder = Path(data_dir) / CIFAR10_FOLDER
    if not all((folder / name).is_file() for name in CIFAR10_TRAIN + CIFAR10_TEST):
        if not download:
            return None
        _download_cifar10(data_dir)
    splits = []
    for names in (CIFAR10_TRAIN, CIFAR10_TEST):
        images, labels = zip(*(_read_cifar10_batch(folder / name) for name in names))
        splits.append((torch.from_numpy(np.concatenate(images)).float().div_(255.0),
                       torch.from_numpy(np.concatenate(labels))))
    return splits


def _in_chunks(fn, x, chunk=5000):
    """``fn`` applied to ``x`` [N, ...] in place, ``chunk`` images at a time (bounded memory)."""
    for start in range(0, len(x), chunk):
        x[start:start + chunk] = fn(x[start:start + chunk])
    return x


def _channel_mean_std(x, chunk=5000):
    """Per-channel mean and (unbiased) std of ``x`` [N, C, H, W] as lists of C floats,
    accumulated in float64 ``chunk`` images at a time (no float64 copy of all of ``x``)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].double()
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    n = x.numel() // x.shape[1]
    mean = total / n
    std = ((squares - n * mean.square()) / (n - 1)).sqrt()
    return mean.tolist(), std.tolist()


def load_cifar10(source="auto", data_dir="data", download=False, transform=None):
    """CIFAR-10 as an :class:`ImageData` (50,000 train / 10,000 test images [3, 32, 32]).

    source: 'auto' or 'full', both torchvision's CIFAR-10 under ``data_dir`` (the folder that
    holds ``cifar-10-batches-py``), downloaded there only if ``download``; there is no bundled
    sample. transform (done once, here): None; 'flipped' (every image x -> flip(x), normalised
    with the flipped mean image); 'low_pass' (only the top-left 16x16 DCT block of every
    channel kept, normalised with the per-channel mean and std of the processed train set)."""
    if transform not in (None, "flipped", "low_pass"):
        raise UserError(f"CIFAR-10 has no {transform!r} variant; use flipped, low_pass or none")
    if source not in ("auto", "full"):
        raise UserError("there is no bundled CIFAR-10 sample; use `data` full (or auto) with "
                        "`data_dir` pointing at CIFAR-10, or add `download`")
    splits = _full_cifar10(data_dir, download)
    if splits is None:
        raise UserError(f"CIFAR-10 was not found under {data_dir} (expected "
                        f"{Path(data_dir) / 'cifar-10-batches-py'}); pass `download` to fetch "
                        f"it there, or `data_dir` with the folder that holds it")
    (xtr, ytr), (xte, yte) = splits
    (xtr, xte), norm, variant = _variant(transform, (xtr, xte), CIFAR10_MEAN, CIFAR10_STD,
                                         LOW_PASS_BANDWIDTH, _in_chunks)
    name = "CIFAR10" + (f"_{transform}" if transform else "")
    return ImageData(name, f"CIFAR-10 from {data_dir}{variant}", TensorDataset(xtr, ytr),
                     TensorDataset(xte, yte), norm)


# ----------------------------------------------------------------------------- ImageNet

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET_SHAPE = (3, 224, 224)


def imagenet_transforms(train=False, flipped=False, image_size=224):
    """PIL image -> float32 [3, image_size, image_size] in [0, 1] (then DCT-flipped if
    ``flipped``). Test: resize the short side to ``image_size * 256 / 224`` (256), centre-crop;
    train: random resized crop and horizontal flips, as in the original."""
    from torchvision import transforms
    steps = ([transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
             if train else [transforms.Resize(round(image_size * 256 / 224)),
                            transforms.CenterCrop(image_size)])
    steps.append(transforms.ToTensor())
    if flipped:
        steps.append(transforms.Lambda(flip))
    return transforms.Compose(steps)


def _image_folder(root, transform, split, elsewhere):
    from torchvision.datasets import ImageFolder
    try:
        return ImageFolder(str(root), transform=transform)
    except FileNotFoundError:
        raise UserError(f"no ImageNet {split} images were found in {root}; put the ILSVRC2012 "
                        f"{split} set there as an ImageFolder tree (one sub-folder of images per "
                        f"class, named by WordNet id) or {elsewhere} (ImageNet cannot be "
                        f"downloaded automatically)") from None


def load_imagenet(source="auto", data_dir="data/ImageNet", download=False, transform=None,
                  val_dir=None, train_dir=None, with_train=False):
    """ImageNet (ILSVRC2012) as an :class:`ImageData` whose splits stay on disk: ImageFolder
    datasets giving float32 [3, 224, 224] images in [0, 1] (DCT-flipped on the fly when
    ``transform='flipped'``) and the index of their class folder in sorted order (torchvision's
    class indices when the folders are the 1000 WordNet ids).

    val_dir / train_dir: the two roots (default ``data_dir``/val and ``data_dir``/train).
    with_train: also index the training split (listing its 1.28 M files takes a while); without
    it ``train`` is None: the margin experiments read validation images only. ImageNet cannot be
    downloaded: ``download`` is accepted for a uniform interface and ignored."""
    if transform not in (None, "flipped"):
        raise UserError(f"ImageNet has no {transform!r} variant; use flipped or none")
    if source not in ("auto", "full"):
        raise UserError("there is no bundled ImageNet sample; use `data` full (or auto) with "
                        "`data_dir` or `val_dir` pointing at ImageNet")
    flipped = transform == "flipped"
    val_root = Path(val_dir) if val_dir else Path(data_dir) / "val"
    test = _image_folder(val_root, imagenet_transforms(False, flipped), "validation",
                         "pass `val_dir`")
    train = None
    if with_train:
        train_root = Path(train_dir) if train_dir else Path(data_dir) / "train"
        train = _image_folder(train_root, imagenet_transforms(True, flipped), "training",
                              "pass `train_dir`")
    where = (f"ImageNet validation images from {val_root} ({len(test)} images, "
             f"{len(test.classes)} classes)")
    if len(test.classes) != 1000:
        print(f"warning: {val_root} has {len(test.classes)} class folders, not ImageNet's 1000; "
              f"labels and accuracy are only meaningful with the 1000 WordNet-id folders")
    if flipped:
        norm = TransformFlippedLayer(IMAGENET_MEAN, IMAGENET_STD, IMAGENET_SHAPE)
    else:
        norm = TransformLayer(IMAGENET_MEAN, IMAGENET_STD)
    return ImageData("ImageNet" + ("_flipped" if flipped else ""), where, train, test, norm)
