"""Margin distribution of an adversarially trained ResNet50 on ImageNet (L2 PGD, eps 3: the
widely used robust model of the `robustness` library), in DCT subspaces from low to high
frequency (Hold me tight!, robust models). --checkpoint takes a torchvision ResNet50
state_dict or a `robustness` checkpoint (its `model` entry is unwrapped). Load only."""
from utils.common.cli import run
from utils.hmt.cli import imagenet_parser, margin_config
from utils.hmt.experiment import run_margin_experiment


def main():
    args = imagenet_parser(__doc__).parse_args()
    run_margin_experiment(margin_config(args, "ImageNet", robust=True))


if __name__ == "__main__":
    run(main)
