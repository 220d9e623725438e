"""utils/hmt/margins.py: a margin run's folder after faults (a damaged partial result, a rerun with
other settings)."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import utils.hmt.experiment
import utils.hmt.margins
from tests.helpers import SMALL, one_error_line, run_script
from utils.common.errors import UserError
from utils.hmt.margins import load_margin_run, margin_distribution
from utils.hmt.subspaces import diagonal_blocks

BLOCKS = diagonal_blocks(4, 2, 1, 8, 8)  # 3 subspaces of 8x8 images


def _run(folder, images, run_info=None, stop_after=None, monkeypatch=None):
    """margin_distribution of a fixed linear model; with ``stop_after``, Ctrl-C arrives once
    that many subspaces are done."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double().eval()
    if stop_after is not None:
        real, calls = utils.hmt.margins._subspace_margins, []

        def stopping(*a, **k):
            if len(calls) == stop_after:
                raise KeyboardInterrupt
            calls.append(1)
            return real(*a, **k)
        monkeypatch.setattr(utils.hmt.margins, "_subspace_margins", stopping)
    try:
        return margin_distribution(model, images, BLOCKS, folder,
                                   run_info or {"sample_indices": list(range(len(images)))})
    finally:
        if stop_after is not None:
            monkeypatch.setattr(utils.hmt.margins, "_subspace_margins", real)


def _damage(path, kind):
    if kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong shape":
        np.save(path, np.ones((2, 3)))
    elif kind == "changed values":  # a valid array, but not the one written
        rows = np.load(path)
        rows[0, 1] *= 2
        np.save(path, rows)


@pytest.mark.parametrize("kind", ["garbage", "empty", "wrong shape", "changed values"])
def test_a_damaged_partial_subspace_is_discarded_and_computed_again(tmp_path, monkeypatch,
                                                                    capsys, kind):
    """A partial subspace file that is not what the run wrote (its sha256 was recorded) is
    named, discarded and computed again; the others are kept; the result is an uninterrupted
    run's."""
    images = torch.rand(5, 1, 8, 8, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))
    whole = _run(tmp_path / "whole", images)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", images, stop_after=2, monkeypatch=monkeypatch)
    damaged = tmp_path / "cut" / "partial" / "subspace_001.npy"
    _damage(damaged, kind)
    capsys.readouterr()
    resumed = _run(tmp_path / "cut", images)
    assert f"discarding the damaged partial result {damaged}" in capsys.readouterr().out
    np.testing.assert_array_equal(resumed, whole)


def test_a_finished_run_is_not_replaced_by_one_with_other_settings(tmp_path):
    images = torch.rand(5, 1, 8, 8, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))
    first = _run(tmp_path, images)
    _run(tmp_path, images)  # the same settings: repeated, the same results
    with pytest.raises(UserError, match="holds the results of a run with other settings .*"
                                        "sample_indices differ"):
        _run(tmp_path, images[:4], {"sample_indices": list(range(4))})
    np.testing.assert_array_equal(load_margin_run(tmp_path)[1], first)


def test_a_margin_script_refuses_to_replace_another_run_before_any_work(tmp_path, monkeypatch,
                                                                      capsys):
    argv = SMALL + ["--results-dir", tmp_path]
    assert run_script("margin_mnist", argv, monkeypatch) == 0
    out_dir = tmp_path / "margin_MNIST" / "LeNet"
    before = load_margin_run(out_dir)[1]
    argv[1] = "3"  # --samples 3
    capsys.readouterr()

    def no_work(*a, **k):
        raise AssertionError("the work started")
    monkeypatch.setattr(utils.hmt.experiment, "margin_distribution", no_work)
    assert run_script("margin_mnist", argv, monkeypatch) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {out_dir} holds the results of a run with other settings "
                           f"(its samples differ)") and "--results-dir" in line
    np.testing.assert_array_equal(load_margin_run(out_dir)[1], before)

