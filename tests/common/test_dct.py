import numpy as np
import pytest
import scipy.fft
import torch

from utils.common.dct import cutoff_low, dct2, flip, high_pass, idct2, low_pass


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (3, 3, 32, 32), (1, 3, 224, 224), (4, 5, 7)])
def test_dct_matches_scipy(shape):
    x = torch.randn(shape)
    ref = scipy.fft.dctn(x.numpy().astype(np.float64), axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(dct2(x).numpy(), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(idct2(torch.from_numpy(ref).float()).numpy(), x.numpy(), atol=1e-5)
    back = scipy.fft.idctn(x.numpy().astype(np.float64), axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(idct2(x).numpy(), back, atol=1e-5)


def test_dct_keeps_dtype_device_and_gradients():
    x = torch.randn(2, 1, 12, 10, dtype=torch.float64, requires_grad=True)
    y = dct2(x)
    assert y.dtype == torch.float64 and y.device == x.device
    (y ** 2).sum().backward()  # orthonormal: d/dx ||Dx||^2 = 2x
    torch.testing.assert_close(x.grad, 2 * x.detach())


def test_flip_is_orthogonal_involution():
    x = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(flip(flip(x)), x)
    torch.testing.assert_close(flip(x).flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))
    c = dct2(flip(x))
    torch.testing.assert_close(c, torch.flip(dct2(x), dims=(-2, -1)))


def test_filters_keep_the_right_blocks():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    c = dct2(x)
    lp, hp, cl = dct2(low_pass(x, 16)), dct2(high_pass(x, 16)), dct2(cutoff_low(x, 14))
    torch.testing.assert_close(lp[..., :16, :16], c[..., :16, :16])
    assert lp[..., 16:, :].abs().max() < 1e-10 and lp[..., :, 16:].abs().max() < 1e-10
    torch.testing.assert_close(hp[..., 16:, 16:], c[..., 16:, 16:])
    assert hp[..., :16, :].abs().max() < 1e-10
    assert cl[..., :14, :14].abs().max() < 1e-10
    torch.testing.assert_close(cl[..., 14:, :], c[..., 14:, :])
    with pytest.raises(ValueError):
        low_pass(x, 33)
