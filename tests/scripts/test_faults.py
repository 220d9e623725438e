"""The scripts under faults and degenerate numbers: a full disk, a diverging training, weights
that are not finite or do not depend on the input, runs too large for the machine, empty
paths. Each ends in one sentence and a non-zero exit before the work (or keeps what was
finished), never in a traceback or a nonsensical result with exit status 0."""
import numpy as np
import pytest
import torch

from models import build_model
from tests.helpers import DIRECTIONAL, SMALL, files_under, one_error_line, run_script, small_disk
from utils.common.checkpoints import save_weights
from utils.hmt.margins import load_margin_run


@pytest.mark.parametrize("script,argv", [
    ("margin_mnist", SMALL + ["--results-dir", "{out}"]),
    ("nad_computation", ["--arch", "LogReg", "--networks", "300", "--k", "5",
                         "--out-dir", "{out}"]),
    ("directional_bias", DIRECTIONAL + ["--fourier-grid", "--grid-step", "16",
                                        "--results-dir", "{out}"]),
])
def test_a_full_disk_is_one_sentence_and_the_rerun_finishes(tmp_path, monkeypatch, capsys,
                                                            script, argv):
    """The output device fills up (a 16 kB tmpfs where root may mount one, else simulated):
    one sentence naming the file and the space, exit 2; once there is space, the same command
    finishes (the margin run from its saved subspaces) with the files of a run that had space
    all along."""
    with small_disk(tmp_path, monkeypatch, size=16 << 10) as (folder, grow):
        args = [a.format(out=folder) for a in argv]
        capsys.readouterr()
        assert run_script(script, args, monkeypatch) == 2
        line = one_error_line(capsys)
        assert line.startswith(f"error: no space left on the device of {folder}/"), line
        assert "free some space there or choose another output folder" in line
        grow()
        assert run_script(script, args, monkeypatch) == 0
        roomy = [a.format(out=tmp_path / "roomy") for a in argv]
        assert run_script(script, roomy, monkeypatch) == 0
        if script == "margin_mnist":
            same = "margin_MNIST/LeNet/margins.npy"
            assert (folder / same).read_bytes() == (tmp_path / "roomy" / same).read_bytes()


def test_a_diverging_training_stops_and_saves_nothing_of_it(tmp_path, monkeypatch, capsys):
    """L2 PGD with eps 1e308 makes the first batches infinite: the training stops at once with
    one sentence, and no NaN model.t7 is written."""
    argv = SMALL + ["--train", "--epochs", "1", "--eps", "1e308", "--results-dir", tmp_path]
    assert run_script("margin_robust_mnist", argv, monkeypatch) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: the training diverged: the loss is nan at batch 1 of "
                           "epoch 1; nothing of it was saved; lower the learning rate"), line
    assert not list(tmp_path.rglob("model.t7"))


@pytest.mark.parametrize("argv,message", [
    (["--sigma", "1e308"], "samples of D(v) with sigma 1e+308 and eps 1 overflow float32; use a "
                           "smaller --sigma or --eps"),
    (["--eps", "1e308"], "samples of D(v) with sigma 3 and eps 1e+308 overflow float32"),
    (["--train-samples", "10000000000"], "samples of D(v) need"),
])
def test_senseless_data_of_d_v_is_refused_before_training(tmp_path, monkeypatch, capsys,
                                                          no_work, argv, message):
    """--sigma/--eps 1e308 wrote '50.00 %' (a training on infinite data); a huge sample count
    was an allocation traceback."""
    assert run_script("directional_bias", DIRECTIONAL + ["--fourier", "1,1", "--results-dir",
                                                         tmp_path] + argv, monkeypatch) == 2
    assert message in one_error_line(capsys)
    assert files_under(tmp_path) == []


def _lenet_with(tmp_path, change):
    torch.manual_seed(0)
    net = build_model("MNIST", "LeNet")
    with torch.no_grad():
        change(net)
    return save_weights(net, tmp_path / "bad.t7")


@pytest.mark.parametrize("change,message", [
    (lambda net: net.fc3.weight.__setitem__((0, 0), float("nan")),
     "holds NaN or infinite values in fc3.weight"),
    (lambda net: [p.zero_() for p in net.parameters()],
     "gives the same output for every input"),
])
@pytest.mark.parametrize("script", ["margin_mnist", "attack_eval"])
def test_weights_without_a_decision_boundary_are_refused_before_the_work(
        tmp_path, monkeypatch, capsys, change, message, script):
    """A NaN in fc3 (medians 0.00 and every DeepFool at its cap, exit 0) and all-zero weights
    (attack_eval printed 10.00/10.00)."""
    import utils.hmt.attack_eval
    import utils.hmt.experiment

    def no_attack(*a, **k):
        raise AssertionError("the attack started")
    monkeypatch.setattr(utils.hmt.attack_eval, "pgd_accuracy", no_attack)
    bad = _lenet_with(tmp_path, change)
    argv = (SMALL + ["--checkpoint", bad, "--results-dir", tmp_path / "out"]
            if script == "margin_mnist" else ["--checkpoint", bad, "--samples", "20",
                                               "--device", "cpu"])
    monkeypatch.setattr(utils.hmt.experiment, "margin_distribution", no_attack)
    assert run_script(script, argv, monkeypatch) == 2
    assert message in one_error_line(capsys)
    assert files_under(tmp_path / "out") == []


@pytest.mark.parametrize("script,option", [
    ("margin_mnist", "--results-dir"), ("nad_computation", "--out-dir"),
    ("directional_bias", "--results-dir"), ("margin_mnist", "--checkpoint"),
])
def test_an_empty_path_is_refused(tmp_path, monkeypatch, capsys, no_work, script, option):
    """--results-dir '' wrote the results into the current folder."""
    monkeypatch.chdir(tmp_path)
    first = {"margin_mnist": SMALL, "nad_computation": ["--arch", "LogReg"],
             "directional_bias": DIRECTIONAL + ["--fourier", "1,1"]}[script]
    assert run_script(script, first + [option, ""], monkeypatch) == 2
    assert "an empty path names no file or folder" in one_error_line(capsys)
    assert files_under(tmp_path) == []


def test_margin_runs_print_the_ratio_the_docs_quote(tmp_path, monkeypatch, capsys):
    """The flipped run printed 'highest/lowest 0.17' where the docs quote low/high 5.79."""
    for script, which in (("margin_mnist", "high/low"), ("margin_flipped_mnist", "low/high")):
        assert run_script(script, SMALL + ["--results-dir", tmp_path], monkeypatch) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if "median ratio" in x)
        name = "MNIST" if script == "margin_mnist" else "MNIST_flipped"
        medians = np.median(load_margin_run(tmp_path / f"margin_{name}" / "LeNet")[1], axis=1)
        ratio = max(medians[0], medians[-1]) / min(medians[0], medians[-1])
        assert line == f"median ratio {which} frequency: {ratio:.2f}"
