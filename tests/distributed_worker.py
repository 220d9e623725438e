"""Entry point that tests/common/test_distributed.py launches under torchrun (and runs in-process):
trains LeNet on a small two-class task with utils.common.training.train and writes its parameters.

    python -m torch.distributed.run --standalone --nproc_per_node=2 -m tests.distributed_worker \
        --out params.pt [--state state.pt] [--resume] [--stop-at-batch K]

--stop-at-batch K interrupts the run (KeyboardInterrupt, as Ctrl-C would) just before the
K-th batch of the run, counted from 1 over all epochs, in every process.
"""
import argparse

import torch
from torch.utils.data import TensorDataset

from models import LeNet
from utils.common import distributed
from utils.common.checkpoints import save_weights
from utils.common.cli import run
from utils.common.training import TrainConfig, train

CONFIG = TrainConfig(epochs=3, batch_size=32, max_lr=0.3, seed=1)


def toy_task(n=256, seed=0):
    """n MNIST-sized images [n, 1, 28, 28] in [0, 1]; class 1 has a bright top half."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.5 * torch.rand(n, 1, 28, 28, generator=g)
    x[y == 1, :, :14] += 0.5
    return TensorDataset(x, y)


def stopper(at_batch):
    """An identity 'attack' that raises KeyboardInterrupt when batch ``at_batch`` begins."""
    count = [0]

    def attack(model, x, y):
        count[0] += 1
        if count[0] == at_batch:
            raise KeyboardInterrupt
        return x
    return attack


def train_toy(state_path=None, resume=False, stop_at_batch=None):
    """LeNet (seeded initialisation) trained with CONFIG on toy_task(); returns the model."""
    torch.manual_seed(0)
    model = LeNet()
    attack = stopper(stop_at_batch) if stop_at_batch else None
    return train(model, toy_task(), CONFIG, "cpu", state_path=state_path, resume=resume,
                 attack=attack)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="where rank 0 writes the trained parameters")
    p.add_argument("--state", help="resume state path")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at-batch", type=int)
    args = p.parse_args()
    model = train_toy(args.state, args.resume, args.stop_at_batch)
    if distributed.is_main():
        save_weights(model, args.out)


if __name__ == "__main__":
    run(main)
