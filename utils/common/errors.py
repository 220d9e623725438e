"""Errors a user can cause (missing data, a wrong checkpoint, bad arguments), and interrupts.

A UserError's message is one sentence that says what to do; the command-line entry points print
it and exit with status 2 instead of a traceback.
"""


class UserError(Exception):
    pass


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in a run that has saved its progress.

    saved: what was kept, e.g. "3 of 21 subspaces are saved in Results/.../partial".
    flags: the options a rerun needs besides the original ones to continue (e.g. --resume);
    utils.cli.run prints the whole command."""

    def __init__(self, saved, flags=()):
        super().__init__(saved)
        self.saved = saved
        self.flags = list(flags)
