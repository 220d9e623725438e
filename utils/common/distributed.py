"""Runs on several processes (GPUs, nodes) under torchrun, on top of ``torch.distributed``.

``torchrun --nproc_per_node=N -m scripts.NAME ...`` (or ``python -m torch.distributed.run``)
starts N processes with RANK, LOCAL_RANK and WORLD_SIZE in their environment. :func:`init`
then joins them into one process group: NCCL for CUDA tensors and gloo for CPU tensors
(``"cpu:gloo,cuda:nccl"``; plain gloo where this node has fewer GPUs than processes, e.g.
CPU-only runs). A plain ``python -m ...``
run (no WORLD_SIZE, or WORLD_SIZE=1) never touches ``torch.distributed``: every helper below
then answers as for rank 0 of 1 and returns its input unchanged.

Sharding a list of work items (samples for margins, networks for NADs)::

    mine = shard(items)               # this rank's contiguous block of items
    part = compute(mine)              # an array with len(mine) rows
    whole = gather_concat(part)       # rank 0: every row, in the order of items; others: None
"""
import os

import numpy as np
import torch
import torch.distributed as dist

from .errors import UserError


def launched():
    """True when this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def gpu_per_process():
    """True when this node has a GPU for each of its processes (torchrun's LOCAL_WORLD_SIZE;
    a plain run needs one GPU)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1")) <= torch.cuda.device_count()


def init():
    """Join the process group of a torchrun launch (once; later calls do nothing).

    Returns True when this process is one of several, False for a single-process run."""
    if launched() and not dist.is_initialized():
        if gpu_per_process():  # every rank takes the same branch: same backends
            torch.cuda.set_device(local_rank())
            dist.init_process_group("cpu:gloo,cuda:nccl")
        else:
            dist.init_process_group("gloo")
    return active()


def active():
    """True when a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def finish():
    """Leave the process group (at the end of a script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank():
    return dist.get_rank() if active() else 0


def world_size():
    return dist.get_world_size() if active() else 1


def local_rank():
    """The index of this process on its node (its GPU); 0 for a single process."""
    return int(os.environ.get("LOCAL_RANK", "0")) if launched() else 0


def is_main():
    """True on rank 0, the process that writes files and prints."""
    return rank() == 0


def local_device(device):
    """``device`` with the GPU of this process: 'cuda' becomes 'cuda:LOCAL_RANK' under torchrun."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and launched():
        if not gpu_per_process():
            raise UserError(f"this node runs more processes than its {torch.cuda.device_count()} "
                            f"GPU(s); start at most that many with torchrun --nproc_per_node, "
                            f"or use `device` cpu")
        return torch.device("cuda", local_rank())
    return device


def barrier():
    if active():
        dist.barrier()


def broadcast(obj, src=0):
    """``obj`` of rank ``src`` on every rank (any picklable object; tensors go by value)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_sum(value):
    """The sum of a number over all ranks, on every rank."""
    if not active():
        return value
    total = torch.tensor(float(value), dtype=torch.float64)
    dist.all_reduce(total)  # a CPU tensor: gloo
    return type(value)(total.item())


def shard_range(n):
    """(start, stop) of this rank's contiguous block of ``n`` items; the first ``n % world``
    ranks get one item more (the split of ``numpy.array_split``)."""
    size, extra = divmod(n, world_size())
    r = rank()
    start = r * size + min(r, extra)
    return start, start + size + (r < extra)


def shard(items):
    """This rank's contiguous block of ``items`` (a list, range, array or tensor); all of
    ``items`` in a single-process run. Blocks are in rank order, so :func:`gather_concat` puts
    the results back in the order of ``items``."""
    start, stop = shard_range(len(items))
    return items[start:stop]


def gather_concat(part, axis=0):
    """Concatenate every rank's ``part`` (numpy array or tensor, same shape except along
    ``axis``, on the CPU) in rank order. Returns the whole on rank 0 and None elsewhere;
    ``part`` itself in a single-process run."""
    if not active():
        return part
    parts = [None] * world_size() if is_main() else None
    dist.gather_object(part, parts, dst=0)
    if not is_main():
        return None
    if torch.is_tensor(part):
        return torch.cat(parts, dim=axis)
    return np.concatenate(parts, axis=axis)
