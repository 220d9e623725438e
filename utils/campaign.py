"""The GPU campaign: a fixed priority list of steps, each a call of one of the scripts with the
papers' settings, run within a time budget on whatever machine is lent, keeping every finished
cell, and continued where the last lent session stopped.

The scripts write their results into the campaign's output folder as they would into
``Results/`` (``directional_bias/<Arch>/``, ``nads/``, ``margin_MNIST/ResNet18/``...), so the
sweeps of one architecture share their directions and resume cell by cell; every step keeps its
log and its record (the commands, their exit status, the cells done before and after, seconds
per cell) in ``steps/<step>.log`` and ``steps/<step>.json``. ``summary.json`` records the
machine (GPU name, torch version) and every step.

How a step runs: a sweep first trains a *probe* (its first directions), whose cost per cell gives
the estimates of the plan printed next; then the rest, with a deadline that leaves the campaign
time to stop cleanly: the step is sent SIGTERM, which every script answers by keeping its
finished work (directions, networks, epochs). A step that cannot start before the budget runs
out is left for the next session. With ``resume_from`` the committed results of earlier sessions
(docs/data: the sweeps' CSV and JSON) are copied into a step's folder first, so that no
committed cell is run again.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from .common.data import ROOT
from .common.io import save_json
from .common.provenance import git_commit, versions

DEEP = ("VGG11", "ResNet18", "DenseNet121")
NAD_INDICES = "0,1,2,5,10,20,50,100,200,500,1000"
GRACE_S = 60  # how long a step may take to save its work after SIGTERM
RESERVE_S = 20  # kept for the summary and the copy home
# seconds per direction of a 20-epoch D(v) training on one GPU: guesses until measured
PRIOR_DIRECTION_S = {"VGG11": 20.0, "ResNet18": 30.0, "DenseNet121": 60.0, "LeNet": 2.0}
# networks per second of the finite-difference NADs, measured on a lent H200 (nads/README.md)
PRIOR_NETWORKS_PER_S = {"VGG11": 7.1, "ResNet18": 6.3, "DenseNet121": 3.4}


@dataclass
class Step:
    """One step: ``python -m module`` with ``args`` (full scale) or ``tiny`` ({out} and {device}
    are filled in). kind: 'sweep' (cells are the directions of a directional_bias sweep, counted
    in the CSV ``table`` of the step folder), 'nads' (networks of a NAD computation), 'run'
    (one indivisible unit: a test run, a training). cells, tiny_cells: how many there are;
    prior_s: seconds per cell assumed before a measurement; resume: the folder of the step's
    committed results, relative to both ``resume_from`` and the step folder; probe: extra
    arguments of the first, short call of a sweep."""
    name: str
    module: str
    args: list
    tiny: list
    kind: str
    cells: int
    tiny_cells: int
    prior_s: float
    table: Optional[str] = None
    resume: Optional[str] = None
    probe: list = field(default_factory=list)


def _sweep(what, arch, cells, probe=2):
    spec = {"grid8": ["--fourier-grid", "--grid-step", "4"],
            "grid16": ["--fourier-grid", "--grid-step", "2"],
            "nad-indices": ["--nad-indices", NAD_INDICES]}[what]
    # tiny: grid8 trains the 2x2 lattice of step 16; grid16 two more of the step-8 lattice,
    # so that every tiny sweep adds cells to the table they share
    tiny = {"nad-indices": ["--nad-indices", "0,1"],
            "grid16": ["--fourier-grid", "--grid-step", "8", "--max-directions", "2"]}.get(
        what, ["--fourier-grid", "--grid-step", "16"])
    base = ["--arch", arch, "--device", "{device}", "--results-dir", "{out}"]
    table = "nad_indices.csv" if what == "nad-indices" else "fourier_directions.csv"
    return Step(f"{what}-{arch}", "scripts.directional_bias", base + spec,
                base + tiny + ["--train-samples", "16", "--test-samples", "16", "--epochs", "1"],
                "sweep", cells, {"nad-indices": 2, "grid16": 6}.get(what, 4),
                PRIOR_DIRECTION_S[arch], f"directional_bias/{arch}/{table}",
                f"directional_bias/{arch}", ["--max-directions", str(probe)])


def steps():
    """The campaign, in order of priority: the GPU tests; the 8x8 sub-lattice of each deep
    architecture's Fourier grid (34 distinct directions); their D(NAD_i); the rest of the 16x16
    grids (130 directions); LeNet's 16x16 grid (its GPU time); NADs from 10,000 networks; the
    MNIST ResNet18 checkpoints and their margins."""
    out = [Step("gpu-tests", "pytest", ["-q", "tests/test_cuda.py"],
                ["-q", "--co", "tests/test_cuda.py"], "run", 1, 1, 120.0)]
    out += [_sweep("grid8", arch, 34) for arch in DEEP]
    out += [_sweep("nad-indices", arch, 11) for arch in DEEP]
    out += [_sweep("grid16", arch, 130, probe=4) for arch in DEEP + ("LeNet",)]
    for arch in DEEP:
        out.append(Step(f"nads-{arch}", "scripts.nad_computation",
                        ["--arch", arch, "--networks", "10000", "--device", "{device}",
                         "--out-dir", "{out}/nads", "--resume", "--save-every", "30"],
                        # tiny: exact gradients of 3 networks (finite differences of a deep
                        # network take minutes on a CPU)
                        ["--arch", arch, "--networks", "3", "--k", "2", "--method", "autograd",
                         "--device", "{device}", "--out-dir", "{out}/nads", "--resume"],
                        "nads", 10_000, 3, 1 / PRIOR_NETWORKS_PER_S[arch]))
    for script in ("margin_mnist", "margin_flipped_mnist"):
        out.append(Step(f"{script}-ResNet18", f"scripts.{script}",
                        ["--model", "ResNet18", "--train", "--resume", "--device", "{device}",
                         "--results-dir", "{out}"],
                        # tiny: LeNet for one epoch (ResNet18 takes minutes on a CPU)
                        ["--model", "LeNet", "--train", "--resume", "--epochs", "1", "--samples",
                         "2", "--block-size", "28", "--device", "{device}", "--results-dir",
                         "{out}"], "run", 1, 1, 300.0))
    return out


def done_cells(step, out):
    """Cells of ``step`` finished in the campaign folder ``out`` (for a sweep: the rows of its
    table, which other sweeps of the architecture may share)."""
    folder = out
    if step.kind == "sweep":
        path = folder / step.table
        lines = path.read_text().strip().splitlines() if path.is_file() else []
        return max(0, len(lines) - 1)
    if step.kind == "nads":
        arch = step.args[step.args.index("--arch") + 1]
        final = folder / "nads" / f"{arch}_NADs.json"
        index = folder / "nads" / f".{arch}_gradients.partial" / "index.json"
        if final.is_file():
            return json.loads(final.read_text())["networks"]
        if index.is_file():
            return sum(c["count"] for c in json.loads(index.read_text())["chunks"])
        return 0
    record = folder / "steps" / f"{step.name}.json"
    return int(record.is_file()
               and json.loads(record.read_text()).get("status") in ("done", "done earlier"))


@dataclass
class CampaignConfig:
    """out: the campaign's folder; budget_s: seconds it may take in all; tiny: every step at
    tiny sizes on the CPU (a check of the machinery in seconds, marked as not results);
    resume_from: the root of committed results (e.g. docs/data); device: auto, cpu or cuda;
    only: names of the steps to run (None: all)."""
    out: str = "Results/campaign"
    budget_s: float = 480.0
    tiny: bool = False
    resume_from: Optional[str] = None
    device: str = "auto"
    only: Optional[list] = None


def machine():
    """What runs the campaign: the GPU's name (or the CPU's), the library versions, the code."""
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    if name == "CPU":
        try:
            with open("/proc/cpuinfo") as f:
                name = next(line.split(":", 1)[1].strip() for line in f
                            if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
    return {"device": name, "cuda": torch.cuda.is_available(), "versions": versions(),
            "git_commit": git_commit()}


def copy_committed(step, folder, resume_from):
    """The committed results of ``step`` (the CSV and JSON files of resume_from/step.resume),
    copied into its folder where it has none yet."""
    if not (resume_from and step.resume):
        return
    source, target = Path(resume_from) / step.resume, folder / step.resume
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.suffix in (".csv", ".json") and not (target / path.name).exists():
            shutil.copy2(path, target / path.name)


def _run(command, log, timeout_s, env):
    """Run ``command`` from the repository root, its output appended to ``log``; SIGTERM at
    ``timeout_s`` (SIGKILL GRACE_S later). Returns (exit status, seconds, whether stopped)."""
    started = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(map(str, command))}\n")
        f.flush()
        proc = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        stopped = False
        try:
            proc.wait(timeout=max(timeout_s, 1))
        except subprocess.TimeoutExpired:
            stopped = True
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return proc.returncode, time.perf_counter() - started, stopped


def plan_lines(todo, rates, remaining_s):
    """The plan: for every (step, cells left) of ``todo``, seconds per cell (measured in
    ``rates``, else the step's prior, marked '~') and the estimate, against the budget left."""
    lines, total = [], 0.0
    for step, left in todo:
        measured = rates.get(step.name)
        rate = measured if measured is not None else step.prior_s
        total += left * rate
        lines.append(f"  {step.name:<26} {left:>6} cell(s) x {'' if measured else '~'}"
                     f"{rate:.2f} s = {left * rate / 60:7.1f} min (cumulative "
                     f"{total / 60:.1f} of {max(remaining_s, 0) / 60:.1f} min left)")
    return lines


def run_campaign(config, progress=print):
    """Run the steps within ``config.budget_s`` seconds; returns the summary (also in
    summary.json)."""
    started = time.perf_counter()
    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if config.tiny else config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if config.tiny:
        env["TEST_CUDA_DEVICE"] = "cpu"
    summary = {"tiny": config.tiny, "results": not config.tiny, **machine(),
               "device_used": device, "config": asdict(config), "steps": []}

    def left():
        return config.budget_s - RESERVE_S - (time.perf_counter() - started)
    (out / "steps").mkdir(exist_ok=True)
    todo = []
    for step in steps():
        if config.only and step.name not in config.only:
            continue
        copy_committed(step, out, config.resume_from)
        total = step.tiny_cells if config.tiny else step.cells
        todo.append((step, max(0, total - done_cells(step, out))))
    rates = {}
    progress("plan (seconds per cell; ~: assumed until measured):")
    for line in plan_lines(todo, rates, left()):
        progress(line)
    for i, (step, cells_left) in enumerate(todo):
        record = _run_step(step, out, cells_left, config.tiny, device, env, left, rates)
        progress(f"{step.name}: {record['status']} ({record['seconds']:.0f} s, "
                 f"{record['cells_after'] - record['cells_before']} cell(s))")
        summary["steps"].append(record)
        summary["seconds"] = round(time.perf_counter() - started, 1)
        save_json(out / "summary.json", summary)
        if record["status"] == "stopped by the budget":
            break
        if todo[i + 1:]:
            progress("plan for the rest:")
            for line in plan_lines(todo[i + 1:], rates, left()):
                progress(line)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    save_json(out / "summary.json", summary)
    return summary


def _run_step(step, folder, cells_left, tiny, device, env, left, rates):
    """The probe and the rest of ``step`` in the campaign folder ``folder``; returns its record
    (also in steps/<step>.json). A sweep is called even when its table looks complete (its
    script trains only what its lattice lacks, in seconds when nothing)."""
    before = done_cells(step, folder)
    record = {"step": step.name, "kind": step.kind, "cells_before": before, "seconds": 0.0,
              "status": "done", "calls": []}
    if cells_left == 0 and step.kind != "sweep":
        record["status"] = "done earlier"
    else:
        args = [a.format(out=folder, device=device) for a in (step.tiny if tiny else step.args)]
        command = [sys.executable, "-m", step.module, *args]
        calls = [command + step.probe, command] if step.kind == "sweep" and not tiny \
            else [command]
        for call in calls:
            if left() - GRACE_S <= 0:
                record["status"] = "stopped by the budget"
                break
            code, seconds, stopped = _run(call, folder / "steps" / f"{step.name}.log",
                                          left() - GRACE_S, env)
            record["calls"].append({"command": " ".join(map(str, call)), "exit_status": code,
                                    "seconds": round(seconds, 1), "stopped": stopped})
            record["seconds"] += seconds
            new = done_cells(step, folder) - before
            if new > 0 and step.kind != "run":
                rates[step.name] = record["seconds"] / new
            if stopped:
                record["status"] = "stopped by the budget"
                break
            if code != 0:
                record["status"] = f"failed with exit status {code} (steps/{step.name}.log)"
                break
    record["seconds"] = round(record["seconds"], 1)
    if step.kind == "run":
        record["cells_after"] = int(record["status"] in ("done", "done earlier"))
    else:
        record["cells_after"] = done_cells(step, folder)
    new = record["cells_after"] - before
    record["seconds_per_cell"] = round(record["seconds"] / new, 2) if new > 0 else None
    save_json(folder / "steps" / f"{step.name}.json", record)
    return record
