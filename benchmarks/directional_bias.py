"""LeNet trainings on D(v): several networks trained at once (``utils.nad.grouped_training``, as
the directional-bias sweeps do) against one at a time (``utils.common.training.train``, as the
original code), in the same run, on the same random directions, data (10,000 training samples
each), initial weights and batch orders. The timed part is the training; drawing D(v) and measuring
the accuracies (about 2 s per direction here, the same for both paths) are timed once and
added to give the time of a whole 20-epoch training. Prints both rates and, last,
`speedup: <ratio>x` (of the training).

    python -m benchmarks.directional_bias [--networks 8] [--group 2] [--workers W] [--epochs 2]
                                          [--train-samples 10000]
"""
import argparse
import time
from dataclasses import replace

import torch

from utils.common.cli import positive_int, run
from utils.common.training import default_workers, train
from utils.nad.directional_bias import LinearSetup, accuracies, fresh_network
from utils.nad.grouped_training import train_in_groups, train_stacked
from utils.nad.linear_data import linear_datasets


def random_direction(seed):
    """A unit-norm random image [1, 32, 32] (the directions timed)."""
    v = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="LeNet", choices=["LeNet", "LogReg"])
    p.add_argument("--networks", type=positive_int, default=8, help="directions trained")
    p.add_argument("--group", type=positive_int, default=2, help="networks in one group")
    p.add_argument("--workers", type=positive_int,
                   help="groups trained side by side (default: one per torch thread)")
    p.add_argument("--epochs", type=positive_int, default=2)
    p.add_argument("--train-samples", type=positive_int, default=10_000)
    args = p.parse_args()
    workers = args.workers or default_workers("cpu")
    setup = LinearSetup(n_train=args.train_samples, n_test=args.train_samples,
                        epochs=args.epochs)
    config = setup.train_config()
    directions = [random_direction(s) for s in range(args.networks)]
    seeds = list(range(args.networks))
    start = time.perf_counter()
    splits = [linear_datasets(v, setup.n_train, setup.n_test, seed=s)
              for v, s in zip(directions, seeds)]
    t_data = (time.perf_counter() - start) / args.networks
    print(f"{args.arch}, {args.networks} random directions, {setup.n_train} training samples, "
          f"{args.epochs} epoch(s), torch threads {torch.get_num_threads()}, groups of "
          f"{args.group} on {workers} worker(s)")

    def fresh():
        return [fresh_network(args.arch, v, s) for v, s in zip(directions, seeds)]
    # one-time set-up (oneDNN kernels for these shapes) is not what is compared
    warm = fresh()[:2]
    train_stacked(warm, [tr for tr, _ in splits[:2]], replace(config, epochs=1), seeds[:2],
                  "cpu")
    train(warm[0], splits[0][0], replace(config, epochs=1), "cpu")

    alone, start = fresh(), time.perf_counter()
    for net, (tr, _), s in zip(alone, splits, seeds):
        train(net, tr, replace(config, seed=s), "cpu")
    t_alone = time.perf_counter() - start
    together, start = fresh(), time.perf_counter()
    train_in_groups(together, [tr for tr, _ in splits], config, seeds, "cpu", args.group,
                    workers)
    t_together = time.perf_counter() - start
    start = time.perf_counter()
    results = [(accuracies(a, tr, te, "cpu", 0), accuracies(b, tr, te, "cpu", 0))
               for a, b, (tr, te) in zip(alone, together, splits)]
    t_eval = (time.perf_counter() - start) / (2 * args.networks)

    diff = max(abs(a["test_accuracy"] - b["test_accuracy"]) for a, b in results)
    per_epoch = {"one at a time": t_alone / args.networks / args.epochs,
                 f"in groups of {args.group}": t_together / args.networks / args.epochs}
    for name, t in per_epoch.items():
        print(f"{name}: {t:.2f} s per network-epoch; a whole 20-epoch training with its data "
              f"and accuracies {t_data + t_eval + 20 * t:.1f} s")
    print(f"drawing D(v) {t_data:.1f} s and measuring both accuracies {t_eval:.1f} s per "
          f"direction; largest test-accuracy difference {100 * diff:.2f} points")
    print(f"speedup: {t_alone / t_together:.2f}x")


if __name__ == "__main__":
    run(main)
