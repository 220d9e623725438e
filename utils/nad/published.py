"""The authors' published tables of the NAD paper (docs/data/published, see its README)."""
import csv
from pathlib import Path

import numpy as np

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "data" / "published"
# column prefixes of their tables
ARCH_COLUMNS = {"LogReg": "lr", "LeNet": "ln", "ResNet18": "rn", "DenseNet121": "dn",
                "VGG11": "vgg"}


def _rows(name):
    with open(PUBLISHED / name, newline="") as f:
        return list(csv.DictReader(f))


def read_published():
    """{'grid': {arch: accuracy [16, 16] in %, [x, y] with x the vertical frequency},
        'nads': {arch: (indices [1023], accuracy [1023] in %)},
        'singular_values': {arch: [1023]}} from dft_accuracies.csv and nads.csv."""
    grid_rows = _rows("dft_accuracies.csv")
    grid = {}
    for arch, col in ARCH_COLUMNS.items():
        acc = np.full((16, 16), np.nan)
        for r in grid_rows:
            acc[int(r["x"]), int(r["y"])] = float(r[f"acc_{col}"])
        grid[arch] = acc
    nad_rows = _rows("nads.csv")
    index = np.array([int(r["index"]) for r in nad_rows])
    nads = {arch: (index, np.array([float(r[f"acc_{col}"]) for r in nad_rows]))
            for arch, col in ARCH_COLUMNS.items() if f"acc_{col}" in nad_rows[0]}
    singular = {arch: np.array([float(r[f"eig_{col}"]) for r in nad_rows])
                for arch, col in ARCH_COLUMNS.items() if f"eig_{col}" in nad_rows[0]}
    return {"grid": grid, "nads": nads, "singular_values": singular}


# bands of NAD indices where the website's LeNet curve falls from 100 % towards 50 %
NAD_BANDS = ((0, 20), (21, 100), (101, 300), (301, 1022))


def band_summary(indices, accuracy, published, bands=NAD_BANDS):
    """One line per band of NAD indices: the mean of ``accuracy`` (in %, at ``indices``) and of
    the published curve (in %, indexed by NAD index) at the same indices."""
    lines = []
    for first, last in bands:
        pick = [k for k, i in enumerate(indices) if first <= i <= last]
        ours = np.mean([accuracy[k] for k in pick])
        theirs = np.mean([published[indices[k]] for k in pick])
        lines.append(f"i = {first}..{last} ({len(pick)} indices): ours mean {ours:.2f}%, "
                     f"published mean at the same indices {theirs:.2f}%")
    return lines


def grid_summary(accuracy):
    """One line of summary statistics of an accuracy grid in % (NaN cells left out)."""
    a = np.asarray(accuracy, dtype=float)
    a = a[np.isfinite(a)]
    if not a.size:
        return "no cell trained yet"
    return (f"{a.size} cells, min {a.min():.2f}%, median {np.median(a):.2f}%, "
            f"max {a.max():.2f}%, {np.mean(a >= 90):.1%} of cells >= 90%, "
            f"{np.mean(a <= 60):.1%} <= 60%")
