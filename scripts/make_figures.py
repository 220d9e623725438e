"""Regenerate every figure of the README into docs/figures/ from the shipped checkpoints, the
bundled MNIST sample and the precomputed NADs of nads/.

Groups (--only, comma-separated; default all):
  margins      swarm plots of the four shipped LeNets (margins measured here, --samples)
  frequency    flip / low_pass / high_pass / cutoff_low on MNIST digits and photographs
  nads         the first NADs of every architecture with a file in nads/
  directional  accuracy on D(v) over the authors' Fourier grid (LogReg, LeNet) and along NAD
               indices (LeNet), beside the authors' published tables
  claims       our experiments on the papers' claims, from their committed results in
               docs/data: synthetic (sudden) invariance, low-pass MNIST, poisoned MNIST,
               LeNet without pooling

The directional-bias sweeps are read from docs/data/directional_bias/<Arch>/ (committed; the
folders of scripts.directional_bias --results-dir docs/data) and only missing directions are
trained. Every run is seeded, so a rerun redraws the same images."""
import argparse
import time
from pathlib import Path

import numpy as np

from models import NAD_ARCHITECTURES
from utils.common.cli import device_name, hold, path_name, positive_int, run
from utils.common.data import images_at, load_mnist
from utils.common.errors import UserError
from utils.common.plotting import save_figure
from utils.common.run_folder import locked
from utils.common.tables import read_rows
from utils.common.training import pick_device
from utils.figures import frequency_figure, margin_panels, nads_figure
from utils.hmt.experiment import MarginConfig, run_margin_experiment
from utils.hmt.margins import load_margin_run
from utils.hmt.photos import PHOTOS, sample_photos
from utils.hmt.plots import synthetic_figure
from utils.hmt.synthetic import summary as synthetic_summary
from utils.nad.directional_bias import LinearSetup, fourier_sweep, nad_sweep
from utils.nad.linear_data import load_nads, nads_label
from utils.nad.plots import poison_mnist_figure, save_grid_comparison, save_nad_curve_comparison
from utils.nad.poison_experiment import mnist_poison_summary
from utils.nad.published import band_summary, grid_summary, read_published

GROUPS = ("margins", "frequency", "nads", "directional", "claims")
# experiment name: (transform, robust) of the four shipped LeNets
MARGIN_RUNS = {"MNIST": (None, False), "MNIST_flipped": ("flipped", False),
               "MNIST_robust": (None, True), "MNIST_flipped_robust": ("flipped", True)}
PHOTOS_224 = ("astronaut", "coffee")  # two: at one screen pixel per image pixel PNGs get large
MNIST_DIGITS = (15, 6, 10, 7)  # test-set indices of the digits shown: a 0, 1, 2 and 3


def measure_margins(name, args, device):
    """Margins [21, samples] of the shipped LeNet of experiment ``name`` (run_margin_experiment,
    as the margin scripts), written under ``args.results_dir``/figures."""
    transform, robust = MARGIN_RUNS[name]
    out = run_margin_experiment(MarginConfig(
        dataset="MNIST", model="LeNet", transform=transform, robust=robust,
        samples=args.samples, device=str(device), data=args.data,
        results_dir=str(Path(args.results_dir) / "figures")))
    return load_margin_run(out)[1]


def margin_figures(args, out_dir, device):
    m = {name: measure_margins(name, args, device) for name in MARGIN_RUNS}
    yield save_figure(margin_panels([
        ("LeNet, MNIST", [(m["MNIST"], None, "tab:blue")]),
        ("LeNet, flipped MNIST", [(m["MNIST_flipped"], None, "tab:orange")])]),
        out_dir / "margins_mnist.png")
    yield save_figure(margin_panels([
        ("MNIST: standard vs robust LeNet (L2 PGD, eps 2)",
         [(m["MNIST"], "standard", "tab:blue"), (m["MNIST_robust"], "robust", "tab:red")]),
        ("flipped MNIST: standard vs robust LeNet",
         [(m["MNIST_flipped"], "standard", "tab:orange"),
          (m["MNIST_flipped_robust"], "robust", "tab:purple")])], log=True),
        out_dir / "margins_robust.png")


def frequency_figures(args, out_dir):
    digits = images_at(load_mnist(args.data).test, list(MNIST_DIGITS))
    yield save_figure(frequency_figure(digits, 14, "MNIST digits (28x28)"),
                      out_dir / "frequency_mnist.png")
    for size, names in ((32, PHOTOS), (224, PHOTOS_224)):
        yield save_figure(frequency_figure(sample_photos(size, names), size // 2,
                                           f"scikit-image photographs at {size}x{size}"),
                          out_dir / f"frequency_photos_{size}.png")


def available_nads():
    """{arch: NADs [k, 1024]} for every architecture with a file in nads/, registry order."""
    return {a: load_nads(p) for a in NAD_ARCHITECTURES
            if (p := Path("nads") / f"{a}_NADs.npy").is_file()}


def nad_figures(out_dir):
    nads = available_nads()
    missing = [a for a in NAD_ARCHITECTURES if a not in nads]
    if missing:
        print(f"no NAD file in nads/ for {', '.join(missing)}: left out of nads.png")
    if not nads:
        raise UserError("nads/ holds no <Arch>_NADs.npy; compute one with scripts.nad_computation")
    yield save_figure(nads_figure(nads), out_dir / "nads.png")


# LeNet's D(NAD_i) curve: every index to 40, then denser where the accuracy falls
LENET_NAD_INDICES = [*range(0, 41), *range(42, 101, 2), *range(105, 201, 5),
                     *range(220, 501, 20), *range(550, 1001, 50), 1022]


def directional_figures(args, out_dir, device):
    """Our LogReg and LeNet grids over the authors' 16x16 Fourier lattice and LeNet's D(NAD_i)
    curve, drawn beside the authors' published tables (docs/data/published)."""
    setup = LinearSetup()  # the paper's: 10,000 + 10,000 samples, 20 epochs, seed 0
    sweeps = Path(args.sweeps_dir)
    published = read_published()
    rows = []
    for arch in ("LogReg", "LeNet"):
        hold(locked(sweeps / arch))
        freqs, acc = fourier_sweep(arch, 2, setup, device, sweeps / arch, figure=False)
        rows.append((arch, 100 * acc, published["grid"][arch]))
        for who, grid in (("ours", 100 * acc), ("published", published["grid"][arch])):
            print(f"{arch} Fourier grid, {who}: {grid_summary(grid)}")
    yield save_grid_comparison(out_dir / "directional_bias_grids.png", freqs, rows)
    nads_path = Path("nads") / "LeNet_NADs.npy"
    acc = nad_sweep("LeNet", load_nads(nads_path), nads_label(nads_path), LENET_NAD_INDICES,
                    setup, device, sweeps / "LeNet", figure=False)
    for line in band_summary(LENET_NAD_INDICES, 100 * np.array(acc),
                             published["nads"]["LeNet"][1]):
        print(f"LeNet D(NAD_i), {line}")
    yield save_nad_curve_comparison(
        out_dir / "nad_indices_LeNet.png",
        ("LeNet, this repository (our NADs)", LENET_NAD_INDICES, 100 * np.array(acc)),
        {f"{arch}, authors' website": curve for arch, curve in published["nads"].items()})


def claim_figures(args, out_dir, device):
    """Our experiments on the papers' claims, from their committed results (docs/data; nothing
    is trained): synthetic invariance and sudden invariance, low-pass MNIST against MNIST, NAD
    poisoning of MNIST, LeNet without pooling on the Fourier grid."""
    data = Path(args.data_root)
    for experiment in ("invariance", "sudden"):
        rows = read_rows(data / "margin_synthetic" / experiment / "results.csv")
        for line in synthetic_summary(rows):
            print(f"synthetic {experiment}: {line}")
        yield save_figure(synthetic_figure(rows, experiment),
                          out_dir / f"synthetic_{experiment}.png")
    low_pass = data / "margin_MNIST_low_pass" / "LeNet"
    standard = measure_margins("MNIST", args, device)
    info, low, _ = load_margin_run(low_pass)
    print(f"low-pass MNIST: the filter keeps {100 * info['kept_energy']:.2f}% of the test "
          f"digits' energy; test accuracy {100 * info['test_accuracy']:.2f}%")
    print("low-pass MNIST / MNIST, median margin per subspace: "
          + " ".join(f"{r:.2f}" for r in np.median(low, 1) / np.median(standard, 1)))
    yield save_figure(margin_panels([
        ("LeNet, MNIST vs low-pass MNIST (14x14 DCT block kept)",
         [(standard, "MNIST", "tab:blue"), (low, "low-pass MNIST", "tab:green")])], log=True),
        out_dir / "margins_low_pass_mnist.png")
    rows = read_rows(data / "poison_mnist" / "results.csv")
    for line in mnist_poison_summary(rows):
        print(f"poisoned MNIST: {line}")
    yield save_figure(poison_mnist_figure(rows), out_dir / "poison_mnist.png")
    setup = LinearSetup()
    grids = {}
    for arch in ("LeNet", "LeNetNoPool"):
        hold(locked(Path(args.sweeps_dir) / arch))
        freqs, grids[arch] = fourier_sweep(arch, 4, setup, device, Path(args.sweeps_dir) / arch,
                                           figure=False, limit=0)
        print(f"{arch} on the 8x8 Fourier sub-lattice: {grid_summary(100 * grids[arch])}")
    yield save_grid_comparison(out_dir / "pooling_grids.png", freqs,
                               [("8x8 lattice", 100 * grids["LeNetNoPool"],
                                 100 * grids["LeNet"])],
                               ("LeNetNoPool", "LeNet", "LeNetNoPool - LeNet"))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", type=path_name, default="docs/figures")
    p.add_argument("--results-dir", type=path_name, default="Results",
                   help="the margins measured for the figures go to RESULTS/figures/")
    p.add_argument("--only", default=",".join(GROUPS), help="groups to draw, e.g. margins,nads")
    p.add_argument("--samples", type=positive_int, default=100, help="margin samples (seed 0)")
    p.add_argument("--data", choices=["auto", "full", "sample"], default="auto")
    p.add_argument("--sweeps-dir", type=path_name, default="docs/data/directional_bias",
                   help="the directional-bias sweeps (committed: nothing is retrained)")
    p.add_argument("--data-root", type=path_name, default="docs/data",
                   help="the committed results of our experiments (nothing is retrained)")
    p.add_argument("--device", type=device_name, default="cpu",
                   help="cpu (default, reproducible) or cuda")
    args = p.parse_args()
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown or not groups:
        raise UserError(f"unknown figure group {', '.join(unknown) or '(none)'}; choose from "
                        f"{', '.join(GROUPS)}")
    device = pick_device(args.device)
    out_dir = Path(args.out_dir)
    hold(locked(out_dir))  # one run at a time, checked writable before any work
    makers = {"margins": lambda: margin_figures(args, out_dir, device),
              "frequency": lambda: frequency_figures(args, out_dir),
              "nads": lambda: nad_figures(out_dir),
              "directional": lambda: directional_figures(args, out_dir, device),
              "claims": lambda: claim_figures(args, out_dir, device)}
    for group in GROUPS:
        if group in groups:
            start = time.perf_counter()
            for path in makers[group]():
                print(f"wrote {path}")
            print(f"{group}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    run(main)
