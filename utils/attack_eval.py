"""Clean and L2 PGD accuracy of a checkpoint on the test split of a dataset (scripts/attack_eval).
"""
import numpy as np
import torch
from torch.utils.data import TensorDataset

from models import build_model, normalized

from .adversarial import pgd_accuracy
from .checkpoints import load_weights
from .errors import UserError
from .experiment import LOADERS
from .projection import FLIP, IDENTITY
from .training import pick_device


def evaluate_checkpoint(dataset, checkpoint, model_name, flipped=False, eps=2.0, steps=100,
                        step_size=None, restarts=2, data="auto", data_dir="data",
                        download=False, device="auto", samples=None, seed=0, batch_size=500):
    """Load ``checkpoint`` into ``model_name`` for ``dataset`` (a key of LOADERS) and measure
    its clean and PGD accuracy (utils.adversarial.pgd_accuracy) on the test split, or on
    ``samples`` test images drawn with ``seed``. Returns (PGDAccuracy, description dict).

    Defaults (100 steps of eps / 4, 2 random restarts): on 400 test digits and the standard
    MNIST LeNet, longer paths were clearly stronger than the 2.5 * eps / steps rule used for
    training (50 x 0.1: 22.3 % PGD accuracy; 100 x 0.25: 15.3 %; 100 x 0.5: 13.8 %; 100 x 0.25
    with 2 restarts: 12.3 %)."""
    if dataset not in LOADERS:
        raise UserError(f"unknown dataset {dataset!r}; use one of {', '.join(sorted(LOADERS))}")
    device = pick_device(device)
    images = LOADERS[dataset](data, data_dir, download, transform="flipped" if flipped else None)
    try:
        net = build_model(dataset, model_name)
    except ValueError as e:
        raise UserError(str(e)) from None
    load_weights(net, checkpoint, model_name)
    model = normalized(net, images.normalization).to(device).eval()
    test = images.test
    if samples is not None:
        if samples > len(test):
            raise UserError(f"--samples {samples} is more than the {len(test)} test images; "
                            f"ask for at most {len(test)}")
        idx = torch.as_tensor(np.random.default_rng(seed).choice(len(test), samples, False))
        test = TensorDataset(*(t[idx] for t in test.tensors))
    step_size = step_size or eps / 4
    result = pgd_accuracy(model, test, eps, steps, step_size, FLIP if flipped else IDENTITY,
                          restarts, device, batch_size, seed)
    info = {"data": images.source, "data_name": images.name, "test_images": len(test),
            "attack": f"L2 PGD eps {eps}, {steps} steps of {step_size:.4g}, "
                      f"1 run from the clean image + {restarts} random restarts, "
                      f"exact (Dykstra) projection"}
    return result, info
