"""Damaged input files, senseless values and misleading words:
every one is refused before any work in one sentence (exit 2), or said as it is."""
import argparse
import pickle
import re
import sys

import numpy as np
import pytest
import torch

import utils.nad.computation
import utils.nad.directional_bias
from tests.helpers import DIRECTIONAL, TINY, files_under, one_error_line, run_script, ten_nads
from tests.tiny_datasets import write_cifar10
from utils.common.errors import UserError
from utils.nad.computation import NADConfig
from utils.nad.linear_data import load_nads


def damaged_nad_file(tmp_path, kind):
    good = ten_nads(tmp_path / "good.npy")
    path = tmp_path / f"{kind}.npy"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:200])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).bytes(4096))
    elif kind == "objects":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "npz":
        path = tmp_path / "nads.npz"
        np.savez(path, nads=np.load(good))
    elif kind == "shape":
        np.save(path, np.ones((10, 100), np.float32))
    elif kind == "nan":
        nads = np.load(good)
        nads[3, 5] = np.nan
        np.save(path, nads)
    return path


KINDS = ["truncated", "empty", "random", "objects", "npz", "shape", "nan"]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_nad_files_are_refused_in_one_sentence(tmp_path, monkeypatch, capsys, no_work,
                                                       kind):
    """truncated, empty, random, object-array and .npz files (and arrays of the
    wrong shape or with NaN) given to directional_bias --nads or nad_overlap."""
    bad = damaged_nad_file(tmp_path, kind)
    results = tmp_path / "results"
    assert run_script("directional_bias", DIRECTIONAL + [
        "--nad-index", "0", "--nads", str(bad), "--results-dir", str(results)], monkeypatch) == 2
    assert one_error_line(capsys).startswith(f"error: the NAD file {bad} ")
    assert files_under(results) == []
    assert run_script("nad_overlap", [str(tmp_path / "good.npy"), str(bad)], monkeypatch) == 2
    assert one_error_line(capsys).startswith(f"error: the NAD file {bad} ")


def test_nads_that_disagree_with_their_json_are_refused(tmp_path):
    """A NAD file beside the JSON of another computation (its recorded sha256 differs)."""
    paths = utils.nad.computation.compute_nads(NADConfig(
        "LogReg", networks=12, k=3, networks_per_pass=4, out_dir=tmp_path, figure_count=1))
    assert load_nads(paths["nads"]).shape == (3, 1024)
    ten_nads(paths["nads"])
    with pytest.raises(UserError, match="LogReg_NADs.npy does not match"):
        load_nads(paths["nads"])


def test_a_damaged_training_state_is_refused(tmp_path, monkeypatch, capsys):
    """a damaged train_state.pt with --train --resume."""
    import utils.common.training

    def no_training(*a, **k):
        raise AssertionError("training started")
    out_dir = tmp_path / "margin_MNIST" / "LeNet"
    out_dir.mkdir(parents=True)
    state = out_dir / "train_state.pt"
    state.write_bytes(np.random.default_rng(3).bytes(999))
    monkeypatch.setattr(utils.common.training, "tqdm", no_training)
    argv = TINY + ["--train", "--epochs", "1", "--resume", "--results-dir", str(tmp_path)]
    assert run_script("margin_mnist", argv, monkeypatch) == 2
    assert one_error_line(capsys).startswith(f"error: training state {state} could not be read")
    torch.save({"model": {}, "epoch": "one"}, state)
    assert run_script("margin_mnist", argv, monkeypatch) == 2
    assert one_error_line(capsys).startswith(f"error: the training state {state} is damaged")


def test_a_cifar_batch_of_the_wrong_type_is_refused(tmp_path, monkeypatch, capsys):
    """a CIFAR-10 batch file that unpickles to something else than a batch."""
    write_cifar10(tmp_path, per_batch=2, n_test=2)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    with open(batch, "wb") as f:
        pickle.dump([1, 2, 3], f, protocol=2)
    argv = ["--samples", "2", "--block-size", "32", "--device", "cpu", "--data-dir",
            str(tmp_path), "--results-dir", str(tmp_path / "results")]
    assert run_script("margin_cifar10", argv, monkeypatch) == 2
    assert one_error_line(capsys).startswith(f"error: the CIFAR-10 file {batch} holds no "
                                             f"CIFAR-10 batch")


@pytest.mark.parametrize("script,argv,message", [
    ("margin_mnist", ["--device", "tpu"], "there is no device 'tpu' here"),
    ("margin_mnist", ["--device", "mps"], "there is no device 'mps' here"),
    ("margin_mnist", ["--device", "cuda:x"], "there is no device 'cuda:x' here"),
    ("margin_mnist", ["--seed=-1"], "-1 must be from 0 to 4294967295"),
    ("nad_overlap", ["{nads}", "{nads}", "--k", "0"], "every number must be at least 1"),
    ("nad_overlap", ["{nads}", "{nads}", "--k=-3"], "'-3' is not a list like 0,1,2,10-20"),
    ("nad_overlap", ["{nads}", "{nads}", "--k", "x"], "'x' is not a list like 0,1,2,10-20"),
    ("nad_overlap", ["{nads}", "{nads}", "--k", "1,11"], "--k 11 is more than the files hold"),
    ("nad_computation", ["--arch", "LogReg", "--step", "nan"], "nan is not a finite number"),
    ("nad_computation", ["--arch", "LogReg", "--step", "inf"], "inf is not a finite number"),
    ("nad_computation", ["--arch", "LogReg", "--save-every", "-1"], "-1 must be 0 or more"),
    ("directional_bias", DIRECTIONAL + ["--fourier", "1,1", "--sigma", "nan"],
     "nan is not a finite number"),
    ("directional_bias", DIRECTIONAL + ["--fourier", "1,1", "--eps=-1"], "-1 must be positive"),
    ("directional_bias", DIRECTIONAL + ["--nad-indices", "5-2", "--nads", "{nads}"],
     "5-2 is not a range: 5 is more than 2; write 2-5"),
    ("poison_cifar", ["--nad-index=-1"], "-1 must be 0 or more"),
])
def test_senseless_values_are_refused_before_the_work(tmp_path, monkeypatch, capsys, no_work,
                                                      script, argv, message):
    """--device tpu|mps (a traceback), nad_overlap --k 0 ('overlap nan'), --k -3 (a
    number), --k x (a traceback), --step nan (NaN NADs written), --sigma nan and --eps -1
    (accepted), --nad-indices 5-2 (a traceback), --seed -1 (a traceback)."""
    monkeypatch.chdir(tmp_path)  # whatever they would write lands here
    nads = ten_nads(tmp_path / "ten_NADs.npy")
    argv = [a.format(nads=nads) for a in argv]
    assert run_script(script, argv, monkeypatch) == 2
    assert message in one_error_line(capsys)
    assert [p.name for p in files_under(tmp_path)] == ["ten_NADs.npy"]


def test_checkpoint_words(tmp_path, monkeypatch, capsys):
    """a folder given as --checkpoint is called a folder (it was 'does not exist'),
    and a malicious checkpoint is refused as unsafe (it was 'damaged'), without running it."""
    import os
    argv = TINY + ["--results-dir", str(tmp_path / "results"), "--checkpoint"]
    assert run_script("margin_mnist", argv + [str(tmp_path)], monkeypatch) == 2
    assert one_error_line(capsys) == (f"error: checkpoint {tmp_path} is a folder, not a file; "
                                      f"pass the path of the model.t7 inside it")

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)
    evil = tmp_path / "evil.t7"
    for write in (lambda: torch.save({"conv1.weight": Payload()}, evil),
                  lambda: evil.write_bytes(pickle.dumps(Payload()))):
        write()
        assert run_script("margin_mnist", argv + [str(evil)], monkeypatch) == 2
        assert one_error_line(capsys).startswith(
            f"error: checkpoint {evil} was refused as unsafe: loading it would call "
            f"{os.system.__module__}.system")
    assert not (tmp_path / "ran").exists()


def test_nad_overlap_words(tmp_path, monkeypatch, capsys):
    """a missing file does not suggest --nads (nad_overlap has none), and the
    default sizes on a 10-NAD file print what fits (it printed two lines, then exit 2)."""
    nads = ten_nads(tmp_path / "ten_NADs.npy")
    assert run_script("nad_overlap", [str(nads), str(tmp_path / "none.npy")], monkeypatch) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: the NAD file {tmp_path / 'none.npy'} does not exist")
    assert "--nads" not in line
    assert run_script("nad_overlap", [str(nads), str(nads)], monkeypatch) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in out] == ["k =    1", "k =    5"]


def test_cifar_and_imagenet_scripts_offer_no_sample(monkeypatch, capsys):
    """--data sample is not offered where there is no bundled sample, and the
    ImageNet scripts' --seed help does not mention training."""
    assert run_script("margin_cifar10", ["--data", "sample"], monkeypatch) == 2
    assert "invalid choice: 'sample'" in one_error_line(capsys)
    assert run_script("margin_imagenet", ["--help"], monkeypatch) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--data {auto,full}" in help_text
    assert "--seed SEED seed of the sample draw --data" in help_text


SCRIPTS = ["attack_eval", "compare_margins", "directional_bias", "make_figures",
           "margin_cifar10", "margin_flipped_cifar10", "margin_flipped_imagenet",
           "margin_flipped_mnist", "margin_imagenet", "margin_low_pass_cifar10", "margin_mnist",
           "margin_robust_cifar10", "margin_robust_flipped_cifar10", "margin_robust_flipped_mnist",
           "margin_robust_imagenet", "margin_robust_mnist", "nad_computation", "nad_overlap",
           "poison_cifar", "train_imagenet"]


def parser_of(script, monkeypatch):
    """The argparse parser that ``scripts.<script>.main`` builds."""
    seen = []

    class Built(Exception):
        pass

    def capture(self, *a, **k):
        seen.append(self)
        raise Built
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(sys, "argv", [script])
    with pytest.raises(Built):
        __import__(f"scripts.{script}", fromlist=["main"]).main()
    monkeypatch.undo()
    return seen[0]


def written_forms(value):
    if isinstance(value, float):
        return {f"{value:g}", f"{value:,g}", str(value)}
    return {str(value), f"{value:,}"} if isinstance(value, int) else {str(value)}


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_texts_state_the_defaults_the_code_uses(script, monkeypatch):
    """every help text that names a default names the one the option has; help that
    promises a value computed elsewhere (--networks-per-pass) states the code's value."""
    for action in parser_of(script, monkeypatch)._actions:
        text = action.help or ""
        match = re.search(r"default:? (\S+)", text)
        if not match or isinstance(action.default, bool) or action.default is None:
            continue
        said = match.group(1).rstrip(";),:.")
        assert said in written_forms(action.default), \
            f"{script} {action.option_strings}: {text!r} but the default is {action.default!r}"
    if script == "nad_computation":
        action = next(a for a in parser_of(script, monkeypatch)._actions
                      if "--networks-per-pass" in a.option_strings)
        used = utils.nad.computation.default_networks_per_pass("LeNet", "autograd")
        assert f"for autograd {used}," in action.help
