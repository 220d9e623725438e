"""Margin distribution of a network adversarially trained on MNIST (L2 PGD, eps 2), in DCT
subspaces from low to high frequency (Hold me tight!, robust models: adversarial training changes
the margins like the removal of discriminative features does)."""
from utils.common.cli import run
from utils.hmt.cli import add_pgd_arguments, margin_config, margin_parser, pgd_from_args
from utils.hmt.dykstra import IDENTITY
from utils.hmt.experiment import run_margin_experiment


def main():
    parser = margin_parser(__doc__, ["LeNet", "ResNet18"], "LeNet", 8, 1)
    args = add_pgd_arguments(parser, eps=2.0).parse_args()
    run_margin_experiment(margin_config(args, "MNIST", robust=True,
                                        attack=pgd_from_args(args, IDENTITY)))


if __name__ == "__main__":
    run(main)
