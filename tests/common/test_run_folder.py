"""One run per output folder (a lock that two real processes contend for), results written and
read as a unit, stale temporary files, unwritable folders."""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

import utils.hmt.margins
from tests.helpers import ROOT, TINY, files_under, run_script
from utils.common.errors import UserError
from utils.common.io import npy_bytes
from utils.common.run_folder import check_unit, locked, write_unit
from utils.hmt.margin_compare import compare_margins
from utils.hmt.margins import load_margin_run, margin_distribution
from utils.hmt.subspaces import diagonal_blocks

HOLDER = """
import sys, time
from utils.common.run_folder import locked
with locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_in_another_process(folder):
    """A process that holds ``folder`` (utils.common.run_folder.locked) until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_into_a_busy_folder_stops_at_once_naming_the_other(tmp_path):
    """a margin run into a folder that another process holds stops before any work
    with one sentence naming the folder and the holder's pid, and leaves the folder alone; once
    the holder is gone (killed: the system releases its lock) the folder is free."""
    out_dir = tmp_path / "margin_MNIST" / "LeNet"
    holder = hold_in_another_process(out_dir)
    try:
        before = sorted(p.name for p in out_dir.iterdir())
        proc = subprocess.run([sys.executable, "-m", "scripts.margin_mnist", *TINY,
                               "--results-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == (f"error: {out_dir} is in use by another run (pid "
                                       f"{holder.pid}); wait until it ends, or write to another "
                                       f"folder")
        assert "test accuracy" not in proc.stdout  # stopped before loading the model
        assert sorted(p.name for p in out_dir.iterdir()) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with locked(out_dir):  # the holder's lock died with it
        assert (out_dir / ".run.lock").read_text().strip() == str(os.getpid())


def test_lock_is_reentrant_in_a_process_and_scoped_locks_are_independent(tmp_path):
    with locked(tmp_path / "a") as folder:
        with locked(tmp_path / "a"):  # the same process: allowed (run -> margin_distribution)
            assert (folder / ".run.lock").read_text().strip() == str(os.getpid())
        assert (folder / ".run.lock").is_file()
        with locked(folder, scope="LeNet"):  # within its own hold of the whole folder
            pass
    assert not (tmp_path / "a").exists()  # lock files removed, and the folder made for them
    with locked(tmp_path / "b", scope="LeNet") as folder, locked(folder, scope="VGG11"):
        assert (folder / ".LeNet.lock").is_file() and (folder / ".VGG11.lock").is_file()
    assert not (tmp_path / "b").exists()


SCOPED_HOLDER = """
import sys, time
from utils.common.run_folder import locked
with locked(sys.argv[1], scope=sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_run_touches_only_its_own_temporary_files(tmp_path):
    """A run of another scope (an architecture's NADs) in the folder: a scoped run beside it
    leaves its live temporary files alone, a run that holds the whole folder is refused while
    it runs; a run's own stale temporary files are removed, the hidden ones included
    (..LogReg_gradients.partial...tmp)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", SCOPED_HOLDER, str(folder), "VGG11"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert holder.stdout.readline().strip() == "held"
        live = folder / ".VGG11_NADs.npy.live1234.tmp"  # the holder's, being written
        live.write_bytes(b"being written")
        stale = [folder / ".LogReg_NADs.npy.dead1234.tmp",
                 folder / "..LogReg_gradients.partial.dead1234.tmp"]
        for path in stale:
            path.write_bytes(b"half a file")
        with locked(folder, scope="LogReg"):
            assert live.exists() and not any(p.exists() for p in stale)
        with pytest.raises(UserError, match=f"{folder} is in use by another run "
                                            f"\\(pid {holder.pid}\\)"):
            with locked(folder):
                pass
        with pytest.raises(UserError, match="in use by another VGG11 run"):
            with locked(folder, scope="VGG11"):
                pass
        assert live.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with locked(folder):  # the whole folder, no run in it: every temporary file is stale
        assert not live.exists()


def test_folders_made_for_a_refused_run_are_removed(tmp_path):
    with pytest.raises(UserError, match="bad input"):
        with locked(tmp_path / "x" / "y" / "z"):
            raise UserError("bad input")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_an_output_folder_that_cannot_be_made_is_one_sentence(tmp_path, where):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    folder = a_file if where == "file" else a_file / "sub"
    with pytest.raises(UserError, match=f"cannot create the output folder {folder}: {a_file} is "
                                        f"a file; choose another folder"):
        with locked(folder):
            pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_sentence(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(UserError, match="cannot write in the output folder"):
            with locked(folder):
                pass
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("script,argv", [
    ("margin_mnist", TINY + ["--results-dir", "{file}"]),
    ("nad_computation", ["--arch", "LogReg", "--networks", "20", "--k", "5",
                         "--out-dir", "{file}"]),
    ("directional_bias", ["--arch", "LogReg", "--fourier", "1,1", "--train-samples", "64",
                          "--test-samples", "64", "--epochs", "1", "--device", "cpu",
                          "--results-dir", "{file}"]),
])
def test_unwritable_output_is_refused_before_the_work(tmp_path, monkeypatch, capsys, script,
                                                      argv):
    """an output folder that cannot be written stops the run before any training,
    DeepFool or gradient, in one sentence (it used to be a traceback at the end)."""
    import utils.nad.computation
    import utils.nad.directional_bias

    def no_work(*a, **k):
        raise AssertionError("work started before the output folder was checked")
    monkeypatch.setattr(utils.hmt.margins, "margin_distribution", no_work)
    monkeypatch.setattr(utils.nad.computation, "iter_gradients", no_work)
    monkeypatch.setattr(utils.nad.directional_bias, "train", no_work)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    argv = [a.format(file=a_file) for a in argv]
    assert run_script(script, argv, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot create the output folder"), err
    assert f"{a_file} is a file" in err[0]


def _margins(folder, seed, images):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double().eval()
    return margin_distribution(model, images, diagonal_blocks(4, 2, 1, 8, 8), folder,
                               {"sample_indices": list(range(len(images)))})


def test_a_folder_mixing_two_runs_is_refused_by_its_readers(tmp_path):
    """margins.npy of one run beside run.json of another (what a kill between the
    final writes used to leave) is refused by compare_margins; so is a run.json without the
    hashes of its files (written before they were recorded)."""
    images = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    _margins(tmp_path / "a", 0, images)
    _margins(tmp_path / "b", 1, images)
    compare_margins(tmp_path / "a", tmp_path / "b")  # consistent folders are accepted
    shutil.copy(tmp_path / "b" / "margins.npy", tmp_path / "a" / "margins.npy")
    with pytest.raises(UserError, match="a/margins.npy does not match .*a/run.json"):
        compare_margins(tmp_path / "a", tmp_path / "b")

    info = json.loads((tmp_path / "b" / "run.json").read_text())
    del info["files"]
    (tmp_path / "b" / "run.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="records no hashes of its files .*run the margin "
                                        "script into it again"):
        load_margin_run(tmp_path / "b")
    with pytest.raises(UserError, match="holds no finished run"):
        load_margin_run(tmp_path / "nothing")


def test_a_run_stopped_while_writing_its_results_leaves_the_previous_ones(tmp_path, monkeypatch):
    """the final files are written under temporary names first; a run that dies
    while writing them (here: in the plot) leaves the previous run's files as they were, and
    no temporary file."""
    images = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    first = _margins(tmp_path, 0, images)

    def dies(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(utils.hmt.margins, "margin_plot_png", dies)
    with pytest.raises(KeyboardInterrupt):
        _margins(tmp_path, 1, images)
    info, margins, _ = load_margin_run(tmp_path)
    np.testing.assert_array_equal(margins, first)
    assert not list(tmp_path.glob(".*.tmp"))


def test_temporary_files_of_a_dead_run_are_removed_by_the_next(tmp_path, capsys):
    """a kill inside a write leaves .NAME.XXXX.tmp; the next run into the folder
    removes it (and its own partial folder's)."""
    images = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    (tmp_path / "partial").mkdir()
    stale = [tmp_path / ".margins.npy.k1ll3d.tmp", tmp_path / "partial" / ".x.npy.dead.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    _margins(tmp_path, 0, images)
    assert not any(p.exists() for p in stale)
    assert "removed 1 temporary file(s) that an interrupted run left in" in capsys.readouterr().out


def test_write_unit_and_check_unit(tmp_path):
    paths = write_unit(tmp_path, {"a.npy": npy_bytes(np.arange(3)), "b.txt": b"b"},
                       "meta.json", {"what": "test"})
    assert [p.name for p in paths] == ["a.npy", "b.txt", "meta.json"]
    meta = check_unit(tmp_path, "meta.json")
    assert meta["what"] == "test" and set(meta["files"]) == {"a.npy", "b.txt"}
    (tmp_path / "b.txt").write_text("changed")
    check_unit(tmp_path, "meta.json", ["a.npy"])  # only the files asked for
    with pytest.raises(UserError, match="b.txt does not match"):
        check_unit(tmp_path, "meta.json")
    (tmp_path / "a.npy").unlink()
    with pytest.raises(UserError, match="a.npy is missing"):
        check_unit(tmp_path, "meta.json", ["a.npy"])
    assert files_under(tmp_path) and not list(tmp_path.glob(".*.tmp"))
