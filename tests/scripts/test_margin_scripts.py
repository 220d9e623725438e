"""The MNIST margin scripts end to end, their resumability, and their bad inputs."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import utils.hmt.margins
from models import build_model
from tests.helpers import ROOT, SMALL, files_under, run_script
from utils.common.checkpoints import save_weights


@pytest.mark.parametrize("module,name", [("margin_mnist", "MNIST"),
                                         ("margin_flipped_mnist", "MNIST_flipped")])
def test_margin_script_end_to_end(tmp_path, monkeypatch, capsys, module, name):
    code = run_script(module, SMALL + ["--results-dir", str(tmp_path)], monkeypatch)
    assert code == 0
    out_dir = tmp_path / f"margin_{name}" / "LeNet"
    margins = np.load(out_dir / "margins.npy")
    assert margins.shape == (3, 4) and np.all(margins > 0)
    info = json.loads((out_dir / "run.json").read_text())
    assert len(info["sample_indices"]) == 4 and info["subspace_spec"]["count"] == 3
    assert info["test_accuracy"] > 0.96 and len(info["checkpoint_sha256"]) == 64
    assert (out_dir / "margins.png").stat().st_size > 1000
    assert not (out_dir / "partial").exists()
    printed = capsys.readouterr().out
    assert "median margin per subspace" in printed and str(out_dir / "margins.npy") in printed


def test_interrupted_run_resumes_at_the_next_subspace(tmp_path, monkeypatch):
    # one subspace at a time: the calls come in order, the second is the second subspace
    one_at_a_time = SMALL + ["--workers", "1"]
    args = one_at_a_time + ["--results-dir", str(tmp_path)]
    real = utils.hmt.margins._subspace_margins
    calls, interrupt = [], [True]

    def failing_on_second(*a, **k):
        calls.append(a[2])
        if interrupt[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(utils.hmt.margins, "_subspace_margins", failing_on_second)
    assert run_script("margin_mnist", args, monkeypatch) == 130
    out_dir = tmp_path / "margin_MNIST" / "LeNet"
    assert not (out_dir / "margins.npy").exists()
    assert len(list((out_dir / "partial").glob("subspace_*.npy"))) == 1

    calls.clear()
    interrupt[0] = False
    assert run_script("margin_mnist", args, monkeypatch) == 0
    assert [b.offset for b in calls] == [7, 14]  # the first subspace was not recomputed
    resumed = np.load(out_dir / "margins.npy")
    monkeypatch.setattr(utils.hmt.margins, "_subspace_margins", real)
    fresh_dir = tmp_path / "fresh"
    fresh = one_at_a_time + ["--results-dir", str(fresh_dir)]
    assert run_script("margin_mnist", fresh, monkeypatch) == 0
    np.testing.assert_allclose(resumed, np.load(fresh_dir / "margin_MNIST/LeNet/margins.npy"))


def _bad_checkpoints(tmp_path):
    corrupt = tmp_path / "corrupt.t7"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    other = save_weights(build_model("MNIST", "ResNet18"), tmp_path / "resnet18.t7")
    return corrupt, other


@pytest.mark.parametrize("case,extra,message", [
    ("missing checkpoint", ["--checkpoint", "nowhere/model.t7"], "does not exist"),
    ("corrupt checkpoint", ["--checkpoint", "{corrupt}"], "could not be read"),
    ("other architecture", ["--checkpoint", "{other}"], "does not fit LeNet"),
    ("no full MNIST", ["--data", "full", "--data-dir", "{empty}"], "was not found"),
    ("too many samples", ["--samples", "2001"], "more than the 2000 test images"),
    ("subspace too large", ["--block-size", "29"], "does not fit an image of 28x28"),
    ("no shipped checkpoint", ["--model", "ResNet18"], "pass --train"),
])
def test_bad_input_is_one_sentence_and_no_result(tmp_path, monkeypatch, capsys, case, extra,
                                                 message):
    corrupt, other = _bad_checkpoints(tmp_path)
    (tmp_path / "empty").mkdir()
    extra = [e.format(corrupt=corrupt, other=other, empty=tmp_path / "empty") for e in extra]
    results = tmp_path / "results"
    argv = ["--samples", "4", "--device", "cpu", "--results-dir", str(results)] + extra
    assert run_script("margin_mnist", argv, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert files_under(results) == []
    assert not any((tmp_path / "empty").iterdir())


def test_command_line_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scripts.margin_mnist", "--checkpoint",
                           str(tmp_path / "none.t7"), "--results-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: checkpoint") and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "scripts.margin_flipped_mnist", "--samples",
                           "0"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "must be at least 1" in proc.stderr


def test_train_flag_trains_and_saves_a_checkpoint(tmp_path, monkeypatch):
    from torch.utils.data import TensorDataset

    import utils.hmt.experiment
    real_loader = utils.hmt.experiment.LOADERS["MNIST"]

    def small(*a, **k):  # the real loader, cut to a few hundred digits to keep the test short
        data = real_loader(*a, **k)
        data.train = TensorDataset(*(t[:512] for t in data.train.tensors))
        return data

    monkeypatch.setitem(utils.hmt.experiment.LOADERS, "MNIST", small)
    argv = SMALL + ["--train", "--epochs", "1", "--results-dir", str(tmp_path)]
    assert run_script("margin_mnist", argv, monkeypatch) == 0
    out_dir = tmp_path / "margin_MNIST" / "LeNet"
    state = torch.load(out_dir / "model.t7", weights_only=True)
    assert set(state) == set(build_model("MNIST", "LeNet").state_dict())
    info = json.loads((out_dir / "run.json").read_text())
    assert info["trained_here"] and info["checkpoint"] == str(out_dir / "model.t7")


def test_deepfool_benchmark_runs_and_refuses_a_bad_repeat():
    """benchmarks.deepfool on 3 samples and 2 subspaces, both paths run twice: it checks the
    agreement itself (exit 1 otherwise) and ends with the speedup line."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.deepfool", "--samples", "3",
                           "--subspaces", "0,20", "--repeat", "2"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "6 of 6" in lines[-4] and lines[-2].startswith("  fastest of batched")
    assert lines[-1].startswith("speedup: ") and lines[-1].endswith("x")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.deepfool", "--repeat", "0"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --repeat must be at least 1, not 0"


def test_directional_bias_benchmark_runs():
    """benchmarks.directional_bias on 2 small networks: both paths run and the speedup line
    comes last."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.directional_bias", "--networks",
                           "2", "--group", "2", "--epochs", "1", "--train-samples", "256"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "in groups of 2:" in lines[-3] and "largest test-accuracy difference" in lines[-2]
    assert lines[-4].startswith("one at a time:")
    assert lines[-1].startswith("speedup: ") and lines[-1].endswith("x")
