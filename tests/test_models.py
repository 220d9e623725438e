import pytest
import torch

from models import TransformFlippedLayer, TransformLayer, build_model
from tests.conftest import state_dict_from_compat
from utils.checkpoints import load_weights, save_weights
from utils.dct import flip
from utils.errors import UserError


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
