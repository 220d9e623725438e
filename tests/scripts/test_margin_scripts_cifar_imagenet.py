"""The five CIFAR-10 / ImageNet margin scripts end to end on tiny datasets in the real formats:
a couple of samples, one or two subspaces, a few DeepFool iterations."""
import json
import sys

import numpy as np
import pytest
import torch

from models import ARCHITECTURES, ResNet18, imagenet_resnet50
from scripts import (margin_cifar10, margin_flipped_cifar10, margin_flipped_imagenet,
                     margin_imagenet, margin_low_pass_cifar10)
from tests.tiny_datasets import write_cifar10, write_image_folder
from utils.common.checkpoints import load_weights, save_weights
from utils.common.cli import run
from utils.common.io import save_torch

# DeepFool steps cost 1 forward + 9 backward passes: the runs here take one step per subspace
FEW = ["--samples", "2", "--max-iter", "1", "--device", "cpu"]
CIFAR_TWO_BLOCKS = ["--block-size", "8", "--block-step", "24"]  # offsets 0 and 24
CIFAR_ONE_BLOCK = ["--block-size", "8", "--block-step", "32"]  # offset 0 only
IMAGENET_ONE_BLOCK = ["--block-size", "16", "--block-step", "224"]  # offset 0 only


def call(module, argv, monkeypatch):
    """``python -m scripts.<module> argv`` in this process; returns the exit status."""
    monkeypatch.setattr(sys, "argv", [module.__name__] + [str(a) for a in argv])
    try:
        run(module.main)
    except SystemExit as e:
        return e.code
    return 0


def check_results(out_dir, n_sub, n_samples, max_iter):
    margins = np.load(out_dir / "margins.npy")
    iterations = np.load(out_dir / "iterations.npy")
    info = json.loads((out_dir / "run.json").read_text())
    assert margins.shape == iterations.shape == (n_sub, n_samples)
    assert np.isfinite(margins).all() and (margins >= 0).all()
    assert ((iterations >= 0) & (iterations <= max_iter)).all()
    assert (out_dir / "margins.png").stat().st_size > 0
    assert not (out_dir / "partial").exists()
    assert info["subspace_spec"]["count"] == n_sub and info["deepfool"]["max_iter"] == max_iter
    return info


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=4, n_test=6)
    return root


def test_margin_cifar10_trains_one_epoch_and_measures(cifar_dir, tmp_path, monkeypatch):
    code = call(margin_cifar10, ["--train", "--epochs", 1, "--data-dir", cifar_dir,
                                 "--results-dir", tmp_path, *FEW, *CIFAR_TWO_BLOCKS], monkeypatch)
    assert code == 0
    out = tmp_path / "margin_CIFAR10" / "ResNet18"
    info = check_results(out, 2, 2, 1)
    assert info["trained_here"] and info["training"]["epochs"] == 1
    assert info["test_accuracy_images"] == 6 and len(info["sample_indices"]) == 2
    load_weights(ResNet18(), out / "model.t7")  # the trained weights are a plain state_dict


def test_margin_flipped_cifar10_loads_a_checkpoint(cifar_dir, tmp_path, monkeypatch):
    torch.manual_seed(0)
    ckpt = save_weights(ARCHITECTURES["CIFAR10"]["VGG19"](), tmp_path / "vgg.t7")
    code = call(margin_flipped_cifar10, ["--model", "VGG19", "--checkpoint", ckpt,
                                         "--data-dir", cifar_dir, "--results-dir", tmp_path,
                                         *FEW, *CIFAR_ONE_BLOCK], monkeypatch)
    assert code == 0
    info = check_results(tmp_path / "margin_CIFAR10_flipped" / "VGG19", 1, 2, 1)
    assert not info["trained_here"] and info["checkpoint"] == str(ckpt)


def test_margin_low_pass_cifar10_loads_a_dataparallel_checkpoint(cifar_dir, tmp_path,
                                                                 monkeypatch):
    torch.manual_seed(0)
    state = {f"module.{k}": v for k, v in ResNet18().state_dict().items()}
    ckpt = save_torch(tmp_path / "model.t7", state)
    code = call(margin_low_pass_cifar10, ["--checkpoint", ckpt, "--data-dir", cifar_dir,
                                          "--results-dir", tmp_path, *FEW, *CIFAR_ONE_BLOCK],
                  monkeypatch)
    assert code == 0
    info = check_results(tmp_path / "margin_CIFAR10_low_pass" / "ResNet18", 1, 2, 1)
    assert "low-pass" in info["data"]


def test_cifar_script_without_data_or_checkpoint_explains_in_one_line(cifar_dir, tmp_path,
                                                                      monkeypatch, capsys):
    assert call(margin_cifar10, ["--data-dir", tmp_path / "none"], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--download" in err and "--data-dir" in err
    code = call(margin_cifar10, ["--data-dir", cifar_dir, "--results-dir", tmp_path,
                                 "--model", "DenseNet121", "--samples", 2], monkeypatch)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--train" in err and "--checkpoint" in err


@pytest.fixture(scope="module")
def imagenet_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    write_image_folder(root / "val", per_class=1, seed=3)
    return root


@pytest.fixture(scope="module")
def resnet50_state():
    torch.manual_seed(0)
    return imagenet_resnet50().state_dict()


IMAGENET_FEW = ["--samples", 1, "--max-iter", 1, "--eval-samples", 1, "--device", "cpu",
                *IMAGENET_ONE_BLOCK]


def test_margin_imagenet_uses_torchvision_weights_only_from_the_cache(
        imagenet_dir, resnet50_state, tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download without --download")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    argv = ["--data-dir", imagenet_dir, "--results-dir", tmp_path, *IMAGENET_FEW]
    assert call(margin_imagenet, argv, monkeypatch) == 2
    assert "--download" in capsys.readouterr().err

    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    save_torch(cached, resnet50_state)
    assert call(margin_imagenet, argv, monkeypatch) == 0
    info = check_results(tmp_path / "margin_ImageNet" / "ResNet50", 1, 1, 1)
    assert info["checkpoint"] == str(cached) and info["test_accuracy_images"] == 1
    assert info["subspace_spec"]["shape"] == [3, 224, 224]


def test_margin_flipped_imagenet_with_a_checkpoint(imagenet_dir, resnet50_state, tmp_path,
                                                   monkeypatch, capsys):
    ckpt = save_torch(tmp_path / "model.t7", resnet50_state)
    argv = ["--val-dir", imagenet_dir / "val", "--results-dir", tmp_path, *IMAGENET_FEW]
    assert call(margin_flipped_imagenet, argv, monkeypatch) == 2  # nothing shipped
    err = capsys.readouterr().err
    assert "--checkpoint" in err and "--train" not in err
    assert call(margin_flipped_imagenet, ["--checkpoint", ckpt, *argv], monkeypatch) == 0
    info = check_results(tmp_path / "margin_ImageNet_flipped" / "ResNet50", 1, 1, 1)
    assert info["checkpoint_sha256"] and "3 classes" in info["data"]


def test_margin_robust_flipped_cifar10_trains_adversarially(cifar_dir, tmp_path, monkeypatch):
    from scripts import margin_robust_flipped_cifar10
    argv = ["--train", "--epochs", 1, "--pgd-steps", 1, "--data-dir", cifar_dir,
            "--results-dir", tmp_path, *FEW, *CIFAR_ONE_BLOCK]
    assert call(margin_robust_flipped_cifar10, argv, monkeypatch) == 0
    info = check_results(tmp_path / "margin_CIFAR10_flipped_robust" / "ResNet18", 1, 2, 1)
    assert info["trained_here"]


def test_margin_robust_imagenet_loads_a_robustness_library_checkpoint(
        imagenet_dir, resnet50_state, tmp_path, monkeypatch):
    from scripts import margin_robust_imagenet
    model = {f"module.model.{k}": v for k, v in resnet50_state.items()}
    model.update({f"module.attacker.model.{k}": v for k, v in resnet50_state.items()})
    model["module.normalizer.new_mean"] = torch.zeros(3, 1, 1)
    model["module.attacker.normalize.new_std"] = torch.ones(3, 1, 1)
    ckpt = save_torch(tmp_path / "imagenet_l2_3_0.pt", {"model": model, "epoch": 90})
    argv = ["--checkpoint", ckpt, "--data-dir", imagenet_dir, "--results-dir", tmp_path,
            *IMAGENET_FEW]
    assert call(margin_robust_imagenet, argv, monkeypatch) == 0
    info = check_results(tmp_path / "margin_ImageNet_robust" / "ResNet50", 1, 1, 1)
    assert info["checkpoint"] == str(ckpt)
