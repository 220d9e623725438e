"""The directional-bias experiment of the NAD paper (Sec. 2): train a network on the linearly
separable D(v) and measure its test accuracy, for one direction v or a sweep of them.

Training is the paper's: 20 epochs of SGD, learning rate 0.5 decaying linearly to 0 (updated
every batch), momentum 0, weight decay 0, batch 128, gradient-norm clipping 0.5; the networks
have two outputs trained with cross-entropy (as the original code), on 10,000 samples of D(v),
tested on 10,000 others. Sweeps write one CSV row per direction as soon as it is done
(atomically), so an interrupted sweep resumes at the first missing direction.
"""
import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models import NAD_ARCHITECTURES, build_nad_model

from .errors import UserError
from .experiment import git_commit, versions
from .io import atomic_write, save_json
from .linear_data import canonical_frequency, fourier_direction, linear_datasets, nad_direction
from .nad_plots import save_fourier_heatmap, save_nad_curve
from .training import TrainConfig, evaluate, train


@dataclass
class LinearSetup:
    """The data and training of one run; epochs etc. as in the paper by default."""
    n_train: int = 10_000
    n_test: int = 10_000
    sigma: float = 3.0
    eps: float = 1.0
    epochs: int = 20
    seed: int = 0

    def train_config(self):
        return TrainConfig(epochs=self.epochs, batch_size=128, max_lr=0.5, momentum=0.0,
                           weight_decay=0.0, grad_clip=0.5, schedule="linear", seed=self.seed)


def train_on_direction(arch, v, setup, device):
    """Train a fresh ``arch`` (two outputs, seeded by setup.seed) on D(v), v [1, 32, 32] of
    unit norm. Returns {'test_accuracy', 'train_accuracy', 'seconds'} (fractions, seconds)."""
    if arch not in NAD_ARCHITECTURES:
        raise UserError(f"architecture {arch} is not available; choose one of "
                        f"{', '.join(NAD_ARCHITECTURES)}")
    start = time.perf_counter()
    trainset, testset = linear_datasets(v, setup.n_train, setup.n_test, setup.sigma, setup.eps,
                                        setup.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.seed)
        model = build_nad_model(arch, num_channels=v.shape[0], num_classes=2)
        train(model, trainset, setup.train_config(), device)
    return {"test_accuracy": evaluate(model, testset, device),
            "train_accuracy": evaluate(model, trainset, device),
            "seconds": round(time.perf_counter() - start, 2)}


def _read_rows(path):
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(path, rows, columns):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(buf.getvalue()))


def _check_settings(path, settings):
    """Write the sweep's settings, or refuse to resume a sweep made with other settings."""
    if Path(path).is_file():
        old = json.loads(Path(path).read_text())
        if old.get("settings") != settings:
            raise UserError(f"{Path(path).parent} holds a sweep made with other settings "
                            f"({path}); delete that folder or pass another --results-dir")
    save_json(path, {"settings": settings, "versions": versions(), "git_commit": git_commit()})


def sweep(arch, cells, csv_path, key_columns, setup, device, settings, desc):
    """Train on every direction of ``cells`` (a list of (key tuple, function -> v)) and write
    one CSV row each, skipping keys already in ``csv_path``. Returns all rows (dicts)."""
    columns = list(key_columns) + ["test_accuracy", "train_accuracy", "seconds"]
    _check_settings(Path(csv_path).with_suffix(".json"),
                    {"arch": arch, **asdict(setup), **settings})
    rows = _read_rows(csv_path)
    done = {tuple(int(r[c]) for c in key_columns) for r in rows}
    todo = [(key, make_v) for key, make_v in cells if key not in done]
    if done:
        print(f"resuming: {len(done)} of {len(cells)} directions already in {csv_path}")
    for key, make_v in tqdm(todo, desc=desc, unit="direction"):
        result = train_on_direction(arch, make_v(), setup, device)
        rows.append({**dict(zip(key_columns, key)), **result})
        _write_rows(csv_path, rows, columns)
    return rows


def fourier_grid(step):
    """Frequencies -16, -16 + step, ... < 16 on each axis of a 32x32 image."""
    return list(range(-16, 16, step))


def fourier_sweep(arch, step, setup, device, out_dir):
    """Accuracy on D(v) for the Fourier directions of the grid ``fourier_grid(step)`` squared;
    pairs giving the same direction are trained once. Writes fourier_grid.csv/.json/.png in
    ``out_dir`` and returns (freqs, accuracy [n, n])."""
    freqs = fourier_grid(step)
    keys = list(dict.fromkeys(canonical_frequency(a, b) for a in freqs for b in freqs))
    cells = [(key, lambda key=key: fourier_direction(*key)) for key in keys]
    out_dir = Path(out_dir)
    # the settings leave out the grid: a finer grid reuses the cells of a coarser one
    rows = sweep(arch, cells, out_dir / "fourier_grid.csv", ("k1", "k2"), setup, device,
                 {"direction": "cos(2 pi (k1 m + k2 n) / 32), unit norm"},
                 f"{arch} Fourier grid")
    acc_of = {(int(r["k1"]), int(r["k2"])): float(r["test_accuracy"]) for r in rows}
    accuracy = np.array([[acc_of[canonical_frequency(a, b)] for b in freqs] for a in freqs])
    save_fourier_heatmap(out_dir / "fourier_grid.png", freqs, accuracy,
                         f"{arch} on D(v), v = Fourier basis vector")
    return freqs, accuracy


def nad_sweep(arch, nads, nads_name, indices, setup, device, out_dir):
    """Accuracy on D(NAD_i) for every i of ``indices``, NADs [k, 1024]. Writes
    nad_indices.csv/.json/.png in ``out_dir`` and returns accuracies in the order of indices."""
    for i in indices:
        nad_direction(nads, i)  # refuse out-of-range indices before any training
    cells = [((i,), lambda i=i: nad_direction(nads, i)) for i in indices]
    out_dir = Path(out_dir)
    rows = sweep(arch, cells, out_dir / "nad_indices.csv", ("nad_index",), setup, device,
                 {"nads": nads_name}, f"{arch} NAD directions")
    acc_of = {int(r["nad_index"]): float(r["test_accuracy"]) for r in rows}
    done = sorted(acc_of)
    save_nad_curve(out_dir / "nad_indices.png", done, [acc_of[i] for i in done],
                   f"{arch} on D(NAD_i) ({nads_name})")
    return [acc_of[i] for i in indices]
