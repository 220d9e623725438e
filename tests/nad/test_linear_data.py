import numpy as np
import pytest
import torch

from tests.helpers import random_direction
from utils.common.errors import UserError
from utils.nad.linear_data import (canonical_frequency, fourier_direction, linear_datasets,
                                   nad_direction, sample_linear)


@pytest.mark.parametrize("v", [fourier_direction(3, 4), fourier_direction(0, 0),
                               fourier_direction(16, -5), random_direction(0)])
def test_samples_sit_at_plus_minus_eps_over_two_along_v(v):
    x, y = sample_linear(v, 1001, sigma=3.0, eps=1.0, seed=1)
    assert x.shape == (1001, 1, 32, 32) and x.dtype == torch.float32
    assert (y == 1).sum() == 501 and (y == -1).sum() == 500
    flat = v.double().flatten()
    flat /= flat.norm()
    # x - y eps/2 v is the noise: its projection on v vanishes (up to float32 rounding of x)
    proj = x.double().flatten(1) @ flat
    torch.testing.assert_close(proj, y.double() * 0.5, rtol=0, atol=2e-5)
    # ... and it is N(0, 9) in the 1023 directions orthogonal to v
    noise = x.double().flatten(1) - proj[:, None] * flat
    assert abs(noise.square().sum(1).mean() / 1023 - 9) < 0.1
    u = torch.randn(1024, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    u -= (u @ flat) * flat
    assert abs((noise @ (u / u.norm())).var().item() / 9 - 1) < 0.15


def test_datasets_have_class_indices_and_independent_splits():
    v = fourier_direction(1, 2)
    train, test = linear_datasets(v, 100, 60, seed=4)
    (xtr, ytr), (xte, _) = train.tensors, test.tensors
    assert len(train) == 100 and len(test) == 60
    assert set(ytr.tolist()) == {0, 1} and (ytr == 0).sum() == 50
    # class 0 is y = +1: projection +eps/2
    proj = xtr.flatten(1) @ v.flatten()
    assert (proj[ytr == 0] > 0.49).all() and (proj[ytr == 1] < -0.49).all()
    assert not torch.allclose(xtr[:60], xte)
    again, _ = linear_datasets(v, 100, 60, seed=4)
    assert torch.equal(again.tensors[0], xtr)


@pytest.mark.parametrize("k1,k2", [(0, 0), (3, 4), (-2, 7), (16, 16), (5, -16)])
def test_fourier_direction_is_the_real_part_of_a_dft_basis_image(k1, k2):
    spectrum = np.zeros((32, 32), dtype=complex)
    spectrum[k1 % 32, k2 % 32] = 1
    expected = np.fft.ifft2(spectrum).real
    expected /= np.linalg.norm(expected)
    v = fourier_direction(k1, k2)
    assert v.shape == (1, 32, 32)
    np.testing.assert_allclose(v[0].numpy(), expected, atol=1e-6)
    torch.testing.assert_close(fourier_direction(-k1, -k2), v)
    canonical = canonical_frequency(k1, k2)
    assert canonical in {(k1 % 32, k2 % 32), (-k1 % 32, -k2 % 32)}
    assert canonical == canonical_frequency(-k1, -k2)


def test_nad_direction_is_a_unit_image_and_checks_the_index():
    nads = np.random.default_rng(0).normal(size=(4, 1024)).astype(np.float32)
    v = nad_direction(nads, 2)
    assert v.shape == (1, 32, 32)
    assert abs(v.norm().item() - 1) < 1e-6
    np.testing.assert_allclose(v.flatten().numpy() * np.linalg.norm(nads[2]), nads[2], rtol=1e-5)
    with pytest.raises(UserError, match="out of range"):
        nad_direction(nads, 4)
