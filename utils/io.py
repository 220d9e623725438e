"""Atomic writes (temporary file in the same folder + rename): a result file is either the old
one, the new one, or absent, never half-written."""
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch


# the temporary files of this module are named ".<final name>.<random>.tmp"; one left by a
# killed run is removed by the next run into its folder (utils.run_folder.clean_temporary)
TEMPORARY_SUFFIX = ".tmp"


def write_temporary(path, write):
    """Call ``write(tmp_path)`` for a new temporary file beside ``path`` and return its path
    (mode 644); the file is removed if ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=TEMPORARY_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return Path(tmp)


def atomic_write(path, write):
    """Call ``write(tmp_path)`` and rename the temporary file to ``path``."""
    tmp = write_temporary(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(path)


def _write_through_file(path, mode, dump):
    """Atomically write ``path`` by calling ``dump(f)`` on the opened temporary file. Through a
    file object rather than its name: torch.save names the records inside its zip after a path
    it is given, and the temporary name would make equal objects give files of different
    hashes."""
    def write(tmp):
        with open(tmp, mode) as f:
            dump(f)
    return atomic_write(path, write)


def save_npy(path, array):
    return _write_through_file(path, "wb", lambda f: np.save(f, array))


def save_json(path, obj):
    return _write_through_file(path, "w", lambda f: f.write(json.dumps(obj, indent=2) + "\n"))


def save_torch(path, obj):
    return _write_through_file(path, "wb", lambda f: torch.save(obj, f))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
