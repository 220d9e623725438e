"""LeNet trainings on D(v) per second: several networks trained at once
(``utils.directional_bias.train_on_directions``, grouped networks) against one at a time
(``train_on_direction``, as the original code), in the same run, on the same random
directions and the paper's data (10,000 + 10,000 samples). Prints both rates and the largest
difference in test accuracy, and, last, `speedup: <ratio>x`.

Trainings are shortened to ``--epochs`` (1 by default; the paper's 20 take 20 times as long
for both paths): the rate is quoted per full 20-epoch training.

    python -m benchmarks.directional_bias [--networks 8] [--group 8] [--epochs 1]
"""
import argparse
import time

import torch

from tests.test_linear_data import random_direction
from utils.cli import positive_int, run
from utils.directional_bias import LinearSetup, train_on_direction, train_on_directions


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="LeNet", choices=["LeNet", "LogReg"])
    p.add_argument("--networks", type=positive_int, default=8, help="directions trained")
    p.add_argument("--group", type=positive_int, default=8, help="networks trained at once")
    p.add_argument("--epochs", type=positive_int, default=1)
    p.add_argument("--train-samples", type=positive_int, default=10_000)
    args = p.parse_args()
    setup = LinearSetup(n_train=args.train_samples, n_test=args.train_samples,
                        epochs=args.epochs)
    directions = [random_direction(s) for s in range(args.networks)]
    print(f"{args.arch}, {args.networks} random directions, {setup.n_train} training samples, "
          f"{setup.epochs} epoch(s), torch threads {torch.get_num_threads()}")
    # one-time set-up (oneDNN kernels for these shapes) is not what is compared
    train_on_directions(args.arch, directions[:2], LinearSetup(256, 256, epochs=1), "cpu")

    start = time.perf_counter()
    alone = [train_on_direction(args.arch, v, setup, "cpu") for v in directions]
    t_alone = time.perf_counter() - start
    start = time.perf_counter()
    together = []
    for first in range(0, len(directions), args.group):
        together += train_on_directions(args.arch, directions[first:first + args.group], setup,
                                        "cpu")
    t_together = time.perf_counter() - start

    per_training = 20 / setup.epochs  # seconds of one 20-epoch training, from these
    diff = max(abs(a["test_accuracy"] - b["test_accuracy"]) for a, b in zip(alone, together))
    print(f"one at a time: {t_alone:.1f} s, {args.networks / (t_alone * per_training) * 60:.2f} "
          f"trainings of 20 epochs per minute")
    print(f"{args.group} at a time: {t_together:.1f} s, "
          f"{args.networks / (t_together * per_training) * 60:.2f} trainings of 20 epochs per "
          f"minute")
    print(f"largest test-accuracy difference: {100 * diff:.2f} points")
    print(f"speedup: {t_alone / t_together:.2f}x")


if __name__ == "__main__":
    run(main)
