"""Directional inductive bias (NADs paper, Sec. 2): train a network on the linearly separable
D(v) and report its test accuracy, for one direction v (--fourier K1,K2 or --nad-index I) or a
sweep (--fourier-grid: the authors' 16x16 lattice of frequencies by default, CSV + heatmap;
--nad-indices 0,1,2,10-20: CSV + accuracy curve). Sweeps train several networks at once.
Results go to Results/directional_bias/<Arch>/; an interrupted sweep resumes, and a direction
already in its CSV is never trained again."""
import argparse
from pathlib import Path

from models import NAD_ARCHITECTURES
from utils.common.cli import (device_name, hold, int_list, path_name, positive_float, positive_int,
                              run, seed_number)
from utils.common.run_folder import locked
from utils.common.training import pick_device
from utils.nad.directional_bias import (NAD_SWEEP_FILES, LinearSetup, fourier_sweep,
                                        fourier_sweep_files, nad_sweep, single_direction)
from utils.nad.linear_data import PHASES, fourier_direction, load_nads, nad_direction, nads_label
from utils.nad.published import grid_summary


def pair(text):
    try:
        k1, k2 = (int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a frequency pair like 3,4") from None
    return k1, k2


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", choices=list(NAD_ARCHITECTURES), default="LeNet")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fourier", type=pair, metavar="K1,K2", help="one Fourier direction")
    mode.add_argument("--nad-index", type=int, metavar="I", help="one NAD direction")
    mode.add_argument("--fourier-grid", action="store_true", help="sweep a Fourier grid")
    mode.add_argument("--nad-indices", type=int_list, metavar="LIST", help="sweep NADs")
    p.add_argument("--grid-step", type=positive_int, default=2,
                   help="spacing of the Fourier lattice -16, -16+step, ... < 16 on both axes "
                   "(default 2: the authors' 16x16 grid; 4: 8x8)")
    p.add_argument("--phase", choices=PHASES, default="cos",
                   help="cos: real part of the DFT basis image (the authors' website grid); "
                   "sin: imaginary part (their released directional_bias.py example)")
    p.add_argument("--group", type=positive_int,
                   help="directions in one grouped network in a sweep (default: 2 for LeNet, 32 "
                   "for LogReg; 1 trains one network at a time)")
    p.add_argument("--nads", type=path_name, help="NAD file (default: nads/<Arch>_NADs.npy)")
    p.add_argument("--max-directions", type=positive_int,
                   help="train at most this many directions of a sweep in this run (the rest "
                        "by the same command later)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--train-samples", type=positive_int, default=10_000)
    p.add_argument("--test-samples", type=positive_int, default=10_000)
    p.add_argument("--sigma", type=positive_float, default=3.0, help="noise standard deviation")
    p.add_argument("--eps", type=positive_float, default=1.0, help="distance between the classes")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the data and the network")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--results-dir", type=path_name, default="Results")
    args = p.parse_args()

    setup = LinearSetup(args.train_samples, args.test_samples, args.sigma, args.eps,
                        args.epochs, args.seed)
    device = pick_device(args.device)
    out_dir = Path(args.results_dir) / "directional_bias" / args.arch
    nads_path = Path(args.nads or Path("nads") / f"{args.arch}_NADs.npy")
    uses_nads = args.nad_index is not None or args.nad_indices is not None
    nads = load_nads(nads_path) if uses_nads else None
    nads_name = nads_label(nads_path) if uses_nads else None
    hold(locked(out_dir))  # one run at a time in out_dir, checked writable before training

    if args.fourier_grid:
        freqs, acc = fourier_sweep(args.arch, args.grid_step, setup, device, out_dir,
                                   args.phase, args.group, limit=args.max_directions)
        print(f"{args.arch}, {args.phase} grid over frequencies {freqs}: test accuracy "
              f"{grid_summary(100 * acc)}")
        written = [out_dir / name for name in fourier_sweep_files(args.phase, args.grid_step)]
    elif args.nad_indices is not None:
        acc = nad_sweep(args.arch, nads, nads_name, args.nad_indices, setup, device, out_dir,
                        args.group, limit=args.max_directions)
        print(f"{args.arch} test accuracy on D(NAD_i):")
        print("  " + ", ".join(f"{i}: {100 * a:.2f}%" for i, a in zip(args.nad_indices, acc)))
        written = [out_dir / name for name in NAD_SWEEP_FILES]
    else:
        if args.fourier is not None:
            v = fourier_direction(*args.fourier, phase=args.phase)
            what = "fourier_{}_{}_{}".format(args.phase, *args.fourier)
        else:
            v, what = nad_direction(nads, args.nad_index), f"nad_{args.nad_index}"
        result, path = single_direction(args.arch, v, what, setup, device, out_dir, nads_name)
        print(f"{args.arch} on D(v), v = {what}: test accuracy "
              f"{100 * result['test_accuracy']:.2f}% "
              f"(train {100 * result['train_accuracy']:.2f}%)")
        written = [path]
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    run(main, interrupted="a sweep keeps its finished directions in its CSV, and the same "
                          "command continues it; a single direction is not kept")
