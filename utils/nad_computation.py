"""The NAD computation behind ``scripts.nad_computation``: gradients of many random networks
(resumable), their principal directions, and the files of ``nads/``.

Files written in ``out_dir`` (default ``Results/nads``; the shipped NADs of ``nads/`` are
replaced only when it is given explicitly): ``<Arch>_NADs.npy`` [k, 1024] float32 (one NAD per
row, in pixel space of a 1x32x32 image), ``<Arch>_eigenvals.npy`` [k] float32 (singular values
of the centred gradients, see utils.nads), ``<Arch>_NADs.json`` (how they were computed, with
the sha256 of the two arrays: they are written as a unit, see utils.run_folder) and
``<Arch>_NADs.png`` (the first NADs and their Fourier energy). While it runs, the gradients
computed so far are saved in ``.<Arch>_gradients.partial.pt`` every ``save_every_s`` seconds
and on Ctrl-C, so that ``resume=True`` continues an interrupted run; the file is removed at the
end. One run per architecture and folder at a time (a lock).

Under torchrun the networks are split across the processes (round after round, each process
taking a contiguous block of every round) and gathered on rank 0, which alone writes files:
the results are those of a single-process run, and a run resumes under any number of processes.
"""
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models import NAD_ARCHITECTURES, build_nad_model

from . import distributed
from .checkpoints import read_torch_file
from .data import ROOT
from .errors import Interrupted, UserError
from .experiment import git_commit, versions
from .io import save_npy, save_torch
from .nad_files import nad_paths
from .nad_plots import save_nad_figure
from .nads import METHODS, evaluation_point, iter_gradients, principal_directions
from .run_folder import locked, write_unit

SHAPE = (1, 32, 32)
PASSES_PER_ROUND = 4  # passes per rank between two gathers on rank 0 (and possible saves)
DEFAULT_OUT_DIR = Path("Results") / "nads"
SHIPPED = ROOT / "nads"  # the precomputed NADs of the repository
VMAP_NETWORKS = 256  # networks per vmap call for autograd (networks up to a million parameters)


def default_networks_per_pass(arch, method):
    """Networks evaluated together by one vmap call. Finite differences are compute-bound
    (2,048 inputs per network already make a large batch) and measured slower when vectorised
    on a CPU (benchmarks/nads.py), so they loop over networks; autograd of one input per
    network is overhead-bound and vmaps 256 small networks at a time (one above a million
    parameters)."""
    if method == "fd":
        return 1
    params = sum(p.numel() for p in build_nad_model(arch).parameters())
    return VMAP_NETWORKS if params <= 1_000_000 else 1


def _read_partial(path, config):
    """The resume state in ``path`` (dict), None when there is none, or an error message when
    it is damaged or belongs to another computation."""
    if not path.is_file():
        return None
    redo = "delete it, or rerun without --resume to start again"
    try:
        state = read_torch_file(path, "resume file")
    except UserError as e:
        return f"{e}; {redo}"
    d = int(np.prod(SHAPE))
    if not isinstance(state, dict) or not isinstance(state.get("done"), int) \
            or not isinstance(state.get("elapsed_s"), float) \
            or not torch.is_tensor(state.get("gradients")) \
            or tuple(state["gradients"].shape) != (state["done"], d) \
            or not state["gradients"].isfinite().all() or state.get("config") is None:
        return f"the resume file {path} is damaged (not the gradients of a NAD run); {redo}"
    if state["config"] != config or state["done"] > config["networks"]:
        return f"{path} belongs to another computation; delete it or rerun without --resume"
    return {"done": state["done"], "elapsed_s": state["elapsed_s"],
            "gradients": state["gradients"]}


def _save_partial(path, config, gradients, elapsed_s):
    """The resume file: ``gradients`` [done, 1024] of the first networks."""
    save_torch(path, {"config": config, "done": len(gradients),
                      "gradients": torch.from_numpy(gradients), "elapsed_s": elapsed_s})


def compute_nads(arch, networks=10_000, k=1024, method="fd", step=100.0, seed=0,
                 networks_per_pass=None, batch_size=8192, device="cpu",
                 out_dir=DEFAULT_OUT_DIR, resume=False, save_every_s=120.0, figure_count=8):
    """Estimate the NADs of ``arch`` (a key of models.NAD_ARCHITECTURES) and write them to
    ``out_dir``; the gradients so far are saved for ``resume`` every ``save_every_s`` seconds
    (0: after every round of passes) and on Ctrl-C. Returns the dict of written paths."""
    if arch not in NAD_ARCHITECTURES:
        raise UserError(f"architecture {arch} is not available; choose one of "
                        f"{', '.join(NAD_ARCHITECTURES)}")
    if method not in METHODS:
        raise UserError(f"unknown method {method}; use fd or autograd")
    if not 1 <= k <= min(networks - 1, SHAPE[0] * SHAPE[1] * SHAPE[2]):
        raise UserError(f"--k {k} is impossible with {networks} networks: the centred gradients "
                        f"have rank at most {min(networks - 1, 1024)}; lower --k or raise "
                        f"--networks")
    if not (math.isfinite(step) and step > 0):
        raise UserError(f"--step must be a positive finite number, not {step}")
    if not (math.isfinite(save_every_s) and save_every_s >= 0):
        raise UserError(f"--save-every must be a finite number of seconds >= 0, not "
                        f"{save_every_s}")
    networks_per_pass = networks_per_pass or default_networks_per_pass(arch, method)
    paths = nad_paths(out_dir, arch)
    config = {"arch": arch, "networks": networks, "method": method,
              "step": step if method == "fd" else None, "seed": seed, "input_shape": list(SHAPE)}

    distributed.init()
    device = distributed.local_device(device)
    with locked(out_dir, scope=arch):
        state = _read_partial(paths["partial"], config) \
            if resume and distributed.is_main() else None
        summary = distributed.broadcast(state if state is None or isinstance(state, str)
                                        else (state["done"], state["elapsed_s"]))
        if isinstance(summary, str):  # rank 0 found a damaged partial file or another's
            raise UserError(summary)
        if distributed.is_main() and Path(out_dir).resolve() == SHIPPED.resolve():
            print(f"--out-dir {out_dir}: the shipped {arch} NADs there will be replaced")
        grads, elapsed = _gradients(arch, networks, method, step, seed, networks_per_pass,
                                    batch_size, device, paths["partial"], config, state,
                                    summary, save_every_s)
        if not distributed.is_main():
            return paths
        if not np.isfinite(grads).all():
            raise UserError(f"some gradients of {arch} are not finite (overflow); use a smaller "
                            f"--step or --method autograd")
        nads, singular_values = principal_directions(grads, k)
        save_nad_figure(paths["png"], nads, singular_values, count=figure_count,
                        title=f"{arch}: NADs ({method}, {networks} networks)")
        meta = {**config, "k": k, "evaluation_point": f"x0 ~ N(0, I) drawn with torch seed {seed}",
                "network_seeds": "network i: torch.manual_seed(utils.nads.network_seed(seed, i)), "
                                 "default initialisation, eval mode",
                "pca": "centred (as sklearn.decomposition.PCA); eigenvals are singular values",
                "networks_per_pass": networks_per_pass, "batch_size": batch_size,
                "gradient_time_s": round(elapsed, 1), "device": str(device),
                "processes": distributed.world_size(),
                "versions": versions(), "git_commit": git_commit()}
        write_unit(out_dir, {paths["nads"].name: lambda path: save_npy(path, nads),
                             paths["eigenvals"].name: lambda path: save_npy(path, singular_values)},
                   paths["json"].name, meta)
        paths["partial"].unlink(missing_ok=True)
    return paths


def _gradients(arch, networks, method, step, seed, networks_per_pass, batch_size, device,
               partial, config, state, summary, save_every_s):
    """(gradients [networks, 1024] float32 on rank 0, None elsewhere; seconds spent computing
    them, this run and the resumed ones together). ``state``: rank 0's resume state or None;
    ``summary``: (done, elapsed) of it on every rank. Saves ``partial`` on rank 0 every
    ``save_every_s`` seconds and on Ctrl-C (then raises utils.errors.Interrupted)."""
    done, elapsed = summary or (0, 0.0)
    saved = done  # networks whose gradients are in the partial file
    grads = None
    if distributed.is_main():
        grads = np.zeros((networks, int(np.prod(SHAPE))), dtype=np.float32)
        if state:
            grads[:done] = state["gradients"].numpy()
            print(f"resuming after {done} of {networks} networks ({partial})")

    build = lambda: build_nad_model(arch, num_channels=1, num_classes=1)  # noqa: E731
    x0 = evaluation_point(seed, SHAPE)
    # Networks go in rounds: every rank computes its shard of a round, rank 0 gathers it (and
    # alone keeps the gradients and the resume file), so a run resumes under any process count.
    round_size = networks_per_pass * distributed.world_size() * PASSES_PER_ROUND
    start, last_save = time.perf_counter(), time.perf_counter()
    bar = tqdm(total=networks, initial=done, desc=f"{arch} gradients ({method})", unit="net",
               disable=not distributed.is_main())
    try:
        for lo in range(done, networks, round_size):
            hi = min(lo + round_size, networks)
            mine = distributed.shard(range(lo, hi))
            part = [g for _, g in iter_gradients(build, mine.stop, x0, method, step, seed,
                                                 start=mine.start,
                                                 networks_per_pass=networks_per_pass,
                                                 batch_size=batch_size, device=device)]
            part = torch.cat(part) if part else torch.zeros(0, int(np.prod(SHAPE)))
            whole = distributed.gather_concat(part)
            done = hi
            bar.update(hi - lo)
            if distributed.is_main():
                grads[lo:hi] = whole.numpy()
                if time.perf_counter() - last_save >= save_every_s and done < networks:
                    _save_partial(partial, config, grads[:done],
                                  elapsed + time.perf_counter() - start)
                    saved, last_save = done, time.perf_counter()
    except KeyboardInterrupt:
        if not distributed.is_main() or not done:
            raise
        if done > saved:
            _save_partial(partial, config, grads[:done], elapsed + time.perf_counter() - start)
        raise Interrupted(f"the gradients of {done} of {networks} networks are saved in "
                          f"{partial}", ["--resume"]) from None
    finally:
        bar.close()
    return grads, elapsed + time.perf_counter() - start
