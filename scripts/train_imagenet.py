"""Train torchvision's ResNet50 on ImageNet, or on DCT-flipped ImageNet with --flipped
(Hold me tight!, Sec. 3), with the recipe of the README; on several GPUs or nodes launch it
with torchrun. The checkpoint is what margin_flipped_imagenet --checkpoint loads."""
import argparse

from utils.common.cli import (device_name, nonnegative_int, path_name, positive_float,
                              positive_int, run, seed_number)
from utils.hmt.imagenet_training import recipe, train_resnet50


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train-dir", type=path_name, required=True,
                   help="ImageFolder tree of training images")
    p.add_argument("--val-dir", type=path_name, required=True,
                   help="ImageFolder tree of validation images")
    p.add_argument("--flipped", action="store_true", help="train on DCT-flipped images")
    p.add_argument("--epochs", type=positive_int, default=90)
    p.add_argument("--batch-size", type=positive_int, default=256,
                   help="global batch, split evenly across the processes (default 256)")
    p.add_argument("--lr", type=positive_float,
                   help="peak learning rate (default 0.1 * batch / 256)")
    p.add_argument("--schedule", choices=["step", "cosine"], default="step",
                   help="step: lr x0.1 after 1/3 and 2/3 of the epochs; cosine: cosine decay")
    p.add_argument("--image-size", type=positive_int, default=224, help="crop side in pixels")
    p.add_argument("--workers", type=nonnegative_int, default=8,
                   help="data loading processes per GPU (default 8)")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the initialisation and order")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--resume", action="store_true", help="resume an interrupted run")
    p.add_argument("--out-dir", type=path_name,
                   help="default: Results/train_ImageNet[_flipped]/ResNet50")
    args = p.parse_args()
    out_dir = args.out_dir or ("Results/train_ImageNet" + ("_flipped" if args.flipped else "")
                               + "/ResNet50")
    config = recipe(args.epochs, args.batch_size, args.lr, args.schedule, args.seed)
    checkpoint, accuracy = train_resnet50(
        args.train_dir, args.val_dir, out_dir, config, flipped=args.flipped,
        image_size=args.image_size, workers=args.workers, device=args.device,
        resume=args.resume)
    print(f"ResNet50 top-1 validation accuracy: {100 * accuracy:.2f}%")
    print(f"wrote {checkpoint}, {checkpoint.parent / 'run.json'} and the resume state "
          f"{checkpoint.parent / 'train_state.pt'}")


if __name__ == "__main__":
    run(main)
