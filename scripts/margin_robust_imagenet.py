"""Margin distribution of an adversarially trained ResNet50 on ImageNet (L2 PGD, eps 3: the
widely used robust model of the `robustness` library), in DCT subspaces from low to high
frequency (Hold me tight!, robust models). --checkpoint takes a torchvision ResNet50
state_dict or a `robustness` checkpoint (its `model` entry is unwrapped)."""
from utils.cli import add_pgd_arguments, margin_parser, pgd_from_args, run
from utils.experiment import run_margin_experiment
from utils.projection import IDENTITY


def main():
    parser = margin_parser(__doc__, ["ResNet50"], "ResNet50", 16, 16)
    args = add_pgd_arguments(parser, eps=3.0, steps=7).parse_args()
    run_margin_experiment(args, "ImageNet", robust=True, attack=pgd_from_args(args, IDENTITY))


if __name__ == "__main__":
    run(main)
