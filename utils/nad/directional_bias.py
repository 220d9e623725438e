"""The directional-bias experiment of the NAD paper (Sec. 2): train a network on the linearly
separable D(v) and measure its test accuracy, for one direction v or a sweep of them.

Training is the paper's: 20 epochs of SGD, learning rate 0.5 decaying linearly to 0 (updated
every batch), momentum 0, weight decay 0, batch 128, gradient-norm clipping 0.5; the networks
have two outputs trained with cross-entropy (as the original code), on 10,000 samples of D(v),
tested on 10,000 others. A sweep trains ``group`` directions at once in one grouped network
(:func:`utils.nad.grouped_training.train_stacked`, the same networks as one at a time up to float
rounding), on a CPU one group per torch thread side by side, and writes one CSV row per
direction as soon as its round is done (atomically), so an interrupted sweep resumes at the
first missing direction and a direction already in the CSV is never trained again.

Fourier sweeps follow the authors' published grid (their docs/data/dft_accuracies.csv): cell
(x, y) of a 16x16 lattice is the frequency (k1, k2) = (2 (x - 8), 2 (y - 8)) on 32x32 images,
x the vertical frequency, so (8, 8) is the constant image; (k1, k2) and (-k1, -k2) are the same
direction and are trained once.
"""
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models import build_nad_model

from ..common.errors import UserError
from ..common.io import save_json
from ..common.provenance import git_commit, versions
from ..common.run_folder import refuse_other_settings
from ..common.tables import ResultTable, write_csv
from ..common.training import TrainConfig, default_workers, evaluate, train
from .estimation import check_architecture
from .grouped_training import train_in_groups
from .linear_data import (PHASES, canonical_frequency, fourier_direction, has_direction,
                          linear_datasets, nad_direction)
from .plots import save_fourier_heatmap, save_nad_curve

# directions in one grouped network (utils.nad.grouped_training; on a CPU, LeNet is fastest in
# groups of 2 with one group per thread: docs/performance.md); DenseNet121 cannot be grouped
GROUP_SIZE = {"LogReg": 32, "LeNet": 2, "LeNetNoPool": 2, "VGG11": 2, "ResNet18": 2,
              "DenseNet121": 1}


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


def fresh_network(arch, v, seed):
    """A freshly initialised ``arch`` with two outputs for directions like ``v`` [C, H, W],
    drawn from ``seed`` (torch's global generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_nad_model(arch, num_channels=v.shape[0], num_classes=2)


def accuracies(model, trainset, testset, device, seconds):
    """The result of a training on D(v): test and train accuracy (fractions), ``seconds``."""
    return {"test_accuracy": evaluate(model, testset, device),
            "train_accuracy": evaluate(model, trainset, device), "seconds": round(seconds, 2)}


def train_on_direction(arch, v, setup, device):
    """Train a fresh ``arch`` (two outputs, seeded by setup.seed) on D(v), v [1, 32, 32] of
    unit norm, on its own. Returns {'test_accuracy', 'train_accuracy', 'seconds'} (fractions,
    seconds)."""
    check_architecture(arch)
    start = time.perf_counter()
    trainset, testset = linear_datasets(v, setup.n_train, setup.n_test, setup.sigma, setup.eps,
                                        setup.seed)
    model = train(fresh_network(arch, v, setup.seed), trainset, setup.train_config(), device)
    return accuracies(model, trainset, testset, device, time.perf_counter() - start)


def single_direction(arch, v, name, setup, device, out_dir, nads_name=None):
    """:func:`train_on_direction` of one direction ``v`` named ``name`` (e.g. 'nad_3'),
    written to ``out_dir``/single_<name>.json. A finished run there with other settings is
    not replaced (utils.common.run_folder.refuse_other_settings). Returns (result, path)."""
    path = Path(out_dir) / f"single_{name}.json"
    settings = {"arch": arch, "direction": name, "nads": nads_name, "setup": asdict(setup)}
    refuse_other_settings(out_dir, path.name, settings)
    result = train_on_direction(arch, v, setup, device)
    save_json(path, {**settings, "settings": settings, **result, "versions": versions(),
                     "git_commit": git_commit()})
    return result, path


def fourier_grid_name(phase, grid_step=2):
    """Stem of the cells table and heatmap of one lattice: fourier_grid_<phase> for the
    website's grid (step 2), fourier_grid_<phase>_step<step> for another, so that sweeps of
    two lattices sharing one fourier_directions.csv never replace each other's tables."""
    return f"fourier_grid_{phase}" + ("" if grid_step == 2 else f"_step{grid_step}")


def fourier_sweep_files(phase, grid_step=2):
    """The files :func:`fourier_sweep` writes (figure included), in its output folder."""
    stem = fourier_grid_name(phase, grid_step)
    return [f"{stem}.csv", f"{stem}.png", "fourier_directions.csv", "fourier_directions.json"]


NAD_SWEEP_FILES = ["nad_indices.csv", "nad_indices.png", "nad_indices.json"]


def _grouping(arch, device, group=None, workers=None):
    """(networks per group, groups side by side): GROUP_SIZE[arch] and, for groups of more than
    one, one group per torch thread on a CPU, unless given."""
    group = group or GROUP_SIZE.get(arch, 1)
    return group, (workers or default_workers(device)) if group > 1 else 1


def train_on_directions(arch, directions, setup, device, group=None, workers=None):
    """:func:`train_on_direction` for every v of ``directions``, ``group`` at a time in one
    grouped network (default GROUP_SIZE[arch]; utils.nad.grouped_training), ``workers`` groups
    side by side on a CPU (default: one per torch thread): the same networks up to float
    rounding. Returns the results in order; 'seconds' is the time shared equally."""
    check_architecture(arch)
    group, workers = _grouping(arch, device, group, workers)
    if len(directions) == 1 or group == 1:
        return [train_on_direction(arch, v, setup, device) for v in directions]
    start = time.perf_counter()
    splits = [linear_datasets(v, setup.n_train, setup.n_test, setup.sigma, setup.eps,
                              setup.seed) for v in directions]
    models = [fresh_network(arch, v, setup.seed) for v in directions]
    train_in_groups(models, [tr for tr, _ in splits], setup.train_config(),
                    [setup.seed] * len(models), device, group, workers,
                    desc=f"{arch} x {group}")
    share = (time.perf_counter() - start) / len(models)
    return [accuracies(m, tr, te, device, share) for m, (tr, te) in zip(models, splits)]


def _sane(row):
    """A row of a sweep whose phase and accuracies make sense (utils.common.tables)."""
    return (row.get("phase", "cos") in PHASES
            and all(0 <= float(row[c]) <= 1 for c in ("test_accuracy", "train_accuracy"))
            and float(row["seconds"]) >= 0)


def sweep(arch, cells, csv_path, key_columns, setup, device, settings, desc, group=None,
          limit=None):
    """Train on every direction of ``cells`` (a list of (key tuple, function -> v)), ``group``
    at a time (default GROUP_SIZE[arch]), and write one CSV row each, skipping keys already in
    ``csv_path``; at most ``limit`` directions in this call (None: all). Returns all rows
    (dicts, values as read from the CSV)."""
    table = ResultTable(csv_path, key_columns, ["test_accuracy", "train_accuracy", "seconds"],
                        {"arch": arch, **asdict(setup), **settings}, _sane, "directions")
    todo = table.todo(cells, key=lambda cell: cell[0])
    if limit is not None and limit < len(todo):
        print(f"training {limit} of the {len(todo)} directions left (`max_directions`)")
        todo = todo[:limit]
    group, workers = _grouping(arch, device, group)
    with tqdm(total=len(todo), desc=desc, unit="direction") as bar:
        for first in range(0, len(todo), group * workers):  # a CSV row as each round ends
            chunk = todo[first:first + group * workers]
            results = train_on_directions(arch, [make_v() for _, make_v in chunk], setup,
                                          device, group, workers)
            table.add([{**dict(zip(key_columns, key)), **result}
                       for (key, _), result in zip(chunk, results)])
            bar.update(len(chunk))
    return table.as_strings()


def fourier_lattice(step=2):
    """Frequencies -16, -16 + step, ... < 16 of each axis (step 2: the authors' 16x16 grid)."""
    return list(range(-16, 16, step))


def fourier_sweep(arch, grid_step, setup, device, out_dir, phase="cos", group=None,
                  figure=True, limit=None):
    """Accuracy on D(v) for the Fourier directions of the lattice ``fourier_lattice(grid_step)``
    squared (``phase``: cos, the website's, or sin, the released example's); each distinct
    direction is trained once, sines that vanish are left out (NaN). Keeps every direction in
    ``out_dir``/fourier_directions.csv and writes the lattice's cells to
    :func:`fourier_grid_name`.csv (x, y: indices in the lattice, the website's for step 2; x the
    vertical frequency k1) and, with ``figure``, .png; at most ``limit`` directions trained in
    this call (the cells not trained yet are NaN). Returns (freqs, accuracy [n, n] as
    fractions)."""
    freqs = fourier_lattice(grid_step)
    keys = list(dict.fromkeys((phase, *canonical_frequency(a, b)) for a in freqs for b in freqs
                              if has_direction(a, b, phase=phase)))
    if not keys:
        raise UserError(f"the lattice {freqs} holds no {phase} direction (every sine on it is "
                        f"zero everywhere); use a smaller `grid_step` or `phase` cos")
    cells = [(key, lambda key=key: fourier_direction(*key[1:], phase=phase)) for key in keys]
    out_dir = Path(out_dir)
    # the settings leave out the lattice: a finer one reuses the directions of a coarser one
    rows = sweep(arch, cells, out_dir / "fourier_directions.csv", ("phase", "k1", "k2"),
                 setup, device, {"direction": "cos or sin of 2 pi (k1 m + k2 n) / 32, unit "
                                 "norm; k1, k2 modulo 32, the smaller of (k1, k2), (-k1, -k2)"},
                 f"{arch} Fourier directions", group, limit)
    found = {(r["phase"], int(r["k1"]), int(r["k2"])): r for r in rows}
    cell_rows, accuracy = [], np.full((len(freqs), len(freqs)), np.nan)
    for x, k1 in enumerate(freqs):
        for y, k2 in enumerate(freqs):
            r = found.get((phase, *canonical_frequency(k1, k2)))
            if r is None:
                continue
            accuracy[x, y] = float(r["test_accuracy"])
            cell_rows.append({"x": x, "y": y, "k1": k1, "k2": k2, "phase": phase,
                              "test_accuracy": r["test_accuracy"],
                              "train_accuracy": r["train_accuracy"]})
    stem = fourier_grid_name(phase, grid_step)
    write_csv(out_dir / f"{stem}.csv", cell_rows,
              ["x", "y", "k1", "k2", "phase", "test_accuracy", "train_accuracy"])
    if figure:
        save_fourier_heatmap(out_dir / f"{stem}.png", freqs, accuracy,
                             f"{arch} on D(v), v = {phase} Fourier basis vector")
    return freqs, accuracy


def nad_sweep(arch, nads, nads_name, indices, setup, device, out_dir, group=None, figure=True,
              limit=None):
    """Accuracy on D(NAD_i) for every i of ``indices``, NADs [k, 1024]. Writes
    nad_indices.csv/.json (and, with ``figure``, .png) in ``out_dir`` and returns accuracies
    in the order of indices (NaN for those not trained yet: at most ``limit`` in this call)."""
    for i in indices:
        nad_direction(nads, i)  # refuse out-of-range indices before any training
    cells = [((i,), lambda i=i: nad_direction(nads, i)) for i in indices]
    out_dir = Path(out_dir)
    rows = sweep(arch, cells, out_dir / "nad_indices.csv", ("nad_index",), setup, device,
                 {"nads": nads_name}, f"{arch} NAD directions", group, limit)
    acc_of = {int(r["nad_index"]): float(r["test_accuracy"]) for r in rows}
    done = sorted(acc_of)
    if figure:
        save_nad_curve(out_dir / "nad_indices.png", done, [acc_of[i] for i in done],
                       f"{arch} on D(NAD_i) ({nads_name})")
    return [acc_of.get(i, float("nan")) for i in indices]
