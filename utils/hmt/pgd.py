"""Batched, untargeted L2 PGD on the cross-entropy loss, and the PGD accuracy of a model.

The model maps the representation it was trained on (images in [0, 1], or an orthogonal
transform of them such as the DCT flip) to logits; its normalisation layer is part of it, so
the attack differentiates through it. Perturbations stay in {||delta||_2 <= eps} ∩ {valid
images}: the valid-image box is [0, 1] in pixel space, a rotated box in a transformed
representation (see utils/hmt/dykstra.py). Every step is

    delta <- Proj(delta + step_size * g / ||g||_2),   g = d loss / d delta (per sample),

with Proj the exact projection (Dykstra, default) or the plain ball-then-box one.
"""
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .dykstra import IDENTITY, Transform, project_ball_box, project_plain, sample_norms

PROJECTIONS = ("dykstra", "plain")


class PGDResult(NamedTuple):
    """adversarial: [B, ...] x + delta; fooled: [B] bool, the model misclassifies it;
    residual: the largest Dykstra residual of the run (0 for the plain projection)."""
    adversarial: torch.Tensor
    fooled: torch.Tensor
    residual: float


def random_in_ball(shape, eps, generator=None, dtype=torch.float32):
    """[B, ...] perturbations drawn uniformly from the L2 ball of radius eps (on the CPU)."""
    d = torch.randn(shape, generator=generator, dtype=dtype)
    dim = d[0].numel()
    radius = eps * torch.rand(shape[0], generator=generator, dtype=dtype) ** (1.0 / dim)
    return d * (radius / sample_norms(d).clamp_min(1e-30)).view(-1, *([1] * (d.dim() - 1)))


@dataclass
class L2PGD:
    """The settings of an L2 PGD attack; ``attack(model, x, y) -> x_adv`` runs it (for
    adversarial training, utils.common.training.train: its random start uses torch's global
    random generator, seeded by the training).

    eps, step_size: L2 norms in the model's input space; steps: number of gradient steps;
    transform: the orthogonal map pixel -> representation that the images went through;
    random_start: start from a uniform point of the eps-ball (projected), else from x;
    projection: 'dykstra' (exact, onto the ball and the valid images) or 'plain' (onto the
    ball, then clip); tol, max_iter: Dykstra's."""
    eps: float
    steps: int
    step_size: float
    transform: Transform = IDENTITY
    random_start: bool = True
    projection: str = "dykstra"
    tol: float = 1e-6
    max_iter: int = 100

    def __call__(self, model, x, y):
        return pgd_l2(model, x, y, self).adversarial

    def describe(self):
        """The settings as a JSON-able dict (for run.json)."""
        return {"attack": "L2 PGD", "eps": self.eps, "steps": self.steps,
                "step_size": self.step_size, "transform": self.transform.name,
                "random_start": self.random_start, "projection": self.projection}


def pgd_l2(model, x, y, attack, early_stop=False, generator=None):
    """L2 PGD (the settings of ``attack``, an L2PGD) against ``model`` (eval mode) on images
    ``x`` [B, C, H, W] with labels ``y`` [B]. early_stop: freeze a sample as soon as it is
    misclassified (for evaluation). generator: a CPU torch.Generator for the random start."""
    if attack.projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {attack.projection!r}; use one of {PROJECTIONS}")
    x = x.detach()
    worst = 0.0

    def project(d):
        nonlocal worst
        if attack.projection == "plain":
            return project_plain(d, x, attack.eps, attack.transform)
        res = project_ball_box(d, x, attack.eps, attack.transform, attack.tol, attack.max_iter)
        worst = max(worst, float(res.residual.max()))
        return res.point

    per_sample = (-1, *([1] * (x.dim() - 1)))
    delta = torch.zeros_like(x)
    if attack.random_start:
        delta = project(random_in_ball(x.shape, attack.eps, generator, x.dtype).to(x.device))
    active = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for _ in range(attack.steps):
        delta.requires_grad_(True)
        logits = model(x + delta)
        loss = F.cross_entropy(logits, y, reduction="sum")
        grad, = torch.autograd.grad(loss, delta)
        delta = delta.detach()
        if early_stop:
            active &= logits.argmax(1) == y
        g = grad / sample_norms(grad).clamp_min(1e-12).view(per_sample)
        moved = project(delta + attack.step_size * g)
        delta = torch.where(active.view(per_sample), moved, delta)
    with torch.no_grad():
        fooled = model(x + delta).argmax(1) != y
    return PGDResult((x + delta).detach(), fooled, worst)


def madry_step_size(eps, steps):
    """2.5 * eps / steps: the path can cross the whole ball (2 eps) with room to spare."""
    return 2.5 * eps / steps


class PGDAccuracy(NamedTuple):
    """clean, pgd: accuracies (fractions); residual: largest Dykstra residual seen."""
    clean: float
    pgd: float
    residual: float


def pgd_accuracy(model, dataset, attack, restarts=0, device="cpu", batch_size=500, seed=0):
    """Clean and PGD accuracy of ``model`` on a TensorDataset of images and labels, under the
    L2PGD ``attack`` (its random_start is not used: see below).

    A sample counts as robust when it is classified correctly and none of 1 + ``restarts``
    PGD runs (the first from the clean image, the others from random points of the ball,
    drawn from ``seed``; each stops per sample at the first misclassified iterate) fools the
    model."""
    model.eval().to(device)
    gen = torch.Generator().manual_seed(seed)
    clean = robust = 0
    worst = 0.0
    for x, y in DataLoader(dataset, batch_size=batch_size):
        x, y = x.to(device), y.to(device)
        with torch.no_grad():
            ok = model(x).argmax(1) == y
        clean += int(ok.sum())
        for run in range(restarts + 1):
            idx = ok.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            res = pgd_l2(model, x[idx], y[idx], replace(attack, random_start=run > 0),
                         early_stop=True, generator=gen)
            ok[idx[res.fooled]] = False
            worst = max(worst, res.residual)
        robust += int(ok.sum())
    return PGDAccuracy(clean / len(dataset), robust / len(dataset), worst)
