"""Subspaces spanned by square blocks of 2-D DCT basis vectors along the diagonal.

A :class:`DCTBlock` of side ``k`` at diagonal offset ``a`` is spanned by the images
``idct2(e_{c,u,v})`` for ``a <= u, v < a + k`` in every channel ``c``: dimension ``k*k*C``.
Its projection is computed in the DCT domain with two thin matrix products
(``Dk = D[a:a+k]``: ``P x = Dk_H^T (Dk_H x Dk_W^T) Dk_W``), never with the ``D x kkC`` basis,
which only :meth:`DCTBlock.basis` builds, for tests and small images.
"""
from dataclasses import dataclass

import torch

from ..common.dct import dct_matrix, idct2


@dataclass(frozen=True)
class DCTBlock:
    """The DCT block ``[offset, offset+size)^2`` in every one of ``channels`` channels of an
    image of ``height x width`` pixels."""
    offset: int
    size: int
    channels: int
    height: int
    width: int

    @property
    def dim(self):
        return self.size * self.size * self.channels

    def _rows(self, n, x):
        return dct_matrix(n, x.device, x.dtype)[self.offset:self.offset + self.size]

    def project(self, x):
        """Orthogonal projection of ``x`` [..., C, H, W] onto the subspace; same shape."""
        if tuple(x.shape[-3:]) != (self.channels, self.height, self.width):
            raise ValueError(f"tensor of shape {tuple(x.shape)} does not match the subspace's "
                             f"images of {self.channels}x{self.height}x{self.width}")
        dh, dw = self._rows(self.height, x), self._rows(self.width, x)
        return dh.T @ (dh @ x @ dw.T) @ dw

    def basis(self, dtype=torch.float64):
        """Explicit orthonormal basis [C*H*W, k*k*C]: inverse DCTs of diracs (small sizes only)."""
        diracs = torch.zeros(self.dim, self.channels, self.height, self.width, dtype=dtype)
        n = 0
        for c in range(self.channels):
            for u in range(self.offset, self.offset + self.size):
                for v in range(self.offset, self.offset + self.size):
                    diracs[n, c, u, v] = 1
                    n += 1
        return idct2(diracs).reshape(self.dim, -1).T

    def __str__(self):
        return f"DCT[{self.offset}:{self.offset + self.size}]^2"


class BasisSubspace:
    """The subspace spanned by the orthonormal columns of ``basis`` [C*H*W, k] of images of
    ``shape`` (C, H, W): any subspace, e.g. a random one (projections are products with the
    basis, so keep it for small images)."""

    def __init__(self, basis, shape, name="subspace"):
        self._basis = torch.as_tensor(basis, dtype=torch.float64)
        self.shape, self.name = tuple(shape), name

    @property
    def dim(self):
        return self._basis.shape[1]

    def basis(self, dtype=torch.float64):
        return self._basis.to(dtype)

    def project(self, x):
        """Orthogonal projection of ``x`` [..., C, H, W] onto the subspace; same shape."""
        b = self._basis.to(device=x.device, dtype=x.dtype)
        flat = x.reshape(*x.shape[:-3], -1)
        return ((flat @ b) @ b.T).reshape(x.shape)

    def __str__(self):
        return self.name


def orthonormal(columns):
    """An orthonormal basis [D, k] of the span of ``columns`` [D, k] (float64, QR)."""
    q, _ = torch.linalg.qr(torch.as_tensor(columns, dtype=torch.float64))
    return q


def diagonal_blocks(size, step, channels, height, width):
    """The list of square DCT blocks of side ``size`` sliding along the diagonal by ``step``
    from (0, 0) while they fit, lowest frequencies first (MNIST 8/1 on 28x28 gives 21)."""
    if size < 1 or step < 1:
        raise ValueError(f"subspace block size and step must be positive, got {size} and {step}")
    side = min(height, width)
    if size > side:
        raise ValueError(f"a subspace block of side {size} does not fit an image of "
                         f"{height}x{width}; use a block size of at most {side}")
    return [DCTBlock(a, size, channels, height, width) for a in range(0, side - size + 1, step)]
