"""The one pipeline behind every margin script:

data (+ optional transform) -> normalisation layer + network -> trained or loaded weights ->
DCT subspaces -> batched subspace DeepFool on N seeded test samples -> Results/ files.
"""
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from torch.utils.data import Subset, TensorDataset

from models import build_model, normalized

from . import distributed
from .checkpoints import load_weights, save_weights, torchvision_weights
from .data import ROOT, images_at, load_cifar10, load_imagenet, load_mnist
from .errors import Interrupted, UserError
from .io import sha256
from .margins import default_workers, margin_distribution
from .run_folder import locked
from .subspaces import diagonal_blocks
from .training import TrainConfig, evaluate, pick_device, train

LOADERS = {"MNIST": load_mnist, "CIFAR10": load_cifar10, "ImageNet": load_imagenet}
# public weights used when a model has no checkpoint in Models/Pretrained (read from torch.hub's
# cache; downloaded only with --download)
PUBLIC_WEIGHTS = {("ImageNet", "ResNet50"): "ResNet50_Weights.IMAGENET1K_V1"}


def default_checkpoint(data_name, model_name):
    """Models/Pretrained/<Dataset[_variant]>/<Arch>/model.t7 in this repository."""
    return ROOT / "Models" / "Pretrained" / data_name / model_name / "model.t7"


def deepfool_stem(model_name):
    """The DeepFool stem (utils/deepfool.py) of a ``normalized`` model, by name: LeNet's
    one-channel first convolution is slow to differentiate through on CPUs, so DeepFool stops
    its backward passes there (the same steps in exact arithmetic); None for the others."""
    return "1.conv1" if model_name == "LeNet" else None


def git_commit():
    """The commit of the code that runs, with '-dirty' when tracked files differ from it."""
    def git(*args):
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    try:
        commit = git("rev-parse", "HEAD")
        if commit is None:
            return "unknown"
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions():
    import torchvision
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__}


def get_model(dataset, data, args, out_dir, device, name, attack=None):
    """The network with trained (--train, adversarially when ``attack`` is given) or loaded
    weights, and the checkpoint it came from. name: the experiment's data name, e.g.
    'MNIST_flipped_robust', which picks the shipped checkpoint."""
    net = build_model(dataset, args.model)
    model = normalized(net, data.normalization)
    if args.train:
        config = TrainConfig(epochs=args.epochs, seed=args.seed)
        torch.manual_seed(args.seed)
        net.load_state_dict(build_model(dataset, args.model).state_dict())  # seeded init
        print(f"training {args.model} on {data.name} for {config.epochs} epochs on {device}"
              + (" with adversarial examples" if attack is not None else ""))
        train(model, data.train, config, device, state_path=out_dir / "train_state.pt",
              resume=args.resume, attack=attack)
        checkpoint = out_dir / "model.t7"
        if distributed.is_main():
            save_weights(net, checkpoint)
        distributed.barrier()  # every process hashes the checkpoint for run.json
    else:
        checkpoint = Path(args.checkpoint) if args.checkpoint else \
            default_checkpoint(name, args.model)
        public = PUBLIC_WEIGHTS.get((name, args.model))
        if not args.checkpoint and not checkpoint.is_file() and public:
            checkpoint = torchvision_weights(public, args.download)
        if not args.checkpoint and not checkpoint.is_file():
            how = "pass --train to train one or" if getattr(args, "trainable", True) else "pass"
            raise UserError(f"there is no shipped checkpoint for {args.model} on {name} "
                            f"({checkpoint}); {how} --checkpoint PATH")
        load_weights(net, checkpoint, args.model)
    return model.to(device).eval(), checkpoint


def measure_accuracy(model, test, args, device):
    """(accuracy, number of images) on the whole test set, or on ``args.eval_samples`` seeded
    test images when that is given and smaller (ImageNet: its 50,000 validation images take
    hours on a CPU); (None, 0) when it is 0. Datasets read from disk go in DeepFool-sized
    batches (``args.batch_size``) to bound memory."""
    n = getattr(args, "eval_samples", None)
    if n == 0:
        return None, 0
    if n is not None and 0 < n < len(test):
        pick = np.random.default_rng([args.seed, 1]).choice(len(test), n, replace=False)
        subset = Subset(test, [int(i) for i in pick])
    else:
        subset = test
    batch_size = 500 if isinstance(test, TensorDataset) else args.batch_size
    return evaluate(model, subset, device, batch_size=batch_size), len(subset)


def run_margin_experiment(args, dataset, transform=None, robust=False, attack=None):
    """Run the margin experiment described by the parsed ``args``; returns the output folder.

    dataset: a key of LOADERS; transform: None or the name of a data variant ('flipped'...);
    robust: the model is adversarially trained (names end in '_robust'); attack: with
    --train, ``attack(model, x, y) -> x_adv`` used for adversarial training."""
    device = pick_device(args.device)
    roots = {"val_dir": args.val_dir} if getattr(args, "val_dir", None) else {}  # ImageNet
    data = LOADERS[dataset](args.data, args.data_dir, args.download, transform=transform, **roots)
    name = data.name + ("_robust" if robust else "")
    print(f"data: {data.source}")
    try:
        subspaces = diagonal_blocks(args.block_size, args.block_step, *data.shape)
    except ValueError as e:
        raise UserError(str(e)) from None
    n_test = len(data.test)
    if args.samples > n_test:
        raise UserError(f"--samples {args.samples} is more than the {n_test} test images "
                        f"available; ask for at most {n_test}")

    out_dir = Path(args.results_dir) / f"margin_{name}" / args.model
    with locked(out_dir):
        try:
            margins = _measure(args, dataset, data, subspaces, out_dir, device, name, attack)
        except Interrupted as stop:
            if args.train:  # without --resume, a rerun would train again from the first epoch
                stop.flags.append("--resume")
            raise
    medians = np.median(margins, axis=1)
    print("median margin per subspace (low -> high frequency):")
    print("  " + " ".join(f"{m:.2f}" for m in medians))
    print(f"median ratio highest/lowest frequency: {medians[-1] / medians[0]:.2f}")
    for name in ("margins.npy", "iterations.npy", "margins.png", "run.json"):
        print(f"wrote {out_dir / name}")
    return out_dir


def _measure(args, dataset, data, subspaces, out_dir, device, name, attack):
    """The model (trained or loaded), its accuracy and its margins [n_subspaces, N] of
    :func:`run_margin_experiment`, written to ``out_dir``."""
    n_test = len(data.test)
    model, checkpoint = get_model(dataset, data, args, out_dir, device, name, attack)
    accuracy, n_eval = measure_accuracy(model, data.test, args, device)
    if accuracy is None:
        print("test accuracy not measured (--eval-samples 0)")
    else:
        print(f"{args.model} test accuracy on {data.name}: {100 * accuracy:.2f}% "
              f"({n_eval} test images)")

    indices = np.random.default_rng(args.seed).choice(n_test, args.samples, replace=False)
    images = images_at(data.test, indices)
    run_info = {
        "experiment": f"margin_{name}", "model": args.model,
        "checkpoint": str(checkpoint), "checkpoint_sha256": sha256(checkpoint),
        "trained_here": bool(args.train), "data": data.source, "test_accuracy": accuracy,
        "test_accuracy_images": n_eval,
        "subspace_spec": {"block_size": args.block_size, "block_step": args.block_step,
                          "shape": list(data.shape), "count": len(subspaces)},
        "seed": args.seed, "sample_indices": [int(i) for i in indices],
        "device": str(device), "versions": versions(), "git_commit": git_commit(),
    }
    if args.train:
        run_info["training"] = asdict(TrainConfig(epochs=args.epochs, seed=args.seed))
        if hasattr(attack, "describe"):
            run_info["training"]["attack"] = attack.describe()
    stem = deepfool_stem(args.model)
    workers = getattr(args, "workers", None) or default_workers(model, device)
    return margin_distribution(model, images, subspaces, out_dir, run_info,
                               batch_size=args.batch_size, device=device,
                               title=f"{args.model} on {name}",
                               deepfool_args={"max_iter": getattr(args, "max_iter", 100),
                                              "stem": stem}, workers=workers)
