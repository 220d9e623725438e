"""Margin distribution of a network adversarially trained on DCT-flipped MNIST (L2 PGD, eps 2,
in the flipped representation, with the valid-image box [0, 1] kept in pixel space by Dykstra's
projection), in DCT subspaces from low to high frequency (Hold me tight!, robust models)."""
from utils.common.cli import run
from utils.hmt.cli import add_pgd_arguments, margin_config, margin_parser, pgd_from_args
from utils.hmt.dykstra import FLIP
from utils.hmt.experiment import run_margin_experiment


def main():
    parser = margin_parser(__doc__, ["LeNet", "ResNet18"], "LeNet", 8, 1)
    args = add_pgd_arguments(parser, eps=2.0).parse_args()
    run_margin_experiment(margin_config(args, "MNIST", transform="flipped", robust=True,
                                        attack=pgd_from_args(args, FLIP)))


if __name__ == "__main__":
    run(main)
