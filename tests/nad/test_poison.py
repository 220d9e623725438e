import pickle
import sys

import numpy as np
import pytest
import torch

from scripts import poison_cifar
from tests.nad_oracles import poison_per_class
from utils.common.cli import run
from utils.common.run_folder import check_unit
from utils.nad.poison import class_carriers, poison
from utils.nad.poison_experiment import cifar10_tensors


def write_tiny_cifar10(root, per_batch=20, test=30, seed=0):
    """CIFAR-10 in its python-pickle layout (root/cifar-10-batches-py/data_batch_1..5,
    test_batch, batches.meta) with random images; returns the images [N, 32, 32, 3] uint8 and
    labels of the train and test splits."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    splits = {}
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        labels = [int(t) for t in rng.permutation(np.arange(n) % 10)]
        entry = {"batch_label": name, "labels": labels,
                 "data": images.transpose(0, 3, 1, 2).reshape(n, 3072),
                 "filenames": [f"{name}_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
        splits[name] = (images, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                     "frog", "horse", "ship", "truck"],
                     "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    train = [splits[f"data_batch_{i}"] for i in range(1, 6)]
    return (np.concatenate([im for im, _ in train]), sum([lab for _, lab in train], []),
            *splits["test_batch"])


def random_nads(k=3, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(1024, k)))
    return q.T.astype(np.float32)


@pytest.fixture
def tiny_cifar(tmp_path):
    return tmp_path, write_tiny_cifar10(tmp_path)


def test_tiny_cifar10_is_read_by_the_real_loader(tiny_cifar):
    root, (train_images, train_labels, test_images, test_labels) = tiny_cifar
    xtr, ytr, xte, yte = cifar10_tensors(root)
    assert xtr.shape == (100, 3, 32, 32) and xte.shape == (30, 3, 32, 32)
    np.testing.assert_array_equal((xtr * 255).round().byte().permute(0, 2, 3, 1).numpy(),
                                  train_images)
    assert ytr.tolist() == train_labels and yte.tolist() == test_labels


def test_carriers_follow_the_design():
    nads = random_nads(3)
    carriers, signs = class_carriers(nads, nad_index=1)
    for t in range(10):
        nad, channel, sign = 1 + t // 6, t % 3, (1 if t % 2 == 1 else -1)
        expected = torch.zeros(3, 32, 32)
        expected[channel] = torch.from_numpy(nads[nad]).view(32, 32)
        torch.testing.assert_close(carriers[t], expected, atol=1e-6, rtol=0)
        assert signs[t] == sign
    with pytest.raises(ValueError, match="needs NADs"):
        class_carriers(nads, nad_index=2)


def test_poisoning_moves_each_image_only_along_its_carrier(tiny_cifar):
    root, _ = tiny_cifar
    x, y, _, _ = cifar10_tensors(root)
    nads = random_nads(2, seed=1)
    carriers, signs = class_carriers(nads, 0)
    eps = 0.05
    poisoned = poison(x, y, carriers, signs, eps)
    assert poisoned.dtype == x.dtype and poisoned.shape == x.shape
    for i in range(len(y)):
        c = carriers[y[i]].double().flatten()
        delta = (poisoned[i] - x[i]).double().flatten()
        # the change is a multiple of the carrier ...
        residual = delta - (delta @ c) * c
        assert residual.abs().max() < 1e-6
        # ... after which the coefficient on the carrier is sign * eps
        assert abs(poisoned[i].double().flatten() @ c - signs[y[i]] * eps) < 1e-6
    torch.testing.assert_close(poisoned, poison_per_class(x, y, nads, 0, eps), atol=1e-6, rtol=0)


def test_poison_cifar_runs_end_to_end(tiny_cifar, monkeypatch, capsys):
    root, _ = tiny_cifar
    nads_file = root / "LeNet_NADs.npy"
    np.save(nads_file, random_nads(2))
    monkeypatch.setattr(sys, "argv", [
        "poison_cifar", "--arch", "LeNet", "--nads", str(nads_file), "--epochs", "1",
        "--data-dir", str(root), "--device", "cpu", "--results-dir", str(root / "res")])
    run(poison_cifar.main)
    out_dir = root / "res" / "poison_cifar10" / "LeNet"
    record = check_unit(out_dir, "run.json")  # model.t7 and run.json written as one unit
    assert set(record["files"]) == {"model.t7"}
    assert record["train_images"] == 100 and record["test_images"] == 30
    for key in ("accuracy_clean_test", "accuracy_poisoned_train", "accuracy_poisoned_test"):
        assert 0 <= record[key] <= 1
    assert (out_dir / "model.t7").is_file()
    assert "clean test accuracy" in capsys.readouterr().out


def test_poison_cifar_without_the_dataset_says_what_to_do(tmp_path, monkeypatch, capsys):
    nads_file = tmp_path / "LeNet_NADs.npy"
    np.save(nads_file, random_nads(2))
    monkeypatch.setattr(sys, "argv", ["poison_cifar", "--arch", "LeNet", "--nads",
                                      str(nads_file), "--data-dir", str(tmp_path / "none")])
    with pytest.raises(SystemExit) as exit_info:
        run(poison_cifar.main)
    assert exit_info.value.code == 2
    assert "pass --download" in capsys.readouterr().err


def test_the_mnist_poisoning_is_the_rule_of_utils_poison(tmp_path):
    """The MNIST experiment's carriers are class_carriers of the NAD file for one-channel
    32x32 images (classes 2k, 2k + 1 share NAD_{i + k} with the signs -1, +1) and its training
    set is poison() of the padded digits; the random control draws 5 orthonormal directions."""
    from utils.nad.poison_experiment import MNISTPoisonConfig, mnist_carriers, padded_mnist
    nads_file = tmp_path / "Test_NADs.npy"
    np.save(nads_file, random_nads(8))
    config = MNISTPoisonConfig(nads=str(nads_file), nad_index=2)
    carriers, signs = mnist_carriers(config)
    expected, expected_signs = class_carriers(np.load(nads_file), 2, 10, (1, 32, 32))
    torch.testing.assert_close(carriers, expected)
    torch.testing.assert_close(signs, expected_signs)
    for t in range(10):
        nad = torch.as_tensor(np.load(nads_file)[2 + t // 2]).view(1, 32, 32)
        assert torch.allclose(carriers[t], nad / nad.norm(), atol=1e-6)
        assert signs[t] == (1.0 if t % 2 else -1.0)
    xtr, ytr, _, _ = padded_mnist()
    assert xtr.shape[1:] == (1, 32, 32) and xtr[:, :, :2].abs().max() == 0
    poisoned = poison(xtr[:20], ytr[:20], carriers, signs, 0.05)
    coef = (poisoned.double() * carriers.double()[ytr[:20]]).flatten(1).sum(1)
    torch.testing.assert_close(coef, signs.double()[ytr[:20]] * 0.05, atol=1e-5, rtol=0)
    random_carriers, _ = mnist_carriers(MNISTPoisonConfig(carrier="random", nad_index=0))
    flat = random_carriers[::2].double().flatten(1)
    torch.testing.assert_close(flat @ flat.T, torch.eye(5, dtype=torch.float64), atol=1e-6,
                               rtol=0)
