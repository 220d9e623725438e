"""The NAD computation behind ``scripts.nad_computation``: gradients of many random networks
(resumable), their principal directions, and the files of ``nads/``.

Files written in ``out_dir`` (default ``Results/nads``; the shipped NADs of ``nads/`` are
replaced only when it is given explicitly): ``<Arch>_NADs.npy`` [k, 1024] float32 (one NAD per
row, in pixel space of a 1x32x32 image), ``<Arch>_eigenvals.npy`` [k] float32 (singular values
of the centred gradients, see utils.nad.estimation), ``<Arch>_NADs.json`` (how they were
computed, with the sha256 of the two arrays: they are written as a unit, see
utils.common.run_folder) and
``<Arch>_NADs.png`` (the first NADs and their Fourier energy). A finished run made with other
settings is never replaced (utils.common.run_folder.refuse_other_settings).

While it runs, the gradients computed so far are appended to the folder
``.<Arch>_gradients.partial/`` as chunks (one file per save, with their sha256 in its
``index.json``) every ``save_every_s`` seconds, and on Ctrl-C or SIGTERM, so that
``resume=True`` continues an interrupted run from its last saved network (a damaged chunk is
named, discarded and computed again); the folder is removed at the end. Networks are seeded by
their index, so a resumed run gives the NADs of an uninterrupted one. One run per architecture
and folder at a time (a lock).

Under torchrun the networks are split across the processes (round after round, each process
taking a contiguous block of every round) and gathered on rank 0, which alone writes files:
the results are those of a single-process run, and a run resumes under any number of processes.
"""
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from models import build_nad_model

from ..common import distributed
from ..common.data import ROOT
from ..common.errors import Interrupted, UserError
from ..common.io import npy_bytes, save_bytes, save_json, sha256
from ..common.memory import check_memory
from ..common.provenance import git_commit, versions
from ..common.run_folder import clean_temporary, locked, refuse_other_settings, write_unit
from .estimation import (METHODS, check_architecture, evaluation_point, iter_gradients,
                         principal_directions)
from .files import nad_paths
from .plots import save_nad_figure

SHAPE = (1, 32, 32)
PIXELS = int(np.prod(SHAPE))
PASSES_PER_ROUND = 4  # passes per rank between two gathers on rank 0 (and possible saves)
DEFAULT_OUT_DIR = Path("Results") / "nads"
SHIPPED = ROOT / "nads"  # the precomputed NADs of the repository
VMAP_NETWORKS = 256  # networks per vmap call for autograd (networks up to a million parameters)
# bytes of memory per gradient value: float32 gradients, then float64 copies in the PCA
BYTES_PER_VALUE = 4 + 8 + 8


@dataclass
class NADConfig:
    """One NAD computation (the options of scripts.nad_computation, of the same names).

    arch: a key of models.NAD_ARCHITECTURES; networks: random networks drawn; k: NADs kept;
    method: 'fd' (central finite differences with ``step``, the paper's) or 'autograd';
    seed: of x0 and of the networks; networks_per_pass: networks per vmap call (None: the
    default of :func:`default_networks_per_pass`); batch_size: (network, input) evaluations
    per forward pass; save_every_s: seconds between saves of the gradients (0: every round);
    figure_count: NADs drawn in the PNG."""
    arch: str
    networks: int = 10_000
    k: int = 1024
    method: str = "fd"
    step: float = 100.0
    seed: int = 0
    networks_per_pass: Optional[int] = None
    batch_size: int = 8192
    device: str = "cpu"
    out_dir: str = str(DEFAULT_OUT_DIR)
    resume: bool = False
    save_every_s: float = 120.0
    figure_count: int = 8

    def identity(self):
        """What the gradients depend on (a resume must match it)."""
        return {"arch": self.arch, "networks": self.networks, "method": self.method,
                "step": self.step if self.method == "fd" else None, "seed": self.seed,
                "input_shape": list(SHAPE)}

    def settings(self):
        """What decides the written NADs (a finished run with others is not replaced)."""
        return {**self.identity(), "k": self.k}


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


def _check(config):
    """A UserError for settings that cannot give NADs, before any work."""
    check_architecture(config.arch)
    if config.method not in METHODS:
        raise UserError(f"unknown method {config.method}; use fd or autograd")
    if not 1 <= config.k <= min(config.networks - 1, PIXELS):
        raise UserError(f"`k` {config.k} is impossible with {config.networks} networks: the "
                        f"centred gradients have rank at most {min(config.networks - 1, PIXELS)};"
                        f" lower `k` or raise `networks`")
    if not (math.isfinite(config.step) and config.step > 0):
        raise UserError(f"`step` must be a positive finite number, not {config.step}")
    if not (math.isfinite(config.save_every_s) and config.save_every_s >= 0):
        raise UserError(f"`save_every` must be a finite number of seconds >= 0, not "
                        f"{config.save_every_s}")
    check_memory(config.networks * PIXELS * BYTES_PER_VALUE,
                 f"the gradients of {config.networks:,} networks and their PCA",
                 "lower `networks`")
    if config.method == "fd":
        _check_step(config.step, evaluation_point(config.seed, SHAPE))


def _check_step(step, x0):
    """A UserError when x0 +- step cannot be told apart from x0 in x0's precision (every
    finite difference along such a pixel would be 0) or overflows it."""
    moved = (x0 + step) - (x0 - step)
    if not moved.isfinite().all():
        raise UserError(f"`step` {step:g} overflows the {x0.dtype} inputs x0 +- step; use a "
                        f"smaller `step` (the paper's is 100)")
    if (moved == 0).any():
        smallest = float(np.spacing(np.float32(x0.abs().max()))) * 4
        raise UserError(f"`step` {step:g} is below the {x0.dtype} resolution of x0 (x0 + step "
                        f"equals x0 - step), so the finite differences would be 0; use a larger "
                        f"`step`, at least {smallest:.0e} (the paper's is 100)")


def _check_gradients(grads, config):
    """A UserError for gradients that cannot give NADs (rank 0, after computing them)."""
    if not np.isfinite(grads).all():
        raise UserError(f"some gradients of {config.arch} are not finite (the networks overflow "
                        f"at x0 +- {config.step:g}); use a smaller `step` or `method` autograd")
    if not np.abs(grads).max() > 0:
        raise UserError(f"every gradient of {config.arch} is 0 (the networks' outputs do not "
                        f"change over x0 +- {config.step:g}); use a larger `step`")


def compute_nads(config):
    """Estimate the NADs of ``config`` (a NADConfig) and write them to ``config.out_dir``.
    Returns the dict of written paths."""
    _check(config)
    networks_per_pass = config.networks_per_pass or default_networks_per_pass(config.arch,
                                                                              config.method)
    out_dir = Path(config.out_dir)
    paths = nad_paths(out_dir, config.arch)
    distributed.init()
    device = distributed.local_device(config.device)
    with locked(out_dir, scope=config.arch):
        refuse_other_settings(out_dir, paths["json"].name, config.settings(), "out_dir")
        start = None
        if distributed.is_main():
            start = _resume_state(paths["partial"], config)
        done, elapsed = distributed.broadcast((start[0], start[1]) if start else (0, 0.0))
        if distributed.is_main() and out_dir.resolve() == SHIPPED.resolve():
            print(f"{out_dir}: the shipped {config.arch} NADs there will be replaced")
        grads, elapsed = _gradients(config, networks_per_pass, device, paths["partial"],
                                    start, done, elapsed)
        if not distributed.is_main():
            return paths
        _check_gradients(grads, config)
        _write(config, grads, paths, networks_per_pass, elapsed, device)
        shutil.rmtree(paths["partial"], ignore_errors=True)
    return paths


def _write(config, grads, paths, networks_per_pass, elapsed, device):
    """The NADs of ``grads`` and their files (a unit, and the figure)."""
    nads, singular_values = principal_directions(grads, config.k)
    save_nad_figure(paths["png"], nads, singular_values, count=config.figure_count,
                    title=f"{config.arch}: NADs ({config.method}, {config.networks} networks)")
    meta = {**config.identity(), "k": config.k, "settings": config.settings(),
            "evaluation_point": f"x0 ~ N(0, I) drawn with torch seed {config.seed}",
            "network_seeds": "network i: torch.manual_seed(utils.nad.estimation.network_seed("
                             "seed, i)), default initialisation, eval mode",
            "pca": "centred (as sklearn.decomposition.PCA); eigenvals are singular values",
            "networks_per_pass": networks_per_pass, "batch_size": config.batch_size,
            "gradient_time_s": round(elapsed, 1), "device": str(device),
            "processes": distributed.world_size(),
            "versions": versions(), "git_commit": git_commit()}
    write_unit(paths["json"].parent, {paths["nads"].name: npy_bytes(nads),
                                      paths["eigenvals"].name: npy_bytes(singular_values)},
               paths["json"].name, meta)


# ------------------------------------------------------------------ the resumable gradients

INDEX = "index.json"


def _read_index(partial):
    try:
        index = json.loads((partial / INDEX).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(index, dict) and isinstance(index.get("chunks"), list) \
        and isinstance(index.get("elapsed_s"), (int, float)) and "config" in index
    return index if ok else None


def _valid_chunk(partial, entry, first):
    """The gradients [count, 1024] of the chunk ``entry`` of the index (which must start at
    network ``first``), or None when it is missing or damaged."""
    try:
        path = partial / entry["file"]
        if entry["first"] != first or sha256(path) != entry["sha256"]:
            return None
        grads = np.load(path, allow_pickle=False)
    except Exception:  # a missing key, file or a damaged array
        return None
    if grads.shape != (entry["count"], PIXELS) or grads.dtype != np.float32 \
            or not np.isfinite(grads).all():
        return None
    return grads


def _resume_state(partial, config):
    """(networks done, seconds spent, their gradients [done, 1024]) of the interrupted run in
    ``partial`` when ``config.resume``, None when there is none (said so). Damaged chunks are
    named and discarded with every later one (computed again); a UserError when the folder
    belongs to another computation, or when it exists and ``config.resume`` is not set."""
    if not partial.is_dir():
        if config.resume:
            print(f"no interrupted run to resume ({partial} does not exist); starting from the "
                  f"first network")
        return None
    index = _read_index(partial)
    if not config.resume:
        held = f" ({sum(c.get('count', 0) for c in index['chunks'])} networks)" if index else ""
        raise UserError(f"{partial} holds the gradients of an interrupted run{held}; pass "
                        f"`resume` to continue it, or delete it to start again")
    if index is None:
        print(f"discarding {partial}: its index is damaged; starting from the first network")
        shutil.rmtree(partial)
        return None
    if index["config"] != config.identity():
        raise UserError(f"{partial} holds the gradients of another computation; delete it or "
                        f"rerun without `resume` into another folder")
    clean_temporary(partial)
    chunks, done = [], 0
    for k, entry in enumerate(index["chunks"]):
        grads = _valid_chunk(partial, entry, done)
        if grads is None:
            print(f"discarding the damaged chunk {entry.get('file')} of {partial} and the "
                  f"{len(index['chunks']) - k - 1} after it; networks from {done} on are "
                  f"computed again")
            for later in index["chunks"][k:]:
                (partial / str(later.get("file"))).unlink(missing_ok=True)
            index["chunks"] = index["chunks"][:k]
            save_json(partial / INDEX, index)
            break
        chunks.append(grads)
        done += len(grads)
    if done > config.networks:
        raise UserError(f"{partial} holds more networks than asked for; delete it")
    print(f"resuming after {done} of {config.networks} networks ({partial})")
    grads = np.concatenate(chunks) if chunks else np.zeros((0, PIXELS), np.float32)
    return done, float(index["elapsed_s"]), grads


def append_chunk(partial, config, grads, first, elapsed):
    """Append ``grads`` [n, 1024] (networks ``first`` ..) to the resume folder."""
    index = _read_index(partial) if partial.is_dir() else None
    if index is None:
        index = {"config": config.identity(), "chunks": [], "elapsed_s": 0.0}
    data = npy_bytes(np.ascontiguousarray(grads, dtype=np.float32))
    name = f"chunk_{first:09d}.npy"
    save_bytes(partial / name, data)
    index["chunks"].append({"file": name, "first": first, "count": len(grads),
                            "sha256": sha256(partial / name)})
    index["elapsed_s"] = elapsed
    save_json(partial / INDEX, index)


def _gradients(config, networks_per_pass, device, partial, start, done, elapsed):
    """(gradients [networks, 1024] float32 on rank 0, None elsewhere; seconds spent computing
    them, this run and the resumed ones together). ``start``: rank 0's resume state or None;
    ``done``, ``elapsed``: of it, on every rank. Appends to ``partial`` on rank 0 every
    ``config.save_every_s`` seconds and on Ctrl-C (then raises utils.common.errors.Interrupted)."""
    saved = done  # networks whose gradients are in the resume folder
    grads = None
    if distributed.is_main():
        grads = np.zeros((config.networks, PIXELS), dtype=np.float32)
        if start:
            grads[:done] = start[2]

    build = lambda: build_nad_model(config.arch, num_channels=1, num_classes=1)  # noqa: E731
    x0 = evaluation_point(config.seed, SHAPE)
    # Networks go in rounds: every rank computes its shard of a round, rank 0 gathers it (and
    # alone keeps the gradients and the resume folder), so a run resumes under any process count
    round_size = networks_per_pass * distributed.world_size() * PASSES_PER_ROUND
    began, last_save = time.perf_counter(), time.perf_counter()

    def save():
        nonlocal saved, last_save
        append_chunk(partial, config, grads[saved:done], saved,
                      elapsed + time.perf_counter() - began)
        saved, last_save = done, time.perf_counter()

    bar = tqdm(total=config.networks, initial=done, unit="net",
               desc=f"{config.arch} gradients ({config.method})",
               disable=not distributed.is_main())
    try:
        for lo in range(done, config.networks, round_size):
            hi = min(lo + round_size, config.networks)
            mine = distributed.shard(range(lo, hi))
            part = [g for _, g in iter_gradients(
                build, mine.stop, x0, config.method, config.step, config.seed,
                start=mine.start, networks_per_pass=networks_per_pass,
                batch_size=config.batch_size, device=device)]
            part = torch.cat(part) if part else torch.zeros(0, PIXELS)
            whole = distributed.gather_concat(part)
            if distributed.is_main():
                grads[lo:hi] = whole.numpy()
            done = hi
            bar.update(hi - lo)
            if distributed.is_main() and done < config.networks \
                    and time.perf_counter() - last_save >= config.save_every_s:
                save()
    except KeyboardInterrupt:
        if not distributed.is_main() or not done:
            raise
        if done > saved:
            save()
        raise Interrupted(f"the gradients of {done} of {config.networks} networks are saved in "
                          f"{partial}", ["--resume"]) from None
    finally:
        bar.close()
    return grads, elapsed + time.perf_counter() - began
