import math

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from tests.helpers import orthogonal_transform
from tests.oracles import project_ball_rotated_box_qp
from utils.hmt.dykstra import (FLIP, IDENTITY, dykstra, project_ball, project_ball_box,
                               project_plain, sample_norms)


def assert_kkt(p, pz, px, eps, tol=1e-6):
    """Optimality conditions of p = argmin ||p - pz|| over ||p - px|| <= eps, 0 <= p <= 1, in
    pixel coordinates (numpy [D]): pz - p = mu (p - px) + nu with mu >= 0 (0 unless on the
    sphere), nu_i >= 0 at p_i = 1, nu_i <= 0 at p_i = 0, nu_i = 0 elsewhere."""
    g, d = pz - p, p - px
    upper, lower = p >= 1 - 1e-9, p <= 1e-9
    free = ~(upper | lower)
    mu = 0.0
    if abs(np.linalg.norm(d) - eps) < 1e-7 and free.any():
        mu = g[free] @ d[free] / (d[free] @ d[free])
    assert mu >= -tol
    nu = g - mu * d
    assert np.abs(nu[free]).max(initial=0) <= tol
    assert nu[upper].min(initial=0) >= -tol and nu[lower].max(initial=0) <= tol


def random_problem(rng):
    """A valid image px in [0, 1]^D (some pixels at 0 or 1, like MNIST), a random orthogonal
    q, eps, and 6 points z in the representation: one inside the feasible set, five outside
    at growing distances."""
    dim = int(rng.integers(16, 65))
    q = ortho_group.rvs(dim, random_state=rng)
    px = rng.uniform(0, 1, dim)
    px[rng.random(dim) < 0.3] = 0.0
    px[rng.random(dim) < 0.1] = 1.0
    eps = float(rng.uniform(0.3, 2.0))
    inside = np.clip(px + rng.normal(size=dim), 0, 1) - px
    inside *= 0.9 * eps * rng.uniform() / max(np.linalg.norm(inside), 1e-12)
    pz = [px + inside] + [px + s * eps * rng.normal(size=dim) / math.sqrt(dim)
                          for s in (0.3, 1.0, 2.0, 4.0, 10.0)]
    return q, px, eps, np.stack([q @ p for p in pz])


def test_dykstra_equals_the_exact_projection_onto_ball_and_rotated_box():
    rng = np.random.default_rng(0)
    for _ in range(5):
        q, px, eps, z = random_problem(rng)
        transform = orthogonal_transform(q)
        x = np.tile(q @ px, (len(z), 1))
        res = project_ball_box(torch.as_tensor(z - x), torch.as_tensor(x), eps, transform,
                               tol=1e-12, max_iter=100_000)
        assert res.residual.max() <= 1e-12
        v = x + res.point.numpy()
        assert np.linalg.norm(v - x, axis=1).max() <= eps + 1e-5
        pixels = v @ q  # q^T v per row
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
        np.testing.assert_allclose(v[0], z[0], atol=1e-12)  # a feasible point stays put
        for i in range(len(z)):
            exact = project_ball_rotated_box_qp(z[i], x[i], eps, q)
            np.testing.assert_allclose(v[i], exact, atol=1e-5)
            assert_kkt(pixels[i], q.T @ z[i], px, eps)


def test_the_point_is_feasible_and_the_residual_large_when_stopped_early():
    rng = np.random.default_rng(1)
    q, px, eps, z = random_problem(rng)
    x = torch.as_tensor(np.tile(q @ px, (len(z), 1)))
    transform = orthogonal_transform(q)
    early = project_ball_box(torch.as_tensor(z) - x, x, eps, transform, tol=1e-12, max_iter=1)
    full = project_ball_box(torch.as_tensor(z) - x, x, eps, transform, tol=1e-12,
                            max_iter=100_000)
    assert early.iterations == 1 and full.iterations > 1
    assert early.residual.max() > 1e-3 and full.residual.max() <= 1e-12
    assert (sample_norms(early.point) <= eps + 1e-9).all()
    pixels = transform.inverse(x + early.point)
    assert pixels.min() >= -1e-9 and pixels.max() <= 1 + 1e-9


def _corner_case():
    """x near the top of [0, 1]^2, z up and to the right: the nearest feasible point lies where
    the top face of the box meets the circle, not where alternating projections stop."""
    x = torch.tensor([[0.5, 0.95]], dtype=torch.float64)
    z = torch.tensor([[1.5, 1.95]], dtype=torch.float64)
    eps = 0.3
    exact = torch.tensor([[0.5 + math.sqrt(eps ** 2 - 0.05 ** 2), 1.0]], dtype=torch.float64)
    return x, z, eps, exact


def test_alternating_projections_without_correction_stop_at_a_worse_point():
    x, z, eps, exact = _corner_case()

    def ball(v):
        return x + project_ball(v - x, eps)

    def box(v):
        return v.clamp(0, 1)

    res = dykstra(z, ball, box, tol=1e-13, max_iter=10_000)
    torch.testing.assert_close(res.point, exact, atol=1e-9, rtol=0)
    alternating = z
    for _ in range(1000):
        alternating = box(ball(alternating))
    assert (alternating - res.point).norm() > 0.05
    assert (alternating - z).norm() > (res.point - z).norm() + 0.03
    # and the plain ball-then-box projection is that same, worse, point here
    plain = x + project_plain(z - x, x, eps)
    torch.testing.assert_close(plain, alternating)


@pytest.mark.parametrize("transform", [IDENTITY, FLIP], ids=["identity", "flip"])
def test_plain_projection_agrees_with_dykstra_where_it_is_exact(transform):
    """Ball-then-box is exact when delta is already in the ball (the box step is then the
    projection onto a superset that lands inside the set) or when its ball projection is a
    valid image; elsewhere it is not (test above)."""
    gen = torch.Generator().manual_seed(2)
    pixels = torch.rand(8, 1, 8, 8, generator=gen, dtype=torch.float64)
    pixels[pixels < 0.3] = 0.0
    x = transform.forward(pixels)
    eps = 1.5
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    inside = noise * (eps * torch.rand(8, generator=gen, dtype=torch.float64)
                      / sample_norms(noise)).view(-1, 1, 1, 1)
    interior = transform.forward(0.3 + 0.4 * torch.rand(8, 1, 8, 8, generator=gen,
                                                        dtype=torch.float64))
    far = 10 * noise  # outside the ball; its ball projection (norm 0.25 < 0.3) stays valid
    for delta, base, radius in [(inside, x, eps), (far, interior, 0.25)]:
        exact = project_ball_box(delta, base, radius, transform, tol=1e-12, max_iter=10_000)
        torch.testing.assert_close(project_plain(delta, base, radius, transform), exact.point,
                                   atol=1e-9, rtol=0)
