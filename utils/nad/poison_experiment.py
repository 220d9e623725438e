"""The NAD poisoning experiment on CIFAR-10 behind ``scripts.poison_cifar``: poison the training
set along NADs (utils.nad.poison), train a network on it, test it on the clean test set.

Training as the paper: 50 epochs of SGD, max lr 0.21 decaying linearly to 0, momentum 0.9,
weight decay 5e-4, batch 128, gradient clipping 0.5, cross-entropy, the CIFAR-10 normalisation
layer in front of the network. Results in ``<results_dir>/poison_cifar10/<Arch>/``: model.t7
(the bare network) and run.json, written as a unit (utils.common.run_folder.write_unit:
run.json last, with the checkpoint's sha256), and train_state.pt (to resume an interrupted
training). A finished run there with other settings is not replaced.
"""
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import TensorDataset

from models import TransformLayer, build_nad_model, normalized

from ..common.checkpoints import weights_bytes
from ..common.data import CIFAR10_MEAN, CIFAR10_STD, load_cifar10
from ..common.errors import UserError
from ..common.io import sha256
from ..common.provenance import git_commit, versions
from ..common.run_folder import locked, refuse_other_settings, write_unit
from ..common.training import TrainConfig, evaluate, train
from .estimation import check_architecture
from .linear_data import load_nads
from .poison import class_carriers, poison


@dataclass
class PoisonConfig:
    """The CIFAR-10 poisoning of scripts.poison_cifar (options of the same names): carriers
    along the NADs ``nad_index`` and ``nad_index + 1`` of the file ``nads`` (default
    nads/<arch>_NADs.npy), set to +-``eps`` in every training image; ``arch`` trained for
    ``epochs`` from ``seed``."""
    arch: str = "ResNet18"
    nads: Optional[str] = None
    nad_index: int = 0
    eps: float = 0.05
    epochs: int = 50
    seed: int = 0
    data_dir: str = "data"
    download: bool = False
    device: str = "cpu"
    results_dir: str = "Results"
    resume: bool = False

    def training(self):
        return TrainConfig(epochs=self.epochs, batch_size=128, max_lr=0.21, momentum=0.9,
                           weight_decay=5e-4, grad_clip=0.5, schedule="linear", seed=self.seed)


def cifar10_tensors(data_dir, download=False):
    """CIFAR-10 under ``data_dir`` as (train_images, train_labels, test_images, test_labels):
    float32 [N, 3, 32, 32] in [0, 1] and int64 [N] (utils.common.data.load_cifar10)."""
    data = load_cifar10("full", data_dir, download)
    return (*data.train.tensors, *data.test.tensors)


def run_poison_experiment(config):
    """Poison CIFAR-10 along the NADs of ``config`` (a PoisonConfig), train on it and return
    (the run record, also written to run.json, and the output folder)."""
    check_architecture(config.arch)
    nads_path = Path(config.nads or Path("nads") / f"{config.arch}_NADs.npy")
    nads = load_nads(nads_path)
    xtr, ytr, xte, yte = cifar10_tensors(config.data_dir, config.download)
    try:
        carriers, signs = class_carriers(nads, config.nad_index, 10, tuple(xtr.shape[1:]))
    except ValueError as e:
        raise UserError(f"{e}; give another NAD file or a smaller NAD index") from None
    poisoned_train = TensorDataset(poison(xtr, ytr, carriers, signs, config.eps), ytr)
    out_dir = Path(config.results_dir) / "poison_cifar10" / config.arch
    training = config.training()
    settings = {"arch": config.arch, "nads_sha256": sha256(nads_path),
                "nad_index": config.nad_index, "eps": config.eps, "training": asdict(training)}

    with locked(out_dir):  # one run at a time, checked writable before training
        refuse_other_settings(out_dir, "run.json", settings)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            net = build_nad_model(config.arch, num_channels=3, num_classes=10)
            model = normalized(net, TransformLayer(CIFAR10_MEAN, CIFAR10_STD))
            print(f"training {config.arch} on CIFAR-10 poisoned along NADs {config.nad_index}, "
                  f"{config.nad_index + 1} (eps {config.eps}) for {config.epochs} epochs on "
                  f"{config.device}")
            train(model, poisoned_train, training, config.device,
                  state_path=out_dir / "train_state.pt", resume=config.resume)
        record = {
            "experiment": "poison_cifar10", "settings": settings, "arch": config.arch,
            "nads": str(nads_path), "nads_sha256": settings["nads_sha256"],
            "nad_index": config.nad_index, "eps": config.eps, "train_images": len(ytr),
            "test_images": len(yte), "training": asdict(training),
            "checkpoint": str(out_dir / "model.t7"),
            "accuracy_poisoned_train": evaluate(model, poisoned_train, config.device),
            "accuracy_clean_test": evaluate(model, TensorDataset(xte, yte), config.device),
            # the test images carrying their own class's carrier: how much the shortcut is used
            "accuracy_poisoned_test": evaluate(
                model, TensorDataset(poison(xte, yte, carriers, signs, config.eps), yte),
                config.device),
            "device": str(config.device), "versions": versions(), "git_commit": git_commit()}
        # model.t7 and run.json as one unit (run.json last, with the checkpoint's sha256)
        write_unit(out_dir, {"model.t7": weights_bytes(net)}, "run.json", record)
    return record, out_dir
