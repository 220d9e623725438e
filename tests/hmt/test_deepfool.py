import pytest
import torch

from models import LeNet, TransformLayer
from tests.oracles import deepfool_one
from utils.hmt.deepfool import deepfool, first_step, stem_jacobian
from utils.hmt.subspaces import DCTBlock


def _model(seed):
    torch.manual_seed(seed)
    return LeNet().double().eval()


def test_batched_deepfool_equals_per_sample_oracle_in_subspaces():
    model = _model(0)
    images = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    for block in [DCTBlock(0, 8, 1, 28, 28), DCTBlock(12, 8, 1, 28, 28), None]:
        res = deepfool(model, images, block, max_iter=50)
        basis = block.basis() if block is not None else None
        for i in range(len(images)):
            pert, iters, label, final = deepfool_one(model, images[i], basis, max_iter=50)
            assert int(res.iterations[i]) == iters
            assert int(res.original_label[i]) == label and int(res.final_label[i]) == final
            torch.testing.assert_close(res.perturbation[i], pert, rtol=1e-7, atol=1e-9)


def test_gradients_at_the_overshoot_are_the_classic_iteration():
    """The option of the 2016 DeepFool code's convention equals the oracle run that way, and
    differs from the original's iteration (the default) on some of these images."""
    model = _model(9)
    images = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    block = DCTBlock(10, 8, 1, 28, 28)
    classic = deepfool(model, images, block, max_iter=50, gradients_at_overshoot=True)
    original = deepfool(model, images, block, max_iter=50)
    for i in range(len(images)):
        pert, iters, _, _ = deepfool_one(model, images[i], block.basis(), max_iter=50,
                                         gradients_at_overshoot=True)
        assert int(classic.iterations[i]) == iters
        torch.testing.assert_close(classic.perturbation[i], pert, rtol=1e-7, atol=1e-9)
    assert not torch.allclose(classic.margin, original.margin, rtol=1e-4)


def test_perturbation_lies_in_the_subspace_and_crosses_the_boundary():
    model = _model(1)
    images = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    block = DCTBlock(4, 8, 1, 28, 28)
    res = deepfool(model, images, block)
    torch.testing.assert_close(block.project(res.perturbation), res.perturbation)
    crossed = res.iterations < 100
    assert crossed.any()
    with torch.no_grad():
        pred = model(images + res.perturbation).argmax(1)
    assert torch.equal(pred[crossed], res.final_label[crossed])
    assert (res.final_label[crossed] != res.original_label[crossed]).all()


def test_few_classes_and_iteration_cap():
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).double().eval()
    images = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    res = deepfool(model, images, None, max_iter=100)
    # a linear model is crossed in one step (the overshoot carries it over)
    assert (res.iterations == 1).all()
    capped = deepfool(model, images, None, max_iter=0)
    assert (capped.iterations == 0).all() and (capped.margin == 0).all()


def test_stem_path_equals_the_plain_path_and_the_oracle():
    """Gradients taken at the first convolution and mapped back through its Jacobian on the
    subspace give the same DeepFool steps, behind a normalisation layer too."""
    net = _model(3)
    norm = TransformLayer([0.1307], [0.3081]).double()
    model = torch.nn.Sequential(norm, net).eval()
    images = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    for block in [DCTBlock(0, 8, 1, 28, 28), DCTBlock(17, 8, 1, 28, 28), None]:
        fast = deepfool(model, images, block, max_iter=50, stem=net.conv1)
        plain = deepfool(model, images, block, max_iter=50)
        assert torch.equal(fast.iterations, plain.iterations)
        assert torch.equal(fast.final_label, plain.final_label)
        torch.testing.assert_close(fast.perturbation, plain.perturbation, rtol=1e-7, atol=1e-9)
        basis = block.basis() if block is not None else None
        pert, iters, _, _ = deepfool_one(model, images[0], basis, max_iter=50)
        assert int(fast.iterations[0]) == iters
        torch.testing.assert_close(fast.perturbation[0], pert, rtol=1e-7, atol=1e-9)


def test_stem_jacobian_refuses_a_stem_behind_a_nonlinearity():
    model = _model(4)
    with pytest.raises(ValueError, match="not an affine function"):
        deepfool(model, torch.rand(2, 1, 28, 28, dtype=torch.float64),
                 DCTBlock(0, 8, 1, 28, 28), stem=model.conv2)


def test_a_shared_first_step_gives_the_same_result():
    """The first step computed once and passed to every subspace (as utils/hmt/margins.py does)
    equals DeepFool computing it itself, with and without a stem."""
    net = _model(5)
    model = torch.nn.Sequential(TransformLayer([0.1307], [0.3081]).double(), net).eval()
    images = torch.rand(7, 1, 28, 28, dtype=torch.float64)
    for stem in [None, net.conv1]:
        first = first_step(model, images, stem=stem)
        for block in [DCTBlock(1, 8, 1, 28, 28), DCTBlock(19, 8, 1, 28, 28)]:
            shared = deepfool(model, images, block, max_iter=50, stem=stem, start=first)
            own = deepfool(model, images, block, max_iter=50, stem=stem)
            assert torch.equal(shared.iterations, own.iterations)
            assert torch.equal(shared.final_label, own.final_label)
            torch.testing.assert_close(shared.perturbation, own.perturbation, rtol=1e-12,
                                       atol=1e-14)
    with pytest.raises(ValueError, match="other images or with another stem"):
        deepfool(model, images, DCTBlock(1, 8, 1, 28, 28), stem=net.conv1,
                 start=first_step(model, images))


def test_the_stem_probe_stops_at_the_stem_and_a_stem_called_twice_is_refused():
    net = _model(6)
    after_stem = []
    net.fc3.register_forward_hook(lambda *args: after_stem.append(1))
    basis = DCTBlock(3, 8, 1, 28, 28).basis()
    jac = stem_jacobian(net, net.conv1, basis, (1, 28, 28))
    assert jac.shape == (64, 6 * 28 * 28) and not after_stem
    # the Jacobian is the stem's response to each basis image
    with torch.no_grad():
        expected = (net.conv1(basis.T.reshape(64, 1, 28, 28))
                    - net.conv1(torch.zeros(1, 1, 28, 28, dtype=torch.float64))).flatten(1)
    torch.testing.assert_close(jac, expected)

    class Twice(torch.nn.Module):
        """An affine 1x1 convolution applied twice in front of a LeNet."""
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Conv2d(1, 1, 1).double()
            self.net = _model(8)

        def forward(self, x):
            return self.net(self.scale(self.scale(x)))

    with pytest.raises(ValueError, match="not called"):
        stem_jacobian(net, torch.nn.Conv2d(1, 1, 1).double(), basis, (1, 28, 28))
    twice = Twice().eval()
    with pytest.raises(ValueError, match="exactly once"):
        deepfool(twice, torch.rand(8, 1, 28, 28, dtype=torch.float64),
                 DCTBlock(0, 8, 1, 28, 28), stem=twice.scale)
