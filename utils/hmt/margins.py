"""Margin distributions: subspace DeepFool on N samples for every subspace of a list.

Outputs in ``out_dir``: ``margins.npy`` [n_subspaces, N] (L2 norm of the minimal perturbation
found, in the model's input space), ``iterations.npy`` [n_subspaces, N] (DeepFool steps;
``max_iter`` means the boundary was not reached), ``margins.png`` and ``run.json``, written as a
unit (run.json last, with the sha256 of the others; utils.common.run_folder): read them with
:func:`load_margin_run`, which refuses a folder whose files disagree. One run at a time writes
in ``out_dir`` (a lock). Each finished subspace is kept in ``out_dir/partial/`` so that an
interrupted run resumes there.
DeepFool's first step, taken at the clean images, is computed once per batch and shared by all
subspaces (when the batches' first steps fit in ``FIRST_STEP_CACHE_BYTES``).

On a CPU, ``workers`` threads can measure different subspaces at once, each with its own copy
of the model and an equal share of torch's threads: a small network's layers (LeNet's) are too
small to share between threads one at a time, so the cores are better used by running several
of them side by side (utils.common.training.default_workers).

Under torchrun every process measures a contiguous shard of the N samples; the shards of each
subspace are gathered on rank 0, which alone reads and writes ``out_dir``. A partial file
holds a whole subspace, so an interrupted run resumes at the next unfinished subspace under
any number of processes.
"""
import copy
import dataclasses
import hashlib
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..common import distributed
from ..common.errors import Interrupted
from ..common.io import npy_bytes, save_bytes, save_json, sha256
from ..common.run_folder import (check_unit, clean_temporary, locked, refuse_other_settings,
                                 write_unit)
from .deepfool import deepfool, first_step
from .plots import margin_plot_png

DEEPFOOL_DEFAULTS = {"num_classes": 10, "overshoot": 0.02, "max_iter": 100, "stem": None,
                     "gradients_at_overshoot": False}


# DeepFool's first step is the same for every subspace (utils.hmt.deepfool.first_step): it is kept
# between subspaces when all batches' first steps fit in this many bytes, else recomputed
FIRST_STEP_CACHE_BYTES = 2 ** 30


def _stem(model, df_args):
    """The stem module of ``model``: ``df_args`` names it (JSON-able, unlike the module)."""
    return model.get_submodule(df_args["stem"]) if df_args.get("stem") else None


def _subspace_margins(model, images, subspace, batch_size, device, df_args, first_steps):
    """Margins and iterations [n] of ``images`` in ``subspace``; ``first_steps``: the dict
    (batch start -> FirstStep) of :func:`_all_first_steps`, shared between the subspaces."""
    df_args = {**df_args, "stem": _stem(model, df_args)}
    margins, iterations = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        first = first_steps.get(start)
        if first is None:  # not kept (too large): this subspace computes its own
            first = first_step(model, batch, df_args["num_classes"], df_args["stem"])
        res = deepfool(model, batch, subspace, start=first, **df_args)
        margins.append(res.margin.cpu())
        iterations.append(res.iterations.cpu())
    if not margins:  # an empty shard (fewer samples than processes)
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    return torch.cat(margins).numpy(), torch.cat(iterations).numpy()


def _all_first_steps(model, images, batch_size, device, df_args):
    """{batch start: FirstStep} for every batch of ``images``, or {} when they do not fit in
    FIRST_STEP_CACHE_BYTES (each subspace then computes its own)."""
    stem = _stem(model, df_args)
    batches = -(-len(images) // batch_size)
    first_steps = {}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        first = first_step(model, batch, df_args["num_classes"], stem)
        if first.grads.nbytes * batches > FIRST_STEP_CACHE_BYTES:
            return {}
        first_steps[start] = first
    return first_steps


def subspace_margins(model, images, todo, batch_size, device, df_args, workers=1):
    """Yield (index, margins [n], iterations [n]) for every (index, subspace) of ``todo``, in
    that order. ``workers`` > 1 (CPU only): that many threads measure subspaces at once, each
    with a copy of ``model`` and ``torch.get_num_threads() // workers`` torch threads."""
    if not todo:
        return
    first_steps = _all_first_steps(model, images, batch_size, device, df_args)
    if workers == 1:
        for i, subspace in todo:
            yield (i, *_subspace_margins(model, images, subspace, batch_size, device, df_args,
                                         first_steps))
        return
    before = torch.get_num_threads()
    local = threading.local()  # each thread: its own model (the stem's hooks)

    def measure(item):
        if not hasattr(local, "model"):
            # with OpenMP each thread has its own count (set in the caller, it would not apply)
            torch.set_num_threads(max(1, before // workers))
            local.model = copy.deepcopy(model)
            # the same first steps, now belonging to the copy's stem (the same function)
            stem = _stem(local.model, df_args)
            local.first_steps = {start: dataclasses.replace(first, stem=stem)
                                 for start, first in first_steps.items()}
        i, subspace = item
        return (i, *_subspace_margins(local.model, images, subspace, batch_size, device,
                                      df_args, local.first_steps))
    pool = ThreadPoolExecutor(workers)
    try:
        yield from pool.map(measure, todo)
    finally:
        pool.shutdown(cancel_futures=True)  # an interrupted run does not finish the others
        torch.set_num_threads(before)  # where the count is shared by all threads


def margin_distribution(model, images, subspaces, out_dir, run_info, batch_size=100,
                        device="cpu", title="margins", deepfool_args=None, workers=1):
    """Margins of ``images`` [N, C, H, W] for every subspace of ``subspaces``.

    deepfool_args: keyword arguments of utils.hmt.deepfool.deepfool; ``stem`` is given as the name
    of a submodule of ``model`` (e.g. ``"1.conv1"``).
    run_info: a JSON-able dict describing the run (model, checkpoint, data, samples...): it is
    written to run.json, and a partial run resumes only if its run_info is the same. Its
    ``settings`` (default: run_info itself with the DeepFool settings and subspaces) are what a
    finished run in ``out_dir`` must have been made with, else nothing is replaced
    (utils.common.run_folder.refuse_other_settings).
    workers: subspaces measured at once (see :func:`subspace_margins`); 1 on CUDA and under
    torchrun, whose processes must take the subspaces in step.
    Returns margins [n_subspaces, N] (float32)."""
    if distributed.init() or torch.device(device).type != "cpu":
        workers = 1
    out_dir = Path(out_dir)
    partial = out_dir / "partial"
    df_args = {**DEEPFOOL_DEFAULTS, **(deepfool_args or {})}
    info = {**run_info, "deepfool": df_args, "subspaces": [str(s) for s in subspaces]}
    info.setdefault("settings", dict(info))
    with locked(out_dir):
        refuse_other_settings(out_dir, "run.json", info["settings"], "out_dir")
        done = _resumable(partial, json.loads(json.dumps(info)), len(subspaces), len(images),
                          df_args["max_iter"])
        model.eval().to(device)
        mine = distributed.shard(images)
        started = time.time()
        todo = [(i, s) for i, s in enumerate(subspaces) if i not in done]
        bar = tqdm(total=len(subspaces), initial=len(subspaces) - len(todo), desc="subspaces",
                   disable=not distributed.is_main())
        try:
            for i, m, it in subspace_margins(model, mine, todo, batch_size, device, df_args,
                                             workers):
                rows = distributed.gather_concat(np.stack([m, it.astype(np.float32)]), axis=1)
                if distributed.is_main():
                    _save_partial(partial, i, rows)  # [2, N]: margins, iterations
                bar.set_postfix(subspace=str(subspaces[i]))
                bar.update()
        except KeyboardInterrupt:
            kept = len(list(partial.glob("subspace_*.npy")))
            raise Interrupted(f"{kept} of {len(subspaces)} subspaces are saved in {partial}") \
                from None
        finally:
            bar.close()
        margins = None
        if distributed.is_main():
            info["workers"] = workers  # of this session (not compared on resuming: rounding)
            margins = _finish(out_dir, partial, info, len(subspaces), df_args, title, started)
    return distributed.broadcast(margins)


def _resumable(partial, fingerprint, n_subspaces, n_samples, max_iter):
    """The indices of the subspaces already in ``partial`` (on every rank) when it belongs to
    the run described by ``fingerprint``; rank 0 clears it otherwise and records the run. A
    damaged subspace file (its sha256 is not the one recorded when it was written, or its
    contents are not margins and iterations of ``n_samples`` samples) is named, removed and
    computed again."""
    done = set()
    if distributed.is_main():
        if partial.is_dir() and _read_json(partial / "run.json") != fingerprint:
            print(f"discarding the partial results in {partial}: they belong to another run")
            shutil.rmtree(partial)
        if partial.is_dir():
            clean_temporary(partial)
        save_json(partial / "run.json", fingerprint)
        hashes = _read_json(partial / HASHES) or {}
        for i in range(n_subspaces):
            path = _partial_file(partial, i)
            if not path.is_file():
                continue
            if hashes.get(path.name) == sha256(path) and _valid_rows(path, n_samples, max_iter):
                done.add(i)
            else:
                print(f"discarding the damaged partial result {path}; it is computed again")
                path.unlink()
    return distributed.broadcast(done)


HASHES = "hashes.json"  # in the partial folder: the sha256 of every subspace file written


def _save_partial(partial, i, rows):
    """Write subspace ``i``'s rows [2, N] and record their sha256 in the partial folder."""
    data = npy_bytes(rows)
    path = save_bytes(_partial_file(partial, i), data)
    hashes = _read_json(partial / HASHES) or {}
    hashes[path.name] = hashlib.sha256(data).hexdigest()
    save_json(partial / HASHES, hashes)


def _valid_rows(path, n_samples, max_iter):
    """Whether ``path`` holds [2, n_samples] finite margins >= 0 and whole iteration counts in
    0..max_iter."""
    try:
        rows = np.load(path, allow_pickle=False)
    except Exception:  # numpy raises many types for damaged files
        return False
    if not isinstance(rows, np.ndarray) or rows.shape != (2, n_samples) \
            or rows.dtype.kind != "f" or not np.isfinite(rows).all():
        return False
    margins, iterations = rows
    return bool((margins >= 0).all() and (iterations == np.round(iterations)).all()
                and (iterations >= 0).all() and (iterations <= max_iter).all())


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


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
    write_unit(out_dir, {"margins.npy": npy_bytes(margins),
                         "iterations.npy": npy_bytes(iterations),
                         "margins.png": margin_plot_png(margins, title)}, "run.json", info)
    shutil.rmtree(partial)
    return margins


def load_margin_run(folder):
    """(run.json as a dict, margins [n_subspaces, N] float32, iterations [n_subspaces, N] int64)
    of the finished margin run in ``folder``, once its files are found to be those run.json
    records (utils.common.run_folder.check_unit): a UserError for a folder without a finished run,
    one written before run.json recorded the files' hashes, or one mixing files of two runs."""
    info = check_unit(folder, "run.json", hint="run the margin script into it again")
    return info, np.load(Path(folder) / "margins.npy"), np.load(Path(folder) / "iterations.npy")
