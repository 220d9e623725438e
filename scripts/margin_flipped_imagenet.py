"""Margin distribution of a ResNet50 trained on DCT-flipped ImageNet, in DCT subspaces from low
to high frequency (Hold me tight!, Sec. 3); validation images are flipped as they are read."""
from utils.common.cli import run
from utils.hmt.cli import imagenet_parser, margin_config
from utils.hmt.experiment import run_margin_experiment


def main():
    args = imagenet_parser(__doc__).parse_args()
    run_margin_experiment(margin_config(args, "ImageNet", transform="flipped"))


if __name__ == "__main__":
    run(main)
