import json
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn

import utils.hmt.margins as margins
from models import LeNet, TransformLayer, build_model, normalized
from utils.common.errors import UserError
from utils.common.training import default_workers
from utils.hmt.margin_compare import compare_margins, ratio_interval
from utils.hmt.margins import margin_distribution
from utils.hmt.subspaces import diagonal_blocks


def _run(folder, seed, images, indices):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double().eval()
    subspaces = diagonal_blocks(4, 2, 1, 8, 8)
    margin_distribution(model, images, subspaces, folder, {"sample_indices": indices})


def test_compare_margins_summarises_two_runs_on_the_same_samples(tmp_path):
    images = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    _run(tmp_path / "a", 0, images, list(range(6)))
    _run(tmp_path / "b", 1, images, list(range(6)))
    c = compare_margins(tmp_path / "a", tmp_path / "b")
    ma, mb = np.load(tmp_path / "a" / "margins.npy"), np.load(tmp_path / "b" / "margins.npy")
    med_a, med_b = np.median(ma, axis=1), np.median(mb, axis=1)
    np.testing.assert_allclose(c["ratio"], med_b / med_a)
    assert c["smallest"] == int(np.argmin(med_a)) and len(c["ratio"]) == len(ma) == 3
    assert c["ratio_at_smallest"] == pytest.approx(med_b[c["smallest"]] / med_a[c["smallest"]])
    low, high = c["ratio_interval_at_smallest"]
    assert 0 < low <= high  # its agreement with a plain bootstrap: the test below
    assert c["share_at_cap_reference"] == 0.0  # a linear model is crossed in one step

    _run(tmp_path / "c", 1, images, [5, 4, 3, 2, 1, 0])
    with pytest.raises(UserError, match="different samples"):
        compare_margins(tmp_path / "a", tmp_path / "c")


def test_ratio_interval_agrees_with_a_plain_bootstrap_loop():
    """scipy's vectorised paired bootstrap against a loop that resamples sample indices."""
    rng = np.random.default_rng(7)
    reference = rng.lognormal(1.0, 0.4, 600)
    other = 1.5 * reference * rng.lognormal(0.0, 0.3, 600)  # paired with the reference
    low, high = ratio_interval(reference, other, resamples=4000, seed=1)
    boots = []
    for _ in range(4000):
        i = rng.integers(0, 600, 600)
        boots.append(np.median(other[i]) / np.median(reference[i]))
    oracle_low, oracle_high = np.percentile(boots, [2.5, 97.5])
    point = np.median(other) / np.median(reference)
    assert low < point < high
    assert low == pytest.approx(oracle_low, abs=0.02) and high == pytest.approx(oracle_high,
                                                                                 abs=0.02)
    # pairing matters: resampling the two models independently gives a wider interval
    unpaired = [np.median(other[rng.integers(0, 600, 600)]) /
                np.median(reference[rng.integers(0, 600, 600)]) for _ in range(4000)]
    assert np.subtract(*np.percentile(unpaired, [97.5, 2.5])) > high - low


def test_first_steps_are_shared_between_subspaces_and_change_nothing(tmp_path, monkeypatch):
    """margin_distribution computes DeepFool's first step once per batch, not once per batch
    and subspace, and gets the margins of a run that recomputes it (no cache)."""
    calls = []
    real = margins.first_step
    monkeypatch.setattr(margins, "first_step", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()
    images = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    subspaces = diagonal_blocks(4, 2, 1, 8, 8)
    shared = margin_distribution(model, images, subspaces, tmp_path / "a", {}, batch_size=2)
    assert len(calls) == 3  # batches of 2, 2 and 1
    monkeypatch.setattr(margins, "FIRST_STEP_CACHE_BYTES", 0)
    recomputed = margin_distribution(model, images, subspaces, tmp_path / "b", {}, batch_size=2)
    # the first batch's, found too large to keep, then every batch's for every subspace
    assert len(calls) == 3 + 1 + 3 * len(subspaces)
    np.testing.assert_array_equal(shared, recomputed)


def test_workers_measure_subspaces_side_by_side_and_agree_with_one(tmp_path, monkeypatch):
    """margin_distribution with 2 worker threads (each with its own copy of the model, so the
    stem's hooks do not mix, and the first steps computed once) gives the margins and
    iterations of one subspace at a time, and leaves torch's thread count and the caller's
    model as they were; interrupted, it keeps the subspaces finished in order and resumes."""
    torch.manual_seed(4)
    model = normalized(LeNet(), TransformLayer((0.13,), (0.31,))).double().eval()
    images = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    subspaces = diagonal_blocks(8, 10, 1, 28, 28)  # DCT[0:8], [10:18], [20:28]
    df_args = {"stem": "1.conv1"}
    one = margin_distribution(model, images, subspaces, tmp_path / "one", {}, batch_size=4,
                              deepfool_args=df_args)
    real, seen = margins._subspace_margins, set()
    meet = threading.Barrier(2, timeout=60)  # both workers must be inside at the same time

    def measured_side_by_side(*a, **k):
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            meet.wait()
        return real(*a, **k)
    monkeypatch.setattr(margins, "_subspace_margins", measured_side_by_side)
    first_steps, real_first_step = [], margins.first_step
    monkeypatch.setattr(margins, "first_step",
                        lambda *a, **k: first_steps.append(1) or real_first_step(*a, **k))
    threads = torch.get_num_threads()
    two = margin_distribution(model, images, subspaces, tmp_path / "two", {}, batch_size=4,
                              deepfool_args=df_args, workers=2)
    assert len(seen) == 2 and torch.get_num_threads() == threads
    assert len(first_steps) == 2  # once per batch (4 + 2 images), shared by the workers
    np.testing.assert_allclose(two, one, rtol=1e-9)
    np.testing.assert_array_equal(np.load(tmp_path / "two/iterations.npy"),
                                  np.load(tmp_path / "one/iterations.npy"))
    assert not model[1].conv1._forward_hooks
    assert json.loads((tmp_path / "two/run.json").read_text())["workers"] == 2

    # interrupted in the second subspace: the first is kept, whatever the other worker did
    def interrupted_in_the_second(*a, **k):
        if a[2] is subspaces[1]:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(margins, "_subspace_margins", interrupted_in_the_second)
    with pytest.raises(KeyboardInterrupt):
        margin_distribution(model, images, subspaces, tmp_path / "cut", {}, batch_size=4,
                            deepfool_args=df_args, workers=2)
    assert [p.name for p in (tmp_path / "cut/partial").glob("subspace_*")] == ["subspace_000.npy"]
    monkeypatch.setattr(margins, "_subspace_margins", real)
    resumed = margin_distribution(model, images, subspaces, tmp_path / "cut", {}, batch_size=4,
                                  deepfool_args=df_args, workers=2)
    np.testing.assert_allclose(resumed, one, rtol=1e-9)


def test_default_workers():
    assert default_workers("cpu", build_model("MNIST", "LeNet")) == torch.get_num_threads()
    assert default_workers("cuda", build_model("MNIST", "LeNet")) == 1
    assert default_workers("cpu", build_model("MNIST", "ResNet18")) == 1
    assert default_workers("cpu") == torch.get_num_threads()
