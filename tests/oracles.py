"""Slow, obviously-correct reference implementations that the fast code is checked against."""
import math

import numpy as np
import torch
import torch.nn.functional as F


def deepfool_one(model, image, basis=None, num_classes=10, overshoot=0.02, max_iter=100):
    """DeepFool of one image [C, H, W], written like the original: one class gradient at a
    time, the step computed in the coordinates of an explicit orthonormal ``basis`` [D, d]
    (None: the whole space). Returns (perturbation [C, H, W], iterations, label, final label)."""
    shape = image.shape
    basis = basis.to(image.dtype) if basis is not None else None
    to_coords = (lambda v: basis.T @ v) if basis is not None else (lambda v: v)
    from_coords = (lambda c: basis @ c) if basis is not None else (lambda c: c)

    x0 = image.detach().unsqueeze(0)
    with torch.no_grad():
        clean = model(x0)[0]
    order = torch.argsort(clean, descending=True)[:min(num_classes, clean.numel())]
    label = int(order[0])
    r_tot = torch.zeros(shape, dtype=image.dtype)
    x = x0.clone().requires_grad_(True)
    fs = model(x)
    k_i, loop_i = label, 0
    while k_i == label and loop_i < max_iter:
        best, best_w = math.inf, None
        grad_orig = torch.autograd.grad(fs[0, order[0]], x, retain_graph=True)[0].flatten()
        for k in range(1, len(order)):
            grad_k = torch.autograd.grad(fs[0, order[k]], x, retain_graph=True)[0].flatten()
            w_k = to_coords(grad_k - grad_orig)
            f_k = float((fs[0, order[k]] - fs[0, order[0]]).detach())
            dist = abs(f_k) / float(w_k.norm())
            if dist < best:
                best, best_w = dist, w_k
        r_i = max(best, 1e-4) * from_coords(best_w) / best_w.norm()
        r_tot = r_tot + r_i.reshape(shape).detach()
        x = (x0 + (1 + overshoot) * r_tot).requires_grad_(True)
        fs = model(x)
        k_i = int(fs[0].argmax())
        loop_i += 1
    return (1 + overshoot) * r_tot, loop_i, label, k_i


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
