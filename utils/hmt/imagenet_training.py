"""Training torchvision's ResNet50 on ImageNet or DCT-flipped ImageNet (HMT, Sec. 3), on one
GPU or data parallel under torchrun.

The recipe is torchvision's reference recipe for ResNet50 (see README, "ImageNet training"):
random-resized crops of ``image_size`` (224) with horizontal flips for training, a resize to
``image_size * 256 / 224`` and a centre crop for validation; images as tensors in [0, 1]
(flipped variant: ``utils.common.dct.flip`` of each such tensor), normalised by a layer in front of
the network; SGD with momentum 0.9, weight decay 1e-4, learning rate 0.1 per 256 images of
the global batch, 90 epochs divided by 10 after epochs 30 and 60, no gradient clipping,
float16 mixed precision on CUDA. The checkpoint is the bare network's state_dict, which the
ImageNet margin scripts load with ``--checkpoint``.
"""
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torchvision.datasets import ImageFolder

from models import TransformLayer, imagenet_resnet50, normalized

from ..common import distributed
from ..common.checkpoints import weights_bytes
from ..common.data import IMAGENET_MEAN, IMAGENET_STD, TransformFlippedLayer, imagenet_transforms
from ..common.errors import UserError
from ..common.provenance import git_commit, versions
from ..common.run_folder import locked, write_unit
from ..common.training import TrainConfig, evaluate, pick_device, train


def recipe(epochs=90, batch_size=256, lr=None, schedule="step", seed=0):
    """The training configuration; batch_size is the global batch (all processes together)
    and lr defaults to 0.1 * batch_size / 256."""
    return TrainConfig(epochs=epochs, batch_size=batch_size,
                       max_lr=0.1 * batch_size / 256 if lr is None else lr, momentum=0.9,
                       weight_decay=1e-4, grad_clip=None, schedule=schedule, seed=seed)


def image_folders(train_dir, val_dir, image_size=224, flipped=False):
    """(train, val) ImageFolder datasets of images [3, image_size, image_size] in [0, 1]
    (DCT-flipped when ``flipped``) with the recipe's transforms; labels are class indices."""
    train_tf = imagenet_transforms(True, flipped, image_size)
    val_tf = imagenet_transforms(False, flipped, image_size)
    sets = []
    for kind, folder, tf in (("train", train_dir, train_tf), ("val", val_dir, val_tf)):
        if not Path(folder).is_dir():
            raise UserError(f"the ImageNet {kind} folder {folder} does not exist; pass "
                            f"--{kind}-dir with an ImageFolder tree (one sub-folder per class)")
        try:
            sets.append(ImageFolder(str(folder), transform=tf))
        except (FileNotFoundError, RuntimeError) as e:
            raise UserError(f"{folder} is not an ImageFolder tree ({e}); give one sub-folder "
                            f"of images per class") from None
    if sets[0].classes != sets[1].classes:
        raise UserError(f"the class folders of {train_dir} and {val_dir} differ; give a "
                        f"validation tree with the same class sub-folders as the training tree")
    return sets[0], sets[1]


def train_resnet50(train_dir, val_dir, out_dir, config, flipped=False, image_size=224,
                   workers=8, device="auto", resume=False):
    """Train ResNet50 with ``config`` (see :func:`recipe`); rank 0 writes ``out_dir``/model.t7
    (bare ResNet50 state_dict), run.json (recipe, validation accuracy) and keeps the resume
    state train_state.pt. Returns (checkpoint path, top-1 validation accuracy fraction)."""
    device = pick_device(device)
    train_set, val_set = image_folders(train_dir, val_dir, image_size, flipped)
    torch.manual_seed(config.seed)
    net = imagenet_resnet50(num_classes=len(train_set.classes))
    layer = TransformFlippedLayer(IMAGENET_MEAN, IMAGENET_STD, (3, image_size, image_size)) \
        if flipped else TransformLayer(IMAGENET_MEAN, IMAGENET_STD)
    model = normalized(net, layer)
    out_dir = Path(out_dir)
    with locked(out_dir):  # one run at a time, checked writable before training
        started = time.time()
        train(model, train_set, config, device, state_path=out_dir / "train_state.pt",
              resume=resume, workers=workers, mixed_precision=True)
        world = distributed.world_size()
        accuracy = evaluate(model, val_set, device, batch_size=config.batch_size // world,
                            workers=workers)
        checkpoint = out_dir / "model.t7"
        if distributed.is_main():
            # model.t7 and run.json as one unit (run.json last, with the checkpoint's sha256)
            write_unit(out_dir, {"model.t7": weights_bytes(net)}, "run.json", {
                "experiment": "train_ImageNet" + ("_flipped" if flipped else ""),
                "model": "ResNet50", "train_dir": str(train_dir), "val_dir": str(val_dir),
                "classes": len(train_set.classes), "train_images": len(train_set),
                "val_images": len(val_set), "image_size": image_size, "training": asdict(config),
                "processes": world, "batch_per_process": config.batch_size // world,
                "device": str(device), "mixed_precision": device.type == "cuda",
                "val_accuracy": accuracy, "seconds": round(time.time() - started, 2),
                "versions": versions(), "git_commit": git_commit()})
        distributed.barrier()
    return checkpoint, accuracy
