"""Atomic writes (temporary file in the same folder + rename): a result file is either the old
one, the new one, or absent, never half-written.

Every ``save_*`` function serialises its object in memory first and then writes the bytes, so
that a full disk is reported in one sentence that names the file and the space it needs
(:class:`DiskFull`), and equal objects always give files with equal bytes.
"""
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

# the temporary files of this module are named ".<final name>.<random>.tmp"; one left by a
# killed run is removed by the next run into its folder (utils.common.run_folder.clean_temporary)
TEMPORARY_SUFFIX = ".tmp"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(UserError):
    """The device of a result file ran out of space while it was written (nothing of the
    file's previous version is lost: the write went to a temporary file)."""


def format_bytes(n):
    if n >= 1e9:
        return f"{n / 1e9:,.1f} GB"
    if n >= 1e5:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{int(n)} bytes"


def _disk_full(path, needed=None):
    try:
        free = f"{format_bytes(shutil.disk_usage(Path(path).parent).free)} are free"
    except OSError:
        free = "its free space is unknown"
    what = f"it needs {format_bytes(needed)} and " if needed is not None else ""
    return DiskFull(f"no space left on the device of {path}: {what}{free}; free some space "
                    f"there or choose another output folder")


def write_temporary(path, write, size=None):
    """Call ``write(tmp_path)`` for a new temporary file beside ``path`` and return its path
    (mode 644); the file is removed if ``write`` fails. ``size``: the bytes it will hold, if
    known (for the message of :class:`DiskFull`)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                   suffix=TEMPORARY_SUFFIX)
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise _disk_full(path, size) from None
        raise
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno in _NO_SPACE:
            raise _disk_full(path, size) from None
        raise
    return Path(tmp)


def atomic_write(path, write, size=None):
    """Call ``write(tmp_path)`` and rename the temporary file to ``path``."""
    tmp = write_temporary(path, write, size)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(path)


def _write_bytes(data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # a full disk is reported here, not after the rename
    return write


def save_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    return atomic_write(path, _write_bytes(data), len(data))


def stage_bytes(path, data):
    """Write ``data`` to a temporary file beside ``path`` and return the temporary's path
    (see utils.common.run_folder.write_unit, which renames it)."""
    return write_temporary(path, _write_bytes(data), len(data))


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def json_bytes(obj):
    return (json.dumps(obj, indent=2) + "\n").encode()


def torch_bytes(obj):
    # through a file object rather than a file name: torch.save names the records inside its
    # zip after a name it is given, so a temporary name would make equal objects differ
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def png_bytes(fig, **savefig_args):
    """A matplotlib figure as PNG bytes (no metadata, so equal figures give equal files)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, **savefig_args)
    return buf.getvalue()


def save_npy(path, array):
    return save_bytes(path, npy_bytes(array))


def save_json(path, obj):
    return save_bytes(path, json_bytes(obj))


def save_torch(path, obj):
    return save_bytes(path, torch_bytes(obj))


def save_text(path, text):
    return save_bytes(path, text.encode())


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
