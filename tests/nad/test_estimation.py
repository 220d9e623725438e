import json
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from models import LogReg, build_nad_model
from tests.nad_oracles import autograd_gradient_one, fd_gradient_one
from utils.common.cli import run
from utils.common.data import ROOT
from utils.nad.estimation import (NetworkSampler, Stacked, autograd_gradients, build_networks,
                                  evaluation_point, fd_gradients, iter_gradients, network_seed,
                                  principal_directions, subspace_overlap)
from utils.nad.linear_data import load_nads


def smooth_net():
    """A small twice-differentiable network with batch norm (eval mode), in float64."""
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(3 * 3 * 3, 4), nn.Softplus(),
                         nn.Linear(4, 1)).double().eval()


def randomise_batch_norm(model, seed):
    """Give the batch-norm layers non-trivial statistics, so that they matter in the test."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model


def test_fd_equals_autograd_on_a_linear_model_at_the_papers_step():
    models = build_networks(lambda: LogReg(1024, 1), seed=3, start=0, count=5)
    x0 = evaluation_point(3)
    fd = fd_gradients(models, x0, step=100.0)
    exact = torch.stack([-m.output_fc.weight[0].detach() for m in models])
    torch.testing.assert_close(fd, exact, rtol=0, atol=2e-6)
    torch.testing.assert_close(autograd_gradients(models, x0), exact, rtol=0, atol=1e-7)


def test_fd_converges_to_autograd_on_a_smooth_network():
    models = [randomise_batch_norm(m, i) for i, m in
              enumerate(build_networks(smooth_net, seed=1, start=0, count=4))]
    x0 = torch.randn(1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    exact = autograd_gradients(models, x0)
    for m, g in zip(models, exact):
        torch.testing.assert_close(g, autograd_gradient_one(m, x0))
    scale = exact.abs().max().item()
    errors = [(fd_gradients(models, x0, step=h) - exact).abs().max().item() for h in (1e-2, 1e-3)]
    assert errors[1] < 1e-4 * scale
    assert errors[1] < errors[0] / 50  # central differences: error ~ h^2
    # the paper's step is far outside the linear regime of this network
    assert (fd_gradients(models, x0, step=100.0) - exact).abs().max() > 10 * errors[0]


@pytest.mark.parametrize("arch,count", [("LeNet", 2), ("LogReg", 3)])
def test_vectorised_fd_equals_per_pixel_oracle(arch, count):
    models = build_networks(lambda: build_nad_model(arch), seed=5, start=7, count=count)
    x0 = evaluation_point(5)
    fast = fd_gradients(models, x0, 100.0, batch_size=1000)  # several chunks of pixels
    loop = fd_gradients(models, x0, 100.0, batch_size=1000, vectorize=False)
    for m, g, h in zip(models, fast, loop):
        oracle = fd_gradient_one(m, x0, 100.0)
        scale = oracle.abs().max()
        torch.testing.assert_close(g, oracle, rtol=0, atol=1e-5 * scale)
        torch.testing.assert_close(h, oracle, rtol=0, atol=1e-5 * scale)


def test_vectorised_fd_with_batch_norm_equals_oracle():
    models = [randomise_batch_norm(m, i) for i, m in
              enumerate(build_networks(smooth_net, seed=2, start=0, count=3))]
    x0 = torch.randn(1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fast = fd_gradients(models, x0, 0.5, batch_size=40)
    for m, g in zip(models, fast):
        torch.testing.assert_close(g, fd_gradient_one(m, x0, 0.5))


def test_vectorised_autograd_equals_oracle_for_vgg11_in_eval_mode():
    models = build_networks(lambda: build_nad_model("VGG11"), seed=0, start=0, count=2)
    x0 = evaluation_point(0)
    fast = autograd_gradients(models, x0)
    for m, g in zip(models, fast):
        oracle = autograd_gradient_one(m, x0)
        torch.testing.assert_close(g, oracle, rtol=1e-4, atol=1e-6 * oracle.abs().max().item())


def test_networks_do_not_depend_on_grouping_nor_touch_the_global_rng():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    build = lambda: build_nad_model("LeNet")  # noqa: E731
    x0 = evaluation_point(0)
    grouped = torch.cat([g for _, g in iter_gradients(build, 7, x0, "autograd", seed=4,
                                                       networks_per_pass=3)])
    single = torch.cat([g for _, g in iter_gradients(build, 7, x0, "autograd", seed=4,
                                                      networks_per_pass=1)])
    assert torch.equal(torch.rand(3), before)
    # float32 gradients of one network computed alone or vmapped with others: the sums are
    # ordered differently, so they agree to a few ulp of the largest entry
    scale = single.abs().max().item()
    torch.testing.assert_close(grouped, single, rtol=1e-5, atol=1e-5 * scale)
    tail = torch.cat([g for _, g in iter_gradients(build, 7, x0, "autograd", seed=4, start=5,
                                                    networks_per_pass=2)])
    torch.testing.assert_close(tail, grouped[5:], rtol=1e-5, atol=1e-5 * scale)
    assert network_seed(4, 0) != network_seed(4, 1) != network_seed(5, 1)


@pytest.mark.parametrize("arch,fast", [("LogReg", True), ("LeNet", True), ("VGG11", False)])
def test_sampled_networks_equal_networks_built_one_by_one(arch, fast):
    """The sampler replays the uniform initialisation of LogReg and LeNet straight into the
    stack; VGG11 (normal init in its constructor) must take the slow path. Both must give the
    networks that build_networks gives, also when a smaller call reuses the storage."""
    build = lambda: build_nad_model(arch)  # noqa: E731
    before = torch.Tensor.uniform_
    seed, start = np.random.SeedSequence().generate_state(2) % 10_000
    sample = NetworkSampler(build, int(seed))
    for first, count in ((int(start), 5), (int(start) + 9, 3)):
        nets = sample(first, count)
        oracle = Stacked.of(build_networks(build, int(seed), first, count))
        assert len(nets) == count
        for name, value in {**oracle.params, **oracle.buffers}.items():
            assert torch.equal({**nets.params, **nets.buffers}[name], value), name
    assert torch.Tensor.uniform_ is before
    assert (sample.recorded is not None) == fast


def test_recording_the_initialisation_restores_torch_when_the_build_fails():
    def broken():
        nn.Linear(3, 1)
        raise RuntimeError("broken constructor")
    before = torch.Tensor.uniform_
    with pytest.raises(RuntimeError, match="broken constructor"):
        NetworkSampler(broken, 0)
    assert torch.Tensor.uniform_ is before
    torch.empty(3).uniform_()


def test_networks_with_several_outputs_are_refused():
    models = [build_nad_model("LeNet", num_classes=2)]
    with pytest.raises(ValueError, match="one output"):
        fd_gradients(models, evaluation_point(0))


def marchenko_pastur_edges(n, d):
    g = d / n
    return (1 - math.sqrt(g)) ** 2, (1 + math.sqrt(g)) ** 2


def test_logreg_nads_are_isotropic_and_lenet_nads_are_not():
    n = 2048
    x0 = evaluation_point(0)
    low, high = marchenko_pastur_edges(n, 1024)
    # autograd: equal to finite differences on a linear model (tested above), and faster
    grads = torch.cat([g for _, g in iter_gradients(lambda: build_nad_model("LogReg"), n, x0,
                                                    "autograd", networks_per_pass=256)])
    _, s = principal_directions(grads.numpy(), 1024)
    # default init of nn.Linear(1024, 1): weights U(-1/32, 1/32), variance 1 / (3 * 1024)
    variance = s.astype(np.float64) ** 2 / (n - 1) * 3 * 1024
    assert 0.85 * low < variance.min() and variance.max() < 1.15 * high
    assert abs(variance.mean() - 1) < 0.05

    grads = torch.cat([g for _, g in iter_gradients(lambda: build_nad_model("LeNet"), n, x0,
                                                    "autograd", networks_per_pass=256)])
    _, s = principal_directions(grads.numpy(), 1024)
    variance = s.astype(np.float64) ** 2
    assert variance.max() / variance.mean() > 1.5 * high
    assert variance.min() / variance.mean() < 0.1 * low


def test_principal_directions_match_the_covariance_eigenvectors():
    gen = np.random.default_rng(0)
    g = gen.normal(size=(300, 20)) * np.linspace(3, 0.1, 20) + gen.normal(size=20)
    nads, s = principal_directions(g, 6)
    cov = np.cov(g, rowvar=False)
    evals, evecs = np.linalg.eigh(cov)
    np.testing.assert_allclose(s ** 2 / 299, evals[::-1][:6], rtol=1e-5)
    for i in range(6):
        assert abs(abs(nads[i] @ evecs[:, -1 - i]) - 1) < 1e-5
        assert nads[i][np.abs(nads[i]).argmax()] > 0
    np.testing.assert_allclose(nads @ nads.T, np.eye(6), atol=1e-6)
    with pytest.raises(ValueError):
        principal_directions(g[:5], 5)


def test_subspace_overlap():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(50, 50)))
    a, b = q[:, :5].T, q[:, 5:10].T
    rot, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(5, 5)))
    assert subspace_overlap(a, a) == pytest.approx(1)
    assert subspace_overlap(a, rot @ a) == pytest.approx(1)
    assert subspace_overlap(a, b) == pytest.approx(0, abs=1e-12)
    mixed = np.vstack([a[:2], b[:3]])
    assert subspace_overlap(a, mixed) == pytest.approx(2 / 5)


def test_overlap_script_compares_two_nad_files(tmp_path, monkeypatch, capsys):
    from scripts import nad_overlap
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(1024, 6)))
    np.save(tmp_path / "a.npy", q.T[:3].astype(np.float32))
    np.save(tmp_path / "b.npy", q.T[[0, 4, 5]].astype(np.float32))
    monkeypatch.setattr(sys, "argv", ["nad_overlap", str(tmp_path / "a.npy"),
                                      str(tmp_path / "b.npy"), "--k", "1,3"])
    run(nad_overlap.main)
    out = capsys.readouterr().out
    assert "k =    1: overlap 1.000" in out and "k =    3: overlap 0.333" in out


def test_the_shipped_nads_match_the_hashes_their_json_records():
    """The shipped JSONs record the sha256 of their arrays (added with this check, the arrays
    unchanged), so load_nads checks them as it checks newly computed ones."""
    for path in sorted((ROOT / "nads").glob("*_NADs.npy")):
        meta = json.loads(path.with_suffix(".json").read_text())
        assert set(meta["files"]) == {path.name, path.name.replace("_NADs", "_eigenvals")}
        assert load_nads(path).shape == (meta["k"], 1024)
