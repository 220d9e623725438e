"""The CIFAR-10 and ImageNet loaders on tiny datasets in the real on-disk formats."""
import pickle

import numpy as np
import pytest
import scipy.fft
import torch

from tests.tiny_datasets import write_cifar10, write_image_folder
from utils.common.data import (CIFAR10_MEAN, IMAGENET_MEAN, _channel_mean_std, _in_chunks,
                               images_at, load_cifar10, load_imagenet)
from utils.common.dct import flip
from utils.common.errors import UserError


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    return root, write_cifar10(root)


def _low_pass_oracle(images_uint8, b):
    """scipy's orthonormal DCT: keep the top-left b x b block of every channel, in float64."""
    c = scipy.fft.dctn(images_uint8 / 255.0, axes=(-2, -1), norm="ortho")
    c[..., b:, :] = 0
    c[..., :, b:] = 0
    return scipy.fft.idctn(c, axes=(-2, -1), norm="ortho")


def test_cifar10_images_and_labels_are_the_pickles(cifar):
    root, (xtr, ytr, xte, yte) = cifar
    data = load_cifar10("auto", root)
    assert data.name == "CIFAR10" and data.shape == (3, 32, 32)
    assert len(data.train) == 20 and len(data.test) == 6
    np.testing.assert_array_equal(data.train.tensors[0].numpy(), (xtr / 255.0).astype(np.float32))
    np.testing.assert_array_equal(data.test.tensors[1].numpy(), yte)
    assert data.train.tensors[1].dtype == torch.int64
    np.testing.assert_array_equal(data.train.tensors[1].numpy(), ytr)
    torch.testing.assert_close(data.normalization.mean.flatten(), torch.tensor(CIFAR10_MEAN))


def test_flipped_cifar10_round_trips_and_uses_the_flipped_mean_image(cifar):
    root, (xtr, _, xte, _) = cifar
    data = load_cifar10("full", root, transform="flipped")
    assert data.name == "CIFAR10_flipped"
    back = flip(data.test.tensors[0].double()).numpy()
    np.testing.assert_allclose(back, xte / 255.0, atol=1e-5)
    mean_image = flip(torch.ones(3, 32, 32)) * torch.tensor(CIFAR10_MEAN).view(3, 1, 1)
    torch.testing.assert_close(data.normalization.mean, mean_image)


def test_low_pass_cifar10_has_no_energy_outside_the_16x16_block(cifar):
    root, (xtr, _, xte, _) = cifar
    data = load_cifar10("auto", root, transform="low_pass")
    assert data.name == "CIFAR10_low_pass"
    x = data.train.tensors[0].double().numpy()
    coeffs = scipy.fft.dctn(x, axes=(-2, -1), norm="ortho")
    outside = coeffs.copy()
    outside[..., :16, :16] = 0
    assert np.abs(outside).max() < 1e-5 * np.abs(coeffs).max()
    expected = _low_pass_oracle(xtr, 16)
    np.testing.assert_allclose(x, expected, atol=2e-6)
    np.testing.assert_allclose(data.test.tensors[0].numpy(), _low_pass_oracle(xte, 16), atol=2e-6)
    # normalised with the per-channel mean and std of the processed train set
    mean = expected.mean(axis=(0, 2, 3))
    std = expected.std(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(data.normalization.mean.flatten().numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(data.normalization.std.flatten().numpy(), std, rtol=1e-5)


def test_chunked_processing_equals_processing_at_once():
    x = torch.rand(11, 3, 32, 32)
    torch.testing.assert_close(_in_chunks(flip, x.clone(), chunk=4), flip(x))


def test_missing_cifar10_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="`download`"):
        load_cifar10("auto", tmp_path / "nothing")
    with pytest.raises(UserError, match="no bundled CIFAR-10 sample"):
        load_cifar10("sample", tmp_path)


def test_damaged_cifar10_is_a_user_error(tmp_path):
    write_cifar10(tmp_path, per_batch=1, n_test=1)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="damaged"):
        load_cifar10("auto", tmp_path)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    write_image_folder(root / "val", seed=1)
    write_image_folder(root / "train", per_class=1, seed=2)
    return root


def test_imagenet_images_are_read_on_demand_at_224(imagenet):
    data = load_imagenet("auto", imagenet)
    assert data.name == "ImageNet" and data.train is None
    assert len(data.test) == 6 and data.shape == (3, 224, 224)
    x, y = data.test[3]
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y == 1  # the second class folder in sorted order
    batch = images_at(data.test, [3, 0])
    torch.testing.assert_close(batch[0], x)
    torch.testing.assert_close(data.normalization.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    with_train = load_imagenet("auto", imagenet, with_train=True)
    assert len(with_train.train) == 3 and with_train.train[0][0].shape == (3, 224, 224)


def test_flipped_imagenet_is_flipped_on_the_fly(imagenet):
    plain = load_imagenet("auto", data_dir="unused", val_dir=imagenet / "val")
    flipped = load_imagenet("auto", imagenet, transform="flipped")
    assert flipped.name == "ImageNet_flipped"
    for i in (0, 5):
        torch.testing.assert_close(flipped.test[i][0], flip(plain.test[i][0]), atol=1e-5,
                                   rtol=0)
        torch.testing.assert_close(flip(flipped.test[i][0]), plain.test[i][0], atol=1e-5,
                                   rtol=0)


def test_missing_imagenet_says_where_to_put_it(tmp_path):
    with pytest.raises(UserError, match="`val_dir`"):
        load_imagenet("auto", tmp_path)
    (tmp_path / "val" / "empty_class").mkdir(parents=True)
    with pytest.raises(UserError, match="ImageFolder"):
        load_imagenet("auto", tmp_path)


def test_chunked_channel_statistics_equal_numpy():
    x = torch.rand(13, 3, 8, 8) * 1.4 - 0.2
    mean, std = _channel_mean_std(x, chunk=5)
    np.testing.assert_allclose(mean, x.double().numpy().mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(std, x.double().numpy().std(axis=(0, 2, 3), ddof=1), rtol=1e-8)


def test_cifar10_batches_in_the_original_python2_format_load(tmp_path):
    """The real files are Python 2 pickles (8-bit strings, numpy.core): the safe reader takes
    them as torchvision's reader did."""
    xtr, ytr, xte, yte = write_cifar10(tmp_path, per_batch=2, n_test=3, python2=True)
    data = load_cifar10("full", tmp_path)
    np.testing.assert_array_equal(data.train.tensors[0].numpy(), (xtr / 255.0).astype(np.float32))
    np.testing.assert_array_equal(data.train.tensors[1].numpy(), ytr)
    np.testing.assert_array_equal(data.test.tensors[0].numpy(), (xte / 255.0).astype(np.float32))


class _Payload:
    """Unpickling this calls open(path, 'w'): the marker file appears if the file's code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


@pytest.mark.parametrize("hidden", ["data", "labels", "object array"])
def test_a_crafted_cifar10_batch_is_refused_without_running_its_code(tmp_path, hidden):
    """torchvision's reader unpickles the batch files with pickle, so a
    crafted data_batch_1 ran its code; the reader now admits only plain data."""
    write_cifar10(tmp_path, per_batch=1, n_test=1)
    marker = tmp_path / "code_ran"
    payload = _Payload(marker)
    batch = {"data": np.zeros((1, 3072), np.uint8), "labels": [0]}
    if hidden == "object array":
        batch["data"] = np.array([payload], dtype=object)
    else:
        batch[hidden] = payload
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump(batch, f, protocol=2)
    with pytest.raises(UserError, match="data_batch_1 was refused as unsafe: it is not plain "
                                        "data .it names io.open."):
        load_cifar10("auto", tmp_path)
    assert not marker.exists()
