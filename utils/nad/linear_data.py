"""The linearly separable distribution D(v) of the NAD paper and the directions v it uses.

A sample of D(v) is ``x = y * (eps / 2) * v + (I - v v^T) w`` with a label y in {+1, -1} and
noise w ~ N(0, sigma^2 I): along the unit vector v every sample sits exactly at +-eps/2, and
every other direction is Gaussian noise, so a linear classifier separates the classes
perfectly. Class indices for cross-entropy: y = +1 -> 0, y = -1 -> 1 (as the original).
"""
import math

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..common.errors import UserError
from ..common.io import sha256
from ..common.memory import check_memory
from .files import read_nads

PHASES = ("cos", "sin")
# bytes of memory per value of a sample: float32 data, and float64 noise and sample while
# one split is drawn
BYTES_PER_VALUE = 4 + 8 + 8


def fourier_direction(k1, k2, shape=(1, 32, 32), phase="cos"):
    """The unit-norm real (``phase='cos'``) or imaginary (``'sin'``) part of the 2-D DFT basis
    image of frequency (k1, k2): v[c, m, n] proportional to cos (or sin) of
    2 pi (k1 m / H + k2 n / W), the same in every channel. Frequencies are taken modulo (H, W);
    (k1, k2) and (-k1, -k2) give the same v (the sine up to its sign, which swaps the two
    classes of D(v)). The authors' website grid uses the cosine, their released
    directional_bias.py example a sine. Returns float32 [C, H, W]; raises UserError for a sine
    that is zero everywhere (k1 and k2 both 0 or H/2, W/2)."""
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}; use cos or sin")
    _, h, w = shape
    m = torch.arange(h, dtype=torch.float64)[:, None]
    n = torch.arange(w, dtype=torch.float64)[None, :]
    wave = torch.cos if phase == "cos" else torch.sin
    img = wave(2 * math.pi * (k1 * m / h + k2 * n / w)).expand(shape)
    if img.norm() < 1e-6:
        raise UserError(f"the sine of frequency ({k1}, {k2}) is zero everywhere on a {h}x{w} "
                        f"image; choose another frequency or `phase` cos")
    return (img / img.norm()).float()


def has_direction(k1, k2, shape=(1, 32, 32), phase="cos"):
    """Whether :func:`fourier_direction` exists (every cosine; a sine unless it vanishes)."""
    _, h, w = shape
    return phase == "cos" or not ((2 * k1) % h == 0 and (2 * k2) % w == 0)


def canonical_frequency(k1, k2, shape=(1, 32, 32)):
    """A representative of {(k1, k2), (-k1, -k2)} modulo (H, W), the pair of frequencies that
    give the same ``fourier_direction``: the smaller of the two reduced pairs."""
    _, h, w = shape
    return min((k1 % h, k2 % w), ((-k1) % h, (-k2) % w))


def load_nads(path):
    """NADs [k, 1024] (float32, one per row) from a ``<Arch>_NADs.npy`` file, validated
    (utils.nad.files.read_nads: a UserError for a missing, damaged or inconsistent file)."""
    return read_nads(path)


def nads_label(path):
    """How a sweep names the NAD file it used: the path and the start of its sha256. Sweeps
    resume only on the same label, so every caller must build it here."""
    return f"{path} (sha256 {sha256(path)[:12]})"


def nad_direction(nads, index, shape=(1, 32, 32)):
    """NAD number ``index`` of ``nads`` [k, D] as a unit-norm float32 image [C, H, W]."""
    if nads.ndim != 2 or nads.shape[1] != math.prod(shape):
        raise UserError(f"the NADs are an array of shape {tuple(nads.shape)}; directions of "
                        f"{'x'.join(map(str, shape))} images need one NAD of "
                        f"{math.prod(shape)} values per row")
    if not 0 <= index < len(nads):
        raise UserError(f"NAD index {index} is out of range: the file holds {len(nads)} NADs "
                        f"(0 .. {len(nads) - 1})")
    v = torch.as_tensor(np.asarray(nads[index]), dtype=torch.float64).reshape(shape)
    return (v / v.norm()).float()


def sample_linear(v, n, sigma=3.0, eps=1.0, seed=0):
    """n samples of D(v): images float32 [n, *v.shape] and signs y int64 [n] in {+1, -1}
    (the first ceil(n/2) are +1). Computed in float64, so v^T x = y * eps / 2 up to float32
    rounding of x."""
    v = torch.as_tensor(v, dtype=torch.float64)
    flat = v.flatten() / v.norm()
    gen = torch.Generator().manual_seed(seed)
    w = sigma * torch.randn(n, flat.numel(), dtype=torch.float64, generator=gen)
    y = torch.ones(n, dtype=torch.int64)
    y[(n + 1) // 2:] = -1
    x = w - (w @ flat)[:, None] * flat[None, :] + (y * eps / 2)[:, None] * flat[None, :]
    x = x.view(n, *v.shape).float()
    if not x.isfinite().all():
        raise UserError(f"samples of D(v) with sigma {sigma:g} and eps {eps:g} overflow float32; "
                        f"use a smaller `sigma` or `eps` (the paper's are 3 and 1)")
    return x, y


def linear_datasets(v, n_train=10_000, n_test=10_000, sigma=3.0, eps=1.0, seed=0):
    """(train, test) TensorDatasets of D(v) with class indices (y = +1 -> 0, y = -1 -> 1);
    the two splits are independent draws (seeds derived from ``seed``)."""
    check_memory((n_train + n_test) * math.prod(v.shape) * BYTES_PER_VALUE,
                 f"{n_train:,} + {n_test:,} samples of D(v)", "ask for fewer samples")
    splits = []
    for split, n in enumerate((n_train, n_test)):
        split_seed = int(np.random.SeedSequence([seed, split]).generate_state(1)[0])
        x, y = sample_linear(v, n, sigma, eps, split_seed)
        splits.append(TensorDataset(x, (1 - y) // 2))
    return tuple(splits)
