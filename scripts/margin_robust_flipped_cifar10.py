"""Margin distribution of a network adversarially trained on DCT-flipped CIFAR-10 (L2 PGD,
eps 1, in the flipped representation, with the valid-image box [0, 1] kept in pixel space by
Dykstra's projection), in DCT subspaces from low to high frequency (Hold me tight!, robust
models)."""
from utils.common.cli import run
from utils.hmt.cli import add_pgd_arguments, margin_config, margin_parser, pgd_from_args
from utils.hmt.dykstra import FLIP
from utils.hmt.experiment import run_margin_experiment


def main():
    parser = margin_parser(__doc__, ["ResNet18", "VGG19", "DenseNet121"], "ResNet18", 8, 2,
                           sample=False)
    args = add_pgd_arguments(parser, eps=1.0, steps=7).parse_args()
    run_margin_experiment(margin_config(args, "CIFAR10", transform="flipped", robust=True,
                                        attack=pgd_from_args(args, FLIP)))


if __name__ == "__main__":
    run(main)
