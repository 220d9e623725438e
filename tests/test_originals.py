"""Our code against outputs of the authors' own code (LTS4/hold-me-tight and
LTS4/neural-anisotropy-directions, run on current torch), kept as numbers in
tests/data/originals/ (see its README.md for the commits, the patched lines and the commands).
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from models import TransformLayer, build_model, build_nad_model, deepfool_stem, normalized
from utils.common.checkpoints import load_weights
from utils.common.data import MNIST_MEAN, MNIST_STD, TransformFlippedLayer, load_mnist
from utils.common.dct import cutoff_low, dct2, flip, high_pass, idct2, low_pass
from utils.common.training import TrainConfig, train
from utils.hmt.experiment import default_checkpoint
from utils.hmt.margins import DEEPFOOL_DEFAULTS, subspace_margins
from utils.hmt.subspaces import DCTBlock, diagonal_blocks
from utils.nad.estimation import evaluation_point, fd_gradients, principal_directions
from utils.nad.linear_data import fourier_direction, linear_datasets
from utils.nad.poison import class_carriers, poison

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


# the original's subspace_deepfool margins of the four shipped LeNets on the 100 digits of
# `make demo`, in 21 DCT subspaces and the whole space (row 21)
SHIPPED = ["MNIST", "MNIST_flipped", "MNIST_robust", "MNIST_flipped_robust"]
ALL_SPACES = list(range(22))
# float32: the lowest, two middle and the highest subspace and the whole space
FLOAT32_SPACES = [0, 7, 14, 20, 21]


def _shipped_lenet(name, dtype=torch.float32):
    """The shipped LeNet ``name`` behind its normalisation layer (built in ``dtype``, so that
    its constants are exact in float64), in eval mode."""
    net = load_weights(build_model("MNIST", "LeNet"), default_checkpoint(name, "LeNet"))
    norm = (TransformFlippedLayer(MNIST_MEAN, MNIST_STD, (1, 28, 28), dtype) if "flipped" in name
            else TransformLayer(MNIST_MEAN, MNIST_STD, dtype))
    return normalized(net.to(dtype), norm).eval()


def _our_margins(model, images, spaces, **deepfool_args):
    """Margins and iterations [len(spaces), N] of our margin pipeline (the margin scripts':
    batched DeepFool through LeNet's stem, the first step shared by the subspaces)."""
    blocks = diagonal_blocks(8, 1, 1, 28, 28) + [None]
    todo = [(i, blocks[i]) for i in spaces]
    df_args = {**DEEPFOOL_DEFAULTS, "stem": deepfool_stem("LeNet"), **deepfool_args}
    rows = {i: (m, it) for i, m, it in subspace_margins(model, images, todo, 50, "cpu", df_args)}
    return (np.stack([rows[i][0] for i in spaces]), np.stack([rows[i][1] for i in spaces]))


def float64_disagreements(margins, iterations, theirs, their_iterations):
    """What keeps two float64 DeepFool runs from being the same computation: any margin more
    than 1e-9 relative apart, any iteration count different. In float64 the rounding of two
    summation orders is ~1e-15 of a margin, so no near-tie of two classes can tip (empty list:
    they agree)."""
    problems = []
    rel = np.abs(margins - theirs) / np.abs(theirs)
    if not rel.max() <= 1e-9:
        problems.append(f"{int((rel > 1e-9).sum())} margins differ by more than 1e-9 "
                        f"(largest {rel.max():.2e})")
    if not np.array_equal(iterations, their_iterations):
        problems.append(f"{int((iterations != their_iterations).sum())} iteration counts differ")
    return problems


def float32_disagreements(margins, iterations, theirs, their_iterations):
    """What keeps two float32 DeepFool runs from agreeing to float rounding: the median of a
    space more than 1e-4 relative apart, fewer than 99 % of the margins within 1e-3, fewer than
    99 % of the iteration counts equal. Not every margin: float32 rounding (other CPUs, thread
    counts and summation orders) can tip a near-tie between two classes and send a sample to
    another boundary (empty list: they agree)."""
    problems = []
    med = np.median(margins, axis=1)
    their_med = np.median(theirs, axis=1)
    rel_med = np.abs(med - their_med) / their_med
    if not rel_med.max() <= 1e-4:
        problems.append(f"medians differ by up to {rel_med.max():.2e}")
    close = np.mean(np.abs(margins - theirs) <= 1e-3 * np.abs(theirs))
    if not close >= 0.99:
        problems.append(f"only {close:.1%} of the margins are within 1e-3")
    same = np.mean(iterations == their_iterations)
    if not same >= 0.99:
        problems.append(f"only {same:.1%} of the iteration counts are equal")
    return problems


def _float64_digits(ref, name):
    """The fixture's 100 test digits in float64 (their float32 values, exactly), flipped by our
    flip in float64 for the flipped LeNets (theirs by their dct_flip: the two agree to 3e-14)."""
    digits = load_mnist("sample").test.tensors[0][torch.as_tensor(ref["sample_indices"])]
    return flip(digits.double()) if "flipped" in name else digits.double()


@pytest.mark.parametrize("name", SHIPPED)
def test_deepfool_equals_the_originals_in_float64(name):
    """Their subspace_deepfool run in float64 on the same digits: every margin within 1e-9 and
    every iteration count equal, in all 22 spaces."""
    ref = fixture("hmt_deepfool_float64.npz")
    images = _float64_digits(ref, name)
    margins, iterations = _our_margins(_shipped_lenet(name, torch.float64), images, ALL_SPACES)
    assert margins.dtype == np.float64
    assert float64_disagreements(margins, iterations, ref[f"{name}_margins"],
                                 ref[f"{name}_iterations"]) == []


@pytest.fixture(scope="module")
def digits():
    ref = fixture("hmt_deepfool.npz")
    test = load_mnist("sample").test.tensors[0]
    return ref, test[torch.as_tensor(ref["sample_indices"])]


def _float32_run(name, digits, spaces, **deepfool_args):
    ref, images = digits
    if "flipped" in name:
        images = flip(images)
    ours = _our_margins(_shipped_lenet(name), images, spaces, **deepfool_args)
    theirs = (ref[f"{name}_margins"][spaces], ref[f"{name}_iterations"][spaces].astype(np.int64))
    return ours, theirs


@pytest.mark.parametrize("name", SHIPPED)
def test_deepfool_agrees_with_the_originals_in_float32(name, digits):
    """The float32 runs (ours as the scripts run it, on our flip of the digits; theirs on
    their dct_flip of them) agree to float rounding (float32_disagreements)."""
    (margins, iterations), (theirs, their_iterations) = _float32_run(name, digits,
                                                                     FLOAT32_SPACES)
    assert float32_disagreements(margins, iterations, theirs, their_iterations) == []


def test_the_deepfool_comparisons_accept_rounding_and_refuse_another_iteration(digits):
    """The two criteria above can fail: margins moved by 1e-6 (rounding) still agree in float32,
    while the classic iteration (gradients at the overshot point x + 1.02 r, not at x + r) is
    refused by both."""
    name, spaces = "MNIST", [0, 20]
    (margins, iterations), (theirs, their_iterations) = _float32_run(name, digits, spaces)
    assert float32_disagreements(margins * (1 + 1e-6), iterations, theirs,
                                 their_iterations) == []
    (classic, classic_iterations), _ = _float32_run(name, digits, spaces,
                                                    gradients_at_overshoot=True)
    assert float32_disagreements(classic, classic_iterations, theirs, their_iterations) != []

    ref = fixture("hmt_deepfool_float64.npz")
    model = _shipped_lenet(name, torch.float64)
    images = _float64_digits(ref, name)
    classic, classic_iterations = _our_margins(model, images, spaces,
                                               gradients_at_overshoot=True)
    assert float64_disagreements(classic, classic_iterations, ref[f"{name}_margins"][spaces],
                                 ref[f"{name}_iterations"][spaces]) != []


def test_finite_difference_gradients_equal_the_originals():
    """Their input_numerical_jacobian in float32 for LeNets and LogRegs of ours: within float32
    rounding. Each entry is (f(x0 + 100 e) - f(x0 - 100 e)) / 200 of two forward passes whose
    sums may be ordered differently here and there (a few ulp of |f|), hence 1e-4 relative with
    a floor of 1e-4 of the largest entry for the entries near zero."""
    ref = fixture("nads.npz")
    x0 = torch.from_numpy(ref["x0"])
    for arch in ("LeNet", "LogReg"):
        for seed, theirs in zip(ref[f"fd_{arch}_seeds"], ref[f"fd_{arch}"]):
            torch.manual_seed(int(seed))
            net = build_nad_model(arch).eval()
            ours = fd_gradients([net], x0, step=100.0, vectorize=False)[0]
            np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-4,
                                       atol=1e-4 * np.abs(theirs).max())


# pixels of x0 the deep networks are differenced along in the test (all 1,024 in the fixture):
# the first row of the image and 96 drawn once
FD_PIXELS = np.r_[np.arange(32), np.random.default_rng(7).choice(np.arange(32, 1024), 96,
                                                                  replace=False)]


@pytest.mark.parametrize("arch", ["VGG11", "ResNet18", "DenseNet121"])
def test_finite_difference_gradients_of_deep_networks_equal_the_originals(arch):
    """Their input_numerical_jacobian in float64 for a VGG11 (batch norm, eval mode), a
    ResNet18 and a DenseNet121 drawn by our code: the same numbers up to float64 rounding
    (1e-10 of the largest entry), on 128 of the 1,024 pixels."""
    ref = fixture("nads_float64.npz")
    torch.manual_seed(int(ref[f"fd64_{arch}_seed"]))
    net = build_nad_model(arch).double().eval()
    x0 = torch.from_numpy(ref["x0"])
    assert torch.equal(x0, evaluation_point(0).double())
    ours = fd_gradients([net], x0, step=100.0, vectorize=False, pixels=FD_PIXELS)[0]
    theirs = ref[f"fd64_{arch}"][FD_PIXELS]
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-10 * np.abs(theirs).max())


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


def _assert_same_weights(model, ref, prefix):
    """Every tensor of ``model``'s state_dict equal to the fixture's within float64 rounding:
    1e-10 of the model's scale, the largest entry of any of its tensors (a few steps of SGD
    amplify rounding by far less). The model's scale, not the tensor's own: a tensor whose
    gradient is zero in exact arithmetic (a convolution's bias before a BatchNorm) holds only
    rounding, ~1e-18, which no two summation orders reproduce. The whole tensor is compared,
    or where the fixture keeps only its first 256 values and its norm (large networks), those."""
    state = model.state_dict()
    kept = {k[len(prefix) + 1:].rsplit(".", 1)[0] if k.endswith((".head", ".norm"))
            else k[len(prefix) + 1:] for k in ref if k.startswith(prefix + ".")}
    assert kept == set(state)
    scale = max(float(v.abs().max()) for v in state.values() if v.is_floating_point())
    for k, v in state.items():
        v = v.double().numpy()
        if f"{prefix}.{k}" in ref:
            np.testing.assert_allclose(v, ref[f"{prefix}.{k}"], rtol=0, atol=1e-10 * scale,
                                       err_msg=k)
            continue
        head, norm = ref[f"{prefix}.{k}.head"], float(ref[f"{prefix}.{k}.norm"])
        np.testing.assert_allclose(v.ravel()[:len(head)], head, rtol=0, atol=1e-10 * scale,
                                   err_msg=k)
        assert abs(np.linalg.norm(v) - norm) <= 1e-10 * scale * np.sqrt(v.size), k


def test_hmt_training_loop_equals_the_originals():
    """Hold me tight!'s utils.train in float64 (SGD momentum 0.9, weight decay 5e-4, their
    triangular schedule to 0.21, clipping 0.5) on our initial LeNet, the first 256 bundled
    digits and our batch order, 5 epochs: the same weights."""
    ref = fixture("hmt_training_float64.npz")
    n, batch, epochs, net_seed, order_seed = (int(v) for v in ref["train64_hmt_LeNet_settings"])
    digits = load_mnist("sample").train.tensors
    data = torch.utils.data.TensorDataset(digits[0][:n].double(), digits[1][:n])
    torch.manual_seed(net_seed)
    net = build_model("MNIST", "LeNet").double()
    model = normalized(net, TransformLayer(MNIST_MEAN, MNIST_STD, torch.float64))
    train(model, data, TrainConfig(epochs=epochs, batch_size=batch, seed=order_seed), "cpu")
    _assert_same_weights(net, ref, "train64_hmt_LeNet")


@pytest.mark.parametrize("arch", ["LogReg", "VGG11"])
def test_nad_training_loop_equals_the_originals(arch):
    """The NAD paper's utils.train in float64 (lr 0.5 decaying linearly to 0, no momentum, no
    weight decay, clipping 0.5) on D(v) for LogReg and for VGG11 (batch norm in train mode,
    dropout drawn from torch's global generator seeded alike): the same weights and batch-norm
    statistics."""
    ref = fixture("nads_float64.npz")
    n, batch, epochs, net_seed, data_seed, order_seed, dropout_seed = \
        (int(v) for v in ref[f"train64_{arch}_settings"])
    train_dv, _ = linear_datasets(fourier_direction(0, 2), n, 16, seed=data_seed)
    data = torch.utils.data.TensorDataset(train_dv.tensors[0].double(), train_dv.tensors[1])
    torch.manual_seed(net_seed)
    net = build_nad_model(arch, num_classes=2).double()
    torch.manual_seed(dropout_seed)
    train(net, data, TrainConfig(epochs=epochs, batch_size=batch, max_lr=0.5, momentum=0.0,
                                 weight_decay=0.0, schedule="linear", seed=order_seed), "cpu")
    _assert_same_weights(net, ref, f"train64_{arch}")
