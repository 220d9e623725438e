"""Tiny datasets written in the real on-disk formats, for the real loaders to read in tests."""
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"]


def python2_pickle(data, labels, batch_label):
    """The bytes of a CIFAR-10 batch as the original files hold it: Python 2's cPickle,
    protocol 2, 8-bit strings, and numpy's array reconstruction from numpy.core.multiarray
    (data: uint8 [n, 3072], labels: n ints < 256)."""
    def string(b):  # a Python 2 str
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    def small(v):
        return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + small(0) + b"\x85"
             + string(b"b") + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
             + b"(" + small(1) + small(data.shape[0]) + small(data.shape[1]) + b"\x86"
             + b"cnumpy\ndtype\n" + string(b"u1") + small(0) + small(1) + b"\x87R"
             + b"(" + small(3) + string(b"|") + b"NNN" + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff"
             + small(0) + b"tb"  # the dtype's state
             + b"\x89" + string(data.tobytes()) + b"tb")  # the array's state
    return (b"\x80\x02}(" + string(b"batch_label") + string(batch_label.encode())
            + string(b"labels") + b"](" + b"".join(small(v) for v in labels) + b"e"
            + string(b"data") + array + b"u.")


def write_cifar10(root, per_batch=4, n_test=6, seed=0, python2=False):
    """CIFAR-10's python version under ``root/cifar-10-batches-py``: data_batch_1..5 and
    test_batch (dicts with 'data' uint8 [n, 3072] in CHW order and 'labels'), batches.meta;
    pickled by this Python, or as the original files were when ``python2``.
    Returns (train images uint8 [5 * per_batch, 3, 32, 32], train labels, test images, labels)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name, n, label):
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        entry = {"batch_label": label, "labels": labels, "data": data,
                 "filenames": [f"img_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            if python2:
                f.write(python2_pickle(data, labels, label))
            else:
                pickle.dump(entry, f, protocol=2)
        return data.reshape(n, 3, 32, 32), np.array(labels)

    train = [batch(f"data_batch_{i}", per_batch, f"training batch {i} of 5") for i in range(1, 6)]
    xte, yte = batch("test_batch", n_test, "testing batch 1 of 1")
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_LABELS, "num_cases_per_batch": per_batch,
                     "num_vis": 3072}, f, protocol=2)
    xtr = np.concatenate([x for x, _ in train])
    ytr = np.concatenate([y for _, y in train])
    return xtr, ytr, xte, yte


def write_image_folder(root, classes=("n01440764", "n01443537", "n01484850"), per_class=2,
                       seed=0):
    """An ImageFolder tree ``root/<class>/<image>`` of random RGB photos of assorted sizes,
    alternately PNG and JPEG. Returns the list of written paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for c in classes:
        (Path(root) / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            path = Path(root) / c / f"{c}_{i}.{'png' if i % 2 == 0 else 'JPEG'}"
            Image.fromarray(pixels).save(path)
            paths.append(path)
    return paths
