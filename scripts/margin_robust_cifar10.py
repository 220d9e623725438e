"""Margin distribution of a network adversarially trained on CIFAR-10 (L2 PGD, eps 1), in DCT
subspaces from low to high frequency (Hold me tight!, robust models)."""
from utils.common.cli import run
from utils.hmt.cli import add_pgd_arguments, margin_config, margin_parser, pgd_from_args
from utils.hmt.dykstra import IDENTITY
from utils.hmt.experiment import run_margin_experiment


def main():
    parser = margin_parser(__doc__, ["ResNet18", "VGG19", "DenseNet121"], "ResNet18", 8, 2,
                           sample=False)
    args = add_pgd_arguments(parser, eps=1.0, steps=7).parse_args()
    run_margin_experiment(margin_config(args, "CIFAR10", robust=True,
                                        attack=pgd_from_args(args, IDENTITY)))


if __name__ == "__main__":
    run(main)
