"""Neural Anisotropy Directions: principal directions of the input gradients of randomly
initialised networks with one output, all evaluated at one fixed point ``x0 ~ N(0, I)``.

Gradients of ``-f`` are estimated by central finite differences along every pixel,
``-(f(x0 + h e_i) - f(x0 - h e_i)) / (2 h)`` with the paper's large step h = 100 (``'fd'``), or
taken exactly by automatic differentiation (``'autograd'``). Many networks are evaluated per
pass: their parameters are stacked and one ``torch.func.vmap`` call evaluates all of them
(``networks_per_pass``; ``NetworkSampler`` writes their initial parameters straight into the
stack); the perturbed inputs are cut into chunks so that no forward pass
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from models import NAD_ARCHITECTURES

from ..common.errors import UserError

METHODS = ("fd", "autograd")


def check_architecture(arch):
    """A UserError unless ``arch`` is a NAD architecture (a key of models.NAD_ARCHITECTURES)."""
    if arch not in NAD_ARCHITECTURES:
        raise UserError(f"architecture {arch} is not available; choose one of "
                        f"{', '.join(NAD_ARCHITECTURES)}")


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


class Stacked:
    """M networks of one architecture as stacked parameters and buffers (each [M, ...]) and a
    parameter-less copy of the architecture to call them with: ``nets(x)`` evaluates all of
    them on the same inputs x [B, ...] in one ``torch.func.vmap`` call -> [M, B, outputs]."""

    def __init__(self, params, buffers, template):
        self.params, self.buffers = params, buffers
        self.base = copy.deepcopy(template).to("meta")

    @classmethod
    def of(cls, models):
        params, buffers = stack_module_state(models)
        return cls(params, buffers, models[0])

    def __len__(self):
        return len(next(iter(self.params.values())))

    def to(self, device):
        self.params = {k: v.to(device) for k, v in self.params.items()}
        self.buffers = {k: v.to(device) for k, v in self.buffers.items()}
        return self

    def network(self, i):
        """(parameters, buffers) of network i: slices of the stack."""
        return ({k: v[i] for k, v in self.params.items()},
                {k: v[i] for k, v in self.buffers.items()})

    def one(self, p, b, x):
        """Network with parameters p and buffers b (one slice of the stack) at x."""
        return functional_call(self.base, (p, b), (x,))

    def __call__(self, x):
        return vmap(self.one, in_dims=(0, 0, None))(self.params, self.buffers, x)


def _uniform_draws(build):
    """(model, draws): ``build()`` and the in-place uniform draws its initialisation made, in
    order, as (parameter name, low, high); None when a draw went to something that is not
    one of its parameters. PyTorch's default initialisation of convolutions and linear
    layers is such a sequence of ``Tensor.uniform_`` calls; they are seen by wrapping that
    method while the network is built."""
    draws, uniform = [], torch.Tensor.uniform_
    own = torch.Tensor.__dict__.get("uniform_")  # None: inherited from torch's C base class

    def recording_uniform(t, low=0.0, high=1.0, **kwargs):
        draws.append((t.data_ptr(), low, high))
        return uniform(t, low, high, **kwargs)
    torch.Tensor.uniform_ = recording_uniform
    try:
        with torch.random.fork_rng(devices=[]):
            model = build().eval()
    finally:
        if own is None:
            del torch.Tensor.uniform_
        else:
            torch.Tensor.uniform_ = own
    names = {p.data_ptr(): name for name, p in model.named_parameters()}
    if not all(ptr in names for ptr, _, _ in draws):
        return None
    return model, [(names[ptr], low, high) for ptr, low, high in draws]


class NetworkSampler:
    """Draws the networks of ``build_networks(build, seed, start, count)`` as a ``Stacked``
    with the same parameters, written straight into the stacked tensors.

    Building a module costs several times more than computing its gradient (for LeNet;
    docs/performance.md), so when the initialisation is a sequence of uniform
    draws it is replayed for every network, with that network's seed, into its slice of the
    stack, by as many threads as torch uses. The first network of every call is also built
    the slow way and compared; any difference (an architecture with another initialisation,
    such as VGG11's) falls back to building every network, from then on. The storage of the
    stack is reused from call to call (allocating it afresh costs half as much as filling
    it), so a call overwrites the networks that the previous one returned."""

    def __init__(self, build, seed):
        self.build, self.seed = build, seed
        self.recorded = _uniform_draws(build)
        self.storage = {}

    def _stack(self, name, like, count):
        if name not in self.storage or len(self.storage[name]) < count:
            self.storage[name] = torch.empty(count, *like.shape, dtype=like.dtype)
        return self.storage[name][:count]

    def __call__(self, start, count):
        if self.recorded is not None:
            template, draws = self.recorded
            drawn = {name for name, _, _ in draws}
            params, buffers = {}, {}
            for name, p in template.named_parameters():
                params[name] = self._stack(name, p, count)
                if name not in drawn:
                    params[name].copy_(p.detach())
            for name, b in template.named_buffers():
                buffers[name] = self._stack(name, b, count).copy_(b)

            def fill(slots):  # the RNG is the bottleneck: threads share the networks
                gen = torch.Generator()
                for j in slots:
                    gen.manual_seed(network_seed(self.seed, start + j))
                    for name, low, high in draws:
                        params[name][j].uniform_(low, high, generator=gen)
            threads = max(1, min(torch.get_num_threads(), count))
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fill, [range(t, count, threads) for t in range(threads)]))
            nets = Stacked(params, buffers, template)
            reference = build_networks(self.build, self.seed, start, 1)[0].state_dict()
            first = {**nets.network(0)[0], **nets.network(0)[1]}
            if all(torch.equal(v, first[k]) for k, v in reference.items()):
                return nets
            self.recorded = self.storage = None  # not a replayable initialisation
        return Stacked.of(build_networks(self.build, self.seed, start, count))


def _as_networks(models, vectorize):
    """What the gradient functions evaluate: a ``Stacked`` (as given, or stacked from a list
    of modules when ``vectorize``) or the list of modules itself (one network at a time)."""
    if isinstance(models, Stacked) or not vectorize:
        return models
    return Stacked.of(models)


def _forward_fn(nets):
    """A function x [B, C, H, W] -> outputs [M, B] of M one-output networks: one vmap call
    for a ``Stacked``, a loop for a list of modules."""
    if isinstance(nets, Stacked):
        return lambda x: nets(x)[..., 0]
    return lambda x: torch.stack([m(x)[:, 0] for m in nets])


def _check_one_output(nets, x0):
    with torch.no_grad():
        out = nets.one(*nets.network(0), x0.unsqueeze(0)) if isinstance(nets, Stacked) \
            else nets[0](x0.unsqueeze(0))
    if out.shape != (1, 1):
        raise ValueError(f"NADs need networks with one output; this one gives "
                         f"{tuple(out.shape[1:])}")


@contextmanager
def _no_tf32():
    """Turn off TF32 convolutions (cuDNN's default on recent GPUs) for the block: their
    10-bit mantissa would add noise of about 1e-3 of f to f(x0 + h e) - f(x0 - h e)."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


@torch.no_grad()
def fd_gradients(models, x0, step=100.0, batch_size=8192, vectorize=True, pixels=None):
    """Central finite-difference estimates of grad(-f) at ``x0`` [C, H, W] for every network.

    models: a list of modules or a ``Stacked``; a list is stacked and vmapped when
    ``vectorize``, else evaluated one network at a time.
    step: the displacement h along each pixel (the paper uses 100, far beyond the linear
    regime of a ReLU network: it measures f over a large neighbourhood of x0).
    batch_size: at most this many (network, input) evaluations per forward pass.
    pixels: indices into the flattened x0 of the pixels to difference along (default: all).
    Returns [M, len(pixels)] (default [M, C*H*W]) in x0's dtype."""
    nets = _as_networks(models, vectorize)
    _check_one_output(nets, x0)
    d = x0.numel()
    picked = torch.arange(d) if pixels is None else torch.as_tensor(pixels, dtype=torch.long)
    eye = torch.eye(d, dtype=x0.dtype, device=x0.device)[picked.to(x0.device)].view(-1, *x0.shape)
    forward = _forward_fn(nets)
    # pixels per pass: each gives two inputs, evaluated by every network of the pass
    per_pass = max(1, batch_size // (2 * (len(nets) if isinstance(nets, Stacked) else 1)))
    diff = torch.empty(len(nets), len(eye), dtype=x0.dtype, device=x0.device)
    with _no_tf32():
        for i in range(0, len(eye), per_pass):
            e = eye[i:i + per_pass]
            out = forward(torch.cat([x0 + step * e, x0 - step * e]))
            plus, minus = out.chunk(2, dim=1)
            diff[:, i:i + len(e)] = plus - minus
    return -diff / (2 * step)


def autograd_gradients(models, x0, vectorize=True):
    """Exact grad(-f) at ``x0`` [C, H, W] for every network by automatic differentiation
    (models and vectorize as in ``fd_gradients``). Returns [M, C*H*W] in x0's dtype."""
    nets = _as_networks(models, vectorize)
    _check_one_output(nets, x0)
    if not isinstance(nets, Stacked):
        grads = []
        for m in nets:
            x = x0.unsqueeze(0).clone().requires_grad_(True)
            (g,) = torch.autograd.grad(-m(x).sum(), x)
            grads.append(g.flatten())
        return torch.stack(grads)

    def neg_f(p, b, x):
        return -nets.one(p, b, x.unsqueeze(0)).sum()
    return vmap(grad(neg_f, argnums=2), in_dims=(0, 0, None))(nets.params, nets.buffers,
                                                              x0).flatten(1)


def iter_gradients(build, num_networks, x0, method="fd", step=100.0, seed=0, start=0,
                   networks_per_pass=64, batch_size=8192, device="cpu"):
    """Yield (first network index, gradients [n, D] float32 on the CPU) pass after pass, for
    the networks ``start .. num_networks - 1`` drawn with ``build`` from ``seed``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    x0 = x0.to(device)
    vectorize = networks_per_pass > 1
    sample = NetworkSampler(build, seed) if vectorize else None
    for first in range(start, num_networks, networks_per_pass):
        count = min(networks_per_pass, num_networks - first)
        if vectorize:
            nets = sample(first, count).to(device)
        else:
            nets = [m.to(device) for m in build_networks(build, seed, first, count)]
        if method == "fd":
            g = fd_gradients(nets, x0, step, batch_size, vectorize=vectorize)
        else:
            g = autograd_gradients(nets, x0, vectorize=vectorize)
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
