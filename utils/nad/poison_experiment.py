"""The NAD poisoning experiments: CIFAR-10 (the paper's, ``scripts.poison_cifar``) and MNIST
(ours, ``scripts.poison_mnist``, at the end of this module). Poison the training set along NADs
(utils.nad.poison), train a network on it, test it on the clean test set.

Training as the paper: 50 epochs of SGD, max lr 0.21 decaying linearly to 0, momentum 0.9,
weight decay 5e-4, batch 128, gradient clipping 0.5, cross-entropy, the CIFAR-10 normalisation
layer in front of the network. Results in ``<results_dir>/poison_cifar10/<Arch>/``: model.t7
(the bare network) and run.json, written as a unit (utils.common.run_folder.write_unit:
run.json last, with the checkpoint's sha256), and train_state.pt (to resume an interrupted
training). A finished run there with other settings is not replaced.
"""
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models import TransformLayer, build_nad_model, normalized

from ..common.checkpoints import weights_bytes
from ..common.data import (CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD, load_cifar10,
                           load_mnist)
from ..common.errors import UserError
from ..common.io import sha256
from ..common.provenance import git_commit, versions
from ..common.run_folder import locked, refuse_other_settings, write_unit
from ..common.tables import ResultTable, median_range
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


# ---------------------------------------------------------------------------------- MNIST
# Our MNIST counterpart of the CIFAR-10 experiment (docs/nads.md states the design): the
# bundled digits padded to 32x32, the NAD LeNet with 10 outputs, the Hold me tight! training.

@dataclass
class MNISTPoisonConfig:
    """One poisoned training on MNIST digits. carrier: 'nad' (the NADs ``nad_index`` ..
    ``nad_index + 4`` of the file ``nads``: classes 2k and 2k + 1 share NAD_{index + k}, with
    the signs -1 and +1) or 'random' (5 random orthonormal directions instead, drawn from
    ``nad_index``: the control); eps: the carrier coefficient's magnitude; epochs and seed of
    the Hold me tight! training (SGD 0.9, weight decay 5e-4, triangular lr 0.21, clipping 0.5)."""
    carrier: str = "nad"
    nad_index: int = 0
    nads: str = "nads/LeNet_NADs.npy"
    eps: float = 0.05
    epochs: int = 30
    seed: int = 0
    data: str = "sample"
    data_dir: str = "data"


def padded_mnist(source="sample", data_dir="data"):
    """(train images, train labels, test images, test labels): MNIST digits zero-padded to
    [N, 1, 32, 32] in [0, 1], the input of the NAD paper's networks."""
    data = load_mnist(source, data_dir)
    pad = lambda x: torch.nn.functional.pad(x, (2, 2, 2, 2))  # noqa: E731
    return (pad(data.train.tensors[0]), data.train.tensors[1], pad(data.test.tensors[0]),
            data.test.tensors[1])


def mnist_carriers(config):
    """Carriers [10, 1, 32, 32] and signs [10] of ``config`` (utils.nad.poison)."""
    if config.carrier == "nad":
        nads = load_nads(config.nads)
    elif config.carrier == "random":
        g = torch.Generator().manual_seed(1_000_003 + config.nad_index)
        q, _ = torch.linalg.qr(torch.randn(1024, 5, generator=g, dtype=torch.float64))
        nads, config = q.T.float().numpy(), replace(config, nad_index=0)
    else:
        raise UserError(f"unknown carrier {config.carrier!r}; use nad or random")
    try:
        return class_carriers(nads, config.nad_index, 10, (1, 32, 32))
    except ValueError as e:
        raise UserError(f"{e}; give a smaller NAD index") from None


def mnist_poison_run(config, device="cpu"):
    """Train the NAD LeNet on digits poisoned along the carriers of ``config`` and measure it.
    Returns a dict of fractions: train_accuracy (poisoned train set), clean_accuracy (clean test
    digits), own_accuracy (test digits carrying their own class's carrier), swapped_accuracy
    (test digits of class t carrying the carrier of t xor 1, the class that shares its
    direction with the opposite sign), follows_carrier (the share of those classified t xor 1),
    and seconds."""
    started = time.perf_counter()
    xtr, ytr, xte, yte = padded_mnist(config.data, config.data_dir)
    carriers, signs = mnist_carriers(config)
    poisoned = TensorDataset(poison(xtr, ytr, carriers, signs, config.eps), ytr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = build_nad_model("LeNet", num_channels=1, num_classes=10)
    model = normalized(net, TransformLayer(MNIST_MEAN, MNIST_STD))
    train(model, poisoned, TrainConfig(epochs=config.epochs, seed=config.seed), device)
    partner = yte ^ 1
    swapped = poison(xte, partner, carriers, signs, config.eps)
    with torch.no_grad():
        follows = (model(swapped.to(device)).argmax(1).cpu() == partner).float().mean().item()
    return {"train_accuracy": evaluate(model, poisoned, device),
            "clean_accuracy": evaluate(model, TensorDataset(xte, yte), device),
            "own_accuracy": evaluate(model, TensorDataset(
                poison(xte, yte, carriers, signs, config.eps), yte), device),
            "swapped_accuracy": evaluate(model, TensorDataset(swapped, yte), device),
            "follows_carrier": follows, "seconds": round(time.perf_counter() - started, 1)}


MNIST_KEYS = ["carrier", "nad_index", "seed"]
MNIST_VALUES = ["train_accuracy", "clean_accuracy", "own_accuracy", "swapped_accuracy",
                "follows_carrier", "seconds"]


def mnist_poison_sweep(base, cells, csv_path, device="cpu", progress=print):
    """:func:`mnist_poison_run` for every (carrier, nad_index, seed) of ``cells`` with the other
    settings of ``base``, one CSV row each in ``csv_path`` (resumable: utils.common.tables).
    Returns the rows (dicts of strings)."""
    settings = {**asdict(base), "nads_sha256": sha256(base.nads)}
    for key in MNIST_KEYS:
        settings.pop(key)
    table = ResultTable(csv_path, MNIST_KEYS, MNIST_VALUES, settings,
                        lambda r: all(0 <= float(r[c]) <= 1 for c in MNIST_VALUES[:-1]), "runs")
    for carrier, index, seed in table.todo(cells, progress=progress):
        config = replace(base, carrier=carrier, nad_index=index, seed=seed)
        mnist_carriers(config)  # a bad index stops the sweep before its training
        result = mnist_poison_run(config, device)
        table.add([{"carrier": carrier, "nad_index": index, "seed": seed, **result}])
        progress(f"{carrier} {index} seed {seed}: clean test accuracy "
                 f"{100 * result['clean_accuracy']:.2f}%, with the other class's carrier "
                 f"{100 * result['swapped_accuracy']:.2f}% ({100 * result['follows_carrier']:.1f}%"
                 f" follow the carrier) ({result['seconds']:.0f} s)")
    return table.as_strings()


def mnist_poison_summary(rows):
    """One line per carrier: the accuracies as median (min-max) over the seeds, in %."""
    groups = {}
    for r in rows:
        groups.setdefault((r["carrier"], int(r["nad_index"])), []).append(r)
    lines = []
    for (carrier, index), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "nad",
                                                                         kv[0][1])):
        def spread(c):
            return median_range(100 * np.array([float(r[c]) for r in rs]))
        name = f"NAD_{index}" if carrier == "nad" else f"random (draw {index})"
        lines.append(f"{name}, {len(rs)} seed(s): clean test {spread('clean_accuracy')}%, own "
                     f"carrier {spread('own_accuracy')}%, other class's carrier "
                     f"{spread('swapped_accuracy')}% (following it {spread('follows_carrier')}%)")
    return lines
