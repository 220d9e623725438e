"""Batched subspace DeepFool against the same DeepFool one image at a time (the original's way:
one image, one class gradient at a time, every backward pass down to the image), on the shipped
MNIST LeNet and 100 seeded MNIST test samples, in the same run. Prints agreement and
`speedup: <ratio>x`.
The batched run is the one of the margin scripts for LeNet
(``utils.hmt.margins.subspace_margins``): gradients stop at the first convolution (``stem``), the
first step, the same in every subspace, is computed once (``first_step``; see
utils/hmt/deepfool.py), and on a CPU several subspaces are measured at once
(utils.common.training.default_workers: one per torch thread for LeNet).

    python -m benchmarks.deepfool [--samples 100] [--subspaces all|0,10,20] [--repeat 1]
"""
import argparse
import time

import numpy as np
import torch

from models import build_model, deepfool_stem, normalized
from utils.common.checkpoints import load_weights
from utils.common.cli import run
from utils.common.data import load_mnist
from utils.common.errors import UserError
from utils.common.training import default_workers
from utils.hmt.deepfool import deepfool
from utils.hmt.experiment import default_checkpoint
from utils.hmt.margins import DEEPFOOL_DEFAULTS, subspace_margins
from utils.hmt.subspaces import diagonal_blocks


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--subspaces", default="all", help="indices among the 21 MNIST blocks")
    p.add_argument("--repeat", type=int, default=1,
                   help="alternating runs of both paths; each path's fastest counts")
    args = p.parse_args()
    if args.repeat < 1:
        raise UserError(f"--repeat must be at least 1, not {args.repeat}")

    data = load_mnist("sample")
    net = load_weights(build_model("MNIST", "LeNet"), default_checkpoint("MNIST", "LeNet"))
    model = normalized(net, data.normalization).eval()
    idx = np.random.default_rng(0).choice(len(data.test), args.samples, replace=False)
    images = data.test.tensors[0][torch.as_tensor(idx)]
    blocks = diagonal_blocks(8, 1, 1, 28, 28)
    chosen = blocks if args.subspaces == "all" else [blocks[int(i)] for i in
                                                     args.subspaces.split(",")]
    workers = default_workers("cpu", model)  # as the margin scripts choose them
    print(f"LeNet, {args.samples} MNIST test samples, {len(chosen)} subspaces, "
          f"torch threads {torch.get_num_threads()}, batched run with {workers} worker(s)")

    df_args = {**DEEPFOOL_DEFAULTS, "stem": deepfool_stem("LeNet")}  # as the margin scripts
    # both paths run before the clock starts (the batched one on two subspaces, so that every
    # worker starts; the other on one image): one-time set-up (oneDNN kernels for these
    # shapes and thread counts, the allocator's first blocks) is not what is compared
    list(subspace_margins(model, images, list(enumerate(chosen[:2])), len(images), "cpu",
                          df_args, workers))
    deepfool(model, images[:1], chosen[0])

    def batched():
        return [m for _, m, _ in subspace_margins(model, images, list(enumerate(chosen)),
                                                  len(images), "cpu", df_args, workers)]

    def one_at_a_time():
        return [np.array([float(deepfool(model, x[None], block).margin[0]) for x in images])
                for block in chosen]

    # the two paths alternate; each keeps its fastest run (the others were slowed by
    # something else on the machine, which moves a single run by 10-30 % here)
    paths = {"batched": batched, "one at a time": one_at_a_time}
    times, margins = {name: [] for name in paths}, {}
    for _ in range(args.repeat):
        for name, path in paths.items():
            t0 = time.perf_counter()
            margins[name] = np.stack(path())
            times[name].append(time.perf_counter() - t0)
    fast, slow = margins["batched"], margins["one at a time"]
    t_fast, t_slow = min(times["batched"]), min(times["one at a time"])
    rel = np.abs(fast - slow) / np.maximum(np.abs(slow), 1e-12)
    close = int((rel <= 1e-3).sum())
    within = close / rel.size
    med_rel = np.abs(np.median(fast, 1) - np.median(slow, 1)) / np.median(slow, 1)
    for b, mf, ms in zip(chosen, np.median(fast, 1), np.median(slow, 1)):
        print(f"{str(b):>14}: median margin batched {mf:.5f}  one at a time {ms:.5f}")
    print(f"samples within 1e-3 relative: {close} of {rel.size} ({100 * within:.2f}%)  "
          f"(max relative difference {rel.max():.2e}); "
          f"largest median difference {med_rel.max():.2e}")
    print(f"one image at a time: {t_slow:.2f} s   batched: {t_fast:.2f} s")
    if args.repeat > 1:
        print("  fastest of " + "; ".join(f"{name} " + ", ".join(f"{t:.2f}" for t in ts) + " s"
                                          for name, ts in times.items()))
    if within < 0.99 or med_rel.max() > 1e-3:
        raise SystemExit("batched DeepFool disagrees with DeepFool one image at a time")
    print(f"speedup: {t_slow / t_fast:.1f}x")


if __name__ == "__main__":
    run(main)
