"""Command-line plumbing shared by the scripts: the common arguments and the error guard."""
import argparse
import contextlib
import math
import os
import shlex
import signal
import sys
from dataclasses import fields

from . import distributed
from .adversarial import L2PGD, PROJECTIONS, madry_step_size
from .errors import Interrupted, UserError
from .training import check_device


def _whole_number(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text):
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def nonnegative_int(text):
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def positive_float(text):
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def nonnegative_float(text):
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def path_name(text):
    """A file or folder name: not empty (an empty --results-dir would write into the current
    folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path names no file or folder; give one")
    return text


SEED_LIMIT = 2 ** 32  # numpy's and torch's generators both take every seed below this


def seed_number(text):
    """A seed: a whole number from 0 to 2**32 - 1."""
    value = _whole_number(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text} must be from 0 to {SEED_LIMIT - 1}")
    return value


def device_name(text):
    """A --device that exists here: auto, cpu, cuda or cuda:N (see utils.training.check_device)."""
    try:
        check_device(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def eval_count(text):
    """A number of test images: a whole number >= 0, or -1 for all of them."""
    value = _whole_number(text)
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
    """The training attack (utils.adversarial.L2PGD) described by add_pgd_arguments' args."""
    step = args.pgd_step_size or madry_step_size(args.eps, args.pgd_steps)
    return L2PGD(args.eps, args.pgd_steps, step, transform, True, args.projection)


def margin_config(args, dataset, **fixed):
    """The utils.experiment.MarginConfig of parsed margin arguments (margin_parser's, the same
    names) for ``dataset``; ``fixed``: the script's own settings (transform, robust, attack)."""
    from .experiment import MarginConfig
    names = {f.name for f in fields(MarginConfig)}
    return MarginConfig(dataset=dataset, **{k: v for k, v in vars(args).items() if k in names},
                        **fixed)


def int_list(text):
    """'0,1,2,10-12' -> [0, 1, 2, 10, 11, 12]: whole numbers >= 0 and ascending ranges."""
    out = []
    for part in text.split(","):
        a, dash, b = part.partition("-")
        try:
            low = int(a)
            high = int(b) if dash else low
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0,1,2,10-20") from None
        if low > high:
            raise argparse.ArgumentTypeError(f"{part} is not a range: {low} is more than {high}; "
                                             f"write {high}-{low}")
        out += range(low, high + 1)
    return out


def positive_int_list(text):
    """'1,5,20' -> [1, 5, 20]: as :func:`int_list`, every number at least 1."""
    values = int_list(text)
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text}: every number must be at least 1")
    return values


_contexts = []  # one ExitStack per script running under run(), innermost last


def hold(context):
    """Enter ``context`` (e.g. ``utils.run_folder.locked(folder)``) until the script that
    :func:`run` runs ends; returns what it gives. For scripts, which hold their output folder
    from the moment it is known."""
    if not _contexts:
        raise RuntimeError("utils.cli.hold is for scripts started by utils.cli.run")
    return _contexts[-1].enter_context(context)


def rerun_command(main, flags=()):
    """The command that runs the script of ``main`` again with the same arguments, plus those of
    ``flags`` it was not given."""
    module = main.__module__
    if module == "__main__":  # python -m scripts.NAME
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec else module
    args = sys.argv[1:]
    extra = [f for f in dict.fromkeys(flags) if f not in args]
    return shlex.join(["python", "-m", module, *args, *extra])


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's time limit), handled as Ctrl-C."""


def _terminate(signum, frame):
    raise _Terminated


def run(main, interrupted=None):
    """Run ``main()``; a UserError becomes one line on stderr and exit status 2.

    Ctrl-C (exit status 130) and SIGTERM (143) print what was saved and the command that
    continues when the run raised utils.errors.Interrupted, else "interrupted" and
    ``interrupted``, the script's own note on what a rerun does (if given): SIGTERM raises
    KeyboardInterrupt in the main thread, so every run keeps its finished work as on Ctrl-C.
    Under torchrun it first joins the process group, and only rank 0 prints to stdout."""
    if distributed.init() and not distributed.is_main():
        sys.stdout = open(os.devnull, "w")
    before = signal.signal(signal.SIGTERM, _terminate)
    terminated = False
    try:
        with contextlib.ExitStack() as stack:
            _contexts.append(stack)
            try:
                main()
            finally:
                _contexts.pop()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, _Terminated) or isinstance(stop.__context__, _Terminated)
        what = "terminated" if terminated else "interrupted"
        if isinstance(stop, Interrupted):
            print(f"\n{what}; {stop.saved}; to continue, run: "
                  f"{rerun_command(main, stop.flags)}", file=sys.stderr)
        else:
            print(f"\n{what}" + (f"; {interrupted}" if interrupted else ""), file=sys.stderr)
        sys.exit(143 if terminated else 130)
    finally:
        signal.signal(signal.SIGTERM, before)
        distributed.finish()
