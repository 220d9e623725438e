import pytest
import torch
import torch.autograd.forward_ad as forward_ad
import torch.nn.functional as F

from models import TransformLayer, build_model
from models.lenet import LeNet, max_pool2
from tests.helpers import state_dict_from_compat
from tests.oracles import lenet_forward
from utils.common.checkpoints import load_weights, save_weights
from utils.common.data import TransformFlippedLayer
from utils.common.dct import flip
from utils.common.errors import UserError


@pytest.mark.parametrize("key,arch", [("hold_me_tight/mnist/LeNet", "LeNet"),
                                      ("hold_me_tight/mnist/ResNet18", "ResNet18")])
def test_authors_mnist_checkpoints_load_unchanged(tmp_path, key, arch):
    state = state_dict_from_compat(key)
    path = tmp_path / "model.t7"
    torch.save(state, path)
    model = load_weights(build_model("MNIST", arch), path, arch)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state[name], check_dtype=False)
    assert model.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_dataparallel_prefix_and_wrapped_checkpoints(tmp_path):
    state = state_dict_from_compat("hold_me_tight/mnist/LeNet", seed=3)
    torch.save({"net": {f"module.{k}": v for k, v in state.items()}, "acc": 99.0},
               tmp_path / "dp.t7")
    model = load_weights(build_model("MNIST", "LeNet"), tmp_path / "dp.t7")
    torch.testing.assert_close(model.conv1.weight, state["conv1.weight"])


def test_wrong_architecture_names_the_keys(tmp_path):
    save_weights(build_model("MNIST", "ResNet18"), tmp_path / "resnet.t7")
    with pytest.raises(UserError, match="does not fit LeNet.*missing.*unexpected"):
        load_weights(build_model("MNIST", "LeNet"), tmp_path / "resnet.t7", "LeNet")


def test_normalisation_layers():
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    plain = TransformLayer((0.1307,), (0.3081,)).double()
    torch.testing.assert_close(plain(x), (x - 0.1307) / 0.3081)
    flipped = TransformFlippedLayer((0.1307,), (0.3081,), (1, 28, 28)).double()
    # normalising flipped data = flipping normalised data (flip is linear)
    torch.testing.assert_close(flipped(flip(x)), flip(plain(x)), atol=1e-6, rtol=0)
    assert "mean" not in dict(flipped.state_dict())


@pytest.mark.parametrize("shape", [(4, 6, 28, 28), (3, 16, 10, 10), (2, 3, 7, 9)])
def test_max_pool2_equals_max_pool2d_with_and_without_autograd(shape):
    x = torch.randn(shape).round(decimals=1)  # rounding makes ties within windows
    x[..., :4, :4] = 0.5
    with torch.no_grad():
        assert torch.equal(max_pool2(x), F.max_pool2d(x, 2))
    x.requires_grad_(True)
    cotangent = torch.randn(F.max_pool2d(x, 2).shape)
    (ours,) = torch.autograd.grad(max_pool2(x), x, cotangent)
    (ref,) = torch.autograd.grad(F.max_pool2d(x, 2), x, cotangent)
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("padding,side", [(2, 28), (0, 32)])
def test_lenet_pool_then_relu_is_the_papers_relu_then_pool(padding, side):
    torch.manual_seed(1)
    net = LeNet(padding=padding, num_classes=10 if padding else 1).eval()
    x = torch.rand(8, 1, side, side)
    x[:4, :, :10] = 0  # flat regions: ties in the first convolution's output
    with torch.no_grad():
        assert torch.equal(net(x), lenet_forward(net, x))
    x.requires_grad_(True)
    cotangent = torch.randn(8, net.fc3.out_features)
    (ours,) = torch.autograd.grad(net(x), x, cotangent)
    (ref,) = torch.autograd.grad(lenet_forward(net, x), x, cotangent)
    assert torch.equal(ours, ref)


def test_lenet_forward_mode_derivatives_are_the_papers():
    """torch.func.jvp / jacfwd and forward_ad, with and without an outer no_grad: the
    directional derivative through LeNet's pooling takes each window's first maximum, as the
    papers' F.max_pool2d does, also where the first layer's outputs tie (zero background)."""
    torch.manual_seed(2)
    net = LeNet(padding=2).eval()
    x = torch.zeros(3, 1, 28, 28)
    x[:, :, 10:18, 10:18] = torch.rand(3, 1, 8, 8)
    tangent = torch.randn_like(x)
    papers = lambda z: lenet_forward(net, z)  # noqa: E731
    _, ref = torch.func.jvp(papers, (x,), (tangent,))
    for context in (torch.enable_grad, torch.no_grad):
        with context():
            _, ours = torch.func.jvp(net, (x,), (tangent,))
        assert torch.equal(ours, ref)
    with torch.no_grad(), forward_ad.dual_level():
        ours = forward_ad.unpack_dual(net(forward_ad.make_dual(x, tangent))).tangent
    assert torch.equal(ours, ref)
    one = x[:1]
    assert torch.equal(torch.func.jacfwd(net)(one), torch.func.jacfwd(papers)(one))
