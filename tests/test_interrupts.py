"""Ctrl-C keeps its promise (issue #22, finding 5): what is finished is saved, and the message
gives the exact command that continues, --resume included where it is needed."""
import shlex

import numpy as np
import torch
from torch.utils.data import TensorDataset

import utils.experiment
import utils.margins
import utils.nad_computation
import utils.training
from tests.test_scripts import run_script
from utils.nad_computation import nad_paths

NADS = ["--arch", "LogReg", "--networks", "40", "--k", "5", "--networks-per-pass", "4"]


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


def test_ctrl_c_saves_the_nad_gradients_and_names_the_resume_command(tmp_path, monkeypatch,
                                                                      capsys):
    """Rounds of 4 passes x 4 networks: interrupted in the second round, the 16 networks of the
    first are saved (the interval of --save-every, 120 s, has not passed), and the printed
    command, --resume added, continues to the NADs of an uninterrupted run."""
    argv = NADS + ["--out-dir", str(tmp_path / "cut")]
    stop_at_call(monkeypatch, utils.nad_computation, "iter_gradients", 2)
    assert run_script("nad_computation", argv, monkeypatch) == 130
    partial = nad_paths(tmp_path / "cut", "LogReg")["partial"]
    command = shlex.join(["python", "-m", "scripts.nad_computation", *argv, "--resume"])
    assert interrupt_line(capsys) == (f"interrupted; the gradients of 16 of 40 networks are "
                                      f"saved in {partial}; to continue, run: {command}")
    assert torch.load(partial, weights_only=True)["done"] == 16

    monkeypatch.undo()
    assert run_script("nad_computation", shlex.split(command)[3:], monkeypatch) == 0
    assert "resuming after 16 of 40 networks" in capsys.readouterr().out
    assert run_script("nad_computation", NADS + ["--out-dir", str(tmp_path / "whole")],
                      monkeypatch) == 0
    np.testing.assert_allclose(np.load(tmp_path / "cut" / "LogReg_NADs.npy"),
                               np.load(tmp_path / "whole" / "LogReg_NADs.npy"), atol=1e-6)
    assert not partial.exists()


def test_save_every_sets_how_often_the_gradients_are_saved(tmp_path, monkeypatch):
    """A run that dies without Ctrl-C (here an error in the third round) keeps what the last
    periodic save wrote: every round with --save-every 0, nothing within the default 120 s."""
    for every, kept in (("0", 32), (None, None)):
        out = tmp_path / str(every)
        stop_at_call(monkeypatch, utils.nad_computation, "iter_gradients", 3, MemoryError)
        argv = NADS + ["--out-dir", str(out)] + (["--save-every", every] if every else [])
        try:
            run_script("nad_computation", argv, monkeypatch)
        except MemoryError:
            pass
        partial = nad_paths(out, "LogReg")["partial"]
        assert (torch.load(partial, weights_only=True)["done"] if partial.exists() else None) \
            == kept
        monkeypatch.undo()


def small_mnist(monkeypatch):
    """The real loader, its train split cut to 256 digits (2 batches an epoch)."""
    real = utils.experiment.LOADERS["MNIST"]

    def small(*a, **k):
        data = real(*a, **k)
        data.train = TensorDataset(*(t[:256] for t in data.train.tensors))
        return data
    monkeypatch.setitem(utils.experiment.LOADERS, "MNIST", small)


def test_ctrl_c_in_training_asks_for_resume(tmp_path, monkeypatch, capsys):
    """Interrupted in its second epoch, margin_mnist --train says the state of epoch 1 is saved
    and that the command continues with --resume (rerun as it was, it started at epoch 1)."""
    small_mnist(monkeypatch)
    argv = ["--samples", "2", "--block-size", "28", "--device", "cpu", "--workers", "1",
            "--train", "--epochs", "3", "--results-dir", str(tmp_path)]
    real_tqdm = utils.training.tqdm
    stop_at_call(monkeypatch, utils.training, "tqdm", 2)  # the second epoch's progress bar
    assert run_script("margin_mnist", argv, monkeypatch) == 130
    state = tmp_path / "margin_MNIST" / "LeNet" / "train_state.pt"
    command = shlex.join(["python", "-m", "scripts.margin_mnist", *argv, "--resume"])
    assert interrupt_line(capsys) == (f"interrupted; the training state after epoch 1 of 3 is "
                                      f"saved in {state}; to continue, run: {command}")

    monkeypatch.setattr(utils.training, "tqdm", real_tqdm)
    stop_at_call(monkeypatch, utils.margins, "_subspace_margins", 1)  # now in DeepFool
    assert run_script("margin_mnist", shlex.split(command)[3:], monkeypatch) == 130
    printed = capsys.readouterr()
    assert "resuming training from epoch 1 of 3" in printed.out
    line = printed.err.strip().splitlines()[-1]
    assert line.startswith("interrupted; 0 of 1 subspaces are saved in ") and \
        line.endswith(f"to continue, run: {command}")  # still --resume: else it trains again
