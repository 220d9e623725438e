"""What several test modules share: running a script in-process, the files a run left, one
error line, small fixed inputs, a disk that fills up."""
import contextlib
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import utils.common.io
from utils.hmt.dykstra import Transform

ROOT = Path(__file__).resolve().parents[1]
# the parameter names and shapes of the authors' published checkpoints
COMPAT = json.loads((ROOT / "tests" / "data" / "checkpoint_compat.json").read_text())
# margin scripts on a few samples and subspaces
SMALL = ["--samples", "4", "--block-size", "14", "--block-step", "7", "--device", "cpu"]
TINY = ["--samples", "2", "--block-size", "28", "--device", "cpu", "--workers", "1"]
# directional_bias on a tiny D(v)
DIRECTIONAL = ["--arch", "LogReg", "--train-samples", "64", "--test-samples", "64",
               "--epochs", "1", "--device", "cpu"]


def run_script(module, argv, monkeypatch):
    """Run ``python -m scripts.<module> argv`` in this process; returns the exit code."""
    mod = __import__(f"scripts.{module}", fromlist=["main"])
    from utils.common.cli import run
    monkeypatch.setattr(sys, "argv", [module] + [str(a) for a in argv])
    try:
        run(mod.main)
    except SystemExit as e:
        return e.code
    return 0


def run_command(module, *argv, **kwargs):
    """``python -m <module> argv`` in a new process from the repository root (one torch
    thread); the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", module, *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, **kwargs)


def files_under(path):
    return [p for p in Path(path).rglob("*") if p.is_file()] if Path(path).exists() else []


def one_error_line(capsys):
    """The one line a refused run printed on stderr (argparse's usage line aside)."""
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if line.strip() and not line.startswith(("usage:", " "))
           and not re.search(r"\d+%\|", line)]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def random_direction(seed):
    """A unit-norm random image [1, 32, 32]."""
    v = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def ten_nads(path):
    """Ten random orthonormal NADs [10, 1024] saved at ``path``."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(1024, 10)))
    np.save(path, q.T.astype(np.float32))
    return path


def orthogonal_transform(q):
    """The Transform v = q p (per sample, on flattened tensors) for an orthogonal q [D, D]."""
    qt = torch.as_tensor(q)
    return Transform("random orthogonal",
                     lambda p: (p.flatten(1) @ qt.T).view(p.shape),
                     lambda v: (v.flatten(1) @ qt).view(v.shape))


def state_dict_from_compat(key, seed=0):
    """A random state_dict with exactly the parameter names and shapes of an authors'
    checkpoint."""
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.randn(shape, generator=g) if name.split(".")[-1] != "num_batches_tracked"
                   else torch.tensor(0)) for name, shape in COMPAT[key]}


@contextlib.contextmanager
def small_disk(tmp_path, monkeypatch, size=1 << 20, mount=True):
    """A folder on a device of ``size`` bytes that fills up: a tmpfs where this user may mount
    one (and ``mount``), else a folder whose writes through utils.common.io fail with ENOSPC once
    ``size`` bytes have been written (what a full disk does to them). Yields (folder, grow):
    ``grow()`` frees the device."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = mount and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                        str(folder)], capture_output=True).returncode == 0
    if mounted:
        try:
            yield folder, lambda: subprocess.run(["mount", "-o", "remount,size=200m",
                                                  str(folder)], check=True)
        finally:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        return
    budget = [size]
    real = utils.common.io._write_bytes

    def limited(data):
        write = real(data)

        def write_or_fail(tmp):
            if str(tmp).startswith(str(folder)):
                budget[0] -= len(data)
                if budget[0] < 0:
                    raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
            write(tmp)
        return write_or_fail
    monkeypatch.setattr(utils.common.io, "_write_bytes", limited)
    yield folder, lambda: budget.__setitem__(0, 1 << 40)
