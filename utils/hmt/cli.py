"""The command-line options of the margin scripts (Hold me tight!) and their settings."""
import argparse
from dataclasses import fields

from ..common.cli import (device_name, path_name, positive_float, positive_int, seed_number,
                          whole_number)
from .pgd import L2PGD, PROJECTIONS, madry_step_size


def eval_count(text):
    """A number of test images: a whole number >= 0, or -1 for all of them."""
    value = whole_number(text)
    if value < -1:
        raise argparse.ArgumentTypeError(f"{text} must be -1 (all), 0 (none) or a positive count")
    return value


def margin_parser(description, models, default_model, block_size, block_step, trainable=True,
                  sample=True):
    """Arguments of every margin script (see README for their meaning).
    trainable=False: no --train/--epochs/--resume (models that are only loaded); sample=False:
    the dataset has no bundled sample (no --data sample)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", choices=models, default=default_model)
    p.add_argument("--checkpoint", type=path_name,
                   help="weights to load (default: the shipped checkpoint)")
    if trainable:
        p.add_argument("--train", action="store_true",
                       help="train the model instead of loading one")
        p.add_argument("--epochs", type=positive_int, default=30, help="epochs with --train")
        p.add_argument("--resume", action="store_true", help="resume an interrupted --train")
    else:
        p.set_defaults(train=False, epochs=30, resume=False)
    p.add_argument("--samples", type=positive_int, default=100, help="test samples to measure")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the sample draw" + (" and training" if trainable else ""))
    if sample:
        p.add_argument("--data", choices=["auto", "full", "sample"], default="auto",
                       help="full dataset, bundled sample, or full when on disk (default)")
    else:
        p.add_argument("--data", choices=["auto", "full"], default="auto",
                       help="the dataset on disk (auto and full are the same: it has no "
                            "bundled sample)")
    p.add_argument("--data-dir", type=path_name, default="data",
                   help="where the full dataset lives")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--results-dir", type=path_name, default="Results")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (CUDA if available), cpu, cuda, cuda:1")
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
                      trainable=False, sample=False)
    p.add_argument("--val-dir", type=path_name, help="ImageFolder of the validation images "
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
    """The training attack (utils.hmt.pgd.L2PGD) described by add_pgd_arguments' args."""
    step = args.pgd_step_size or madry_step_size(args.eps, args.pgd_steps)
    return L2PGD(args.eps, args.pgd_steps, step, transform, True, args.projection)


def margin_config(args, dataset, **fixed):
    """The utils.hmt.experiment.MarginConfig of parsed margin arguments (margin_parser's, the same
    names) for ``dataset``; ``fixed``: the script's own settings (transform, robust, attack)."""
    from .experiment import MarginConfig
    names = {f.name for f in fields(MarginConfig)}
    return MarginConfig(dataset=dataset, **{k: v for k, v in vars(args).items() if k in names},
                        **fixed)


