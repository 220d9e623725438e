"""The CUDA code paths against the CPU ones (skipped on machines without a GPU, such as CI).

Each fast path runs on both devices on the same random input; float64 results must agree to
rounding, float32 script results to what TF32 and reordered reductions allow.
``TEST_CUDA_DEVICE=cpu pytest tests/test_cuda.py`` runs them with the CPU standing in for the
GPU, to check the tests themselves on a machine without one."""
import json
import os

import numpy as np
import pytest
import torch

from models import LeNet, TransformLayer, build_nad_model
from tests.helpers import run_script
from utils.common.dct import dct2, flip, idct2
from utils.common.training import TrainConfig, evaluate, train
from utils.hmt.deepfool import deepfool
from utils.hmt.dykstra import FLIP, sample_norms
from utils.hmt.pgd import L2PGD, pgd_l2
from utils.hmt.subspaces import DCTBlock
from utils.nad.estimation import evaluation_point, iter_gradients
from utils.nad.linear_data import linear_datasets

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() and "TEST_CUDA_DEVICE" not in os.environ,
    reason="needs a CUDA GPU")
CUDA = torch.device(os.environ.get("TEST_CUDA_DEVICE", "cuda"))


def both(f, *tensors):
    """f on the CPU tensors and on their CUDA copies; returns (cpu result, cuda result on CPU)."""
    on_gpu = f(*[t.to(CUDA) for t in tensors])
    return f(*tensors), (on_gpu.cpu() if torch.is_tensor(on_gpu) else on_gpu)


def test_dct_flip_and_subspace_projection():
    x = torch.randn(5, 3, 28, 36, dtype=torch.float64)
    for f in [dct2, idct2, flip, DCTBlock(4, 8, 3, 28, 36).project]:
        cpu, gpu = both(f, x)
        assert gpu.dtype == x.dtype
        torch.testing.assert_close(gpu, cpu, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("with_stem", [False, True])
def test_deepfool_on_cuda_equals_cpu(with_stem):
    torch.manual_seed(0)
    net = LeNet().double().eval()
    model = torch.nn.Sequential(TransformLayer([0.1307], [0.3081]).double(), net).eval()
    images = torch.rand(12, 1, 28, 28, dtype=torch.float64)
    block = DCTBlock(2, 8, 1, 28, 28)
    cpu = deepfool(model, images, block, max_iter=50, stem=net.conv1 if with_stem else None)
    model.to(CUDA)
    gpu = deepfool(model, images.to(CUDA), block, max_iter=50,
                   stem=net.conv1 if with_stem else None)
    assert torch.equal(gpu.iterations.cpu(), cpu.iterations)
    assert torch.equal(gpu.final_label.cpu(), cpu.final_label)
    torch.testing.assert_close(gpu.perturbation.cpu(), cpu.perturbation, rtol=1e-7, atol=1e-9)


def test_pgd_with_dykstra_in_the_flipped_domain_on_cuda():
    torch.manual_seed(1)
    model = torch.nn.Sequential(TransformLayer([0.1307], [0.3081]), LeNet()).double().eval()
    pixels = torch.rand(16, 1, 28, 28, dtype=torch.float64)
    pixels[pixels < 0.5] = 0.0
    x, y = flip(pixels), torch.randint(0, 10, (16,))
    attack = L2PGD(eps=2.0, steps=5, step_size=0.5, transform=FLIP, random_start=False)
    cpu = pgd_l2(model, x, y, attack)
    model.to(CUDA)
    gpu = pgd_l2(model, x.to(CUDA), y.to(CUDA), attack)
    delta = gpu.adversarial.cpu() - x
    assert (sample_norms(delta) <= 2.0 + 1e-9).all()
    back = flip(gpu.adversarial).cpu()  # flip is its own inverse: the adversarial image in pixels
    assert back.min() >= -1e-9 and back.max() <= 1 + 1e-9
    torch.testing.assert_close(gpu.adversarial.cpu(), cpu.adversarial, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("method,per_pass", [("fd", 1), ("fd", 8), ("autograd", 8)])
def test_nad_gradients_on_cuda_equal_cpu(method, per_pass):
    """Same networks (drawn on the CPU) and same gradients on both devices; finite
    differences run without TF32."""
    build = lambda: build_nad_model("LeNet")  # noqa: E731
    x0 = evaluation_point(3)

    def gradients(device):
        return torch.cat([g for _, g in iter_gradients(build, 10, x0, method, seed=5,
                                                       networks_per_pass=per_pass,
                                                       device=device)])
    cpu, gpu = gradients("cpu"), gradients(CUDA)
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-6 * float(cpu.abs().max()))


def test_training_on_cuda_matches_cpu_and_its_weights_load_on_the_cpu():
    v = torch.randn(1, 32, 32)
    v /= v.norm()
    data, _ = linear_datasets(v, 512, 8, seed=0)
    config = TrainConfig(epochs=2, batch_size=64, max_lr=0.05, momentum=0.0, weight_decay=0.0,
                         grad_clip=0.5, schedule="linear", seed=0)
    models = {}
    for device in ["cpu", str(CUDA)]:
        torch.manual_seed(0)
        models[device] = build_nad_model("LeNet", num_classes=2)
        train(models[device], data, config, torch.device(device))
    weights = {k: t.cpu() for k, t in models[str(CUDA)].state_dict().items()}
    for k, t in models["cpu"].state_dict().items():
        torch.testing.assert_close(weights[k], t, rtol=1e-3, atol=1e-4)
    models["cpu"].load_state_dict(weights)
    assert evaluate(models["cpu"], data, torch.device("cpu")) == pytest.approx(
        evaluate(models[str(CUDA)], data, CUDA))


def test_margin_script_on_cuda_agrees_with_cpu(tmp_path, monkeypatch):
    medians = {}
    for device in ["cpu", str(CUDA)]:
        out = tmp_path / device
        assert run_script("margin_mnist", ["--samples", "8", "--block-size", "14",
                                           "--block-step", "7", "--device", device,
                                           "--results-dir", str(out)], monkeypatch) == 0
        medians[device] = np.median(np.load(out / "margin_MNIST" / "LeNet" / "margins.npy"), 1)
        info = json.loads((out / "margin_MNIST" / "LeNet" / "run.json").read_text())
        assert device in json.dumps(info)
    np.testing.assert_allclose(medians[str(CUDA)], medians["cpu"], rtol=1e-3)
