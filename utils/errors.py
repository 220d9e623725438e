"""Errors a user can cause (missing data, a wrong checkpoint, bad arguments).

Their message is one sentence that says what to do; the command-line entry points print it
and exit with status 2 instead of a traceback.
"""


class UserError(Exception):
    pass
