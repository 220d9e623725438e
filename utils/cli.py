"""Command-line plumbing shared by the scripts: the common arguments and the error guard."""
import argparse
import os
import sys

from . import distributed
from .adversarial import L2PGD, PROJECTIONS, madry_step_size
from .errors import UserError


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def eval_count(text):
    """A number of test images: a whole number >= 0, or -1 for all of them."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < -1:
        raise argparse.ArgumentTypeError(f"{text} must be -1 (all), 0 (none) or a positive count")
    return value


def margin_parser(description, models, default_model, block_size, block_step, trainable=True):
    """Arguments of every margin script (see README for their meaning).
    trainable=False: no --train/--epochs/--resume (models that are only loaded)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", choices=models, default=default_model)
    p.add_argument("--checkpoint", help="weights to load (default: the shipped checkpoint)")
    if trainable:
        p.add_argument("--train", action="store_true",
                       help="train the model instead of loading one")
        p.add_argument("--epochs", type=positive_int, default=30, help="epochs with --train")
        p.add_argument("--resume", action="store_true", help="resume an interrupted --train")
    else:
        p.set_defaults(train=False, epochs=None, resume=False, trainable=False)
    p.add_argument("--samples", type=positive_int, default=100, help="test samples to measure")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample draw and training")
    p.add_argument("--data", choices=["auto", "full", "sample"], default="auto",
                   help="full dataset, bundled sample, or full when on disk (default)")
    p.add_argument("--data-dir", default="data", help="where the full dataset lives")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--results-dir", default="Results")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1")
    p.add_argument("--batch-size", type=positive_int, default=100, help="DeepFool batch size")
    p.add_argument("--block-size", type=positive_int, default=block_size,
                   help="side of the DCT blocks")
    p.add_argument("--block-step", type=positive_int, default=block_step,
                   help="step of the DCT blocks along the diagonal")
    p.add_argument("--max-iter", type=positive_int, default=100,
                   help="DeepFool iterations before giving up on a sample")
    p.add_argument("--workers", type=positive_int,
                   help="subspaces measured at once on a CPU, each by its own thread (default: "
                   "one per torch thread for models under a million parameters, else 1)")
    return p


def imagenet_parser(description, block_size=16, block_step=16):
    """Arguments of the ImageNet margin scripts: ResNet50, loaded only, images read from disk."""
    p = margin_parser(description, ["ResNet50"], "ResNet50", block_size, block_step,
                      trainable=False)
    p.add_argument("--val-dir", help="ImageFolder of the validation images "
                   "(default: DATA_DIR/val)")
    p.add_argument("--eval-samples", type=eval_count, default=1000,
                   help="accuracy on this many seeded validation images; 0 skips it, -1 uses "
                   "all 50,000 (hours on a CPU)")
    p.set_defaults(data_dir="data/ImageNet", batch_size=8)
    p._option_string_actions["--download"].help = (
        "download torchvision's pretrained weights when no checkpoint is given (ImageNet itself "
        "cannot be downloaded)")
    return p


def add_pgd_arguments(parser, eps, steps=10):
    """The L2 PGD settings of adversarial training (used with --train); returns ``parser``."""
    g = parser.add_argument_group("adversarial training (with --train)")
    g.add_argument("--eps", type=positive_float, default=eps,
                   help=f"L2 radius of the PGD perturbations (default {eps})")
    g.add_argument("--pgd-steps", type=positive_int, default=steps,
                   help=f"PGD steps per training batch (default {steps})")
    g.add_argument("--pgd-step-size", type=positive_float, default=None,
                   help="L2 length of a PGD step (default 2.5 * eps / steps)")
    g.add_argument("--projection", choices=PROJECTIONS, default="dykstra",
                   help="dykstra: exact projection onto ball and valid images (default); "
                        "plain: onto the ball, then clip")
    return parser


def pgd_from_args(args, transform):
    """The training attack (utils.adversarial.L2PGD) described by add_pgd_arguments' args."""
    step = args.pgd_step_size or madry_step_size(args.eps, args.pgd_steps)
    return L2PGD(args.eps, args.pgd_steps, step, transform, True, args.projection)


def int_list(text):
    """'0,1,2,10-12' -> [0, 1, 2, 10, 11, 12]."""
    out = []
    try:
        for part in text.split(","):
            a, _, b = part.partition("-")
            out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0,1,2,10-20") from None
    return out


def run(main):
    """Run ``main()``; a UserError becomes one line on stderr and exit status 2.

    Under torchrun it first joins the process group, and only rank 0 prints to stdout."""
    if distributed.init() and not distributed.is_main():
        sys.stdout = open(os.devnull, "w")
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    finally:
        distributed.finish()
