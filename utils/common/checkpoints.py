"""Loading and saving network weights: plain state_dicts, loaded with ``weights_only=True``.

Accepts the authors' files (a bare state_dict, or one inside a dict under ``net``, ``model``
or ``state_dict``), state_dicts saved from DataParallel/DDP (``module.`` prefixes), and the
checkpoints of the ``robustness`` library (see :func:`from_robustness`).
"""
import io
import pickletools
import warnings
import zipfile
from pathlib import Path

import torch

from .errors import UserError
from .io import save_bytes, torch_bytes


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


# what the pickles of plain tensor files import besides torch's own functions
HARMLESS_GLOBALS = {"collections.OrderedDict", "_codecs.encode"}


def _imports(path, most=8):
    """The globals (``module.name``) that the pickles in ``path`` (the ``data.pkl`` of a zip
    file as torch.save writes, else up to ``most`` pickles one after the other, as in torch's
    legacy format) would import when loaded; [] when they are not well-formed pickles."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        else:
            data = Path(path).read_bytes()
        stream, found = io.BytesIO(data), []
        for _ in range(most):
            strings = []
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    found.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(".".join(strings[-2:]))
                if isinstance(arg, str):
                    strings.append(arg)
            if stream.tell() == len(data):
                break
    except Exception:  # not a pickle: a damaged file
        return []
    return found


def read_torch_file(path, what="checkpoint"):
    """The object in the PyTorch file ``path``, loaded with ``weights_only=True`` (no code of the
    file runs). A UserError naming ``what`` when ``path`` is a folder or the file is damaged, or
    refused as unsafe when its pickle would import other functions than torch's."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a file; give the path of the file "
                        f"inside it")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol, then refuses
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        unsafe = sorted({name for name in _imports(path) if name not in HARMLESS_GLOBALS
                         and name.split(".")[0] != "torch"})
        if unsafe:
            raise UserError(f"{what} {path} was refused as unsafe: loading it would call "
                            f"{', '.join(unsafe[:3])}, which a file of tensors never does; use "
                            f"one saved with torch.save(model.state_dict(), path)") from None
        raise UserError(f"{what} {path} could not be read as a PyTorch file "
                        f"({type(e).__name__}); it is damaged or not a {what}") from None


def load_state_dict(path):
    """The state_dict stored in ``path``; a UserError if it is missing or unreadable."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder, not a file; pass the path of the "
                        f"model.t7 inside it")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass `train` to train a model, "
                        f"or `checkpoint` with the path of a model.t7")
    state = _unwrap(read_torch_file(path))
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
    bad = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise UserError(f"checkpoint {path} holds NaN or infinite values in "
                        f"{', '.join(bad[:3])}{' and more' if len(bad) > 3 else ''} (a diverged "
                        f"training or a damaged file); train the model again or pass another "
                        f"checkpoint")
    model.load_state_dict(state)
    return model


@torch.no_grad()
def check_responsive(model, images, what="the model"):
    """A UserError when ``model`` (eval mode) gives non-finite logits for ``images`` [B, ...],
    or the same logits for all of them (B >= 2): such a model (all-zero or dead weights) has no
    decision boundary to measure or attack."""
    logits = model(images)
    if not logits.isfinite().all():
        raise UserError(f"{what} gives NaN or infinite outputs; check its weights")
    if len(images) >= 2 and (logits - logits[:1]).abs().max() == 0:
        raise UserError(f"{what} gives the same output for every input (all-zero or dead "
                        f"weights?), so it has no decision boundary to measure; check its "
                        f"weights or train it again")


def weights_bytes(model):
    """``model.state_dict()`` (on the CPU) as the bytes of a PyTorch file."""
    return torch_bytes({k: v.detach().cpu() for k, v in model.state_dict().items()})


def save_weights(model, path):
    """Write ``model.state_dict()`` (on the CPU) to ``path`` atomically."""
    return save_bytes(path, weights_bytes(model))


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
                        f"`download` to fetch them there, or `checkpoint` PATH")
    try:
        torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True,
                                           weights_only=True)
    except (OSError, RuntimeError) as e:
        raise UserError(f"torchvision's {name} weights could not be downloaded ({e}); check the "
                        f"network or pass `checkpoint` PATH") from None
    return path
