"""The NAD poisoning experiment on CIFAR-10 behind ``scripts.poison_cifar``: poison the training
set along NADs (utils.poison), train a network on it, test it on the clean test set.

Training as the paper: 50 epochs of SGD, max lr 0.21 decaying linearly to 0, momentum 0.9,
weight decay 5e-4, batch 128, gradient clipping 0.5, cross-entropy, the CIFAR-10 normalisation
layer in front of the network. Results in ``<results_dir>/poison_cifar10/<Arch>/``: model.t7 (the
bare network) and run.json, written as a unit (utils.run_folder.write_unit: run.json last, with
the checkpoint's sha256), and train_state.pt (to resume an interrupted training).
"""
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from models import NAD_ARCHITECTURES, TransformLayer, build_nad_model, normalized

from ..common.checkpoints import weights_bytes
from ..common.data import CIFAR10_MEAN, CIFAR10_STD, load_cifar10
from ..common.errors import UserError
from ..common.provenance import git_commit, versions
from ..common.io import sha256
from .linear_data import load_nads
from .poison import class_carriers, poison
from ..common.run_folder import locked, write_unit
from ..common.training import TrainConfig, evaluate, train


def cifar10_tensors(data_dir, download=False):
    """CIFAR-10 under ``data_dir`` as (train_images, train_labels, test_images, test_labels):
    float32 [N, 3, 32, 32] in [0, 1] and int64 [N] (utils.data.load_cifar10)."""
    data = load_cifar10("full", data_dir, download)
    return (*data.train.tensors, *data.test.tensors)


def run_poison_experiment(arch="ResNet18", data_dir="data", download=False, nads_path=None,
                          nad_index=0, eps=0.05, epochs=50, seed=0, device="cpu",
                          results_dir="Results", resume=False):
    """Poison CIFAR-10 with the NADs of ``nads_path`` (default nads/<arch>_NADs.npy), train
    ``arch`` on it and return the run record (also written to run.json)."""
    if arch not in NAD_ARCHITECTURES:
        raise UserError(f"architecture {arch} is not available in this checkout; choose one of "
                        f"{', '.join(NAD_ARCHITECTURES)}")
    nads_path = Path(nads_path or Path("nads") / f"{arch}_NADs.npy")
    nads = load_nads(nads_path)
    xtr, ytr, xte, yte = cifar10_tensors(data_dir, download)
    try:
        carriers, signs = class_carriers(nads, nad_index, 10, tuple(xtr.shape[1:]))
    except ValueError as e:
        raise UserError(f"{e}; pass another --nads file or a smaller --nad-index") from None
    poisoned_train = TensorDataset(poison(xtr, ytr, carriers, signs, eps), ytr)
    out_dir = Path(results_dir) / "poison_cifar10" / arch

    with locked(out_dir):  # one run at a time, checked writable before training
        config = TrainConfig(epochs=epochs, batch_size=128, max_lr=0.21, momentum=0.9,
                             weight_decay=5e-4, grad_clip=0.5, schedule="linear", seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_nad_model(arch, num_channels=3, num_classes=10)
            model = normalized(net, TransformLayer(CIFAR10_MEAN, CIFAR10_STD))
            print(f"training {arch} on CIFAR-10 poisoned along NADs {nad_index}, {nad_index + 1} "
                  f"(eps {eps}) for {epochs} epochs on {device}")
            train(model, poisoned_train, config, device, state_path=out_dir / "train_state.pt",
                  resume=resume)
        checkpoint = out_dir / "model.t7"
        record = {
            "experiment": "poison_cifar10", "arch": arch, "nads": str(nads_path),
            "nads_sha256": sha256(nads_path), "nad_index": nad_index, "eps": eps,
            "train_images": len(ytr), "test_images": len(yte), "training": asdict(config),
            "checkpoint": str(checkpoint),
            "accuracy_poisoned_train": evaluate(model, poisoned_train, device),
            "accuracy_clean_test": evaluate(model, TensorDataset(xte, yte), device),
            # the test images carrying their own class's carrier: how much the shortcut is used
            "accuracy_poisoned_test": evaluate(
                model, TensorDataset(poison(xte, yte, carriers, signs, eps), yte), device),
            "device": str(device), "versions": versions(), "git_commit": git_commit()}
        # model.t7 and run.json as one unit (run.json last, with the checkpoint's sha256)
        write_unit(out_dir, {"model.t7": weights_bytes(net)}, "run.json",
                   record)
    return record, out_dir
