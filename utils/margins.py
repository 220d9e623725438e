"""Margin distributions: subspace DeepFool on N samples for every subspace of a list.

Outputs in ``out_dir``: ``margins.npy`` [n_subspaces, N] (L2 norm of the minimal perturbation
found, in the model's input space), ``iterations.npy`` [n_subspaces, N] (DeepFool steps;
``max_iter`` means the boundary was not reached), ``margins.png`` and ``run.json``.
Each finished subspace is kept in ``out_dir/partial/`` so that an interrupted run resumes there.
"""
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .deepfool import deepfool
from .io import save_json, save_npy
from .plots import save_margin_plot

DEEPFOOL_DEFAULTS = {"num_classes": 10, "overshoot": 0.02, "max_iter": 100}


def _subspace_margins(model, images, subspace, batch_size, device, df_args):
    margins, iterations = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        res = deepfool(model, batch, subspace, **df_args)
        margins.append(res.margin.cpu())
        iterations.append(res.iterations.cpu())
    return torch.cat(margins).numpy(), torch.cat(iterations).numpy()


def margin_distribution(model, images, subspaces, out_dir, run_info, batch_size=100,
                        device="cpu", title="margins", deepfool_args=None):
    """Margins of ``images`` [N, C, H, W] for every subspace of ``subspaces``.

    run_info: a JSON-able dict describing the run (model, checkpoint, data, samples...): it is
    written to run.json, and a partial run resumes only if its run_info is the same.
    Returns margins [n_subspaces, N] (float32)."""
    out_dir = Path(out_dir)
    partial = out_dir / "partial"
    df_args = {**DEEPFOOL_DEFAULTS, **(deepfool_args or {})}
    info = {**run_info, "deepfool": df_args, "subspaces": [str(s) for s in subspaces]}
    fingerprint = json.loads(json.dumps(info))
    if (partial / "run.json").is_file():
        if json.loads((partial / "run.json").read_text()) != fingerprint:
            print(f"discarding the partial results in {partial}: they belong to another run")
            shutil.rmtree(partial)
    save_json(partial / "run.json", fingerprint)

    model.eval().to(device)
    started = time.time()
    bar = tqdm(list(enumerate(subspaces)), desc="subspaces")
    for i, subspace in bar:
        done = partial / f"subspace_{i:03d}.npy"
        if done.is_file():
            continue
        bar.set_postfix(subspace=str(subspace))
        m, it = _subspace_margins(model, images, subspace, batch_size, device, df_args)
        save_npy(done, np.stack([m, it.astype(np.float32)]))  # [2, N]: margins, iterations
    rows = [np.load(partial / f"subspace_{i:03d}.npy") for i in range(len(subspaces))]
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
