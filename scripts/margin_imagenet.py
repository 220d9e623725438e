"""Margin distribution of a ResNet50 on ImageNet validation images, in DCT subspaces from low
to high frequency (Hold me tight!, Sec. 3). Without --checkpoint it uses
Models/Pretrained/ImageNet/ResNet50/model.t7, else torchvision's pretrained weights when they
are in torch.hub's cache (fetched there with --download)."""
from utils.common.cli import run
from utils.hmt.cli import imagenet_parser, margin_config
from utils.hmt.experiment import run_margin_experiment


def main():
    args = imagenet_parser(__doc__).parse_args()
    run_margin_experiment(margin_config(args, "ImageNet"))


if __name__ == "__main__":
    run(main)
