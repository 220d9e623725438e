"""Margins of networks trained on synthetic data whose discriminative information lies in one
subspace S (our experiments on two claims of Hold me tight!, docs/margins.md): --experiment
invariance (S a low- or high-frequency 8x8 DCT block or a random subspace; margins in S against
S-perp) or sudden (the noise energy in a subspace Q of S-perp scaled down; margins in Q). One
training per cell (subspace, model, noise energy in Q, seed), one CSV row each: an interrupted
sweep resumes, a finished cell is not run again. Results go to
Results/margin_synthetic/<experiment>/."""
import argparse
from pathlib import Path

from utils.common.cli import device_name, hold, path_name, positive_float, positive_int, run
from utils.common.plotting import save_figure
from utils.common.run_folder import locked
from utils.common.training import pick_device
from utils.hmt.plots import synthetic_figure
from utils.hmt.synthetic import EXPERIMENTS, KINDS, MODELS, SyntheticConfig, cells, summary, sweep


def names(choices):
    def parse(text):
        values = [v.strip() for v in text.split(",") if v.strip()]
        wrong = [v for v in values if v not in choices]
        if not values or wrong:
            raise argparse.ArgumentTypeError(f"{text!r}: choose among {', '.join(choices)}")
        return values
    return parse


def numbers(kind):
    def parse(text):
        try:
            return [kind(v) for v in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0,1,2") from None
    return parse


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--experiment", choices=list(EXPERIMENTS), required=True)
    p.add_argument("--models", type=names(MODELS), default=list(MODELS))
    p.add_argument("--seeds", type=numbers(int), default=[0, 1, 2])
    p.add_argument("--subspaces", type=names(KINDS),
                   help="kinds of S (default: low,high,random for invariance, low for sudden)")
    p.add_argument("--q-energies", type=numbers(float),
                   help="factors on the noise energy in Q (default: 1 for invariance, "
                        "0,0.001,0.01,0.1,1 for sudden)")
    p.add_argument("--eps", type=positive_float, default=2.0, help="class distance along u")
    p.add_argument("--sigma", type=positive_float, default=1.0, help="noise standard deviation")
    p.add_argument("--train-samples", type=positive_int, default=10_000)
    p.add_argument("--test-samples", type=positive_int, default=2_000)
    p.add_argument("--samples", type=positive_int, default=100,
                   help="test samples whose margins are measured")
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--device", type=device_name, default="cpu")
    p.add_argument("--results-dir", type=path_name, default="Results")
    args = p.parse_args()
    if args.samples > args.test_samples:
        p.error(f"--samples {args.samples} is more than the {args.test_samples} test samples")
    base = SyntheticConfig(eps=args.eps, sigma=args.sigma, n_train=args.train_samples,
                           n_test=args.test_samples, samples=args.samples, epochs=args.epochs)
    out_dir = Path(args.results_dir) / "margin_synthetic" / args.experiment
    hold(locked(out_dir))
    rows = sweep(base, cells(args.experiment, args.models, args.seeds, args.subspaces,
                             args.q_energies), out_dir / "results.csv", pick_device(args.device))
    for line in summary(rows):
        print(line)
    figure = save_figure(synthetic_figure(rows, args.experiment), out_dir / "results.png")
    for path in (out_dir / "results.csv", out_dir / "results.json", figure):
        print(f"wrote {path}")


if __name__ == "__main__":
    run(main)
