"""Many small networks of one architecture trained at once, each as
:func:`utils.common.training.train` trains it alone.

The M networks become one *grouped* network (:func:`group`): every convolution is one convolution
with M groups, every linear layer one batched matrix product, every batch norm one batch norm over
M times the channels, so that network m owns channels ``m*C .. (m+1)*C - 1`` of every activation
and never sees the others'. Network m's batch is fed in its channels (``[B, M*C, H, W]``;
channels-last for convolutional networks: oneDNN's grouped convolutions are faster in that layout
on a CPU), the loss is the sum of the M networks' mean cross-entropies, so one backward pass gives
each network the gradient of its own batch; each gradient is clipped by its own norm, and SGD on
the grouped tensors (elementwise) moves every network as its own optimiser would. Network m sees
its own dataset in its own order (the one ``train`` draws from its seed); what the networks share
is the number of steps, so their datasets have one size and they follow one
:class:`~utils.common.training.TrainConfig` up to the seed.

Why: one step of a LeNet or a logistic regression on 128 images of 32x32 is too small to keep
a CPU's cores (let alone a GPU) busy; M networks in one step are large operations
(``benchmarks/directional_bias.py`` measures the gain). Networks whose forward pass mixes
channels other than through those three layers (DenseNet's concatenations) cannot be grouped:
:func:`group` checks every network's output against the grouped one and refuses them. Dropout
(VGG's classifier) draws its masks from torch's global generator, in another order for grouped
networks: those train alike, but not into the very same networks as one at a time.
"""
import copy
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..common.training import EpochShuffle, diverged


class GroupedLinear(nn.Module):
    """M linear layers: x [B, M*in] -> [B, M*out], block m through layer m."""

    def __init__(self, layers):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))
        self.bias = (nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]))
                     if layers[0].bias is not None else None)

    def forward(self, x):
        m, out, inp = self.weight.shape
        x = x.reshape(len(x), m, inp).transpose(0, 1)  # [M, B, in]
        y = (torch.bmm(x, self.weight.transpose(1, 2)) if self.bias is None
             else torch.baddbmm(self.bias[:, None], x, self.weight.transpose(1, 2)))
        return y.transpose(0, 1).reshape(-1, m * out)


def _grouped_conv(convs):
    c = convs[0]
    m = len(convs)
    grouped = nn.Conv2d(m * c.in_channels, m * c.out_channels, c.kernel_size, c.stride,
                        c.padding, c.dilation, m * c.groups, c.bias is not None, c.padding_mode)
    with torch.no_grad():
        grouped.weight.copy_(torch.cat([conv.weight for conv in convs]))
        if c.bias is not None:
            grouped.bias.copy_(torch.cat([conv.bias for conv in convs]))
    return grouped.to(memory_format=torch.channels_last)


def _grouped_batch_norm(norms):
    b = norms[0]
    grouped = nn.BatchNorm2d(len(norms) * b.num_features, b.eps, b.momentum, b.affine,
                             b.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(b, name) is not None:
                getattr(grouped, name).copy_(torch.cat([getattr(n, name) for n in norms]))
        if b.num_batches_tracked is not None:
            grouped.num_batches_tracked.copy_(b.num_batches_tracked)
    return grouped


GROUPERS = {nn.Conv2d: _grouped_conv, nn.Linear: GroupedLinear,
            nn.BatchNorm2d: _grouped_batch_norm}


def _replace(root, name, module):
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)


def group(models, shape):
    """One network that computes all of ``models`` (one architecture, inputs of ``shape``
    (C, H, W) each) side by side: input [B, M*C, H, W] -> output [B, M*K]. Raises ValueError
    when the architecture cannot be grouped (a layer with parameters other than Conv2d,
    Linear, BatchNorm2d, or a forward pass that mixes the networks' channels)."""
    grouped = copy.deepcopy(models[0])
    modules = [dict(m.named_modules()) for m in models]
    for name, module in models[0].named_modules():
        make = GROUPERS.get(type(module))
        if make is not None:
            _replace(grouped, name, make([mods[name] for mods in modules]))
        elif any(True for _ in module.parameters(recurse=False)):
            raise ValueError(f"cannot group a {type(module).__name__} layer ({name})")
    probe = torch.randn(2, len(models), *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = torch.stack([m.eval()(probe[:, i]) for i, m in enumerate(models)], 1)
        got = grouped.eval()(to_groups(probe, has_convolutions(grouped))).view_as(expected)
    if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item()):
        raise ValueError(f"{type(models[0]).__name__} cannot be trained grouped: its forward "
                         f"pass mixes the channels of different networks")
    return grouped


def to_groups(x, channels_last=True):
    """[B, M, C, H, W] -> [B, M*C, H, W], in the channels-last layout for convolutions."""
    x = x.flatten(1, 2)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def has_convolutions(model):
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def ungroup(grouped, models):
    """Copy the parameters and buffers of ``grouped`` back into ``models`` (in place)."""
    m = len(models)
    with torch.no_grad():
        for key, value in grouped.state_dict().items():
            for i, model in enumerate(models):
                target = model.state_dict()[key]
                target.copy_(value if value.dim() == 0 else value.reshape(m, -1)[i]
                             .view_as(target))
    return models


def _order(n, seed, epoch):
    """The sample order of ``epoch`` that ``utils.common.training.train`` draws for ``seed``."""
    sampler = EpochShuffle(range(n), num_replicas=1, rank=0, seed=seed * 100003)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler))


def _clip_(params, m, max_norm):
    """``torch.nn.utils.clip_grad_norm_`` per network: each network's gradients (block i of
    every grouped tensor) scaled in place so that their total L2 norm is at most max_norm."""
    norms = torch.stack([p.grad.reshape(m, -1).norm(dim=1) for p in params]).norm(dim=0)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:  # dim 0 of every grouped tensor is M blocks, one per network
        p.grad.mul_(scale.repeat_interleave(len(p) // m).view(-1, *[1] * (p.dim() - 1)))


def train_stacked(models, datasets, config, seeds, device, desc="networks"):
    """Train ``models`` (M networks of one architecture) in place, network m on ``datasets[m]``
    (TensorDatasets of images [N, C, H, W] and class indices [N], one N for all) in the order
    ``utils.common.training.train`` draws for ``seeds[m]``, with ``config`` (a TrainConfig whose
    own seed is not used): what ``train(models[m], datasets[m], replace(config, seed=seeds[m]))``
    gives, up to float rounding. Returns the models, in eval mode."""
    if not models or len(models) != len(datasets) or len(models) != len(seeds):
        raise ValueError("give one dataset and one seed per model")
    n = len(datasets[0])
    if any(len(d) != n for d in datasets):
        raise ValueError("all datasets must have the same number of samples")
    device = torch.device(device)
    m = len(models)
    x = torch.stack([d.tensors[0] for d in datasets], 1).to(device)  # [N, M, C, H, W]
    y = torch.stack([d.tensors[1] for d in datasets], 1).to(device)  # [N, M]
    net = group(models, x.shape[2:]).to(device).train()
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=0.0, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    batch = config.batch_size
    steps = -(-n // batch)
    cols = torch.arange(m, device=device)
    channels_last = has_convolutions(net)
    for epoch in range(config.epochs):
        order = torch.stack([_order(n, s, epoch) for s in seeds], 1).to(device)  # [N, M]
        for i in tqdm(range(steps), desc=f"{desc}: epoch {epoch + 1}/{config.epochs}",
                      leave=False):
            idx = order[i * batch:(i + 1) * batch]  # [b, M]: network j's samples in column j
            logits = net(to_groups(x[idx, cols], channels_last)).view(len(idx), m, -1)
            # the networks' mean losses, summed: each network's gradient is that of its own
            loss = F.cross_entropy(logits.transpose(1, 2), y[idx, cols], reduction="none")
            bad = (~loss.isfinite().all(0)).nonzero().flatten().tolist()
            if bad:
                raise diverged(f"the loss of network(s) {bad} of this group is not finite",
                               epoch, i)
            opt.zero_grad(set_to_none=True)
            loss.mean(0).sum().backward()
            if config.grad_clip is not None:
                _clip_(params, m, config.grad_clip)
            opt.param_groups[0]["lr"] = config.lr_at(epoch + (i + 1) / steps)  # as train()
            opt.step()
    ungroup(net.cpu(), models)
    return [model.eval() for model in models]


def train_in_groups(models, datasets, config, seeds, device, group, workers=1, desc="networks"):
    """:func:`train_stacked` on consecutive groups of ``group`` models (arguments as there);
    ``workers`` > 1 (CPU): that many threads train groups side by side, each with
    ``torch.get_num_threads() // workers`` torch threads. Returns the models."""
    chunks = [slice(i, i + group) for i in range(0, len(models), group)]

    def fit(chunk):
        return train_stacked(models[chunk], datasets[chunk], config, seeds[chunk], device,
                             desc)
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            fit(chunk)
        return models
    before = torch.get_num_threads()

    def fit_in_thread(chunk):
        torch.set_num_threads(max(1, before // workers))  # per thread with OpenMP
        return fit(chunk)
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fit_in_thread, chunks))
    finally:
        torch.set_num_threads(before)  # where the count is shared by all threads
    return models
