"""The NAD computation behind ``scripts.nad_computation``: gradients of many random networks
(resumable), their principal directions, and the files of ``nads/``.

Files written in ``out_dir``: ``<Arch>_NADs.npy`` [k, 1024] float32 (one NAD per row, in pixel
space of a 1x32x32 image), ``<Arch>_eigenvals.npy`` [k] float32 (singular values of the
centred gradients, see utils.nads), ``<Arch>_NADs.json`` (how they were computed) and
``<Arch>_NADs.png`` (the first NADs and their Fourier energy). While it runs, the gradients
computed so far are kept in ``.<Arch>_gradients.partial.pt`` so that ``resume=True`` continues
an interrupted run; the file is removed at the end.

Under torchrun the networks are split across the processes (round after round, each process
taking a contiguous block of every round) and gathered on rank 0, which alone writes files:
the results are those of a single-process run, and a run resumes under any number of processes.
"""
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models import NAD_ARCHITECTURES, build_nad_model

from . import distributed
from .errors import UserError
from .experiment import git_commit, versions
from .io import save_json, save_npy, save_torch
from .nad_plots import save_nad_figure
from .nads import METHODS, evaluation_point, iter_gradients, principal_directions

SHAPE = (1, 32, 32)
PASSES_PER_ROUND = 4  # passes per rank between two gathers on rank 0 (and possible saves)


def default_networks_per_pass(arch, method):
    """Networks evaluated together by one vmap call. Finite differences are compute-bound
    (2,048 inputs per network already make a large batch) and measured slower when vectorised
    on a CPU (benchmarks/nads.py), so they loop over networks; autograd of one input per
    network is overhead-bound and vmaps 256 small networks at a time (one above a million
    parameters)."""
    if method == "fd":
        return 1
    params = sum(p.numel() for p in build_nad_model(arch).parameters())
    return 256 if params <= 1_000_000 else 1


def nad_paths(out_dir, arch):
    out_dir = Path(out_dir)
    return {"nads": out_dir / f"{arch}_NADs.npy", "eigenvals": out_dir / f"{arch}_eigenvals.npy",
            "json": out_dir / f"{arch}_NADs.json", "png": out_dir / f"{arch}_NADs.png",
            "partial": out_dir / f".{arch}_gradients.partial.pt"}


def _read_partial(path, config):
    """The resume state in ``path`` (dict), None when there is none, or an error message when
    it belongs to another computation."""
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=True)
    if state["config"] != config:
        return f"{path} belongs to another computation; delete it or rerun without --resume"
    return {"done": int(state["done"]), "elapsed_s": float(state["elapsed_s"]),
            "gradients": state["gradients"]}


def compute_nads(arch, networks=10_000, k=1024, method="fd", step=100.0, seed=0,
                 networks_per_pass=None, batch_size=8192, device="cpu", out_dir="nads",
                 resume=False, save_every_s=120.0, figure_count=8):
    """Estimate the NADs of ``arch`` (a key of models.NAD_ARCHITECTURES) and write them to
    ``out_dir``. Returns the dict of written paths."""
    if arch not in NAD_ARCHITECTURES:
        raise UserError(f"architecture {arch} is not available; choose one of "
                        f"{', '.join(NAD_ARCHITECTURES)}")
    if method not in METHODS:
        raise UserError(f"unknown method {method}; use fd or autograd")
    if not 1 <= k <= min(networks - 1, SHAPE[0] * SHAPE[1] * SHAPE[2]):
        raise UserError(f"--k {k} is impossible with {networks} networks: the centred gradients "
                        f"have rank at most {min(networks - 1, 1024)}; lower --k or raise --networks")
    if step <= 0:
        raise UserError(f"--step must be positive, not {step}")
    networks_per_pass = networks_per_pass or default_networks_per_pass(arch, method)
    paths = nad_paths(out_dir, arch)
    config = {"arch": arch, "networks": networks, "method": method,
              "step": step if method == "fd" else None, "seed": seed, "input_shape": list(SHAPE)}

    distributed.init()
    device = distributed.local_device(device)
    state = _read_partial(paths["partial"], config) if resume and distributed.is_main() else None
    summary = distributed.broadcast(state if state is None or isinstance(state, str)
                                    else (state["done"], state["elapsed_s"]))
    if isinstance(summary, str):  # rank 0 found a partial file of another computation
        raise UserError(summary)
    done, elapsed = summary or (0, 0.0)
    grads = None
    if distributed.is_main():
        grads = np.zeros((networks, int(np.prod(SHAPE))), dtype=np.float32)
        if state:
            grads[:done] = state["gradients"].numpy()
            print(f"resuming after {done} of {networks} networks ({paths['partial']})")

    build = lambda: build_nad_model(arch, num_channels=1, num_classes=1)  # noqa: E731
    x0 = evaluation_point(seed, SHAPE)
    # Networks go in rounds: every rank computes its shard of a round, rank 0 gathers it (and
    # alone keeps the gradients and the resume file), so a run resumes under any process count.
    round_size = networks_per_pass * distributed.world_size() * PASSES_PER_ROUND
    start, last_save = time.perf_counter(), time.perf_counter()
    bar = tqdm(total=networks, initial=done, desc=f"{arch} gradients ({method})", unit="net",
               disable=not distributed.is_main())
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
            if time.perf_counter() - last_save > save_every_s and done < networks:
                save_torch(paths["partial"], {
                    "config": config, "done": done, "gradients": torch.from_numpy(grads[:done]),
                    "elapsed_s": elapsed + time.perf_counter() - start})
                last_save = time.perf_counter()
    bar.close()
    elapsed += time.perf_counter() - start
    if not distributed.is_main():
        return paths

    nads, singular_values = principal_directions(grads, k)
    save_npy(paths["nads"], nads)
    save_npy(paths["eigenvals"], singular_values)
    save_json(paths["json"], {
        **config, "k": k, "evaluation_point": f"x0 ~ N(0, I) drawn with torch seed {seed}",
        "network_seeds": "network i: torch.manual_seed(utils.nads.network_seed(seed, i)), "
                         "default initialisation, eval mode",
        "pca": "centred (as sklearn.decomposition.PCA); eigenvals are singular values",
        "networks_per_pass": networks_per_pass, "batch_size": batch_size,
        "gradient_time_s": round(elapsed, 1), "device": str(device),
        "processes": distributed.world_size(),
        "versions": versions(), "git_commit": git_commit()})
    save_nad_figure(paths["png"], nads, singular_values, count=figure_count,
                    title=f"{arch}: NADs ({method}, {networks} networks)")
    paths["partial"].unlink(missing_ok=True)
    return paths
