"""Clean and L2 PGD accuracy of a checkpoint on the test split of a dataset (scripts/attack_eval).
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models import build_model, normalized

from ..common.checkpoints import check_responsive, load_weights
from ..common.errors import UserError
from ..common.training import pick_device
from .dykstra import FLIP, IDENTITY
from .experiment import LOADERS
from .pgd import L2PGD, pgd_accuracy


@dataclass
class AttackEvalConfig:
    """The evaluation of scripts.attack_eval (options of the same names).

    dataset: a key of LOADERS; checkpoint: the weights of ``model``; flipped: the model reads
    DCT-flipped images; eps, steps, step_size (None: eps / 4), restarts: the L2 PGD attack;
    samples: a seeded subset of the test split (None: all of it); seed: of the subset and the
    random restarts.

    Defaults (100 steps of eps / 4, 2 random restarts): on 400 test digits and the standard
    MNIST LeNet, longer paths were clearly stronger than the 2.5 * eps / steps rule used for
    training (docs/margins.md, robust models)."""
    checkpoint: str
    dataset: str = "MNIST"
    model: str = "LeNet"
    flipped: bool = False
    eps: float = 2.0
    steps: int = 100
    step_size: Optional[float] = None
    restarts: int = 2
    data: str = "auto"
    data_dir: str = "data"
    download: bool = False
    device: str = "auto"
    samples: Optional[int] = None
    seed: int = 0
    batch_size: int = 500


def evaluate_checkpoint(config):
    """Load ``config.checkpoint`` into ``config.model`` for ``config.dataset`` and measure its
    clean and PGD accuracy (utils.hmt.pgd.pgd_accuracy) on the test split, or on
    ``config.samples`` test images drawn with ``config.seed``. Returns (PGDAccuracy,
    description dict)."""
    if config.dataset not in LOADERS:
        raise UserError(f"unknown dataset {config.dataset!r}; use one of "
                        f"{', '.join(sorted(LOADERS))}")
    device = pick_device(config.device)
    images = LOADERS[config.dataset](config.data, config.data_dir, config.download,
                                     transform="flipped" if config.flipped else None)
    try:
        net = build_model(config.dataset, config.model)
    except ValueError as e:
        raise UserError(str(e)) from None
    load_weights(net, config.checkpoint, config.model)
    model = normalized(net, images.normalization).to(device).eval()
    test = images.test
    if config.samples is not None:
        if config.samples > len(test):
            raise UserError(f"`samples` {config.samples} is more than the {len(test)} test "
                            f"images; ask for at most {len(test)}")
        pick = np.random.default_rng(config.seed).choice(len(test), config.samples, False)
        idx = torch.as_tensor(pick)
        test = TensorDataset(*(t[idx] for t in test.tensors))
    check_responsive(model, test.tensors[0][:config.batch_size].to(device),
                     f"{config.model} ({config.checkpoint})")
    step_size = config.step_size or config.eps / 4
    attack = L2PGD(config.eps, config.steps, step_size, FLIP if config.flipped else IDENTITY)
    result = pgd_accuracy(model, test, attack, config.restarts, device, config.batch_size,
                          config.seed)
    info = {"data": images.source, "data_name": images.name, "test_images": len(test),
            "attack": f"L2 PGD eps {config.eps}, {config.steps} steps of {step_size:.4g}, "
                      f"1 run from the clean image + {config.restarts} random restarts, "
                      f"exact (Dykstra) projection"}
    return result, info
