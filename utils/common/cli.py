"""Command-line plumbing shared by the scripts: argument types and the error guard
(:func:`run`)."""
import argparse
import contextlib
import math
import os
import shlex
import signal
import sys

from . import distributed
from .errors import Interrupted, UserError
from .training import check_device


def whole_number(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text):
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def nonnegative_int(text):
    value = whole_number(text)
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
    value = whole_number(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text} must be from 0 to {SEED_LIMIT - 1}")
    return value


def device_name(text):
    """A --device that exists here: auto, cpu, cuda or cuda:N (utils.common.training)."""
    try:
        check_device(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(e.for_command_line()) from None
    return text


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
    """Enter ``context`` (e.g. ``utils.common.run_folder.locked(folder)``) until the script that
    :func:`run` runs ends; returns what it gives. For scripts, which hold their output folder
    from the moment it is known."""
    if not _contexts:
        raise RuntimeError("utils.common.cli.hold is for scripts started by "
                           "utils.common.cli.run")
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
    continues when the run raised utils.common.errors.Interrupted, else "interrupted" and
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
        print(f"error: {e.for_command_line()}", file=sys.stderr)
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
