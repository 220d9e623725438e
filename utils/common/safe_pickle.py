"""Pickles from elsewhere (CIFAR-10's batch files) read as plain data only.

Python's pickle runs whatever code a file names. :func:`load_plain` admits only what such data
files hold: dicts, lists, tuples, strings, bytes, numbers, and numpy arrays of numbers (through
numpy's own reconstruction functions, and ``_codecs.encode``, which Python 3 uses for bytes in
protocol-2 pickles); any other function or class named in the file is refused before anything
is called."""
import pickle

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer


class UnsafePickle(pickle.UnpicklingError):
    """The pickle names a function or class that plain data does not need."""


def _encode_latin1(text, encoding="latin1"):
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickle(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


# (module, name) in the pickle -> what it is allowed to mean; numpy 1 wrote numpy.core, numpy 2
# writes numpy._core
ALLOWED = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
           ("_codecs", "encode"): _encode_latin1}
for _core in ("numpy.core", "numpy._core"):
    ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickle(f"{module}.{name}") from None


def _check_plain(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key)
            _check_plain(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_plain(value)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UnsafePickle("a numpy array of Python objects")
    elif not isinstance(obj, (str, bytes, int, float, bool, type(None))):
        raise UnsafePickle(type(obj).__name__)


def load_plain(path, encoding="latin1"):
    """The plain data in the pickle file ``path`` (``encoding``: how the 8-bit strings of Python
    2 pickles are decoded; latin1 keeps numpy's array bytes intact). Raises UnsafePickle (naming
    what was refused) for anything else, other pickle errors for damaged files."""
    with open(path, "rb") as f:
        obj = _PlainUnpickler(f, encoding=encoding).load()
    _check_plain(obj)
    return obj
