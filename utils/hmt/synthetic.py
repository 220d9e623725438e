"""Synthetic data whose discriminative information lies in one subspace S and nowhere else: our
experiments on two claims of Hold me tight! (the released code has none; docs/margins.md states
the design).

A sample of 1x28x28 is ``x = y (eps / 2) u + n``: a label y in {+1, -1} (balanced), a unit
vector u drawn at random inside S (an 8x8 DCT block of low or of high frequencies, or a random
64-dimensional subspace), and Gaussian noise n ~ N(0, sigma^2) in the orthogonal complement of
u, so that the classes are perfectly separated along u (at +-eps/2) and only there. For the
second claim the noise energy inside a subspace Q of S-perp (the 8x8 DCT block at the other end
of the spectrum) is multiplied by ``q_energy`` (1: untouched, 0: none).

A network (the HMT MNIST LeNet or an MLP, two outputs) is trained with the HMT loop, then its
margins (subspace DeepFool) are measured in S, in Q, in the 21 diagonal 8x8 DCT blocks, and in
random 64-dimensional subspaces of S-perp.
"""
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models import MLP, LeNet, TransformLayer, deepfool_stem, normalized

from ..common.tables import ResultTable, median_range
from ..common.training import TrainConfig, evaluate, train
from .margins import DEEPFOOL_DEFAULTS, subspace_margins
from .subspaces import BasisSubspace, DCTBlock, diagonal_blocks, orthonormal

SHAPE = (1, 28, 28)
D = 28 * 28
BLOCK = 8  # side of the DCT blocks; every subspace here has dimension 64
KINDS = ("low", "high", "random")
MODELS = ("LeNet", "MLP")


@dataclass
class SyntheticConfig:
    """One training and its margins. subspace: S ("low": DCT[0:8]^2, "high": DCT[20:28]^2,
    "random": a random 64-dimensional subspace); model: "LeNet" or "MLP"; eps: the distance
    between the classes along u; sigma: the noise's standard deviation; q_energy: the factor on
    the noise energy inside Q; n_train/n_test: samples; samples: test samples whose margins are
    measured; epochs: of the HMT training loop; seed: of S (random), u, the data, the network and
    the sample draw; random_subspaces: random subspaces of S-perp measured."""
    subspace: str = "low"
    model: str = "LeNet"
    eps: float = 2.0
    sigma: float = 1.0
    q_energy: float = 1.0
    n_train: int = 10_000
    n_test: int = 2_000
    samples: int = 100
    epochs: int = 30
    seed: int = 0
    random_subspaces: int = 3


def _generator(config, stream):
    return torch.Generator().manual_seed(int(np.random.SeedSequence(
        [config.seed, KINDS.index(config.subspace), stream]).generate_state(1)[0]))


def _block_basis(offset):
    return DCTBlock(offset, BLOCK, *SHAPE).basis()


def geometry(config):
    """(S, Q, u): orthonormal bases [784, 64] of S and of Q (inside S-perp), and u [784], a unit
    vector of S. For a random S, Q is the high-frequency block projected out of S."""
    if config.subspace == "low":
        s, q = _block_basis(0), _block_basis(28 - BLOCK)
    elif config.subspace == "high":
        s, q = _block_basis(28 - BLOCK), _block_basis(0)
    elif config.subspace == "random":
        g = torch.randn(D, BLOCK * BLOCK, generator=_generator(config, 0), dtype=torch.float64)
        s = orthonormal(g)
        high = _block_basis(28 - BLOCK)
        q = orthonormal(high - s @ (s.T @ high))
    else:
        raise ValueError(f"unknown subspace {config.subspace!r}; use one of {KINDS}")
    z = torch.randn(BLOCK * BLOCK, generator=_generator(config, 1), dtype=torch.float64)
    return s, q, s @ (z / z.norm())


def sample(config, n, stream):
    """n samples: images float32 [n, 1, 28, 28] and class indices int64 [n] (y = +1 -> 0,
    y = -1 -> 1), drawn from the random stream ``stream`` of the config's seed."""
    _, q, u = geometry(config)
    gen = _generator(config, stream)
    w = config.sigma * torch.randn(n, D, generator=gen, dtype=torch.float64)
    w = w - (1 - config.q_energy ** 0.5) * (w @ q) @ q.T  # noise energy in Q times q_energy
    w = w - (w @ u)[:, None] * u[None]
    y = torch.ones(n, dtype=torch.float64)
    y[(n + 1) // 2:] = -1
    x = w + (y * config.eps / 2)[:, None] * u[None]
    return x.view(n, *SHAPE).float(), ((1 - y) / 2).long()


def subspaces_measured(config):
    """{name: subspace} of a run: S, Q, the 21 diagonal DCT blocks (dct_00 .. dct_20) and
    random 64-dimensional subspaces of S-perp (perp_0 ..)."""
    s, q, _ = geometry(config)
    spaces = {"S": BasisSubspace(s, SHAPE, "S"), "Q": BasisSubspace(q, SHAPE, "Q")}
    spaces.update({f"dct_{i:02d}": b for i, b in enumerate(diagonal_blocks(BLOCK, 1, *SHAPE))})
    gen = _generator(config, 4)
    for k in range(config.random_subspaces):
        g = torch.randn(D, BLOCK * BLOCK, generator=gen, dtype=torch.float64)
        spaces[f"perp_{k}"] = BasisSubspace(orthonormal(g - s @ (s.T @ g)), SHAPE, f"perp_{k}")
    return spaces


def _network(config):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = (LeNet(1, 2, padding=2) if config.model == "LeNet"
               else MLP(D, 2) if config.model == "MLP" else None)
    if net is None:
        raise ValueError(f"unknown model {config.model!r}; use one of {MODELS}")
    return normalized(net, TransformLayer([0.0], [1.0]))  # the data is centred already


def run(config, device="cpu"):
    """Train on the config's data and measure the margins. Returns a dict: test_accuracy,
    the median margin of every subspace of :func:`subspaces_measured` (by name), perp (the
    median over all random subspaces of S-perp together), at_cap (share of DeepFool runs that
    stopped at their iteration cap), seconds."""
    started = time.perf_counter()
    train_set = TensorDataset(*sample(config, config.n_train, 2))
    test_set = TensorDataset(*sample(config, config.n_test, 3))
    model = _network(config)
    train(model, train_set, TrainConfig(epochs=config.epochs, seed=config.seed), device)
    model.eval()
    pick = torch.randperm(config.n_test, generator=_generator(config, 5))[:config.samples]
    images = test_set.tensors[0][pick]
    spaces = subspaces_measured(config)
    names = list(spaces)
    df_args = {**DEEPFOOL_DEFAULTS, "num_classes": 2, "stem": deepfool_stem(config.model)}
    result = {"test_accuracy": evaluate(model, test_set, device)}
    perp, capped = [], []
    for i, margins, iterations in subspace_margins(
            model, images, list(enumerate(spaces.values())), 100, device, df_args):
        result[names[i]] = float(np.median(margins))
        capped.append(iterations >= df_args["max_iter"])
        if names[i].startswith("perp_"):
            perp.append(margins)
    result["perp"] = float(np.median(np.concatenate(perp))) if perp else float("nan")
    result["at_cap"] = float(np.mean(np.concatenate(capped)))
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


KEYS = ["subspace", "model", "q_energy", "seed"]


def value_columns(config):
    return (["test_accuracy", "S", "Q", "perp"] + [f"dct_{i:02d}" for i in range(21)]
            + [f"perp_{k}" for k in range(config.random_subspaces)] + ["at_cap", "seconds"])


def sweep(base, cells, csv_path, device="cpu", progress=print):
    """:func:`run` for every (subspace, model, q_energy, seed) of ``cells`` (the other settings
    of ``base``, a SyntheticConfig), one CSV row each in ``csv_path`` (utils.common.tables:
    resumable, a cell already there is not run again). Returns the rows (dicts of strings)."""
    settings = {k: v for k, v in asdict(base).items() if k not in KEYS}
    table = ResultTable(csv_path, KEYS, value_columns(base), settings,
                        lambda r: 0 <= float(r["test_accuracy"]) <= 1, "runs")
    for kind, model, q_energy, seed in table.todo(cells, progress=progress):
        config = SyntheticConfig(**{**asdict(base), "subspace": kind, "model": model,
                                    "q_energy": q_energy, "seed": seed})
        result = run(config, device)
        table.add([{"subspace": kind, "model": model, "q_energy": q_energy, "seed": seed,
                    **result}])
        progress(f"{kind} {model} q_energy {q_energy:g} seed {seed}: test accuracy "
                 f"{100 * result['test_accuracy']:.1f}%, median margin in S {result['S']:.2f},"
                 f" in S-perp {result['perp']:.2f}, in Q {result['Q']:.2f} "
                 f"({result['seconds']:.0f} s)")
    return table.as_strings()


EXPERIMENTS = {
    # the paper's first claim: margins in S about the class distance, many times larger in
    # S-perp; every kind of S, no energy removed
    "invariance": {"subspaces": KINDS, "q_energies": (1.0,)},
    # its second claim: almost no noise energy in Q makes the network very invariant along Q
    "sudden": {"subspaces": ("low",), "q_energies": (0.0, 1e-3, 1e-2, 1e-1, 1.0)},
}


def cells(experiment, models=MODELS, seeds=(0, 1, 2), subspaces=None, q_energies=None):
    """The (subspace, model, q_energy, seed) cells of an experiment of EXPERIMENTS."""
    spec = EXPERIMENTS[experiment]
    return [(kind, model, q, seed) for kind in (subspaces or spec["subspaces"])
            for model in models for q in (q_energies or spec["q_energies"]) for seed in seeds]


def summary(rows):
    """One line per (subspace, model, q_energy): test accuracy and the median margins in S, in
    random subspaces of S-perp and in Q, as the median (min-max) over the seeds, and the ratio
    S-perp / S."""
    groups = {}
    for r in rows:
        groups.setdefault((r["subspace"], r["model"], float(r["q_energy"])), []).append(r)
    lines = []
    for (kind, model, q), rs in sorted(groups.items()):
        col = {c: [float(r[c]) for r in rs] for c in ("test_accuracy", "S", "perp", "Q")}
        ratio = [p / s for p, s in zip(col["perp"], col["S"])]
        accuracy = median_range(100 * np.array(col["test_accuracy"]))
        lines.append(f"S {kind}, {model}, noise energy in Q x{q:g}, {len(rs)} seed(s): test "
                     f"accuracy {accuracy}%; median margin in S {median_range(col['S'])}, in "
                     f"S-perp {median_range(col['perp'])} (x{median_range(ratio)}), in Q "
                     f"{median_range(col['Q'])}")
    return lines
