"""Slow, obviously-correct reference implementations that the fast code is checked against."""
import math

import numpy as np
import torch
import torch.nn.functional as F


def deepfool_one(model, image, basis=None, num_classes=10, overshoot=0.02, max_iter=100,
                 gradients_at_overshoot=False):
    """DeepFool of one image [C, H, W], step for step as the authors' ``subspace_deepfool``
    (LTS4/hold-me-tight, utils.py): one class gradient at a time, each step's gradients taken
    at ``pert_image`` (the image plus the steps so far, without the overshoot), the label
    checked at ``image + (1 + overshoot) r``; the subspace given by an explicit orthonormal
    ``basis`` [D, d] (None: the whole space). ``gradients_at_overshoot``: the gradients are
    taken at ``image + (1 + overshoot) r`` instead (the 2016 DeepFool code's way). Returns
    (perturbation [C, H, W], iterations, label, final label)."""
    basis = basis.to(image.dtype) if basis is not None else None
    image = image.detach().unsqueeze(0)
    with torch.no_grad():
        clean = model(image)[0]
    order = torch.argsort(clean, descending=True)[:min(num_classes, clean.numel())]
    label = int(order[0])
    r = torch.zeros_like(image)
    pert_image = image.clone()
    label_pert, loop_i = label, 0
    while label_pert == label and loop_i < max_iter:
        x = (image + (1 + overshoot) * r if gradients_at_overshoot else pert_image)
        x = x.clone().requires_grad_(True)
        fs = model(x)[0]
        grad_orig = torch.autograd.grad(fs[order[0]], x, retain_graph=True)[0]
        pert, w = math.inf, torch.zeros_like(image)
        for k in range(1, len(order)):
            w_k = torch.autograd.grad(fs[order[k]], x, retain_graph=True)[0] - grad_orig
            f_k = (fs[order[k]] - fs[order[0]]).detach()
            w_norm = w_k.norm() if basis is None else (basis.T @ w_k.flatten()).norm()
            pert_k = float(f_k.abs() / w_norm)
            if pert_k < pert:
                pert, w = pert_k, w_k
        if basis is not None:
            w = (basis @ (basis.T @ w.flatten())).view_as(w)
        r_i = max(pert, 1e-4) * w / w.norm()
        r = r + r_i
        pert_image = pert_image + r_i
        with torch.no_grad():
            label_pert = int(model(image + (1 + overshoot) * r)[0].argmax())
        loop_i += 1
    return ((1 + overshoot) * r)[0], loop_i, label, label_pert


def lenet_forward(net, x):
    """The papers' LeNet forward, written as they wrote it (ReLU, then PyTorch's 2x2
    max-pooling), with the parameters of ``net`` (a models.lenet.LeNet)."""
    x = F.max_pool2d(F.relu(net.conv1(x)), 2)
    x = F.max_pool2d(F.relu(net.conv2(x)), 2)
    x = F.relu(net.fc1(x.flatten(1)))
    return net.fc3(F.relu(net.fc2(x)))


def dct_basis_1d(n):
    """The orthonormal DCT-II matrix from its textbook formula, in numpy float64."""
    m = np.array([[math.cos(math.pi * (2 * i + 1) * k / (2 * n)) for i in range(n)]
                  for k in range(n)])
    m *= math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def project_ball_rotated_box_qp(z, x, eps, q):
    """The Euclidean projection of ``z`` onto {v : ||v - x|| <= eps, 0 <= q^T v <= 1}, solved
    as a QP with scipy's SLSQP directly in the representation (the box is rotated by the
    orthogonal matrix ``q`` [D, D]); z, x: numpy [D]. Returns the projected point [D]."""
    from scipy.optimize import minimize
    cons = [{"type": "ineq", "fun": lambda v: eps ** 2 - np.sum((v - x) ** 2),
             "jac": lambda v: -2 * (v - x)},
            {"type": "ineq", "fun": lambda v: q.T @ v, "jac": lambda v: q.T},
            {"type": "ineq", "fun": lambda v: 1 - q.T @ v, "jac": lambda v: -q.T}]
    res = minimize(lambda v: 0.5 * np.sum((v - z) ** 2), x, jac=lambda v: v - z,
                   constraints=cons, method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000})
    return res.x
