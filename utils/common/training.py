"""Training and evaluation loops of the papers.

SGD with momentum and weight decay, a learning rate updated every batch (triangular: 0 -> max
at 2/5 of the epochs -> 0, or linear: max -> 0), cross-entropy, gradient-norm clipping.
A resume state (model, optimiser, epoch) is written atomically after every epoch.

Under torchrun (several processes, see utils/common/distributed.py) the same ``train`` runs data
parallel with DistributedDataParallel. ``config.batch_size`` stays the GLOBAL batch, split into
``batch_size / world_size`` samples per process; every epoch's order is the one a single
process draws (:class:`EpochShuffle`, a DistributedSampler), dealt out so that the W local
batches of step i together make the single-process batch i. The learning-rate schedule,
gradient clipping (of the averaged gradient) and hence the parameters are those of a
single-process run, up to rounding, except where randomness enters: each rank draws its own
augmentations and PGD random starts (:func:`rank_seed`). Rank 0 alone writes the resume state
and shows the progress bar (its own share's loss and accuracy); the state holds the bare model
(no ``module.`` prefix), so a run resumes under any number of processes.
"""
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from . import distributed
from .checkpoints import read_torch_file
from .errors import Interrupted, UserError
from .io import save_torch


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    max_lr: float = 0.21
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 0.5  # None: no clipping
    schedule: str = "triangular"  # or "linear", "step", "cosine"
    seed: int = 0

    def lr_at(self, t):
        """Learning rate at fractional epoch ``t`` in [0, epochs] (train() asks for it at the end
        of every batch, as the original code)."""
        if self.schedule == "triangular":
            return float(np.interp(t, [0, self.epochs * 2 / 5, self.epochs], [0, self.max_lr, 0]))
        if self.schedule == "linear":
            return float(np.interp(t, [0, self.epochs], [self.max_lr, 0]))
        if self.schedule == "step":  # x0.1 after 1/3 and after 2/3 of the epochs (ImageNet)
            # per epoch: t in (e, e + 1] (train() asks at the end of each batch) is epoch e
            return self.max_lr * 0.1 ** (3 * max(math.ceil(t) - 1, 0) // self.epochs)
        if self.schedule == "cosine":
            return float(self.max_lr * 0.5 * (1 + np.cos(np.pi * t / self.epochs)))
        raise ValueError(f"unknown schedule {self.schedule!r}")


# models with fewer parameters than this get one worker per torch thread on a CPU
SMALL_MODEL_PARAMETERS = 10 ** 6


def default_workers(device, model=None):
    """How many threads work side by side on a CPU, each with an equal share of torch's threads
    (the subspaces of a margin run, the groups of a directional-bias sweep): one per torch
    thread when ``model`` is small (under SMALL_MODEL_PARAMETERS parameters; no model: small
    networks such as LeNet's, whose layers are too small to share between threads), else 1
    (large layers keep every thread busy already, and every worker adds its activations to
    the memory in use); 1 on a GPU."""
    small = model is None or sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
    return torch.get_num_threads() if small and torch.device(device).type == "cpu" else 1


def check_device(name):
    """A UserError unless ``name`` is a device of this machine: auto, cpu, cuda, cuda:N (one of
    its GPUs), or mps where PyTorch has Apple's GPUs."""
    name = str(name)
    if name in ("auto", "cpu") or (name == "mps" and torch.backends.mps.is_available()):
        return
    kind, colon, index = name.partition(":")
    if kind != "cuda" or (colon and not index.isdigit()):
        raise UserError(f"there is no device {name!r} here; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"device {name} was asked for but CUDA is not available; use `device` "
                        f"cpu")
    count = torch.cuda.device_count()
    if colon and int(index) >= count:
        raise UserError(f"there is no device {name}: this machine has {count} GPU(s), cuda:0 to "
                        f"cuda:{count - 1}")


def pick_device(name="auto"):
    """'auto' -> CUDA when there is a GPU for this process, else CPU; otherwise the named device
    (a UserError if it does not exist here, see :func:`check_device`). Under torchrun, 'auto'
    and 'cuda' mean this process's GPU, cuda:LOCAL_RANK."""
    if name == "auto":
        gpu = torch.cuda.is_available() and distributed.gpu_per_process()
        return distributed.local_device("cuda" if gpu else "cpu")
    check_device(name)
    return distributed.local_device(name)


@torch.no_grad()
def evaluate(model, dataset, device, batch_size=500, workers=0):
    """Top-1 accuracy (a fraction in [0, 1]) of ``model`` on a TensorDataset-like dataset.
    Under torchrun every process counts a shard of the dataset."""
    if distributed.init():
        dataset = Subset(dataset, distributed.shard(range(len(dataset))))
    model.eval().to(device)
    correct = 0
    for x, y in DataLoader(dataset, batch_size=batch_size, num_workers=workers):
        correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    return distributed.all_sum(correct) / distributed.all_sum(len(dataset))


class EpochShuffle(DistributedSampler):
    """Each epoch's shuffled order, dealt out across ``num_replicas`` processes.

    The permutation of epoch e is drawn from a generator seeded with ``seed + e`` by the same
    two draws as ``DataLoader(shuffle=True, generator=g)`` (the base seed of its workers, then
    ``randperm``), so a single process keeps the order of earlier versions of this code, and
    every process count sees the same global order. Like DistributedSampler, rank r takes the
    positions r, r + W, r + 2W... of the order, wrapped around to a multiple of W."""

    def __iter__(self):
        n = len(self.dataset)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        torch.empty((), dtype=torch.int64).random_(generator=g)
        order = torch.randperm(n, generator=g).tolist()
        if self.total_size > n:
            order = (order * -(-self.total_size // n))[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas])


def rank_seed(seed):
    """This process's seed: ``seed`` itself in a single-process run and on rank 0, another one
    on every other rank of a torchrun launch, so that ranks do not draw the same random
    augmentations (the loader's workers) or PGD random starts."""
    return seed + 1_000_003 * distributed.rank()  # CPU generators keep only 32 bits of a seed


STATE_KEYS = {"model", "optimizer", "epoch", "config"}


def _read_state(state_path, config):
    """The resume state at ``state_path``, None if there is none; a UserError if it is damaged
    or belongs to another training."""
    if not Path(state_path).is_file():
        return None
    try:
        state = read_torch_file(state_path, "training state")
    except UserError as e:
        raise UserError(f"{e}; delete it to train from the first epoch") from None
    if not isinstance(state, dict) or not STATE_KEYS <= set(state) \
            or not isinstance(state["epoch"], int) or not 0 <= state["epoch"] <= config.epochs:
        raise UserError(f"the training state {state_path} is damaged (it lacks the model, "
                        f"optimiser or epoch); delete it to train from the first epoch")
    if state["config"] != asdict(config):
        raise UserError(f"the resume state {state_path} was made with another training "
                        f"configuration; delete it or train without `resume`")
    return state


def _load_state(state_path, config):
    """The resume state at ``state_path`` (read by rank 0, sent to all), or None."""
    state = error = None
    if distributed.is_main():
        try:
            state = _read_state(state_path, config)
        except UserError as e:
            error = str(e)
    state, error = distributed.broadcast((state, error))
    if error:
        raise UserError(error)
    return state


def diverged(what, epoch, batch, saved=0, state_path=None):
    """The UserError that stops a training whose loss is no longer finite (``what``) at
    ``batch`` of ``epoch`` (0-based): nothing of it is saved, the resume state of the last
    finished epoch (``saved``) is kept."""
    kept = (f"the state after epoch {saved} is kept in {state_path}" if saved and state_path
            else "nothing of it was saved")
    return UserError(f"the training diverged: {what} at batch {batch + 1} of epoch {epoch + 1}; "
                     f"{kept}; lower the learning rate, or check the data and settings (an "
                     f"attack's eps, the data's scale)")


def train(model, dataset, config, device, state_path=None, resume=False, attack=None,
          workers=0, mixed_precision=False):
    """Train ``model`` (images in [0, 1] -> logits) on ``dataset`` in place and return it.

    state_path: where the resume state is written after every epoch (None: nowhere).
    resume: continue from ``state_path`` if it exists.
    attack: optional ``attack(model, x, y) -> x_adv`` applied to every batch (adversarial
    training); the model is in eval mode while it runs. Under torchrun it gets this process's
    share of the batch and the bare model (not the DDP wrapper).
    workers: DataLoader worker processes. mixed_precision: float16 autocast and a gradient
    scaler, on CUDA only."""
    distributed.init()
    run = _Training(model, config, torch.device(device), state_path, attack,
                    mixed_precision and torch.device(device).type == "cuda")
    if resume and state_path is not None:
        run.resume()
    sampler, loader = _loader(dataset, config, run.device, workers)
    try:
        for epoch in range(run.saved, config.epochs):
            sampler.set_epoch(epoch)
            run.epoch(loader, epoch)
            run.save(epoch + 1)
    except KeyboardInterrupt:
        if not run.saved or state_path is None or not distributed.is_main():
            raise
        raise Interrupted(f"the training state after epoch {run.saved} of {config.epochs} is "
                          f"saved in {state_path}", ["--resume"]) from None
    model.eval()
    return model


def _loader(dataset, config, device, workers):
    """(sampler, DataLoader) of this process's share of every epoch."""
    world = distributed.world_size()
    if config.batch_size % world:
        raise UserError(f"the batch of {config.batch_size} cannot be split evenly across "
                        f"{world} processes; choose a batch size that is a multiple of {world}")
    # the order of each epoch depends only on (seed, epoch), so a resumed run is identical
    sampler = EpochShuffle(dataset, num_replicas=world, rank=distributed.rank(),
                           seed=config.seed * 100003)
    # the loader's own generator: without one, every epoch would draw its workers' base seed
    # from torch's global generator and so shift the PGD random starts of adversarial training
    loader = DataLoader(dataset, batch_size=config.batch_size // world, sampler=sampler,
                        num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(rank_seed(config.seed)))
    if distributed.rank() > 0:
        # every rank was seeded alike; without this, rank r's PGD random starts would repeat
        # rank 0's noise on other samples
        torch.manual_seed(rank_seed(config.seed))
    return sampler, loader


class _Training:
    """One training's model (bare, and wrapped in DDP under torchrun), optimiser, gradient
    scaler and resume state: the steps of :func:`train`."""

    def __init__(self, model, config, device, state_path, attack, amp):
        self.model, self.config, self.device = model.to(device), config, device
        self.state_path, self.attack, self.amp = state_path, attack, amp
        self.opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)
        self.net = model
        if distributed.world_size() > 1:
            self.net = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.saved = 0  # the epoch of the resume state written (or read) by this run

    def resume(self):
        state = _load_state(self.state_path, self.config)
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.amp and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.saved = state["epoch"]
        if distributed.is_main():
            print(f"resuming training from epoch {self.saved} of {self.config.epochs} "
                  f"({self.state_path})")

    def epoch(self, loader, epoch):
        """One epoch of SGD; stops (UserError) at a loss that is not finite, before the step."""
        config, device = self.config, self.device
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not distributed.is_main())
        correct = seen = 0
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if self.attack is not None:
                self.model.eval()
                x = self.attack(self.model, x, y).detach()
            self.net.train()
            # as the original code: the rate of batch i is the schedule's at the END of the
            # batch, epoch + (i + 1) / n (so the last batch of a decay to 0 trains at 0)
            for group in self.opt.param_groups:
                group["lr"] = config.lr_at(epoch + (i + 1) / len(loader))
            with torch.autocast(device.type, enabled=self.amp):
                logits = self.net(x)
                loss = F.cross_entropy(logits, y)
            value = loss.item()
            if not math.isfinite(value):
                raise diverged(f"the loss is {value}", epoch, i, self.saved, self.state_path)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if config.grad_clip is not None:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{value:.3f}", acc=f"{correct / seen:.3f}")

    def save(self, epoch):
        """The resume state after ``epoch`` epochs (rank 0 writes it)."""
        if self.state_path is None or not distributed.is_main():
            return
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "epoch": epoch, "config": asdict(self.config)}
        if self.amp:
            state["scaler"] = self.scaler.state_dict()
        save_torch(self.state_path, state)
        self.saved = epoch
