"""Ctrl-C keeps its promise: what is finished is saved, and the message
gives the exact command that continues, --resume included where it is needed."""
import shlex

from torch.utils.data import TensorDataset

import utils.common.training
import utils.hmt.experiment
import utils.hmt.margins
from tests.helpers import run_script


def interrupt_line(capsys):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines[-1].startswith("interrupted"), lines
    return lines[-1]


def stop_at_call(monkeypatch, module, name, call, error=KeyboardInterrupt):
    """Make ``module.name`` raise ``error`` at its ``call``-th call (1-based)."""
    real, calls = getattr(module, name), []

    def stopping(*a, **k):
        calls.append(1)
        if len(calls) == call:
            raise error
        return real(*a, **k)
    monkeypatch.setattr(module, name, stopping)


def small_mnist(monkeypatch):
    """The real loader, its train split cut to 256 digits (2 batches an epoch)."""
    real = utils.hmt.experiment.LOADERS["MNIST"]

    def small(*a, **k):
        data = real(*a, **k)
        data.train = TensorDataset(*(t[:256] for t in data.train.tensors))
        return data
    monkeypatch.setitem(utils.hmt.experiment.LOADERS, "MNIST", small)


def test_ctrl_c_in_training_asks_for_resume(tmp_path, monkeypatch, capsys):
    """Interrupted in its second epoch, margin_mnist --train says the state of epoch 1 is saved
    and that the command continues with --resume (rerun as it was, it started at epoch 1)."""
    small_mnist(monkeypatch)
    argv = ["--samples", "2", "--block-size", "28", "--device", "cpu", "--workers", "1",
            "--train", "--epochs", "3", "--results-dir", str(tmp_path)]
    real_tqdm = utils.common.training.tqdm
    stop_at_call(monkeypatch, utils.common.training, "tqdm", 2)  # the second epoch's progress bar
    assert run_script("margin_mnist", argv, monkeypatch) == 130
    state = tmp_path / "margin_MNIST" / "LeNet" / "train_state.pt"
    command = shlex.join(["python", "-m", "scripts.margin_mnist", *argv, "--resume"])
    assert interrupt_line(capsys) == (f"interrupted; the training state after epoch 1 of 3 is "
                                      f"saved in {state}; to continue, run: {command}")

    monkeypatch.setattr(utils.common.training, "tqdm", real_tqdm)
    stop_at_call(monkeypatch, utils.hmt.margins, "_subspace_margins", 1)  # now in DeepFool
    assert run_script("margin_mnist", shlex.split(command)[3:], monkeypatch) == 130
    printed = capsys.readouterr()
    assert "resuming training from epoch 1 of 3" in printed.out
    line = printed.err.strip().splitlines()[-1]
    assert line.startswith("interrupted; 0 of 1 subspaces are saved in ") and \
        line.endswith(f"to continue, run: {command}")  # still --resume: else it trains again
