"""scripts.make_figures: the cheap figure groups end to end, reproducibility, bad input."""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts import make_figures as script
from utils.common.cli import run

ROOT = Path(__file__).resolve().parents[2]


def make_figures(monkeypatch, *argv):
    """Run ``python -m scripts.make_figures argv`` from the repository root in this process;
    returns the exit status."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["make_figures", *argv])
    try:
        run(script.main)
    except SystemExit as e:
        return e.code
    return 0


def test_frequency_and_nad_figures_are_reproducible(tmp_path, monkeypatch):
    for run_name in ("a", "b"):
        assert make_figures(monkeypatch, "--only", "frequency,nads",
                            "--out-dir", str(tmp_path / run_name)) == 0
    names = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert names == ["frequency_mnist.png", "frequency_photos_224.png",
                     "frequency_photos_32.png", "nads.png"]
    for name in names:
        a, b = (np.asarray(Image.open(tmp_path / r / name)) for r in ("a", "b"))
        assert a.shape == b.shape and np.array_equal(a, b), name


@pytest.mark.parametrize("argv,message", [
    (["--only", "margins,pictures"], "unknown figure group pictures"),
    (["--only", ","], "unknown figure group (none)"),
    (["--samples", "0"], "must be at least 1"),
])
def test_bad_input_is_one_clear_line(argv, message, tmp_path, monkeypatch, capsys):
    assert make_figures(monkeypatch, *argv, "--out-dir", str(tmp_path)) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))
