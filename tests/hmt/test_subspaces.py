import numpy as np
import pytest
import torch

from tests.oracles import dct_basis_1d
from utils.hmt.subspaces import DCTBlock, diagonal_blocks


@pytest.mark.parametrize("size,step,channels,side,count", [
    (8, 1, 1, 28, 21), (8, 2, 3, 32, 13), (16, 16, 3, 224, 14)])
def test_counts_and_order_of_the_papers(size, step, channels, side, count):
    blocks = diagonal_blocks(size, step, channels, side, side)
    assert len(blocks) == count
    assert [b.offset for b in blocks] == list(range(0, step * count, step))
    assert blocks[-1].offset + size <= side
    assert all(b.dim == size * size * channels for b in blocks)


def test_block_larger_than_image_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        diagonal_blocks(30, 1, 1, 28, 28)


def test_basis_is_inverse_dct_of_diracs():
    block = DCTBlock(offset=3, size=4, channels=2, height=9, width=7)
    basis = block.basis().numpy()
    dh, dw = dct_basis_1d(9), dct_basis_1d(7)
    # column n <-> (c, u, v) in that order; the image of a dirac is the outer product of rows
    n = 0
    for c in range(2):
        for u in range(3, 7):
            for v in range(3, 7):
                img = np.zeros((2, 9, 7))
                img[c] = np.outer(dh[u], dw[v])
                np.testing.assert_allclose(basis[:, n], img.ravel(), atol=1e-12)
                n += 1
    np.testing.assert_allclose(basis.T @ basis, np.eye(block.dim), atol=1e-12)


@pytest.mark.parametrize("offset,size,channels,h,w", [(0, 8, 1, 28, 28), (20, 8, 1, 28, 28),
                                                      (6, 8, 3, 32, 32), (2, 5, 2, 11, 13)])
def test_projection_equals_explicit_basis(offset, size, channels, h, w):
    block = DCTBlock(offset, size, channels, h, w)
    x = torch.randn(4, 2, channels, h, w, dtype=torch.float64)
    v = block.basis()
    expected = (x.reshape(8, -1) @ v @ v.T).reshape(x.shape)
    torch.testing.assert_close(block.project(x), expected)
    torch.testing.assert_close(block.project(block.project(x)), block.project(x))
    # float32 agrees to float32 rounding
    torch.testing.assert_close(block.project(x.float()), expected.float(), atol=1e-5, rtol=1e-4)
