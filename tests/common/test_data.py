import numpy as np
import pytest
import torch

from utils.common.data import MNIST_SAMPLE, load_mnist
from utils.common.dct import flip
from utils.common.errors import UserError


def test_bundled_sample_is_real_stratified_mnist():
    data = load_mnist("sample")
    xtr, ytr = data.train.tensors
    xte, yte = data.test.tensors
    assert xtr.shape == (8000, 1, 28, 28) and xte.shape == (2000, 1, 28, 28)
    assert xtr.dtype == torch.float32 and 0 <= xtr.min() and xtr.max() <= 1
    counts_tr, counts_te = np.bincount(ytr, minlength=10), np.bincount(yte, minlength=10)
    np.testing.assert_allclose(counts_te / (counts_tr + counts_te), 0.2, atol=0.01)
    assert abs(xtr.mean() - 0.1307) < 0.005 and abs(xtr.std() - 0.3081) < 0.005
    assert MNIST_SAMPLE.stat().st_size < 2 * 1024 * 1024


def test_flipped_variant_and_auto_fallback(tmp_path, capsys):
    plain = load_mnist("auto", data_dir=tmp_path)  # nothing on disk -> the sample
    assert "sample" in plain.source
    flipped = load_mnist("sample", transform="flipped")
    torch.testing.assert_close(flip(flipped.test.tensors[0][:5]), plain.test.tensors[0][:5],
                               atol=1e-5, rtol=0)
    assert flipped.name == "MNIST_flipped"


def test_full_mnist_missing_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="`download`"):
        load_mnist("full", data_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # no download was attempted


def test_full_mnist_from_torchvision_files(tmp_path):
    """The torchvision loader path, on tiny files in MNIST's real idx format."""
    import gzip
    import struct
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 7)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n)
                                                          + labels.tobytes())
        if prefix == "t10k":
            test_imgs, test_labels = imgs, labels
    data = load_mnist("auto", data_dir=tmp_path)
    assert "full MNIST" in data.source and len(data.train) == 12 and len(data.test) == 7
    np.testing.assert_allclose(data.test.tensors[0][:, 0].numpy(), test_imgs / 255.0, atol=1e-7)
    np.testing.assert_array_equal(data.test.tensors[1].numpy(), test_labels)
