"""Clean and L2 PGD accuracy of a checkpoint on the test split in use. The attack: untargeted
L2 PGD on the cross-entropy, 100 steps of eps / 4, one run from the clean image plus 2 random
restarts, each sample stopping at its first misclassified iterate; perturbations are projected
exactly (Dykstra) onto the eps-ball and the valid images [0, 1] of pixel space (also for
--flipped). The last line reads `clean_acc: <percent> pgd_acc: <percent>`."""
import argparse

from utils.common.cli import (device_name, nonnegative_int, path_name, positive_float,
                              positive_int, run, seed_number)
from utils.hmt.attack_eval import AttackEvalConfig, evaluate_checkpoint


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default="MNIST", help="MNIST (and the datasets of LOADERS)")
    p.add_argument("--checkpoint", type=path_name, required=True, help="model.t7 to evaluate")
    p.add_argument("--model", default="LeNet", help="architecture of the checkpoint")
    p.add_argument("--flipped", action="store_true", help="the model reads DCT-flipped images")
    p.add_argument("--eps", type=positive_float, default=2.0, help="L2 radius (default 2)")
    p.add_argument("--steps", type=positive_int, default=100, help="PGD steps (default 100)")
    p.add_argument("--step-size", type=positive_float, help="default eps / 4")
    p.add_argument("--restarts", type=nonnegative_int, default=2,
                   help="random restarts (default 2)")
    p.add_argument("--samples", type=positive_int, help="seeded subset of the test split")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the subset and restarts")
    p.add_argument("--data", choices=["auto", "full", "sample"], default="auto")
    p.add_argument("--data-dir", type=path_name, default="data")
    p.add_argument("--download", action="store_true")
    p.add_argument("--device", type=device_name, default="auto")
    p.add_argument("--batch-size", type=positive_int, default=500)
    result, info = evaluate_checkpoint(AttackEvalConfig(**vars(p.parse_args())))
    print(f"data: {info['data']} ({info['test_images']} test images of {info['data_name']})")
    print(f"attack: {info['attack']}; largest Dykstra residual {result.residual:.2e}")
    print(f"clean_acc: {100 * result.clean:.2f} pgd_acc: {100 * result.pgd:.2f}")


if __name__ == "__main__":
    run(main)
