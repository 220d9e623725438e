"""The one pipeline behind every margin script:

data (+ optional transform) -> normalisation layer + network -> trained or loaded weights ->
DCT subspaces -> batched subspace DeepFool on N seeded test samples -> Results/ files.
"""
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Subset, TensorDataset

from models import build_model, deepfool_stem, normalized

from ..common import distributed
from ..common.checkpoints import check_responsive, load_weights, save_weights, torchvision_weights
from ..common.data import ROOT, images_at, kept_energy, load_cifar10, load_imagenet, load_mnist
from ..common.errors import Interrupted, UserError
from ..common.io import sha256
from ..common.provenance import git_commit, versions
from ..common.run_folder import locked, refuse_other_settings
from ..common.training import TrainConfig, default_workers, evaluate, pick_device, train
from .margins import margin_distribution
from .pgd import L2PGD
from .subspaces import diagonal_blocks

LOADERS = {"MNIST": load_mnist, "CIFAR10": load_cifar10, "ImageNet": load_imagenet}
# public weights used when a model has no checkpoint in Models/Pretrained (read from torch.hub's
# cache; downloaded only with download=True)
PUBLIC_WEIGHTS = {("ImageNet", "ResNet50"): "ResNet50_Weights.IMAGENET1K_V1"}
TRAINABLE = ("MNIST", "CIFAR10")  # ImageNet models are loaded (scripts.train_imagenet trains)


@dataclass
class MarginConfig:
    """One margin experiment (the options of the margin scripts, of the same names).

    dataset: a key of LOADERS; transform: None or a data variant ('flipped', 'low_pass');
    robust: the model is adversarially trained (the experiment's name ends in '_robust'),
    with ``attack`` when ``train``; checkpoint: weights to load (None: the shipped ones);
    eval_samples: test images for the accuracy (None: all; 0: none)."""
    dataset: str = "MNIST"
    model: str = "LeNet"
    transform: Optional[str] = None
    robust: bool = False
    checkpoint: Optional[str] = None
    train: bool = False
    epochs: int = 30
    resume: bool = False
    attack: Optional[L2PGD] = field(default=None, repr=False)
    samples: int = 100
    seed: int = 0
    data: str = "auto"
    data_dir: str = "data"
    val_dir: Optional[str] = None
    download: bool = False
    results_dir: str = "Results"
    device: str = "auto"
    batch_size: int = 100
    block_size: int = 8
    block_step: int = 1
    max_iter: int = 100
    workers: Optional[int] = None
    eval_samples: Optional[int] = None

    def training(self):
        """The TrainConfig of ``train``: the HMT recipe with this config's epochs and seed."""
        return TrainConfig(epochs=self.epochs, seed=self.seed)

    def settings(self, data_source, checkpoint):
        """What decides the results of a run (JSON-able): a rerun into the same folder with
        other settings is refused (utils.common.run_folder.refuse_other_settings)."""
        training = None
        if self.train:
            training = asdict(self.training())
            if self.attack is not None:
                training["attack"] = self.attack.describe()
        return {"dataset": self.dataset, "model": self.model, "transform": self.transform,
                "robust": self.robust,
                "checkpoint_sha256": None if self.train else sha256(checkpoint),
                "training": training, "data": data_source, "samples": self.samples,
                "seed": self.seed, "block_size": self.block_size,
                "block_step": self.block_step, "max_iter": self.max_iter,
                "eval_samples": self.eval_samples}


def default_checkpoint(data_name, model_name):
    """Models/Pretrained/<Dataset[_variant]>/<Arch>/model.t7 in this repository."""
    return ROOT / "Models" / "Pretrained" / data_name / model_name / "model.t7"


def _checkpoint(config, name):
    """The weights ``config`` loads (when it does not train): its checkpoint, the shipped one,
    or public weights; a UserError when there are none."""
    if config.checkpoint:
        return Path(config.checkpoint)
    checkpoint = default_checkpoint(name, config.model)
    public = PUBLIC_WEIGHTS.get((name, config.model))
    if not checkpoint.is_file() and public:
        return torchvision_weights(public, config.download)
    if not checkpoint.is_file():
        how = ("pass `train` to train one or" if config.dataset in TRAINABLE else "pass")
        raise UserError(f"there is no shipped checkpoint for {config.model} on {name} "
                        f"({checkpoint}); {how} `checkpoint` PATH")
    return checkpoint


def get_model(config, data, out_dir, device, name):
    """The network with trained (``config.train``, adversarially with ``config.attack``) or
    loaded weights, and the checkpoint it came from. name: the experiment's data name, e.g.
    'MNIST_flipped_robust', which picks the shipped checkpoint."""
    try:
        net = build_model(config.dataset, config.model)
    except ValueError as e:
        raise UserError(str(e)) from None
    model = normalized(net, data.normalization)
    if config.train:
        torch.manual_seed(config.seed)
        net.load_state_dict(build_model(config.dataset, config.model).state_dict())  # seeded
        print(f"training {config.model} on {data.name} for {config.epochs} epochs on {device}"
              + (" with adversarial examples" if config.attack is not None else ""))
        train(model, data.train, config.training(), device, state_path=out_dir / "train_state.pt",
              resume=config.resume, attack=config.attack)
        checkpoint = out_dir / "model.t7"
        if distributed.is_main():
            save_weights(net, checkpoint)
        distributed.barrier()  # every process hashes the checkpoint for run.json
    else:
        checkpoint = _checkpoint(config, name)
        load_weights(net, checkpoint, config.model)
    return model.to(device).eval(), checkpoint


def measure_accuracy(model, test, config, device):
    """(accuracy, number of images) on the whole test set, or on ``config.eval_samples``
    seeded test images when that is given and smaller (ImageNet: its 50,000 validation images
    take hours on a CPU); (None, 0) when it is 0. Datasets read from disk go in DeepFool-sized
    batches (``config.batch_size``) to bound memory."""
    n = config.eval_samples
    if n == 0:
        return None, 0
    if n is not None and 0 < n < len(test):
        pick = np.random.default_rng([config.seed, 1]).choice(len(test), n, replace=False)
        subset = Subset(test, [int(i) for i in pick])
    else:
        subset = test
    batch_size = 500 if isinstance(test, TensorDataset) else config.batch_size
    return evaluate(model, subset, device, batch_size=batch_size), len(subset)


def median_ratio(medians):
    """(name, value): the ratio of the median margins at the two ends of the spectrum, the
    larger over the smaller ('high/low' when the highest-frequency subspace has the larger
    median, else 'low/high'), as the docs quote them."""
    low, high = float(medians[0]), float(medians[-1])
    return ("high/low", high / low) if high >= low else ("low/high", low / high)


def run_margin_experiment(config):
    """Run the margin experiment ``config`` (a MarginConfig); returns the output folder."""
    device = pick_device(config.device)
    roots = {"val_dir": config.val_dir} if config.val_dir else {}  # ImageNet
    data = LOADERS[config.dataset](config.data, config.data_dir, config.download,
                                   transform=config.transform, **roots)
    name = data.name + ("_robust" if config.robust else "")
    print(f"data: {data.source}")
    kept = None
    if config.transform == "low_pass":
        raw = LOADERS[config.dataset](config.data, config.data_dir, config.download, **roots)
        kept = kept_energy(raw.test.tensors[0], data.test.tensors[0])
        print(f"the low-pass filter keeps {100 * kept:.2f}% of the test images' energy")
    try:
        subspaces = diagonal_blocks(config.block_size, config.block_step, *data.shape)
    except ValueError as e:
        raise UserError(str(e)) from None
    n_test = len(data.test)
    if config.samples > n_test:
        raise UserError(f"`samples` {config.samples} is more than the {n_test} test images "
                        f"available; ask for at most {n_test}")

    out_dir = Path(config.results_dir) / f"margin_{name}" / config.model
    with locked(out_dir):
        try:
            margins = _measure(config, data, subspaces, out_dir, device, name,
                               {"kept_energy": kept} if kept is not None else {})
        except Interrupted as stop:
            if config.train:  # without --resume, a rerun would train again from the first epoch
                stop.flags.append("--resume")
            raise
    medians = np.median(margins, axis=1)
    print("median margin per subspace (low -> high frequency):")
    print("  " + " ".join(f"{m:.2f}" for m in medians))
    which, ratio = median_ratio(medians)
    print(f"median ratio {which} frequency: {ratio:.2f}")
    for file in ("margins.npy", "iterations.npy", "margins.png", "run.json"):
        print(f"wrote {out_dir / file}")
    return out_dir


def _measure(config, data, subspaces, out_dir, device, name, extra):
    """The model (trained or loaded), its accuracy and its margins [n_subspaces, N] of
    :func:`run_margin_experiment`, written to ``out_dir`` (with the entries of ``extra`` in
    run.json). A finished run there with other
    settings is refused before any work: before the training, or once the checkpoint to load
    is known good."""
    n_test = len(data.test)
    indices = np.random.default_rng(config.seed).choice(n_test, config.samples, replace=False)
    images = images_at(data.test, indices)
    if config.train:
        settings = config.settings(data.source, None)
        refuse_other_settings(out_dir, "run.json", settings)
    model, checkpoint = get_model(config, data, out_dir, device, name)
    if not config.train:
        settings = config.settings(data.source, checkpoint)
        refuse_other_settings(out_dir, "run.json", settings)
    check_responsive(model, images[:config.batch_size].to(device),
                     f"{config.model} ({checkpoint})")
    accuracy, n_eval = measure_accuracy(model, data.test, config, device)
    if accuracy is None:
        print("test accuracy not measured (eval_samples = 0)")
    else:
        print(f"{config.model} test accuracy on {data.name}: {100 * accuracy:.2f}% "
              f"({n_eval} test images)")
    run_info = {
        "experiment": f"margin_{name}", "model": config.model, "settings": settings,
        "checkpoint": str(checkpoint), "checkpoint_sha256": sha256(checkpoint),
        "trained_here": config.train, "data": data.source, "test_accuracy": accuracy,
        "test_accuracy_images": n_eval,
        "subspace_spec": {"block_size": config.block_size, "block_step": config.block_step,
                          "shape": list(data.shape), "count": len(subspaces)},
        "seed": config.seed, "sample_indices": [int(i) for i in indices],
        "device": str(device), "versions": versions(), "git_commit": git_commit(), **extra,
    }
    if config.train:
        run_info["training"] = settings["training"]
    stem = deepfool_stem(config.model)
    workers = config.workers or default_workers(device, model)
    return margin_distribution(model, images, subspaces, out_dir, run_info,
                               batch_size=config.batch_size, device=device,
                               title=f"{config.model} on {name}",
                               deepfool_args={"max_iter": config.max_iter, "stem": stem},
                               workers=workers)
