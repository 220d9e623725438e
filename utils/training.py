"""Training and evaluation loops of the papers.

SGD with momentum and weight decay, a learning rate updated every batch (triangular: 0 -> max
at 2/5 of the epochs -> 0, or linear: max -> 0), cross-entropy, gradient-norm clipping.
A resume state (model, optimiser, epoch) is written atomically after every epoch.
"""
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from .errors import UserError
from .io import save_torch


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    max_lr: float = 0.21
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 0.5
    schedule: str = "triangular"  # or "linear"
    seed: int = 0

    def lr_at(self, t):
        """Learning rate at fractional epoch ``t`` in [0, epochs]."""
        if self.schedule == "triangular":
            return float(np.interp(t, [0, self.epochs * 2 / 5, self.epochs], [0, self.max_lr, 0]))
        if self.schedule == "linear":
            return float(np.interp(t, [0, self.epochs], [self.max_lr, 0]))
        raise ValueError(f"unknown schedule {self.schedule!r}")


def pick_device(name="auto"):
    """'auto' -> CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name} was asked for but CUDA is not available; use --device cpu")
    return torch.device(name)


@torch.no_grad()
def evaluate(model, dataset, device, batch_size=500):
    """Top-1 accuracy (a fraction in [0, 1]) of ``model`` on a TensorDataset-like dataset."""
    model.eval().to(device)
    correct = 0
    for x, y in DataLoader(dataset, batch_size=batch_size):
        correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    return correct / len(dataset)


def train(model, dataset, config, device, state_path=None, resume=False, attack=None):
    """Train ``model`` (images in [0, 1] -> logits) on ``dataset`` in place and return it.

    state_path: where the resume state is written after every epoch (None: nowhere).
    resume: continue from ``state_path`` if it exists.
    attack: optional ``attack(model, x, y) -> x_adv`` applied to every batch (adversarial
    training); the model is in eval mode while it runs."""
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    start = 0
    if resume and state_path is not None and Path(state_path).is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state.get("config") != asdict(config):
            raise UserError(f"the resume state {state_path} was made with another training "
                            f"configuration; delete it or train without --resume")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = state["epoch"]
        print(f"resuming training from epoch {start} of {config.epochs} ({state_path})")
    steps_per_epoch = -(-len(dataset) // config.batch_size)
    for epoch in range(start, config.epochs):
        # the order of each epoch depends only on (seed, epoch), so a resumed run is identical
        order = torch.Generator().manual_seed(config.seed * 100003 + epoch)
        loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=order)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        correct = seen = 0
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device), y.to(device)
            if attack is not None:
                model.eval()
                x = attack(model, x, y).detach()
            model.train()
            for group in opt.param_groups:
                group["lr"] = config.lr_at(epoch + i / steps_per_epoch)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / seen:.3f}")
        if state_path is not None:
            save_torch(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                    "epoch": epoch + 1, "config": asdict(config)})
    model.eval()
    return model
