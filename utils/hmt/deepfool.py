"""Subspace-constrained DeepFool (Moosavi-Dezfooli et al. 2016; Ortiz-Jimenez et al. 2020),
batched: every sample of a batch moves at once and stops when its label changes.

Per sample and step, for every class k among the top ``num_classes`` of the clean prediction
(k != original), ``w_k = grad(f_k - f_orig)`` and ``distance_k = |f_k - f_orig| / ||P w_k||``,
where P projects onto the subspace. The closest class gives the step
``r_i = max(distance, 1e-4) * P w / ||P w||``; ``r`` accumulates the steps and the label is
checked at ``x + (1 + overshoot) r``. The returned perturbation is ``(1 + overshoot) r``.

As in the authors' ``subspace_deepfool`` (LTS4/hold-me-tight), the class gradients of every
step are taken at ``x + r``, the steps so far *without* the overshoot (their ``pert_image``,
summed step by step in the same order); the overshoot enters only the label check and the
result. ``gradients_at_overshoot=True`` takes them at ``x + (1 + overshoot) r`` instead, the
convention of the 2016 DeepFool code and of torchattacks: another iteration, whose margins
differ from the original's by up to a few percent.

``stem``: optionally a module of the model whose output is an affine function of the model's
input (the first convolution, behind the normalisation layer). Gradients are then taken with
respect to the stem's output ``h`` only, and ``P w = B A^T dh`` with ``B`` [D, k] the subspace's
orthonormal basis and ``A = dh/dz`` [S, k] the stem's Jacobian along it (measured once by
pushing the basis images through the model, stopping at the stem). This is the same step in
exact arithmetic; it skips the backward pass through the stem, which for LeNet's one-channel
first convolution is most of the cost of a step on a CPU (see benchmarks/deepfool.py).

``start``: the first step of every subspace is taken at the clean images, so its class
gradients do not depend on the subspace. :func:`first_step` computes them once; passing its
result to :func:`deepfool` for each subspace of the same images gives the same result as
computing them again (utils/hmt/margins.py does this).
"""
from dataclasses import dataclass

import torch


@dataclass
class DeepFoolResult:
    """perturbation [B, C, H, W] (already multiplied by 1 + overshoot), iterations [B] (steps
    taken; ``max_iter`` means it never crossed), original and final labels [B]."""
    perturbation: torch.Tensor
    iterations: torch.Tensor
    original_label: torch.Tensor
    final_label: torch.Tensor

    @property
    def margin(self):
        """L2 norm of the perturbation, [B]."""
        return self.perturbation.flatten(1).norm(dim=1)


class _StemReached(Exception):
    """Raised by a hook on the stem to end a forward pass that is only there for the stem's
    output."""


def _capture(module, stop=False):
    """A forward hook that keeps ``module``'s outputs in a list: (list, handle). ``stop``: the
    hook also ends the forward pass there (raises :class:`_StemReached`)."""
    outputs = []

    def keep(m, i, o):
        outputs.append(o)
        if stop:
            raise _StemReached  # the rest of the model is not needed
    return outputs, module.register_forward_hook(keep)


def stem_jacobian(model, stem, basis, shape):
    """A [k, S]: how the output of ``stem`` (S values per input) moves along each column of
    ``basis`` [D, k] (orthonormal basis images of the input of shape ``shape``). Raises
    ValueError when the stem's output is not an affine function of the input."""
    k = basis.shape[1]
    z = torch.randn(k, generator=torch.Generator().manual_seed(0), dtype=basis.dtype)
    probe = torch.cat([basis.new_zeros(1, basis.shape[0]), basis.T,
                       (basis @ z.to(basis.device))[None]]).view(k + 2, *shape)
    outputs, handle = _capture(stem, stop=True)
    try:
        with torch.no_grad():
            model(probe)
    except _StemReached:
        pass
    finally:
        handle.remove()
    if not outputs:
        raise ValueError("the stem is not called by the model's forward pass")
    h = outputs[0].flatten(1)
    jac = h[1:k + 1] - h[:1]
    predicted = h[0] + z.to(h) @ jac
    if not torch.allclose(h[k + 1], predicted, rtol=1e-3, atol=1e-4 * h.abs().max().item()):
        raise ValueError("the stem's output is not an affine function of the model's input")
    return jac


def _gradients(model, x, classes, stem=None):
    """f_k - f_orig [b, K-1] at x for the K classes [b, K] of each sample (column 0 is the
    original class), and their gradients, class-major [K-1, b, ...], with respect to x or, with
    a ``stem``, to the stem's output. Samples do not interact in eval mode, so each class is one
    backward pass over the whole batch."""
    x = x.detach().requires_grad_(True)
    if stem is None:
        logits, wrt = model(x), x
    else:
        outputs, handle = _capture(stem)
        try:
            logits = model(x)
        finally:
            handle.remove()
        if len(outputs) != 1:
            raise ValueError("the stem must be called exactly once per forward pass")
        wrt = outputs[0]
    f = logits.gather(1, classes)
    diffs = f[:, 1:] - f[:, :1]
    m = diffs.shape[1]
    if stem is None:
        # one class at a time: a vmapped backward would hold the K-1 classes' intermediate
        # gradients at once, K-1 times the memory on large models (ImageNet's ResNet50)
        grads = torch.stack([torch.autograd.grad(diffs[:, j].sum(), x, retain_graph=j < m - 1)[0]
                             for j in range(m)])
    else:
        # all K-1 backward passes in one vmapped call: row j of the batched grad_outputs
        # selects f_j - f_orig of every sample
        eye = torch.eye(m, dtype=diffs.dtype, device=diffs.device)
        select = eye[:, None].expand(m, *diffs.shape)
        (grads,) = torch.autograd.grad(diffs, wrt, grad_outputs=select, is_grads_batched=True)
    return diffs.detach(), grads


def _coordinates(model, subspace, stem, x0):
    """(to_coords, to_image) of a DeepFool run on images ``x0`` [B, C, H, W]: to_coords maps
    class-major gradients [K-1, b, ...] (with respect to the input, or to the stem's output) to
    their projections P w in orthonormal coordinates [b, K-1, m]; to_image maps coordinates
    [b, m] back to perturbations [b, C, H, W]."""
    shape = x0.shape[1:]
    if stem is None:
        project = subspace.project if subspace is not None else (lambda t: t)
        return (lambda w: project(w).flatten(2).transpose(0, 1),
                lambda v: v.view(-1, *shape))
    basis = (subspace.basis(x0.dtype) if subspace is not None
             else torch.eye(shape.numel(), dtype=x0.dtype)).to(x0.device)
    jac = stem_jacobian(model, stem, basis, shape)
    return (lambda g: (g.flatten(2) @ jac.T).transpose(0, 1),
            lambda v: (v @ basis.T).view(-1, *shape))


@dataclass
class FirstStep:
    """DeepFool's first step at clean images [B, ...], the same for every subspace:
    ``classes`` [B, K] (the K top classes of the clean logits, column 0 the label), ``diffs``
    [B, K-1] (f_k - f_label) and ``grads`` [K-1, B, ...] (class-major), their gradients with
    respect to the input, or to the output of ``stem`` when there is one."""
    classes: torch.Tensor
    diffs: torch.Tensor
    grads: torch.Tensor
    stem: object = None


def first_step(model, images, num_classes=10, stem=None):
    """The :class:`FirstStep` of ``images`` [B, C, H, W] (see :func:`deepfool`)."""
    with torch.no_grad():
        clean = model(images)
    classes = clean.argsort(dim=1, descending=True)[:, :min(num_classes, clean.shape[1])]
    diffs, grads = _gradients(model, images, classes, stem)
    return FirstStep(classes, diffs, grads, stem)


def deepfool(model, images, subspace=None, num_classes=10, overshoot=0.02, max_iter=100,
             stem=None, start=None, gradients_at_overshoot=False):
    """Batched DeepFool of ``images`` [B, C, H, W] against ``model`` (in eval mode, mapping
    images to logits), restricted to ``subspace`` (anything with ``project(x)`` over the last
    three axes, e.g. a :class:`utils.hmt.subspaces.DCTBlock`; None for the whole input space).
    ``stem``: see the module docstring (needs ``subspace.basis()``).
    ``start``: :func:`first_step` of the same images, model, ``num_classes`` and ``stem``
    (computed here when None); its classes are the ones used.
    ``gradients_at_overshoot``: see the module docstring (False: the original's iteration)."""
    x0 = images.detach()
    if start is None:
        start = first_step(model, x0, num_classes, stem)
    elif start.stem is not stem or len(start.classes) != len(x0):
        raise ValueError("`start` was computed for other images or with another stem")
    to_coords, to_image = _coordinates(model, subspace, stem, x0)
    classes = start.classes
    label = classes[:, 0]

    r = torch.zeros_like(x0)
    # the original's pert_image: x0 plus the steps, added one at a time (the same rounding)
    moved = x0.clone()
    iterations = torch.full_like(label, max_iter)
    final = label.clone()
    active = torch.arange(len(x0), device=x0.device)
    for step in range(max_iter + 1):
        if step > 0:
            # has the last move carried a sample across? A forward pass without gradients
            # settles it, so that the gradients are only computed for samples still moving
            # (at step 0 every sample is its clean image, still labelled `label`)
            x = x0[active] + (1 + overshoot) * r[active]
            with torch.no_grad():
                pred = model(x).argmax(dim=1)
            crossed = pred != label[active]
            done = active[crossed]
            iterations[done], final[done] = step, pred[crossed]
            active = active[~crossed]
            x = x[~crossed] if gradients_at_overshoot else moved[active]
        if step == max_iter or len(active) == 0:
            break
        diffs, grads = ((start.diffs, start.grads) if step == 0 else
                        _gradients(model, x, classes[active], stem))
        # pw [b, K-1, m]: the projected gradients P w_k in orthonormal coordinates (the
        # gradients are class-major: one contiguous block per class, as the backward passes
        # produce them)
        pw = to_coords(grads)

        norms = pw.norm(dim=2)
        distance = diffs.abs() / norms
        distance = torch.where(norms > 0, distance, torch.full_like(distance, float("inf")))
        closest = distance.argmin(dim=1)
        rows = torch.arange(len(active), device=x0.device)
        direction = to_image(pw[rows, closest] / norms[rows, closest].view(-1, 1))
        size = distance[rows, closest].clamp(min=1e-4).view(-1, 1, 1, 1)
        # a gradient with no component in the subspace gives no direction: stay put
        step_ = torch.where(torch.isfinite(size), size * direction, torch.zeros_like(direction))
        r[active] = r[active] + step_
        moved[active] = moved[active] + step_
    return DeepFoolResult((1 + overshoot) * r, iterations, label, final)
