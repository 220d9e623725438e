"""Loading and saving network weights: plain state_dicts, loaded with ``weights_only=True``.

Accepts the authors' files (a bare state_dict, or one inside a dict under ``net``, ``model``
or ``state_dict``), state_dicts saved from DataParallel/DDP (``module.`` prefixes), and the
checkpoints of the ``robustness`` library (see :func:`from_robustness`).
"""
from pathlib import Path

import torch

from .errors import UserError
from .io import save_torch


def _unwrap(obj):
    for key in ("state_dict", "model", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return obj[key]
    return obj


def from_robustness(state):
    """The network's state_dict inside a checkpoint of the ``robustness`` library (Madry lab).

    Its ``model`` entry holds the network twice (``module.model.*`` and
    ``module.attacker.model.*``) plus the normaliser's buffers (``module.normalizer.*``,
    ``module.attacker.normalize.*``); this keeps ``module.model.*`` without the prefix, e.g.
    a torchvision ResNet50 state_dict. Any other state_dict is returned unchanged."""
    def bare(key):
        return key[len("module."):] if key.startswith("module.") else key

    if not any(bare(k).startswith(("attacker.", "normalizer.")) for k in state):
        return state
    return {bare(k)[len("model."):]: v for k, v in state.items() if bare(k).startswith("model.")}


def load_state_dict(path):
    """The state_dict stored in ``path``; a UserError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass --train to train a model, "
                        f"or --checkpoint with the path of a model.t7")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        raise UserError(f"checkpoint {path} could not be read as a PyTorch file "
                        f"({type(e).__name__}); it is damaged or not a checkpoint") from None
    state = _unwrap(obj)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"checkpoint {path} holds no state_dict of tensors")
    state = from_robustness(state)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_weights(model, path, arch_name=None):
    """Load the weights in ``path`` into ``model``, strictly; a UserError naming the missing,
    unexpected and mis-shaped parameters when the checkpoint is of another architecture."""
    state = load_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        def few(keys):
            return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        parts = [f"{len(missing)} missing ({few(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected ({few(unexpected)})" if unexpected else "",
                 f"{len(shapes)} of another shape ({few(shapes)})" if shapes else ""]
        name = arch_name or type(model).__name__
        raise UserError(f"checkpoint {path} does not fit {name}: parameters "
                        + "; ".join(p for p in parts if p)
                        + f"; pass a checkpoint trained for {name} or choose its architecture")
    model.load_state_dict(state)
    return model


def save_weights(model, path):
    """Write ``model.state_dict()`` (on the CPU) to ``path`` atomically."""
    return save_torch(path, {k: v.detach().cpu() for k, v in model.state_dict().items()})


def torchvision_weights(name, download=False):
    """The file of torchvision's pretrained weights ``name`` (e.g.
    'ResNet50_Weights.IMAGENET1K_V1') in torch.hub's cache (``$TORCH_HOME/hub/checkpoints``),
    downloaded there (hash-checked) only if ``download``; a UserError when it is absent."""
    from urllib.parse import urlparse

    from torchvision.models import get_weight
    weights = get_weight(name)
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if path.is_file():
        return path
    if not download:
        raise UserError(f"torchvision's {name} weights are not in {path.parent}; pass "
                        f"--download to fetch them there, or --checkpoint PATH")
    try:
        torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True,
                                           weights_only=True)
    except (OSError, RuntimeError) as e:
        raise UserError(f"torchvision's {name} weights could not be downloaded ({e}); check the "
                        f"network or pass --checkpoint PATH") from None
    return path
