"""Orthonormal 2-D DCT-II over the last two axes, and the frequency manipulations of the papers.

torch has no DCT (torch.fft only has complex transforms), so it is written here as two small
matrix products: ``dct2(x) = D_H @ x @ D_W^T`` with the orthonormal DCT-II matrix ``D_N``.
This is exact, differentiable, batched over any leading axes, and keeps device and dtype.
It matches ``scipy.fft.dctn(x, axes=(-2, -1), norm='ortho')``.
"""
import functools
import math

import torch


@functools.lru_cache(maxsize=32)
def _dct_matrix_cached(n, device, dtype):
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.to(device=device, dtype=dtype)


def dct_matrix(n, device=None, dtype=torch.float32):
    """The orthonormal DCT-II matrix ``D`` of size [n, n]: ``X = D @ x`` for a length-n signal."""
    return _dct_matrix_cached(int(n), torch.device(device or "cpu"), dtype)


def _matrices(x):
    if not torch.is_floating_point(x):
        raise TypeError(f"the DCT needs a floating-point tensor, got {x.dtype}")
    h, w = x.shape[-2:]
    return dct_matrix(h, x.device, x.dtype), dct_matrix(w, x.device, x.dtype)


def dct2(x):
    """2-D DCT-II (orthonormal) of ``x`` [..., H, W] over its last two axes; same shape."""
    dh, dw = _matrices(x)
    return dh @ x @ dw.T


def idct2(coeffs):
    """Inverse of :func:`dct2` (a DCT-III): ``coeffs`` [..., H, W] -> image [..., H, W]."""
    dh, dw = _matrices(coeffs)
    return dh.T @ coeffs @ dw


def flip(x):
    """The DCT flip of the papers: reverse both frequency axes. Orthogonal and its own inverse."""
    return idct2(torch.flip(dct2(x), dims=(-2, -1)))


def _check_band(x, b):
    h, w = x.shape[-2:]
    if not 0 < b <= min(h, w):
        raise ValueError(f"band size {b} does not fit an image of {h}x{w}")


def low_pass(x, b):
    """Keep only the top-left ``b x b`` block of DCT coefficients (lowest frequencies)."""
    _check_band(x, b)
    c = dct2(x)
    mask = torch.zeros_like(c)
    mask[..., :b, :b] = 1
    return idct2(c * mask)


def high_pass(x, b):
    """Keep only the bottom-right ``b x b`` block of DCT coefficients (highest frequencies)."""
    _check_band(x, b)
    c = dct2(x)
    mask = torch.zeros_like(c)
    mask[..., -b:, -b:] = 1
    return idct2(c * mask)


def cutoff_low(x, b):
    """Zero the top-left ``b x b`` block of DCT coefficients (remove the lowest frequencies)."""
    _check_band(x, b)
    c = dct2(x).clone()
    c[..., :b, :b] = 0
    return idct2(c)
