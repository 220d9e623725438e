"""Runs under torchrun: 2 CPU processes with the gloo backend against the
single-process runs, resume across numbers of processes, and ImageNet training end to end."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import utils.hmt.margins
from models import LeNet, build_nad_model, imagenet_resnet50
from tests.distributed_worker import CONFIG, toy_task, train_toy
from tests.helpers import SMALL, run_script
from utils.common import distributed
from utils.common.checkpoints import load_weights
from utils.common.dct import flip
from utils.common.run_folder import check_unit
from utils.common.training import EpochShuffle, train
from utils.hmt.imagenet_training import image_folders, recipe
from utils.nad.computation import NADConfig, append_chunk
from utils.nad.estimation import evaluation_point, iter_gradients
from utils.nad.files import nad_paths

ROOT = Path(__file__).resolve().parents[2]
MARGINS = SMALL[:1] + ["5"] + SMALL[2:]  # 5 samples: shards of 3 and 2


def torchrun(*module_and_args, nproc=2):
    """``python -m torch.distributed.run --standalone --nproc_per_node=nproc -m ...``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", *map(str, module_and_args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def assert_same_parameters(a, b):
    """Equal up to float32 rounding accumulated over a few dozen SGD steps."""
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5, msg=k)


@pytest.fixture(scope="module")
def single_process_toy():
    """The parameters of the uninterrupted single-process run of tests.distributed_worker."""
    return train_toy().state_dict()


def test_shards_split_like_array_split_and_concatenate_back(monkeypatch):
    for n, world in [(5, 2), (10, 3), (2, 4), (0, 2), (7, 1)]:
        items = np.arange(100, 100 + n)
        blocks = []
        for r in range(world):
            monkeypatch.setattr(distributed, "rank", lambda r=r: r)
            monkeypatch.setattr(distributed, "world_size", lambda w=world: w)
            blocks.append(distributed.shard(items))
        expected = np.array_split(items, world)
        assert [len(b) for b in blocks] == [len(e) for e in expected]
        np.testing.assert_array_equal(np.concatenate(blocks), items)


def test_single_process_needs_no_process_group():
    assert not distributed.init() and not torch.distributed.is_initialized()
    part = np.arange(6.0).reshape(2, 3)
    assert distributed.gather_concat(part, axis=1) is part and distributed.broadcast(part) is part
    assert distributed.world_size() == 1 and distributed.is_main() and distributed.all_sum(3) == 3
    assert distributed.shard(range(7)) == range(7)


@pytest.mark.parametrize("gpus,expected", [(0, "cpu"), (1, "cpu"), (2, "cuda:1")])
def test_processes_take_gpus_only_when_there_is_one_for_each(monkeypatch, gpus, expected):
    """Rank 1 of 2 on a node with 0, 1 or 2 GPUs: 'auto' picks its own GPU or the CPU, and an
    explicit 'cuda' without a GPU for every process is refused in one sentence."""
    from utils.common.errors import UserError
    from utils.common.training import pick_device
    for name, value in {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    assert distributed.gpu_per_process() == (gpus >= 2)
    assert str(pick_device("auto")) == expected
    if gpus < 2:
        with pytest.raises(UserError, match="more processes than"):
            distributed.local_device("cuda")


def test_single_process_batches_are_those_of_a_seeded_shuffled_dataloader():
    data = toy_task(n=96)
    seen = []

    def record(model, x, y):
        seen.append(x.clone())
        return x

    config = type(CONFIG)(epochs=2, batch_size=32, seed=5)
    train(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 2)), data, config,
          "cpu", attack=record)
    expected = [x for epoch in range(2) for x, _ in DataLoader(
        data, batch_size=32, shuffle=True,
        generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))]
    assert len(seen) == len(expected) == 6
    for a, b in zip(seen, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("n,world,batch", [(96, 2, 32), (100, 4, 24), (10, 3, 3)])
def test_local_batches_of_all_ranks_make_the_single_process_batches(n, world, batch):
    data = toy_task(n=n)

    def batches(w, r, epoch):
        sampler = EpochShuffle(data, num_replicas=w, rank=r, seed=7)
        sampler.set_epoch(epoch)
        return [idx for idx in DataLoader(range(n), batch_size=batch // w, sampler=sampler)]

    for epoch in (0, 3):
        single = batches(1, 0, epoch)
        ranks = [batches(world, r, epoch) for r in range(world)]
        assert all(len(b) == len(single) for b in ranks)
        for i, whole in enumerate(single):
            merged = torch.cat([b[i] for b in ranks])
            if n % world == 0:
                assert sorted(merged.tolist()) == sorted(whole.tolist())
            else:  # the last batch is padded with the first samples of the epoch
                assert set(whole.tolist()) <= set(merged.tolist())
    assert batches(1, 0, 0)[0].tolist() != batches(1, 0, 1)[0].tolist()  # reshuffled


def test_two_processes_train_like_one(tmp_path, single_process_toy):
    res = torchrun("tests.distributed_worker", "--out", tmp_path / "ddp.pt")
    assert res.returncode == 0, res.stderr[-3000:]
    two = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert_same_parameters(two, single_process_toy)
    torch.manual_seed(0)
    initial = LeNet().state_dict()  # training moved the weights far beyond the tolerance
    assert max((two[k] - initial[k]).abs().max() for k in two) > 0.05


def test_run_killed_under_two_processes_resumes_under_one(tmp_path, capsys,
                                                          single_process_toy):
    state = tmp_path / "state.pt"
    res = torchrun("tests.distributed_worker", "--out", tmp_path / "never.pt", "--state", state,
                   "--stop-at-batch", 10)  # 8 batches per epoch: the 2nd batch of epoch 2
    assert res.returncode != 0 and "interrupted" in res.stderr
    saved = torch.load(state, weights_only=True)
    assert saved["epoch"] == 1 and not any(k.startswith("module.") for k in saved["model"])
    resumed = train_toy(state_path=state, resume=True)
    assert "resuming training from epoch 1 of 3" in capsys.readouterr().out
    assert_same_parameters(resumed.state_dict(), single_process_toy)


def test_run_killed_under_one_process_resumes_under_two(tmp_path, single_process_toy):
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        train_toy(state_path=state, stop_at_batch=10)
    assert torch.load(state, weights_only=True)["epoch"] == 1
    res = torchrun("tests.distributed_worker", "--out", tmp_path / "resumed.pt", "--state", state,
                   "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("resuming training from epoch 1 of 3") == 1  # rank 0 only
    assert_same_parameters(torch.load(tmp_path / "resumed.pt", weights_only=True),
                           single_process_toy)


def run_once_in_process(tmp_path_factory, request, script, args, out_flag):
    """Run ``scripts.<script> args out_flag DIR`` in this process (once per module, for the
    fixtures below); returns DIR."""
    out = tmp_path_factory.mktemp(script)
    monkeypatch = pytest.MonkeyPatch()
    request.addfinalizer(monkeypatch.undo)
    assert run_script(script, args + [out_flag, str(out)], monkeypatch) == 0
    return out


@pytest.fixture(scope="module")
def single_process_margins(tmp_path_factory, request):
    out = run_once_in_process(tmp_path_factory, request, "margin_mnist", MARGINS, "--results-dir")
    return out / "margin_MNIST" / "LeNet"


def assert_same_margins(a, b):
    np.testing.assert_allclose(np.load(a / "margins.npy"), np.load(b / "margins.npy"), rtol=1e-5)
    np.testing.assert_array_equal(np.load(a / "iterations.npy"), np.load(b / "iterations.npy"))
    info_a, info_b = (json.loads((d / "run.json").read_text()) for d in (a, b))
    assert info_a["sample_indices"] == info_b["sample_indices"]
    assert not (a / "partial").exists()


def test_sharded_margin_run_resumes_a_single_process_run_and_matches_it(
        tmp_path, monkeypatch, single_process_margins):
    """One process measures the first of 3 subspaces and is interrupted; 2 processes measure
    the other two on shards of 3 and 2 samples; the arrays are those of one process alone."""
    real = utils.hmt.margins._subspace_margins
    calls = []

    def failing_on_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(utils.hmt.margins, "_subspace_margins", failing_on_second)
    args = MARGINS + ["--results-dir", str(tmp_path)]
    # one subspace at a time, so that the second call is the second subspace
    assert run_script("margin_mnist", args + ["--workers", "1"], monkeypatch) == 130
    out = tmp_path / "margin_MNIST" / "LeNet"
    assert sorted(p.name for p in (out / "partial").glob("subspace_*")) == ["subspace_000.npy"]
    res = torchrun("scripts.margin_mnist", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("median margin per subspace") == 1  # rank 0 only
    assert np.load(out / "margins.npy").shape == (3, 5)
    assert_same_margins(out, single_process_margins)


def write_image_folder(root, classes=("cat", "dog"), per_class=4, seed=0):
    """Random RGB PNGs of 32..64 pixels a side in root/<class>/<i>.png."""
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            h, w = rng.integers(32, 65, size=2)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_flipped_image_folder_holds_the_flip_of_each_image(tmp_path):
    train_dir = write_image_folder(tmp_path / "train", per_class=1)
    val_dir = write_image_folder(tmp_path / "val", per_class=2, seed=1)
    _, plain = image_folders(train_dir, val_dir, image_size=32)
    _, flipped = image_folders(train_dir, val_dir, image_size=32, flipped=True)
    for i in range(len(plain)):
        (x, y), (xf, yf) = plain[i], flipped[i]
        assert x.shape == (3, 32, 32) and 0 <= x.min() and x.max() <= 1 and y == yf
        torch.testing.assert_close(xf, flip(x))


def test_train_imagenet_under_two_processes_end_to_end(tmp_path):
    train_dir = write_image_folder(tmp_path / "train", per_class=4)
    val_dir = write_image_folder(tmp_path / "val", per_class=2, seed=1)
    out = tmp_path / "out"
    res = torchrun("scripts.train_imagenet", "--train-dir", train_dir, "--val-dir", val_dir,
                   "--flipped", "--epochs", 1, "--batch-size", 4, "--image-size", 32,
                   "--workers", 0, "--device", "cpu", "--out-dir", out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("top-1 validation accuracy") == 1
    info = check_unit(out, "run.json")  # model.t7 and run.json written as one unit
    assert set(info["files"]) == {"model.t7"}
    assert info["processes"] == 2 and info["batch_per_process"] == 2
    assert info["experiment"] == "train_ImageNet_flipped" and info["train_images"] == 8
    assert info["training"]["max_lr"] == pytest.approx(0.1 * 4 / 256)
    load_weights(imagenet_resnet50(num_classes=2), out / "model.t7", "ResNet50")
    shutil.rmtree(out)  # 280 MB of weights and resume state


def test_train_imagenet_without_data_says_what_to_pass(tmp_path, monkeypatch, capsys):
    code = run_script("train_imagenet", ["--train-dir", str(tmp_path / "none"),
                                         "--val-dir", str(tmp_path)], monkeypatch)
    assert code == 2
    assert "pass --train-dir with an ImageFolder tree" in capsys.readouterr().err


def test_imagenet_learning_rate_schedules():
    step = recipe(epochs=90, batch_size=512)
    assert step.max_lr == pytest.approx(0.2) and step.grad_clip is None
    # asked at the end of each batch: the last batch of epoch 29 ends at t = 30
    assert [step.lr_at(t) for t in (0.01, 29.9, 30, 30.01, 59.9, 60.01, 90)] == pytest.approx(
        [0.2, 0.2, 0.2, 0.02, 0.02, 0.002, 0.002])
    cosine = recipe(epochs=16, lr=0.5, schedule="cosine")
    assert [cosine.lr_at(t) for t in (0, 4, 8, 16)] == pytest.approx(
        [0.5, 0.25 * (1 + 2 ** -0.5), 0.25, 0], abs=1e-12)


NADS = ["--arch", "LeNet", "--networks", "24", "--k", "5", "--method", "autograd",
        "--networks-per-pass", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def single_process_nads(tmp_path_factory, request):
    return run_once_in_process(tmp_path_factory, request, "nad_computation", NADS, "--out-dir")


def assert_same_nads(a, b):
    for name in ("LeNet_NADs.npy", "LeNet_eigenvals.npy"):
        np.testing.assert_allclose(np.load(a / name), np.load(b / name), rtol=1e-4, atol=1e-6)
    assert not (a / ".LeNet_gradients.partial.pt").exists()


def test_sharded_nad_run_matches_a_single_process_run(tmp_path, single_process_nads):
    """24 LeNet networks in shards of 12 (vmap groups of 4) on 2 processes."""
    res = torchrun("scripts.nad_computation", *NADS, "--out-dir", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("wrote ") == 4  # rank 0 only
    assert json.loads((tmp_path / "LeNet_NADs.json").read_text())["processes"] == 2
    assert_same_nads(tmp_path, single_process_nads)


def test_nad_run_interrupted_on_one_process_resumes_on_two(tmp_path, single_process_nads):
    """A single-process run left the gradients of its first 10 networks; 2 processes finish it
    (networks 10..23 in shards of 7) and write the NADs of the uninterrupted run."""
    config = NADConfig("LeNet", networks=24, method="autograd", seed=0)
    build = lambda: build_nad_model("LeNet")  # noqa: E731
    first = torch.cat([g for _, g in iter_gradients(build, 10, evaluation_point(0), "autograd",
                                                    networks_per_pass=4)])
    append_chunk(nad_paths(tmp_path, "LeNet")["partial"], config, first.numpy(), 0, 1.0)
    res = torchrun("scripts.nad_computation", *NADS, "--out-dir", tmp_path, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("resuming after 10 of 24 networks") == 1
    assert_same_nads(tmp_path, single_process_nads)
