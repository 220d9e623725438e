"""Margin distribution of a network trained on DCT-flipped CIFAR-10, in DCT subspaces from low
to high frequency (Hold me tight!, Sec. 3: the invariances move with the discriminative
features)."""
from scripts.margin_cifar10 import MODELS
from utils.common.cli import run
from utils.hmt.cli import margin_config, margin_parser
from utils.hmt.experiment import run_margin_experiment


def main():
    args = margin_parser(__doc__, MODELS, "ResNet18", 8, 2, sample=False).parse_args()
    run_margin_experiment(margin_config(args, "CIFAR10", transform="flipped"))


if __name__ == "__main__":
    run(main)
