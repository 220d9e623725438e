"""Margin distribution of a network trained on low-pass CIFAR-10 (only the 16x16 lowest DCT
frequencies kept), in DCT subspaces from low to high frequency (Hold me tight!, Sec. 3: without
discriminative high frequencies the network becomes invariant to them)."""
from scripts.margin_cifar10 import MODELS
from utils.common.cli import run
from utils.hmt.cli import margin_config, margin_parser
from utils.hmt.experiment import run_margin_experiment


def main():
    args = margin_parser(__doc__, MODELS, "ResNet18", 8, 2, sample=False).parse_args()
    run_margin_experiment(margin_config(args, "CIFAR10", transform="low_pass"))


if __name__ == "__main__":
    run(main)
