"""Margin distribution of a network trained on low-pass MNIST (only the top-left 14x14 block of
each digit's DCT kept), in DCT subspaces from low to high frequency: the MNIST counterpart of
the low-pass CIFAR-10 experiment of Hold me tight! (Sec. 3.2), our experiment (docs/margins.md).
There is no shipped checkpoint: pass --train (30 s on a CPU) or --checkpoint."""
from utils.common.cli import run
from utils.hmt.cli import margin_config, margin_parser
from utils.hmt.experiment import run_margin_experiment


def main():
    args = margin_parser(__doc__, ["LeNet", "ResNet18"], "LeNet", 8, 1).parse_args()
    run_margin_experiment(margin_config(args, "MNIST", transform="low_pass"))


if __name__ == "__main__":
    run(main)
