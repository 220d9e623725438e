"""Euclidean projection of L2 perturbations onto {||delta||_2 <= eps} ∩ {valid images}.

An attack works in the *representation* the model reads: images in [0, 1], or an orthogonal
transform ``T`` of them (the DCT flip of the papers). The valid-image box [0, 1]^D lives in
pixel space, so in the representation it is the rotated box ``{v : T^-1(v) in [0, 1]^D}``.
The exact projection onto the ball ∩ rotated box has no closed form; it is computed with
Dykstra's alternating projection algorithm (:func:`dykstra`).

Because ``T`` is orthogonal, distances are the same in pixel space and in the representation,
and ``T^-1`` maps the ball around ``x`` onto the ball around ``T^-1(x)``: projecting in the
representation is the same as mapping to pixel space, projecting onto ball ∩ axis-aligned box
there, and mapping back. :func:`project_ball_box` does that, so every Dykstra iteration is a few
elementwise operations and the transform is applied twice per projection, not twice per
iteration. (The tests check the result against a QP solved directly in the representation.)

Shapes: ``x``, ``delta`` are [B, ...] (e.g. [B, C, H, W]); norms are per sample, over all
axes but the first; ``eps`` is in the units of the representation (= pixel units, since T is
orthogonal).
"""
from typing import Callable, NamedTuple

import torch

from ..common.dct import flip


class Transform(NamedTuple):
    """An orthogonal transform between pixel space and the model's representation.

    forward: pixel images [B, ...] -> representation [B, ...]; inverse: the way back."""
    name: str
    forward: Callable
    inverse: Callable


def _same(x):
    return x


IDENTITY = Transform("identity", _same, _same)
FLIP = Transform("flip", flip, flip)  # the DCT flip is its own inverse


class DykstraResult(NamedTuple):
    """point: [B, ...] the last iterate projected onto the second set;
    residual: [B] max(||a_k - b_k||, ||b_k - b_{k-1}||) at the last iteration (a: the
    iterate in the first set, b: in the second), how far from converged it stopped;
    iterations: how many iterations ran."""
    point: torch.Tensor
    residual: torch.Tensor
    iterations: int


def sample_norms(v):
    """Per-sample L2 norm of ``v`` [B, ...] -> [B]."""
    return v.flatten(1).norm(dim=1)


def _per_sample(scale, like):
    return scale.view(-1, *([1] * (like.dim() - 1)))


def project_ball(delta, eps):
    """Projection of ``delta`` [B, ...] onto the ball {||d||_2 <= eps} (per sample)."""
    norms = sample_norms(delta)
    scale = torch.clamp(eps / norms.clamp_min(1e-30), max=1.0)
    return delta * _per_sample(scale, delta)


def dykstra(z, project_a, project_b, tol=1e-6, max_iter=100):
    """Dykstra's algorithm: the Euclidean projection of ``z`` [B, ...] onto A ∩ B, given the
    projections onto two closed convex sets A and B (batched functions [B, ...] -> [B, ...]).

    Unlike plain alternating projections, Dykstra keeps one correction term per set (what the
    last projection onto that set removed) and adds it back before projecting again; this makes
    the iterates converge to the *nearest* point of A ∩ B, not just to some point of it.
    Stops when every sample's residual is <= ``tol`` or after ``max_iter`` iterations."""
    if max_iter < 1:
        raise ValueError("dykstra needs max_iter >= 1")
    b = z
    p = torch.zeros_like(z)
    q = torch.zeros_like(z)
    for k in range(1, max_iter + 1):
        a = project_a(b + p)
        p = b + p - a
        b_next = project_b(a + q)
        q = a + q - b_next
        residual = torch.maximum(sample_norms(a - b_next), sample_norms(b_next - b))
        b = b_next
        if residual.max() <= tol:
            break
    return DykstraResult(b, residual, k)


def project_ball_box(delta, x, eps, transform=IDENTITY, tol=1e-6, max_iter=100):
    """Exact projection (with Dykstra) of ``delta`` [B, ...] onto the perturbations that keep
    ``x + delta`` a valid image: {||delta||_2 <= eps} ∩ {T^-1(x + delta) in [0, 1]^D}.

    x: [B, ...] valid images in the representation (``T^-1(x)`` in [0, 1]); eps: float.
    Returns a DykstraResult whose point is the projected delta [B, ...]. Whatever the number of
    iterations, the point is feasible: the last box iterate is shrunk towards x into the ball,
    which keeps it in the box because the box is convex and contains x."""
    px = transform.inverse(x)
    pz = transform.inverse(x + delta)

    def ball(p):
        return px + project_ball(p - px, eps)

    def box(p):
        return p.clamp(0.0, 1.0)

    res = dykstra(pz, ball, box, tol, max_iter)
    return DykstraResult(transform.forward(ball(res.point)) - x, res.residual, res.iterations)


def project_plain(delta, x, eps, transform=IDENTITY):
    """The projection used by most PGD code: onto the ball, then onto the (rotated) box.

    Always feasible (projecting onto the box cannot move a point away from x, which lies in
    the box), but it is the exact Euclidean projection only when one of the two steps already
    lands in the other set: delta inside the ball, or its ball projection inside the box."""
    d = project_ball(delta, eps)
    return transform.forward(transform.inverse(x + d).clamp(0.0, 1.0)) - x
