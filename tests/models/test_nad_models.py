import pytest
import torch

from models import NAD_ARCHITECTURES, LeNet, LogReg, VGG11_bn, build_nad_model
from tests.helpers import COMPAT


@pytest.mark.parametrize("key,model", [
    ("nads/LogReg(input_dim=1024,num_classes=1)", lambda: LogReg(1024, 1)),
    ("nads/LeNet(num_channels=1,num_classes=1)", lambda: LeNet(1, 1, padding=0)),
    ("nads/VGG11_bn(num_channels=1,num_classes=1)", lambda: VGG11_bn(1, 1)),
])
def test_state_dict_matches_the_authors_checkpoints(key, model):
    net = model()
    ours = [[name, list(t.shape)] for name, t in net.state_dict().items()]
    assert ours == COMPAT[key]
    # a checkpoint with exactly these names and shapes loads strictly
    state = {name: torch.zeros(shape) for name, shape in COMPAT[key]}
    net.load_state_dict(state, strict=True)


@pytest.mark.parametrize("arch", sorted(NAD_ARCHITECTURES))
def test_registry_builds_one_output_and_cifar_networks(arch):
    x = torch.randn(2, 1, 32, 32)
    assert build_nad_model(arch).eval()(x).shape == (2, 1)
    assert build_nad_model(arch, num_classes=2).eval()(x).shape == (2, 2)
    assert build_nad_model(arch, 3, 10).eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="LeNet"):
        build_nad_model("AlexNet")


def test_lenet_without_pooling_is_lenet_without_its_poolings():
    """LeNetNoPool: LeNet's convolutions and its fc2, fc3; no pooling, so on 32x32 inputs the
    first linear layer reads 16 x 24 x 24 = 9,216 values (LeNet's: 16 x 5 x 5 = 400), and the
    network computes conv -> ReLU -> conv -> ReLU -> the three linear layers."""
    from models.lenet import LeNetNoPool
    lenet, nopool = build_nad_model("LeNet"), build_nad_model("LeNetNoPool")
    assert isinstance(nopool, LeNetNoPool)
    shapes = {k: tuple(v.shape) for k, v in nopool.state_dict().items()}
    assert shapes["fc1.weight"] == (120, 9216)
    for key, value in lenet.state_dict().items():
        if not key.startswith("fc1."):
            assert shapes[key] == tuple(value.shape), key
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in nopool.modules())
    x = torch.randn(3, 1, 32, 32)
    h = torch.relu(nopool.conv2(torch.relu(nopool.conv1(x))))
    assert h.shape == (3, 16, 24, 24)
    expected = nopool.fc3(torch.relu(nopool.fc2(torch.relu(nopool.fc1(h.flatten(1))))))
    torch.testing.assert_close(nopool(x), expected)
