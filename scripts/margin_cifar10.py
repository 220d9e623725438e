"""Margin distribution of a network trained on CIFAR-10, in DCT subspaces from low to high
frequency (Hold me tight!, Sec. 3)."""
from utils.common.cli import run
from utils.hmt.cli import margin_config, margin_parser
from utils.hmt.experiment import run_margin_experiment

MODELS = ["ResNet18", "VGG19", "VGG19_bn", "DenseNet121"]


def main():
    args = margin_parser(__doc__, MODELS, "ResNet18", 8, 2, sample=False).parse_args()
    run_margin_experiment(margin_config(args, "CIFAR10"))


if __name__ == "__main__":
    run(main)
