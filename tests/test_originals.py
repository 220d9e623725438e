"""Our code against outputs of the authors' own code (LTS4/hold-me-tight and
LTS4/neural-anisotropy-directions, run on current torch), kept as numbers in
tests/data/originals/ (see its README.md for the commits, the patched lines and the commands).
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from models import build_model, build_nad_model, normalized
from utils.checkpoints import load_weights
from utils.data import load_mnist
from utils.dct import cutoff_low, dct2, flip, high_pass, idct2, low_pass
from utils.experiment import deepfool_stem, default_checkpoint
from utils.linear_data import fourier_direction, linear_datasets
from utils.margins import DEEPFOOL_DEFAULTS, subspace_margins
from utils.nads import fd_gradients, principal_directions
from utils.poison import class_carriers, poison
from utils.subspaces import DCTBlock, diagonal_blocks
from utils.training import TrainConfig, train

ORIGINALS = Path(__file__).parent / "data" / "originals"


def fixture(name):
    with np.load(ORIGINALS / name) as f:
        return dict(f)


def test_dct_operations_equal_the_originals():
    ref = fixture("hmt_dct.npz")
    for name in ("x2d", "x3d"):  # one image, as their notebook and MNIST scripts call them
        x = torch.from_numpy(ref[name])
        for ours, theirs in [(flip(x), "flip"), (low_pass(x, 16), "dct_low_pass_16"),
                             (high_pass(x, 16), "dct_high_pass_16"),
                             (cutoff_low(x, 14), "dct_cutoff_low_14")]:
            np.testing.assert_allclose(ours.numpy(), ref[f"{theirs}_{name}"], atol=1e-5)
    x4 = torch.from_numpy(ref["x4d"])
    np.testing.assert_allclose(flip(x4).numpy(), ref["flip_x4d"], atol=1e-5)


def test_the_originals_band_filters_of_a_batch_mask_rows_not_a_block():
    """Given a batch [N, C, H, W] (as margin_low_pass_cifar10.py gives it the whole training
    set), the original dct_low_pass/high_pass/cutoff_low index their mask [:, :b, :b] over
    (N, C, H): they keep or drop whole rows of DCT coefficients, every column, and not the b x b
    block that the paper describes and that ours (and theirs on one image) keep."""
    ref = fixture("hmt_dct.npz")
    x = torch.from_numpy(ref["x4d"]).double()
    rows = torch.zeros(32, 1, dtype=torch.float64)
    rows[:16] = 1
    np.testing.assert_allclose(idct2(dct2(x) * rows).numpy(), ref["dct_low_pass_16_x4d"],
                               atol=1e-5)
    np.testing.assert_allclose(idct2(dct2(x) * rows.flip(0)).numpy(),
                               ref["dct_high_pass_16_x4d"], atol=1e-5)
    rows[:14], rows[14:] = 0, 1
    np.testing.assert_allclose(idct2(dct2(x) * rows).numpy(), ref["dct_cutoff_low_14_x4d"],
                               atol=1e-5)
    assert not np.allclose(low_pass(x, 16).numpy(), ref["dct_low_pass_16_x4d"], atol=1e-3)


@pytest.mark.parametrize("key, block", [("basis_mnist_0", DCTBlock(0, 8, 1, 28, 28)),
                                        ("basis_cifar10_0", DCTBlock(0, 8, 3, 32, 32))])
def test_first_subspace_basis_equals_the_originals(key, block):
    """Their generate_subspace_list's first basis, seen through 8 fixed random images (the
    coordinates fix every column, its order and its sign)."""
    dim = block.channels * block.height * block.width
    probe = np.random.default_rng(5).standard_normal((8, dim))
    coords = probe.astype(np.float32).astype(np.float64) @ block.basis().numpy()
    np.testing.assert_allclose(coords, fixture("hmt_dct.npz")[f"{key}_coords"], atol=1e-4)
    assert diagonal_blocks(8, 1, 1, 28, 28)[0] == DCTBlock(0, 8, 1, 28, 28)


# the original's subspace_deepfool margins of the four shipped LeNets on 100 test digits: the
# lowest, two middle and the highest of the 21 subspaces, and the whole space (row 21)
CHECKED_SPACES = [0, 7, 14, 20, 21]


def _our_margins(name, images, spaces):
    """Margins and iterations [len(spaces), N] of our margin pipeline (the margin scripts':
    batched DeepFool through the stem, first step shared) for the shipped LeNet ``name``."""
    data_name = name.replace("_robust", "")
    transform = "flipped" if "flipped" in name else None
    norm = load_mnist("sample", transform=transform).normalization
    net = load_weights(build_model("MNIST", "LeNet"), default_checkpoint(name, "LeNet"))
    model = normalized(net, norm).eval()
    blocks = diagonal_blocks(8, 1, 1, 28, 28) + [None]
    todo = [(i, blocks[i]) for i in spaces]
    df_args = {**DEEPFOOL_DEFAULTS, "stem": deepfool_stem("LeNet")}
    rows = {i: (m, it) for i, m, it in subspace_margins(model, images, todo, 50, "cpu",
                                                        df_args)}
    assert data_name.startswith("MNIST")
    return (np.stack([rows[i][0] for i in spaces]), np.stack([rows[i][1] for i in spaces]))


@pytest.fixture(scope="module")
def digits():
    ref = fixture("hmt_deepfool.npz")
    test = load_mnist("sample").test.tensors[0]
    return ref, test[torch.as_tensor(ref["sample_indices"])]


@pytest.mark.parametrize("name", ["MNIST", "MNIST_flipped", "MNIST_robust",
                                  "MNIST_flipped_robust"])
def test_deepfool_margins_equal_the_originals(name, digits):
    """The first 20 digits in 5 spaces: every margin within 1e-4 relative and every iteration
    count equal; all 100 digits: medians within 1e-4 and at least 99 % of the margins within
    1e-3 (float32 rounding can tip a near-tie between two classes, as between two runs of
    the original on different thread counts)."""
    ref, images = digits
    if "flipped" in name:
        images = flip(images)
    margins, iterations = _our_margins(name, images, CHECKED_SPACES)
    theirs = ref[f"{name}_margins"][CHECKED_SPACES]
    their_iterations = ref[f"{name}_iterations"][CHECKED_SPACES].astype(np.int64)
    np.testing.assert_allclose(margins[:, :20], theirs[:, :20], rtol=1e-4)
    np.testing.assert_array_equal(iterations[:, :20], their_iterations[:, :20])
    np.testing.assert_allclose(np.median(margins, 1), np.median(theirs, 1), rtol=1e-4)
    assert np.mean(np.abs(margins - theirs) <= 1e-3 * theirs) >= 0.99


def test_finite_difference_gradients_equal_the_originals():
    ref = fixture("nads.npz")
    x0 = torch.from_numpy(ref["x0"])
    for arch in ("LeNet", "LogReg"):
        for seed, theirs in zip(ref[f"fd_{arch}_seeds"], ref[f"fd_{arch}"]):
            torch.manual_seed(int(seed))
            net = build_nad_model(arch).eval()
            ours = fd_gradients([net], x0, step=100.0, vectorize=False)[0]
            np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-4,
                                       atol=1e-4 * np.abs(theirs).max())


def test_principal_directions_equal_sklearns_pca_as_the_original_calls_it():
    ref = fixture("nads.npz")
    nads, singular = principal_directions(ref["pca_input"], 39)
    np.testing.assert_allclose(singular, ref["pca_singular_values"], rtol=1e-4)
    signs = np.sign(np.sum(nads * ref["pca_components"], axis=1))
    np.testing.assert_allclose(nads * signs[:, None], ref["pca_components"], atol=1e-4)


def test_poisoning_equals_the_originals():
    ref = fixture("nads.npz")
    images = torch.from_numpy(ref["poison_images"]).permute(0, 3, 1, 2).float() / 255
    labels = torch.from_numpy(ref["poison_targets"]).long()
    for index in (0, 2):
        carriers, signs = class_carriers(ref["poison_nads"], nad_index=index)
        ours = poison(images, labels, carriers, signs, eps=0.05)
        np.testing.assert_allclose(ours.numpy(), ref[f"poison_{index}"], atol=1e-6)


def test_training_loops_equal_the_originals():
    """Their training loops, fed our initial weights and our batch order: the NAD paper's
    (LogReg on D(v), linear decay from 0.5, no momentum) and Hold me tight!'s (LeNet on 256
    MNIST digits, triangular 0.21, momentum 0.9, weight decay 5e-4), clipping 0.5 in both."""
    ref = fixture("training.npz")
    train_dv, _ = linear_datasets(fourier_direction(0, 2), 512, 8, seed=3)
    torch.manual_seed(31)
    logreg = build_nad_model("LogReg", num_classes=2)
    train(logreg, train_dv, TrainConfig(epochs=3, max_lr=0.5, momentum=0.0, weight_decay=0.0,
                                        schedule="linear", seed=4), "cpu")
    for k, v in logreg.state_dict().items():
        np.testing.assert_allclose(v.numpy(), ref[f"train_logreg.{k}"], rtol=1e-4, atol=1e-5)

    data = load_mnist("sample")
    digits = torch.utils.data.TensorDataset(data.train.tensors[0][:256],
                                            data.train.tensors[1][:256])
    torch.manual_seed(32)
    net = build_model("MNIST", "LeNet")
    train(normalized(net, data.normalization), digits, TrainConfig(epochs=5, seed=5), "cpu")
    for k, v in net.state_dict().items():
        v = v.double().flatten().numpy()
        np.testing.assert_allclose(v[:256], ref[f"{k}.head"], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(v), ref[f"{k}.norm"], rtol=1e-4)
