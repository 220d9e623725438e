import csv
import json
import sys

import numpy as np
import pytest
import torch

from scripts import directional_bias as script
from tests.helpers import random_direction
from utils.common.cli import run
from utils.common.errors import UserError
from utils.nad import directional_bias
from utils.nad.directional_bias import LinearSetup, fourier_sweep, nad_sweep, train_on_direction
from utils.nad.linear_data import fourier_direction

TINY = LinearSetup(n_train=256, n_test=256, epochs=2, seed=0)


def test_logistic_regression_learns_a_fourier_direction():
    # fewer samples and epochs than the paper (10,000 and 20), enough to generalise
    result = train_on_direction("LogReg", fourier_direction(5, 9),
                                LinearSetup(n_train=5000, n_test=1000, epochs=10), "cpu")
    assert result["test_accuracy"] > 0.9
    assert 0 <= result["train_accuracy"] <= 1


def test_fourier_sweep_writes_all_cells_and_resumes(tmp_path, monkeypatch):
    freqs, acc = fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path)
    assert freqs == [-16, 0]
    with open(tmp_path / "fourier_directions.csv") as f:
        rows = list(csv.DictReader(f))
    # the four pairs of a 2x2 grid are four different directions
    assert {(r["phase"], int(r["k1"]), int(r["k2"])) for r in rows} == {
        ("cos", 0, 0), ("cos", 0, 16), ("cos", 16, 0), ("cos", 16, 16)}
    assert acc.shape == (2, 2) and np.isfinite(acc).all()
    with open(tmp_path / "fourier_grid_cos_step16.csv") as f:
        cells = list(csv.DictReader(f))
    assert [(int(c["x"]), int(c["y"]), int(c["k1"]), int(c["k2"])) for c in cells] == [
        (0, 0, -16, -16), (0, 1, -16, 0), (1, 0, 0, -16), (1, 1, 0, 0)]
    assert (tmp_path / "fourier_grid_cos_step16.png").stat().st_size > 0

    def no_training(*args, **kwargs):
        raise AssertionError("a finished direction was trained again")
    monkeypatch.setattr(directional_bias, "train_on_directions", no_training)
    _, again = fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path)
    np.testing.assert_array_equal(again, acc)
    with pytest.raises(UserError, match="other settings"):
        fourier_sweep("LogReg", 16, LinearSetup(n_train=256, n_test=256, epochs=3), "cpu",
                      tmp_path)


def _fake_training(trained):
    def fake(arch, directions, setup, device, group=None, workers=None):
        trained.extend(directions)
        return [{"test_accuracy": 0.5, "train_accuracy": 0.5, "seconds": 0.0}
                for _ in directions]
    return fake


def test_symmetric_cells_are_trained_once_and_a_finer_grid_reuses_a_coarser_one(
        tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(directional_bias, "train_on_directions", _fake_training(trained))
    fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path)
    assert len(trained) == 4
    freqs, acc = fourier_sweep("LogReg", 8, TINY, "cpu", tmp_path)
    assert freqs == [-16, -8, 0, 8] and acc.shape == (4, 4)
    # 16 cells; (0,0), (0,-16), (-16,0), (-16,-16) are their own mirror images: 10 directions,
    # 4 of which the coarser grid already has
    assert len(trained) == (16 + 4) // 2
    assert len({tuple(v.flatten().tolist()) for v in trained}) == len(trained)


def test_each_lattice_keeps_its_own_cells_table(tmp_path, monkeypatch):
    """The website's grid (step 2) and a coarser lattice share fourier_directions.csv but
    write their cells to their own tables: a step-4 sweep after a step-2 one (make figures
    draws both) leaves the 256-cell table as it was."""
    monkeypatch.setattr(directional_bias, "train_on_directions", _fake_training([]))
    fourier_sweep("LogReg", 2, TINY, "cpu", tmp_path, figure=False)
    website = (tmp_path / "fourier_grid_cos.csv").read_bytes()
    fourier_sweep("LogReg", 4, TINY, "cpu", tmp_path, figure=False, limit=0)
    assert (tmp_path / "fourier_grid_cos.csv").read_bytes() == website
    with open(tmp_path / "fourier_grid_cos_step4.csv") as f:
        assert len(list(csv.DictReader(f))) == 64


def test_the_default_lattice_is_the_authors_website_grid(tmp_path, monkeypatch):
    """Cell (x, y) is the cosine of frequency (2 (x - 8), 2 (y - 8)), x vertical: (8, 8) the
    constant image, (8, 9) two periods horizontally, (0, 0) the checkerboard; 256 cells, 130
    distinct directions; the sine leaves out the four that vanish."""
    trained = []
    monkeypatch.setattr(directional_bias, "train_on_directions", _fake_training(trained))
    freqs, acc = fourier_sweep("LogReg", 2, TINY, "cpu", tmp_path)
    assert freqs == list(range(-16, 16, 2)) and acc.shape == (16, 16)
    assert len(trained) == 130
    with open(tmp_path / "fourier_grid_cos.csv") as f:
        cells = {(int(c["x"]), int(c["y"])): (int(c["k1"]), int(c["k2"]))
                 for c in csv.DictReader(f)}
    assert len(cells) == 256 and cells[8, 8] == (0, 0) and cells[8, 9] == (0, 2)
    assert cells[0, 0] == (-16, -16) and cells[3, 12] == (-10, 8)
    n = np.arange(32)
    constant, two_periods = fourier_direction(0, 0), fourier_direction(0, 2)
    torch.testing.assert_close(constant, torch.full((1, 32, 32), 1 / 32.0))
    torch.testing.assert_close(two_periods[0, 5], torch.tensor(
        np.cos(2 * np.pi * 2 * n / 32) / np.sqrt(512), dtype=torch.float32))
    checkerboard = fourier_direction(-16, -16)
    assert checkerboard[0, 0, 0] > 0 and checkerboard[0, 0, 1] < 0 and checkerboard[0, 1, 1] > 0
    trained.clear()
    _, sines = fourier_sweep("LogReg", 2, TINY, "cpu", tmp_path, phase="sin")
    assert len(trained) == 126 and np.isnan(sines).sum() == 4 and np.isnan(sines[8, 8])
    with pytest.raises(UserError, match="holds no sin direction"):
        fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path, phase="sin")


@pytest.mark.parametrize("arch", ["LogReg", "LeNet"])
def test_directions_trained_together_equal_one_at_a_time(arch):
    """Random directions, each network with its own data: accuracies within 0.1 points of the
    one-at-a-time training (the same networks up to float rounding; over many steps at the
    paper's learning rate rounding grows, as between two thread counts: docs/nads.md)."""
    setup = LinearSetup(n_train=512, n_test=512, epochs=2, seed=4)
    directions = [random_direction(s) for s in range(3)]
    together = directional_bias.train_on_directions(arch, directions, setup, "cpu")
    for v, result in zip(directions, together):
        alone = train_on_direction(arch, v, setup, "cpu")
        assert abs(result["test_accuracy"] - alone["test_accuracy"]) <= 0.001
        assert abs(result["train_accuracy"] - alone["train_accuracy"]) <= 0.001


def test_nad_sweep_and_single_direction_from_the_command_line(tmp_path, monkeypatch, capsys):
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(1024, 3)))
    nads_file = tmp_path / "Test_NADs.npy"
    np.save(nads_file, q.T.astype(np.float32))
    acc = nad_sweep("LogReg", q.T, "test", [0, 2], TINY, "cpu", tmp_path / "sweep")
    assert len(acc) == 2 and all(0 <= a <= 1 for a in acc)
    assert (tmp_path / "sweep" / "nad_indices.png").stat().st_size > 0

    common = ["--arch", "LogReg", "--train-samples", "200", "--test-samples", "200",
              "--epochs", "1", "--device", "cpu", "--results-dir", str(tmp_path / "res")]
    monkeypatch.setattr(sys, "argv", ["directional_bias", "--nad-index", "1", "--nads",
                                      str(nads_file)] + common)
    run(script.main)
    out = tmp_path / "res" / "directional_bias" / "LogReg" / "single_nad_1.json"
    record = json.loads(out.read_text())
    assert record["direction"] == "nad_1" and 0 <= record["test_accuracy"] <= 1
    assert str(out) in capsys.readouterr().out

    monkeypatch.setattr(sys, "argv", ["directional_bias", "--nad-indices", "0,5", "--nads",
                                      str(nads_file)] + common)
    with pytest.raises(SystemExit) as exit_info:
        run(script.main)
    assert exit_info.value.code == 2
    assert "NAD index 5 is out of range" in capsys.readouterr().err


def test_int_list_parses_ranges():
    assert script.int_list("0,1,5-7") == [0, 1, 5, 6, 7]


@pytest.mark.parametrize("argv, message", [
    (["--fourier-grid", "--phase", "tan"], "invalid choice: 'tan'"),
    (["--fourier-grid", "--phase", "sin", "--grid-step", "16"], "holds no sin direction"),
    (["--nad-indices", "0,1", "--nads", "WIDE"], "not NADs [k, 1024]"),
    (["--nad-indices", "0,3", "--nads", "THREE"], "NAD index 3 is out of range"),
])
def test_bad_sweeps_are_one_sentence_and_write_nothing(argv, message, tmp_path, monkeypatch,
                                                       capsys):
    np.save(tmp_path / "wide.npy", np.random.default_rng(0).random((4, 100), dtype=np.float32))
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(1024, 3)))
    np.save(tmp_path / "three.npy", q.T.astype(np.float32))
    argv = [str(tmp_path / "wide.npy") if a == "WIDE" else
            str(tmp_path / "three.npy") if a == "THREE" else a for a in argv]
    monkeypatch.setattr(sys, "argv", ["directional_bias", "--arch", "LogReg", *argv,
                                      "--results-dir", str(tmp_path / "res")])
    with pytest.raises(SystemExit) as exit_info:
        run(script.main)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "res").rglob("*.csv"))


@pytest.mark.parametrize("damage", ["truncated row", "non-numeric row", "garbage csv"])
def test_damaged_rows_of_a_sweep_are_named_and_trained_again(tmp_path, monkeypatch, capsys,
                                                            damage):
    """A truncated or garbled CSV row is not counted as done (it was, or a traceback): it is
    named, discarded, and its direction trained again; the good rows are kept."""
    trained = []
    monkeypatch.setattr(directional_bias, "train_on_directions", _fake_training(trained))
    fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path)
    path = tmp_path / "fourier_directions.csv"
    lines = path.read_text().splitlines(keepends=True)
    if damage == "truncated row":
        path.write_text("".join(lines[:-1]) + lines[-1][:9])
    elif damage == "non-numeric row":
        path.write_text("".join(lines[:-1]) + lines[-1].replace("0.5", "x", 1))
    else:
        path.write_bytes(np.random.default_rng(0).bytes(500))
    trained.clear()
    capsys.readouterr()
    _, acc = fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path)
    printed = capsys.readouterr().out
    assert len(trained) == (4 if damage == "garbage csv" else 1)
    assert ("discarding" in printed or "cannot be read" in printed) and str(path) in printed
    assert np.isfinite(acc).all()


def test_a_damaged_settings_file_is_refused_and_the_results_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(directional_bias, "train_on_directions", _fake_training([]))
    fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path)
    settings = tmp_path / "fourier_directions.json"
    settings.write_text(settings.read_text()[:20])
    rows = (tmp_path / "fourier_directions.csv").read_bytes()
    with pytest.raises(UserError, match="the sweep's settings file .* is damaged"):
        fourier_sweep("LogReg", 16, TINY, "cpu", tmp_path)
    assert (tmp_path / "fourier_directions.csv").read_bytes() == rows


def test_a_single_direction_run_is_not_replaced_by_one_with_other_settings(tmp_path,
                                                                          monkeypatch):
    from utils.nad.directional_bias import single_direction
    monkeypatch.setattr(directional_bias, "train_on_direction",
                        lambda *a, **k: {"test_accuracy": 0.5, "train_accuracy": 0.5,
                                         "seconds": 0.0})
    v = fourier_direction(1, 1)
    _, path = single_direction("LogReg", v, "fourier_cos_1_1", TINY, "cpu", tmp_path)
    single_direction("LogReg", v, "fourier_cos_1_1", TINY, "cpu", tmp_path)  # the same: fine
    with pytest.raises(UserError, match="holds the results of a run with other settings"):
        single_direction("LogReg", v, "fourier_cos_1_1", LinearSetup(epochs=3), "cpu",
                         tmp_path)
    assert json.loads(path.read_text())["setup"]["epochs"] == TINY.epochs
