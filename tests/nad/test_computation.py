"""utils/nad/computation.py and scripts.nad_computation: the files, resuming after Ctrl-C or
SIGTERM, damaged resume folders, degenerate steps, runs that cannot fit, and results that are
never replaced by a run with other settings."""
import json
import os
import shlex
import signal

import numpy as np
import pytest

import utils.nad.computation
from tests.helpers import ROOT, one_error_line, run_script
from utils.common.errors import UserError
from utils.nad.computation import INDEX, NADConfig, compute_nads
from utils.nad.files import nad_paths

NADS = ["--arch", "LogReg", "--networks", "40", "--k", "5", "--networks-per-pass", "4"]


def saved_networks(partial):
    """Networks whose gradients the resume folder holds (None: no folder)."""
    if not partial.is_dir():
        return None
    return sum(c["count"] for c in json.loads((partial / INDEX).read_text())["chunks"])


def stop_at_call(monkeypatch, name, call, stop):
    """Make utils.nad.computation.<name> call ``stop()`` at its ``call``-th call."""
    real, calls = getattr(utils.nad.computation, name), []

    def stopping(*a, **k):
        calls.append(1)
        if len(calls) == call:
            stop()
        return real(*a, **k)
    monkeypatch.setattr(utils.nad.computation, name, stopping)


def test_compute_nads_writes_its_files_as_a_unit(tmp_path):
    paths = compute_nads(NADConfig("LogReg", networks=20, k=6, seed=2, networks_per_pass=8,
                                   out_dir=tmp_path))
    nads, eigenvals = np.load(paths["nads"]), np.load(paths["eigenvals"])
    assert nads.shape == (6, 1024) and nads.dtype == np.float32 and eigenvals.shape == (6,)
    meta = json.loads(paths["json"].read_text())
    assert meta["method"] == "fd" and meta["networks"] == 20 and meta["step"] == 100.0
    assert meta["settings"] == {**NADConfig("LogReg", networks=20, k=6, seed=2).settings()}
    assert set(meta["files"]) == {paths["nads"].name, paths["eigenvals"].name}
    assert paths["png"].stat().st_size > 0 and not paths["partial"].exists()


def _terminate():
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("how,status", [(_terminate, 143), (KeyboardInterrupt, 130)])
def test_an_interrupt_keeps_every_finished_network_and_the_resume_ends_as_a_whole_run(
        tmp_path, monkeypatch, capsys, how, status):
    """SIGTERM (kill, a scheduler's time limit) and Ctrl-C in the second round of 4 passes x 4
    networks: the 16 networks of the first are saved (the 120 s save interval has not passed),
    the printed command continues, saying from where, to the NADs of an uninterrupted run."""
    def stop():
        if how is KeyboardInterrupt:
            raise KeyboardInterrupt
        how()
    argv = NADS + ["--out-dir", tmp_path / "cut"]
    stop_at_call(monkeypatch, "iter_gradients", 2, stop)
    assert run_script("nad_computation", argv, monkeypatch) == status
    partial = nad_paths(tmp_path / "cut", "LogReg")["partial"]
    command = shlex.join(["python", "-m", "scripts.nad_computation", *map(str, argv),
                          "--resume"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    word = "terminated" if status == 143 else "interrupted"
    assert last == (f"{word}; the gradients of 16 of 40 networks are saved in {partial}; to "
                    f"continue, run: {command}")
    assert saved_networks(partial) == 16

    monkeypatch.undo()
    assert run_script("nad_computation", shlex.split(command)[3:], monkeypatch) == 0
    assert f"resuming after 16 of 40 networks ({partial})" in capsys.readouterr().out
    assert run_script("nad_computation", NADS + ["--out-dir", tmp_path / "whole"],
                      monkeypatch) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "cut" / "LogReg_NADs.npy"),
                                  np.load(tmp_path / "whole" / "LogReg_NADs.npy"))
    assert not partial.exists()


def test_save_every_appends_chunks(tmp_path, monkeypatch):
    """A run that dies without Ctrl-C (an error in the third round) keeps what the periodic
    saves wrote: with --save-every 0 one chunk per round (not the whole array again), with
    the default 120 s nothing yet."""
    for every, kept, chunks in (("0", 32, 2), (None, None, None)):
        out = tmp_path / str(every)

        def fail():
            raise MemoryError
        stop_at_call(monkeypatch, "iter_gradients", 3, fail)
        argv = NADS + ["--out-dir", out] + (["--save-every", every] if every else [])
        with pytest.raises(MemoryError):
            run_script("nad_computation", argv, monkeypatch)
        partial = nad_paths(out, "LogReg")["partial"]
        assert saved_networks(partial) == kept
        if chunks:
            assert len(list(partial.glob("chunk_*.npy"))) == chunks
        monkeypatch.undo()


def _interrupted(tmp_path, monkeypatch):
    """The folder of a run cut after 32 of 40 networks (--save-every 0: two chunks)."""
    def stop():
        raise KeyboardInterrupt
    stop_at_call(monkeypatch, "iter_gradients", 3, stop)
    out = tmp_path / "cut"
    assert run_script("nad_computation", NADS + ["--out-dir", out, "--save-every", "0"],
                      monkeypatch) == 130
    monkeypatch.undo()
    return out, nad_paths(out, "LogReg")["partial"]


@pytest.mark.parametrize("damage", ["garbage chunk", "changed chunk", "missing chunk",
                                    "garbage index"])
def test_a_damaged_resume_folder_is_named_discarded_and_computed_again(tmp_path, monkeypatch,
                                                                     capsys, damage):
    out, partial = _interrupted(tmp_path, monkeypatch)
    chunks = sorted(partial.glob("chunk_*.npy"))
    assert len(chunks) == 2
    if damage == "garbage chunk":
        chunks[1].write_bytes(b"\x93NUMPY garbage")
    elif damage == "changed chunk":
        grads = np.load(chunks[1])
        grads[0, 0] += 1
        np.save(chunks[1], grads)
    elif damage == "missing chunk":
        chunks[1].unlink()
    else:
        (partial / INDEX).write_text('{"chunks": [')
    capsys.readouterr()
    assert run_script("nad_computation", NADS + ["--out-dir", out, "--resume"],
                      monkeypatch) == 0
    printed = capsys.readouterr().out
    if damage == "garbage index":
        assert f"discarding {partial}: its index is damaged" in printed
    else:
        assert f"discarding the damaged chunk {chunks[1].name} of {partial}" in printed
        assert "resuming after 16 of 40 networks" in printed
    assert run_script("nad_computation", NADS + ["--out-dir", tmp_path / "whole"],
                      monkeypatch) == 0
    np.testing.assert_array_equal(np.load(out / "LogReg_NADs.npy"),
                                  np.load(tmp_path / "whole" / "LogReg_NADs.npy"))


def test_resume_says_what_it_does(tmp_path, monkeypatch, capsys):
    """--resume with nothing to resume says so; a run without --resume into a folder holding
    an interrupted one is refused (it would replace its gradients); a resume folder of another
    computation is refused."""
    out = tmp_path / "fresh"
    assert run_script("nad_computation", NADS + ["--out-dir", out, "--resume"],
                      monkeypatch) == 0
    assert "no interrupted run to resume" in capsys.readouterr().out
    out, partial = _interrupted(tmp_path, monkeypatch)
    capsys.readouterr()
    assert run_script("nad_computation", NADS + ["--out-dir", out], monkeypatch) == 2
    assert one_error_line(capsys) == (f"error: {partial} holds the gradients of an "
                                      f"interrupted run (32 networks); pass --resume to "
                                      f"continue it, or delete it to start again")
    other = [a if a != "40" else "48" for a in NADS]
    assert run_script("nad_computation", other + ["--out-dir", out, "--resume"],
                      monkeypatch) == 2
    assert "holds the gradients of another computation" in one_error_line(capsys)


def test_a_finished_run_with_other_settings_is_not_replaced(tmp_path, monkeypatch, capsys):
    assert run_script("nad_computation", NADS + ["--out-dir", tmp_path], monkeypatch) == 0
    before = (tmp_path / "LogReg_NADs.npy").read_bytes()
    assert run_script("nad_computation", NADS + ["--out-dir", tmp_path], monkeypatch) == 0
    other = [a if a != "5" else "4" for a in NADS]  # --k 4
    capsys.readouterr()
    assert run_script("nad_computation", other + ["--out-dir", tmp_path], monkeypatch) == 2
    assert one_error_line(capsys).startswith(f"error: {tmp_path} holds the results of a run "
                                             f"with other settings (its k differ)")
    assert (tmp_path / "LogReg_NADs.npy").read_bytes() == before


@pytest.mark.parametrize("argv,message", [
    (["--step", "1e-30"], "is below the torch.float32 resolution of x0"),
    (["--step", "1e-300"], "is below the torch.float32 resolution of x0"),
    (["--step", "1e39"], "overflows the torch.float32 inputs x0 +- step; use a smaller --step"),
    (["--networks", "10000000000"], "need 204,800.0 GB of memory"),
    (["--networks", "10", "--k", "10"], "lower --k or raise --networks"),
])
def test_settings_that_cannot_give_nads_are_refused_before_the_work(tmp_path, monkeypatch,
                                                                    capsys, argv, message):
    def no_work(*a, **k):
        raise AssertionError("the work started")
    monkeypatch.setattr(utils.nad.computation, "iter_gradients", no_work)
    assert run_script("nad_computation", ["--arch", "LogReg", "--k", "2", "--out-dir",
                                          tmp_path] + argv, monkeypatch) == 2
    line = one_error_line(capsys)
    assert message in line, line
    if "step" in argv[0] and "below" in message:
        assert "use a larger --step" in line
    assert list(tmp_path.iterdir()) == []


def test_gradients_that_are_all_zero_or_not_finite_are_refused():
    """What the step checks cannot foresee: networks whose outputs do not change (all zero)
    or overflow (not finite) along x0 +- step."""
    config = NADConfig("LogReg", networks=4, k=2)
    for grads, advice in ((np.zeros((4, 1024), np.float32), "use a larger `step`"),
                          (np.full((4, 1024), np.inf, np.float32), "use a smaller `step`")):
        with pytest.raises(UserError, match=advice):
            utils.nad.computation._check_gradients(grads, config)


def test_the_shipped_nads_are_replaced_only_when_asked(tmp_path, monkeypatch, capsys):
    """Without --out-dir the NADs go to Results/nads/; --out-dir onto the shipped folder says
    it replaces them."""
    monkeypatch.chdir(tmp_path)
    argv = ["--arch", "LogReg", "--networks", "12", "--k", "3"]
    assert run_script("nad_computation", argv, monkeypatch) == 0
    assert not (tmp_path / "nads").exists()
    assert np.load(tmp_path / "Results" / "nads" / "LogReg_NADs.npy").shape == (3, 1024)
    assert utils.nad.computation.SHIPPED == ROOT / "nads"
    monkeypatch.setattr(utils.nad.computation, "SHIPPED", tmp_path / "shipped")
    assert run_script("nad_computation", argv + ["--out-dir", "shipped"], monkeypatch) == 0
    assert "shipped: the shipped LogReg NADs there will be replaced" in capsys.readouterr().out


@pytest.mark.parametrize("path", sorted((ROOT / "nads").glob("*_NADs.json")), ids=lambda p: p.name)
def test_the_shipped_nads_record_the_settings_of_their_command(path):
    """Every shipped JSON records the settings its computation was made with (what a rerun
    with the same options and `--out-dir nads` compares against before replacing them)."""
    meta = json.loads(path.read_text())
    config = NADConfig(arch=meta["arch"], networks=meta["networks"], k=meta["k"],
                       method=meta["method"], step=meta["step"], seed=meta["seed"])
    assert meta["settings"] == json.loads(json.dumps(config.settings()))
    assert path.name == f"{meta['arch']}_NADs.json"
