"""Output folders: one run at a time in each, and the final files of a run written and read as
a unit.

:func:`locked` creates a run's output folder, checks that it can be written, takes an exclusive
lock on it (``fcntl.flock`` of a lock file in it, which the system releases when the process
dies, however it dies) and removes the temporary files that a killed run left there. A second
run into a locked folder stops at once with a UserError naming the folder and the pid of the run
that holds it. Under torchrun only rank 0, the process that writes files, takes the lock.

:func:`write_unit` writes the final files of a run so that they become visible together: all of
them under temporary names first, then renamed, and the metadata (a JSON file) last, with the
sha256 of every file under ``"files"``. A run killed at any moment leaves the previous unit, or
files that disagree with their metadata, or temporary files; readers call :func:`check_unit`,
which refuses a folder whose files disagree with its metadata.
"""
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path

from . import distributed
from .errors import UserError
from .io import TEMPORARY_SUFFIX, save_json, sha256, stage_bytes

LOCK_NAME = ".run.lock"


@dataclass
class _Lock:
    fds: list  # (fd, lock file path, exclusive) in the order taken
    created: list = field(default_factory=list)  # folders made for the run, deepest first
    depth: int = 1


_held = {}  # (folder, scope) -> _Lock: the locks this process holds


@contextmanager
def locked(folder, scope=None):
    """Hold ``folder`` (created if missing) for one run: a UserError if it cannot be created
    or written, or if another process holds it. ``scope`` (e.g. an architecture's name) holds
    only the files of the folder that belong to it (names starting with ``<scope>_``, see
    :func:`belongs_to`), so that runs of other scopes can write there at the same time; a run
    without a scope holds the whole folder (no scoped run can be in it meanwhile). Re-entering
    a folder that this process already holds is allowed. On leaving, folders this call created
    are removed if still empty."""
    folder = Path(folder)
    key, error = None, None
    if distributed.is_main():
        try:
            key = _acquire(folder, scope)
        except UserError as e:
            error = str(e)
    error = distributed.broadcast(error)  # every rank stops when rank 0 cannot write
    if error:
        raise UserError(error)
    try:
        yield folder
    finally:
        if key is not None:
            _release(key)


def _make_folder(folder):
    """Create ``folder``; returns the folders created, deepest first."""
    missing = list(takewhile(lambda p: not p.exists(), (folder, *folder.parents)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise UserError(f"cannot create the output folder {folder}: {blocker} is a file; "
                            f"choose another folder") from None
        raise UserError(f"cannot create the output folder {folder} ({e.strerror}); choose a "
                        f"folder you can write to") from None
    return missing


def _same_file(fd, path):
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    then = os.fstat(fd)
    return (then.st_dev, then.st_ino) == (now.st_dev, now.st_ino)


def _holders(folder):
    """The pids written in the lock files of ``folder`` (for the message of a busy folder)."""
    pids = set()
    for lock in folder.glob(".*.lock"):
        try:
            pids.update(lock.read_text().split())
        except OSError:
            pass
    return ", ".join(sorted(pids)) or "unknown"


def _lock_file(folder, path, exclusive, what):
    """(fd, path) of ``path`` locked with flock, exclusively or shared; a UserError naming the
    holders when another process holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot write in the output folder {folder} ({e.strerror}); make "
                            f"it writable or choose another folder") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{folder} is in use by {what} (pid {_holders(folder)}); wait "
                            f"until it ends, or write to another folder") from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its holder removed that lock file after this process opened it: retry


def _acquire(folder, scope):
    created = _make_folder(folder)
    key = (str(folder.resolve()), scope)
    if key in _held:
        _held[key].depth += 1
        return key
    lock = _Lock([], created)
    if (key[0], None) in _held:  # this process holds the whole folder already
        _held[key] = lock
        return key
    base = folder.resolve() / LOCK_NAME
    try:
        if scope is None:  # the whole folder: no other run, scoped or not
            lock.fds.append((_lock_file(folder, base, True, "another run"), base, True))
            mine = base
        else:  # shared with runs of other scopes, exclusive for this scope's files
            lock.fds.append((_lock_file(folder, base, False, "another run"), base, False))
            mine = folder.resolve() / f".{scope}.lock"
            lock.fds.append((_lock_file(folder, mine, True, f"another {scope} run"), mine,
                             True))
        fd = lock.fds[-1][0]
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as e:
        _unlock(lock)
        raise UserError(f"cannot write in the output folder {folder} ({e.strerror}); free some "
                        f"space or choose another folder") from None
    except UserError:
        _unlock(lock)
        raise
    _held[key] = lock
    clean_temporary(folder, scope)
    return key


def _unlock(lock):
    """Release the flocks of ``lock``, innermost first, removing each lock file that no other
    process holds, then the folders made for it if they are empty."""
    for fd, path, exclusive in reversed(lock.fds):
        if not exclusive:
            try:  # the last holder of a shared lock removes its file
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                exclusive = True
            except BlockingIOError:
                pass
        if exclusive:
            path.unlink(missing_ok=True)  # before closing: no other run holds this file yet
        os.close(fd)
    lock.fds.clear()
    _remove_empty(lock.created)


def _release(key):
    lock = _held[key]
    lock.depth -= 1
    if lock.depth:
        return
    del _held[key]
    _unlock(lock)


def _remove_empty(folders):
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): the run wrote something there
            return


def belongs_to(name, scope):
    """Whether the file ``name`` of a folder belongs to the run of ``scope`` (None: any run):
    its name, without leading dots, starts with ``<scope>_`` (``LeNet_NADs.npy``,
    ``.LeNet_gradients.partial``, and their temporary files ``..LeNet_...tmp``)."""
    return scope is None or name.lstrip(".").startswith(f"{scope}_")


def clean_temporary(folder, scope=None):
    """Remove the temporary files (``.<name>.<random>.tmp``, see utils.common.io) that a killed run
    left in ``folder``, only those of files that belong to ``scope`` if given. Call it only
    while holding the folder (:func:`locked` does): a live run's temporary files must stay."""
    removed = 0
    for path in Path(folder).glob(f".*{TEMPORARY_SUFFIX}"):
        if path.is_file() and belongs_to(path.name, scope):
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        print(f"removed {removed} temporary file(s) that an interrupted run left in {folder}")
    return removed


def _differences(old, new, prefix=""):
    """The keys (dotted paths) whose values differ between two JSON-like dicts."""
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}")
    return keys


def refuse_other_settings(folder, meta_name, settings, parameter="results_dir"):
    """Stop (UserError) before any work when ``folder`` holds a finished run (``meta_name``,
    written by :func:`write_unit` with ``meta["settings"]``) made with settings other than
    ``settings`` (a JSON-able dict): a new run would replace its results. The same settings
    are allowed (the run is repeated and gives the same results). ``parameter``: the one that
    chooses another folder."""
    path = Path(folder) / meta_name
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path} cannot be read ({type(e).__name__}): a finished run there is "
                        f"damaged; delete it, or choose another folder with `{parameter}`") \
            from None
    new = json.loads(json.dumps(settings))
    old_settings = old.get("settings") if isinstance(old, dict) else None
    if old_settings == new:
        return
    what = ("it records no settings (an older version of this code wrote it)"
            if not isinstance(old_settings, dict) else
            "its " + ", ".join(_differences(old_settings, new)[:4]) + " differ")
    raise UserError(f"{folder} holds the results of a run with other settings ({what}); "
                    f"a new run would replace them: choose another folder with `{parameter}`, or "
                    f"delete {path} to replace them")


def write_unit(folder, files, meta_name, meta):
    """Write the final files of a run into ``folder`` as a unit: ``files`` maps file names to
    their contents (bytes, e.g. utils.common.io.npy_bytes(array)); every file is written under a
    temporary name first, then all are renamed to their names, and ``meta_name`` comes last:
    the JSON of ``meta`` with ``"files": {name: sha256}``. Returns the paths written, metadata
    last."""
    folder = Path(folder)
    staged = {}
    try:
        for name, data in files.items():
            staged[name] = stage_bytes(folder / name, data)
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        for name, tmp in staged.items():
            os.replace(tmp, folder / name)
    finally:
        for tmp in staged.values():  # those not renamed when a write failed
            tmp.unlink(missing_ok=True)
    save_json(folder / meta_name, {**meta, "files": hashes})
    return [folder / name for name in files] + [folder / meta_name]


def check_unit(folder, meta_name, names=None, hint="rerun the command that wrote it",
               hashes_required=True):
    """The metadata (dict) of the unit in ``folder`` (see :func:`write_unit`), once each file of
    ``names`` (default: all it lists) is found to match its sha256. A UserError ending with
    ``hint`` when the metadata is missing or unreadable, records no hashes (a folder written
    before they were recorded; accepted unchecked when not ``hashes_required``), or a file is
    missing or differs."""
    folder = Path(folder)
    meta_path = folder / meta_name
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise UserError(f"{folder} holds no finished run ({meta_name} is missing); {hint}") \
            from None
    except (OSError, ValueError) as e:
        raise UserError(f"{meta_path} cannot be read ({type(e).__name__}); {hint}") from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict):
        if not hashes_required and isinstance(meta, dict):
            return meta
        raise UserError(f"{meta_path} records no hashes of its files (it was written by an "
                        f"older version of this code), so they cannot be checked; {hint}")
    for name in files if names is None else names:
        path = folder / name
        if name not in files or not path.is_file():
            raise UserError(f"{path} is missing or not listed in {meta_path}; {hint}")
        if sha256(path) != files[name]:
            raise UserError(f"{path} does not match {meta_path} (files of different runs, or "
                            f"a run stopped while writing them); {hint}")
    return meta
