"""Slow, obviously-correct references for the NAD code: one network, one pixel, one class at
a time, written like the original code."""
import torch


@torch.no_grad()
def fd_gradient_one(model, x0, step):
    """-grad f(x0) of a one-output ``model`` by central differences, one pixel at a time.
    x0 [C, H, W]; returns [C*H*W]."""
    flat = x0.flatten()
    grad = torch.empty_like(flat)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny forward passes: threads only add overhead
    try:
        for i in range(flat.numel()):
            e = torch.zeros_like(flat)
            e[i] = step
            plus = model((flat + e).view(1, *x0.shape))[0, 0]
            minus = model((flat - e).view(1, *x0.shape))[0, 0]
            grad[i] = -(plus - minus) / (2 * step)
    finally:
        torch.set_num_threads(threads)
    return grad


def autograd_gradient_one(model, x0):
    """-grad f(x0) of a one-output ``model`` by backpropagation; x0 [C, H, W] -> [C*H*W]."""
    x = x0.clone().unsqueeze(0).requires_grad_(True)
    (-model(x)[0, 0]).backward()
    return x.grad.flatten()


def poison_per_class(images, labels, nads, nad_index, eps, num_classes=10):
    """The original's poisoning loop: class after class, carrier NAD ``nad_index + t // 6`` in
    channel ``t % 3``, sign ``2 * (t % 2) - 1``, coefficient set to sign * eps (3 channels)."""
    x = images.double().clone()
    flat_size = images[0].numel()
    for t in range(num_classes):
        carrier = torch.zeros_like(x[0])
        carrier[t % 3] = torch.as_tensor(nads[nad_index + t // 6], dtype=torch.float64).view(
            images.shape[-2], images.shape[-1])
        carrier /= carrier.norm()
        sign = 2 * (t % 2) - 1
        members = labels == t
        coef = x[members].reshape(-1, flat_size) @ carrier.flatten()
        x[members] += (eps * sign - coef)[:, None, None, None] * carrier
    return x.to(images.dtype)
