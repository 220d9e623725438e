"""Errors a user can cause (missing data, a wrong checkpoint, bad arguments), and interrupts.

A UserError's message is one sentence that says what to do; the command-line entry points print
it and exit with status 2 instead of a traceback. The library speaks of its parameters (the
fields of its configs), quoted in backticks, and a script shows them as its options of the same
names: "raise `networks`" reads "raise --networks" on the command line
(:meth:`UserError.for_command_line`).
"""
import re


class UserError(Exception):
    def for_command_line(self):
        """The message with every parameter in backticks named as the option of the same name
        (`data_dir` -> --data-dir)."""
        return re.sub(r"`(\w+)`", lambda m: "--" + m.group(1).replace("_", "-"), str(self))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in a run that has saved its progress.

    saved: what was kept, e.g. "3 of 21 subspaces are saved in Results/.../partial".
    flags: the options a rerun needs besides the original ones to continue (e.g. --resume);
    utils.common.cli.run prints the whole command."""

    def __init__(self, saved, flags=()):
        super().__init__(saved)
        self.saved = saved
        self.flags = list(flags)
