"""Margin distributions: subspace DeepFool on N samples for every subspace of a list.

Outputs in ``out_dir``: ``margins.npy`` [n_subspaces, N] (L2 norm of the minimal perturbation
found, in the model's input space), ``iterations.npy`` [n_subspaces, N] (DeepFool steps;
``max_iter`` means the boundary was not reached), ``margins.png`` and ``run.json``.
Each finished subspace is kept in ``out_dir/partial/`` so that an interrupted run resumes there.
DeepFool's first step, taken at the clean images, is computed once per batch and shared by all
subspaces (when the batches' first steps fit in ``FIRST_STEP_CACHE_BYTES``).

Under torchrun every process measures a contiguous shard of the N samples; the shards of each
subspace are gathered on rank 0, which alone reads and writes ``out_dir``. A partial file
holds a whole subspace, so an interrupted run resumes at the next unfinished subspace under
any number of processes.
"""
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import distributed
from .deepfool import deepfool, first_step
from .io import save_json, save_npy
from .plots import save_margin_plot

DEEPFOOL_DEFAULTS = {"num_classes": 10, "overshoot": 0.02, "max_iter": 100, "stem": None}


# DeepFool's first step is the same for every subspace (utils.deepfool.first_step): it is kept
# between subspaces when all batches' first steps fit in this many bytes, else recomputed
FIRST_STEP_CACHE_BYTES = 2 ** 30


def _subspace_margins(model, images, subspace, batch_size, device, df_args, first_steps):
    """Margins and iterations [n] of ``images`` in ``subspace``; ``first_steps``: a dict
    (batch start -> FirstStep) shared between the subspaces of a run."""
    df_args = dict(df_args)
    if df_args.get("stem"):  # the name of a submodule (JSON-able, unlike the module)
        df_args["stem"] = model.get_submodule(df_args["stem"])
    margins, iterations = [], []
    batches = -(-len(images) // batch_size)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        first = first_steps.get(start)
        if first is None:
            first = first_step(model, batch, df_args["num_classes"], df_args["stem"])
            if first.grads.nbytes * batches <= FIRST_STEP_CACHE_BYTES:
                first_steps[start] = first
        res = deepfool(model, batch, subspace, start=first, **df_args)
        margins.append(res.margin.cpu())
        iterations.append(res.iterations.cpu())
    if not margins:  # an empty shard (fewer samples than processes)
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    return torch.cat(margins).numpy(), torch.cat(iterations).numpy()


def margin_distribution(model, images, subspaces, out_dir, run_info, batch_size=100,
                        device="cpu", title="margins", deepfool_args=None):
    """Margins of ``images`` [N, C, H, W] for every subspace of ``subspaces``.

    deepfool_args: keyword arguments of utils.deepfool.deepfool; ``stem`` is given as the name
    of a submodule of ``model`` (e.g. ``"1.conv1"``).
    run_info: a JSON-able dict describing the run (model, checkpoint, data, samples...): it is
    written to run.json, and a partial run resumes only if its run_info is the same.
    Returns margins [n_subspaces, N] (float32)."""
    distributed.init()
    out_dir = Path(out_dir)
    partial = out_dir / "partial"
    df_args = {**DEEPFOOL_DEFAULTS, **(deepfool_args or {})}
    info = {**run_info, "deepfool": df_args, "subspaces": [str(s) for s in subspaces]}
    fingerprint = json.loads(json.dumps(info))
    done = set()
    if distributed.is_main():
        if (partial / "run.json").is_file():
            if json.loads((partial / "run.json").read_text()) != fingerprint:
                print(f"discarding the partial results in {partial}: they belong to another run")
                shutil.rmtree(partial)
        save_json(partial / "run.json", fingerprint)
        done = {i for i in range(len(subspaces)) if _partial_file(partial, i).is_file()}
    done = distributed.broadcast(done)

    model.eval().to(device)
    mine = distributed.shard(images)
    started = time.time()
    bar = tqdm(list(enumerate(subspaces)), desc="subspaces", disable=not distributed.is_main())
    first_steps = {}
    for i, subspace in bar:
        if i in done:
            continue
        bar.set_postfix(subspace=str(subspace))
        m, it = _subspace_margins(model, mine, subspace, batch_size, device, df_args,
                                  first_steps)
        rows = distributed.gather_concat(np.stack([m, it.astype(np.float32)]), axis=1)
        if distributed.is_main():
            save_npy(_partial_file(partial, i), rows)  # [2, N]: margins, iterations
    margins = None
    if distributed.is_main():
        margins = _finish(out_dir, partial, info, len(subspaces), df_args, title, started)
    return distributed.broadcast(margins)


def _partial_file(partial, i):
    return partial / f"subspace_{i:03d}.npy"


def _finish(out_dir, partial, info, n_subspaces, df_args, title, started):
    """Assemble the partial files into the outputs of :func:`margin_distribution`."""
    rows = [np.load(_partial_file(partial, i)) for i in range(n_subspaces)]
    margins = np.stack([r[0] for r in rows]).astype(np.float32)
    iterations = np.stack([r[1] for r in rows]).astype(np.int64)

    medians = np.median(margins, axis=1)
    info.update(seconds=round(time.time() - started, 2),
                median_margin=[float(v) for v in medians],
                share_at_iteration_cap=float(np.mean(iterations >= df_args["max_iter"])))
    save_npy(out_dir / "margins.npy", margins)
    save_npy(out_dir / "iterations.npy", iterations)
    save_margin_plot(out_dir / "margins.png", margins, title)
    save_json(out_dir / "run.json", info)
    shutil.rmtree(partial)
    return margins
