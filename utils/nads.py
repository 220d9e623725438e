"""Neural Anisotropy Directions: principal directions of the input gradients of randomly
initialised networks with one output, all evaluated at one fixed point ``x0 ~ N(0, I)``.

Gradients of ``-f`` are estimated by central finite differences along every pixel,
``-(f(x0 + h e_i) - f(x0 - h e_i)) / (2 h)`` with the paper's large step h = 100 (``'fd'``), or
taken exactly by automatic differentiation (``'autograd'``). Many networks are evaluated per
pass: their parameters are stacked and one ``torch.func.vmap`` call evaluates all of them
(``networks_per_pass``); the perturbed inputs are cut into chunks so that no forward pass
holds more than ``batch_size`` (network, input) pairs. ``networks_per_pass=1`` is the plain
one-network-at-a-time loop of the original code: on a CPU it is the faster choice for finite
differences (each network already sees 2,048 inputs, see benchmarks/nads.py) and for large
networks; vmap pays for autograd of small networks.

Networks are drawn from their default initialisation, network ``i`` after seeding torch with
``network_seed(seed, i)``, so the result does not depend on how networks are grouped into
passes, nor on the device. Networks with batch norm are evaluated in eval mode (as the
original did): with freshly initialised running statistics (mean 0, variance 1) every sample
is processed on its own, whereas train mode would mix the 2,048 perturbed inputs of a batch.

NADs are the principal directions of the gradients: the right singular vectors of the
*centred* gradient matrix (as scikit-learn's PCA, which the original used), and the saved
"eigenvalues" are its singular values (``pca.singular_values_`` of the original); the
variance along NAD i is ``eigenvals[i] ** 2 / (N - 1)``.
"""
import copy

import numpy as np
import torch
from torch.func import functional_call, grad, stack_module_state, vmap

METHODS = ("fd", "autograd")


def evaluation_point(seed, shape=(1, 32, 32)):
    """The fixed point x0 ~ N(0, I) of shape ``shape`` (float32), drawn from ``seed``."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def network_seed(seed, index):
    """The torch seed that network ``index`` of a run seeded with ``seed`` is drawn from."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def build_networks(build, seed, start, count):
    """Networks ``start .. start + count - 1`` of the run: ``build()`` called under their own
    seed (the global RNG is left untouched), in eval mode, on the CPU."""
    models = []
    for index in range(start, start + count):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(network_seed(seed, index))
            models.append(build().eval())
    return models


def _functional(models):
    """(params, buffers, f): the models' stacked parameters and buffers, and
    f(params_i, buffers_i, x) = model_i(x) for one network's slice."""
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def f(p, b, x):
        return functional_call(base, (p, b), (x,))
    return params, buffers, f


def _forward_fn(models, vectorize):
    """A function x [B, C, H, W] -> outputs [M, B] of the M one-output ``models``: one vmap
    call over their stacked parameters, or a loop over the networks."""
    if not vectorize:
        return lambda x: torch.stack([m(x)[:, 0] for m in models])
    params, buffers, f = _functional(models)
    return lambda x: vmap(f, in_dims=(0, 0, None))(params, buffers, x)[..., 0]


def _check_one_output(models, x0):
    with torch.no_grad():
        out = models[0](x0.unsqueeze(0))
    if out.shape != (1, 1):
        raise ValueError(f"NADs need networks with one output; this one gives {tuple(out.shape[1:])}")


@torch.no_grad()
def fd_gradients(models, x0, step=100.0, batch_size=8192, vectorize=True):
    """Central finite-difference estimates of grad(-f) at ``x0`` [C, H, W] for every model.

    step: the displacement h along each pixel (the paper uses 100, far beyond the linear
    regime of a ReLU network: it measures f over a large neighbourhood of x0).
    batch_size: at most this many (network, input) evaluations per forward pass.
    Returns [M, C*H*W] in x0's dtype."""
    _check_one_output(models, x0)
    d = x0.numel()
    eye = torch.eye(d, dtype=x0.dtype, device=x0.device).view(d, *x0.shape)
    forward = _forward_fn(models, vectorize)
    # pixels per pass: each gives two inputs, evaluated by every network of the pass
    pixels = max(1, batch_size // (2 * (len(models) if vectorize else 1)))
    diff = torch.empty(len(models), d, dtype=x0.dtype, device=x0.device)
    for i in range(0, d, pixels):
        e = eye[i:i + pixels]
        out = forward(torch.cat([x0 + step * e, x0 - step * e]))
        plus, minus = out.chunk(2, dim=1)
        diff[:, i:i + len(e)] = plus - minus
    return -diff / (2 * step)


def autograd_gradients(models, x0, vectorize=True):
    """Exact grad(-f) at ``x0`` [C, H, W] for every model by automatic differentiation.
    Returns [M, C*H*W] in x0's dtype."""
    _check_one_output(models, x0)
    if not vectorize:
        grads = []
        for m in models:
            x = x0.unsqueeze(0).clone().requires_grad_(True)
            (g,) = torch.autograd.grad(-m(x).sum(), x)
            grads.append(g.flatten())
        return torch.stack(grads)
    params, buffers, f = _functional(models)

    def neg_f(p, b, x):
        return -f(p, b, x.unsqueeze(0)).sum()
    return vmap(grad(neg_f, argnums=2), in_dims=(0, 0, None))(params, buffers, x0).flatten(1)


def iter_gradients(build, num_networks, x0, method="fd", step=100.0, seed=0, start=0,
                   networks_per_pass=64, batch_size=8192, device="cpu"):
    """Yield (first network index, gradients [n, D] float32 on the CPU) pass after pass, for
    the networks ``start .. num_networks - 1`` drawn with ``build`` from ``seed``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    x0 = x0.to(device)
    vectorize = networks_per_pass > 1
    for first in range(start, num_networks, networks_per_pass):
        count = min(networks_per_pass, num_networks - first)
        models = [m.to(device) for m in build_networks(build, seed, first, count)]
        if method == "fd":
            g = fd_gradients(models, x0, step, batch_size, vectorize=vectorize)
        else:
            g = autograd_gradients(models, x0, vectorize=vectorize)
        yield first, g.detach().float().cpu()


def principal_directions(gradients, k):
    """PCA of ``gradients`` [N, D] (centred, computed in float64).

    Returns (nads [k, D] float32, orthonormal rows, in decreasing order of variance, each with
    its entry of largest magnitude positive; singular values [k] float32 of the centred matrix).
    k <= min(N - 1, D): centring leaves N - 1 independent gradients. Computed as the eigenvectors
    of the D x D scatter matrix (much faster than an SVD of the N x D matrix on a CPU; singular
    values below 1e-8 of the largest lose their relative precision, which does not matter here)."""
    g = torch.as_tensor(np.asarray(gradients), dtype=torch.float64)
    n, d = g.shape
    if not 1 <= k <= min(n - 1, d):
        raise ValueError(f"k must be between 1 and {min(n - 1, d)} for {n} gradients "
                         f"of dimension {d}")
    centred = g - g.mean(0)
    evals, evecs = torch.linalg.eigh(centred.T @ centred)
    vh = evecs.flip(1)[:, :k].T
    s = evals.flip(0)[:k].clamp(min=0).sqrt()
    signs = torch.sign(vh.gather(1, vh.abs().argmax(1, keepdim=True)))
    return (vh * signs).float().numpy(), s.float().numpy()


def subspace_overlap(a, b):
    """||A^T B||_F^2 / k for two sets of k orthonormal directions a, b [k, D]: 1 when they
    span the same subspace, k / D on average for independent random subspaces, 0 when
    orthogonal."""
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    return float((a @ b.T).square().sum() / a.shape[0])
