"""NAD poisoning on MNIST digits (our counterpart of the NAD paper's CIFAR-10 experiment, Sec.
4; docs/nads.md): every training digit of class t gets its coefficient along a carrier set to
+-eps (classes 2k and 2k + 1 share NAD_{i + k}, with opposite signs), the NAD LeNet (digits
padded to 32x32, 10 outputs) is trained with the Hold me tight! recipe and tested on clean
digits and on digits carrying another class's carrier; carriers along LeNet's NAD_i for each i
of --nad-indices and, as the control, random directions. One training per (carrier, index,
seed), one CSV row each: an interrupted sweep resumes. Results go to Results/poison_mnist/."""
import argparse
from pathlib import Path

from utils.common.cli import (device_name, hold, int_list, nonnegative_int, path_name,
                              positive_float, positive_int, run)
from utils.common.plotting import save_figure
from utils.common.run_folder import locked
from utils.common.training import pick_device
from utils.nad.plots import poison_mnist_figure
from utils.nad.poison_experiment import MNISTPoisonConfig, mnist_poison_summary, mnist_poison_sweep


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nad-indices", type=int_list, default=[0, 5, 20, 100, 500, 1000],
                   help="first carrier NAD of each run (default 0,5,20,100,500,1000)")
    p.add_argument("--random", type=nonnegative_int, default=1,
                   help="draws of random carriers, the control (default 1)")
    p.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="default 0,1,2")
    p.add_argument("--nads", type=path_name, default="nads/LeNet_NADs.npy",
                   help="NAD file (default nads/LeNet_NADs.npy)")
    p.add_argument("--eps", type=positive_float, default=0.05,
                   help="carrier coefficient magnitude (default 0.05, the paper's)")
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--data", choices=["auto", "full", "sample"], default="sample")
    p.add_argument("--data-dir", type=path_name, default="data")
    p.add_argument("--device", type=device_name, default="cpu")
    p.add_argument("--results-dir", type=path_name, default="Results")
    args = p.parse_args()
    base = MNISTPoisonConfig(nads=args.nads, eps=args.eps, epochs=args.epochs, data=args.data,
                             data_dir=args.data_dir)
    cells = ([("nad", i, s) for i in args.nad_indices for s in args.seeds]
             + [("random", r, s) for r in range(args.random) for s in args.seeds])
    out_dir = Path(args.results_dir) / "poison_mnist"
    hold(locked(out_dir))
    rows = mnist_poison_sweep(base, cells, out_dir / "results.csv", pick_device(args.device))
    for line in mnist_poison_summary(rows):
        print(line)
    figure = save_figure(poison_mnist_figure(rows), out_dir / "results.png")
    for path in (out_dir / "results.csv", out_dir / "results.json", figure):
        print(f"wrote {path}")


if __name__ == "__main__":
    run(main)
