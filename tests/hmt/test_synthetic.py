"""utils/hmt/synthetic.py: the class information lies in S and nowhere else, the noise energy in
Q is what it is told to be, the measured subspaces are where they should be, and a sweep keeps
its cells."""
import numpy as np
import pytest
import torch

from utils.hmt.synthetic import KINDS, SyntheticConfig, geometry, sample, subspaces_measured, sweep


def _ridge_accuracy(x_train, y_train, x_test, y_test, ridge=1.0):
    """Test accuracy of a ridge-regression linear classifier (targets +-1)."""
    t = 1.0 - 2.0 * y_train.double()
    a = torch.cat([x_train, torch.ones(len(x_train), 1, dtype=x_train.dtype)], 1)
    w = torch.linalg.solve(a.T @ a + ridge * torch.eye(a.shape[1], dtype=a.dtype), a.T @ t)
    b = torch.cat([x_test, torch.ones(len(x_test), 1, dtype=x_test.dtype)], 1)
    return float(((b @ w < 0).long() == y_test).double().mean())


@pytest.mark.parametrize("kind", KINDS)
def test_the_class_information_lies_in_s_only(kind):
    """A linear classifier on the projection of the samples onto S separates the classes; one
    restricted to S-perp is at chance (2,000 test samples: 50 % +- 4.5, four standard errors)."""
    config = SyntheticConfig(subspace=kind, seed=1)
    s, _, u = geometry(config)
    xtr, ytr = sample(config, 4000, 2)
    xte, yte = sample(config, 2000, 3)
    flat_tr, flat_te = xtr.double().flatten(1), xte.double().flatten(1)
    assert torch.allclose(flat_tr @ u, (1 - 2 * ytr.double()) * config.eps / 2, atol=1e-5)
    in_s = _ridge_accuracy(flat_tr @ s, ytr, flat_te @ s, yte)
    perp_tr = flat_tr - (flat_tr @ s) @ s.T
    perp_te = flat_te - (flat_te @ s) @ s.T
    in_perp = _ridge_accuracy(perp_tr, ytr, perp_te, yte, ridge=100.0)
    assert in_s > 0.99
    assert abs(in_perp - 0.5) < 0.045


def test_the_noise_energy_in_q_is_scaled_and_q_lies_in_s_perp():
    for kind in KINDS:
        s, q, u = geometry(SyntheticConfig(subspace=kind))
        assert float((s.T @ q).abs().max()) < 1e-12 and abs(float(u.norm()) - 1) < 1e-12
        assert float((q.T @ q - torch.eye(64, dtype=q.dtype)).abs().max()) < 1e-12
    energies = {}
    for q_energy in (0.0, 0.01, 1.0):
        config = SyntheticConfig(q_energy=q_energy)
        _, q, _ = geometry(config)
        x, _ = sample(config, 3000, 2)
        energies[q_energy] = float(((x.double().flatten(1) @ q) ** 2).sum(1).mean())
    assert energies[0.0] < 1e-8
    assert energies[1.0] == pytest.approx(64, rel=0.05)  # sigma^2 per dimension
    assert energies[0.01] == pytest.approx(0.64, rel=0.05)


def test_the_measured_subspaces():
    config = SyntheticConfig(subspace="low", random_subspaces=2)
    spaces = subspaces_measured(config)
    assert list(spaces)[:2] == ["S", "Q"] and len(spaces) == 2 + 21 + 2
    s, _, _ = geometry(config)
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    for name in ("perp_0", "perp_1"):
        basis = spaces[name].basis()
        assert float((s.T @ basis).abs().max()) < 1e-10  # inside S-perp
    # the low block S is the first diagonal DCT block
    torch.testing.assert_close(spaces["S"].project(x), spaces["dct_00"].project(x))


def test_a_sweep_writes_one_row_per_cell_and_resumes(tmp_path, monkeypatch):
    import utils.hmt.synthetic as synthetic
    base = SyntheticConfig(n_train=256, n_test=64, samples=4, epochs=1, random_subspaces=1)
    cells = [("low", "MLP", 1.0, 0), ("low", "LeNet", 1.0, 0)]
    rows = sweep(base, cells, tmp_path / "results.csv", progress=lambda line: None)
    assert [(r["model"], r["seed"]) for r in rows] == [("MLP", "0"), ("LeNet", "0")]
    assert all(np.isfinite(float(r["S"])) and float(r["perp"]) > 0 for r in rows)

    def no_run(*a, **k):
        raise AssertionError("a finished cell ran again")
    monkeypatch.setattr(synthetic, "run", no_run)
    assert len(sweep(base, cells, tmp_path / "results.csv", progress=lambda line: None)) == 2
