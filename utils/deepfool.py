"""Subspace-constrained DeepFool (Moosavi-Dezfooli et al. 2016; Ortiz-Jimenez et al. 2020),
batched: every sample of a batch moves at once and stops when its label changes.

Per sample and step, for every class k among the top ``num_classes`` of the clean prediction
(k != original), ``w_k = grad(f_k - f_orig)`` and ``distance_k = |f_k - f_orig| / ||P w_k||``,
where P projects onto the subspace. The closest class gives the step
``r_i = max(distance, 1e-4) * P w / ||P w||``; ``r`` accumulates the steps and the label is
checked at ``x + (1 + overshoot) r``. The returned perturbation is ``(1 + overshoot) r``.
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


def _class_gradients(model, x, classes):
    """Logits [b, n] at x and the gradients [b, K-1, C, H, W] of f_k - f_orig for the K
    classes [b, K] of each sample (column 0 is the original class). One backward per class,
    each over the whole batch: samples do not interact in eval mode."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    f = logits.gather(1, classes)
    diffs = f[:, 1:] - f[:, :1]
    grads = [torch.autograd.grad(diffs[:, j].sum(), x, retain_graph=j < diffs.shape[1] - 1)[0]
             for j in range(diffs.shape[1])]
    return logits.detach(), diffs.detach(), torch.stack(grads, dim=1)


def deepfool(model, images, subspace=None, num_classes=10, overshoot=0.02, max_iter=100):
    """Batched DeepFool of ``images`` [B, C, H, W] against ``model`` (in eval mode, mapping
    images to logits), restricted to ``subspace`` (anything with ``project(x)`` over the last
    three axes, e.g. a :class:`utils.subspaces.DCTBlock`; None for the whole input space)."""
    project = subspace.project if subspace is not None else (lambda t: t)
    x0 = images.detach()
    with torch.no_grad():
        clean = model(x0)
    k = min(num_classes, clean.shape[1])
    classes = clean.argsort(dim=1, descending=True)[:, :k]
    label = classes[:, 0]

    r = torch.zeros_like(x0)
    iterations = torch.full_like(label, max_iter)
    final = label.clone()
    active = torch.arange(len(x0), device=x0.device)
    for step in range(max_iter + 1):
        if len(active) == 0:
            break
        x = x0[active] + (1 + overshoot) * r[active]
        if step == max_iter:  # out of iterations: only the final label is still needed
            with torch.no_grad():
                final[active] = model(x).argmax(dim=1)
            break
        logits, diffs, w = _class_gradients(model, x, classes[active])
        pred = logits.argmax(dim=1)
        crossed = pred != label[active]
        if crossed.any():
            done = active[crossed]
            iterations[done], final[done] = step, pred[crossed]
            keep = ~crossed
            active, diffs, w = active[keep], diffs[keep], w[keep]
            if len(active) == 0:
                break

        pw = project(w)  # [b, K-1, C, H, W]
        norms = pw.flatten(2).norm(dim=2)
        distance = diffs.abs() / norms
        distance = torch.where(norms > 0, distance, torch.full_like(distance, float("inf")))
        closest = distance.argmin(dim=1)
        rows = torch.arange(len(active), device=x0.device)
        direction = pw[rows, closest] / norms[rows, closest].view(-1, 1, 1, 1)
        size = distance[rows, closest].clamp(min=1e-4).view(-1, 1, 1, 1)
        # a gradient with no component in the subspace gives no direction: stay put
        step_ = torch.where(torch.isfinite(size), size * direction, torch.zeros_like(direction))
        r[active] = r[active] + step_
    return DeepFoolResult((1 + overshoot) * r, iterations, label, final)
