"""The CIFAR/NAD architectures load the authors' checkpoints unchanged (names and shapes from
tests/data/checkpoint_compat.json) and give one logit per class."""

import pytest
import torch

from models import ARCHITECTURES, DenseNet121, ResNet18, VGG11_bn, imagenet_resnet50
from tests.helpers import COMPAT
from utils.common.checkpoints import load_weights
from utils.common.errors import UserError
from utils.common.io import save_torch

# compat entry -> (constructor, input shape, number of outputs)
MATCHED = {
    "hold_me_tight/cifar10/ResNet18": (ARCHITECTURES["CIFAR10"]["ResNet18"], (3, 32, 32), 10),
    "hold_me_tight/cifar10/VGG19": (ARCHITECTURES["CIFAR10"]["VGG19"], (3, 32, 32), 10),
    "hold_me_tight/cifar10/VGG19_bn": (ARCHITECTURES["CIFAR10"]["VGG19_bn"], (3, 32, 32), 10),
    "hold_me_tight/cifar10/DenseNet121":
        (ARCHITECTURES["CIFAR10"]["DenseNet121"], (3, 32, 32), 10),
    "nads/ResNet18(num_channels=1,num_classes=1)":
        (lambda: ResNet18(num_channels=1, num_classes=1), (1, 32, 32), 1),
    "nads/ResNet18(num_channels=3,num_classes=10)":
        (lambda: ResNet18(num_channels=3, num_classes=10), (3, 32, 32), 10),
    "nads/DenseNet121(num_channels=1,num_classes=1)":
        (lambda: DenseNet121(num_channels=1, num_classes=1), (1, 32, 32), 1),
    "nads/VGG11_bn(num_channels=1,num_classes=1)":
        (lambda: VGG11_bn(num_channels=1, num_classes=1), (1, 32, 32), 1),
    "hold_me_tight/imagenet/ResNet50(torchvision)": (imagenet_resnet50, None, 1000),
}


def state_from_compat(key, seed=0):
    """A state_dict with the names and shapes of the authors' checkpoint ``key``, random values
    (positive running variances, integer batch counters)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in COMPAT[key]:
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7, dtype=torch.long)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=g) + 0.5
        else:
            state[name] = torch.randn(shape, generator=g) * 0.05
    return state


@pytest.mark.parametrize("key", sorted(MATCHED))
def test_authors_state_dict_loads_strictly_and_gives_one_logit_per_class(key):
    build, shape, outputs = MATCHED[key]
    torch.manual_seed(0)
    model = build().eval()
    if shape is not None:  # ResNet50 at 224x224 is exercised by the ImageNet script tests
        with torch.no_grad():
            logits = model(torch.rand(2, *shape))
        assert logits.shape == (2, outputs) and torch.isfinite(logits).all()
    state = state_from_compat(key)
    model.load_state_dict(state, strict=True)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_every_compat_entry_of_these_architectures_is_covered():
    families = ("cifar10/", "imagenet/", "nads/ResNet18", "nads/DenseNet121", "nads/VGG11")
    expected = {k for k in COMPAT if any(f in k for f in families)}
    assert expected <= set(MATCHED)


def test_dataparallel_checkpoint_loads_and_wrong_architecture_is_named(tmp_path):
    key = "hold_me_tight/cifar10/VGG19_bn"
    state = state_from_compat(key, seed=1)
    path = save_torch(tmp_path / "model.t7", {"net": {f"module.{k}": v for k, v in state.items()}})
    model = load_weights(ARCHITECTURES["CIFAR10"]["VGG19_bn"](), path, "VGG19_bn")
    assert torch.equal(model.state_dict()["features.50.running_var"],
                       state["features.50.running_var"])
    with pytest.raises(UserError) as err:
        load_weights(ARCHITECTURES["CIFAR10"]["VGG19"](), path, "VGG19")
    message = str(err.value)
    assert "does not fit VGG19" in message and "unexpected" in message and "features.1." in message


def test_pooling_window_of_the_original_equals_global_average_on_32x32():
    torch.manual_seed(0)
    model = ResNet18().eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        out = torch.nn.functional.relu(model.bn1(model.conv1(x)))
        out = model.layer4(model.layer3(model.layer2(model.layer1(out))))
        original = model.linear(torch.nn.functional.avg_pool2d(out, 4).flatten(1))
        torch.testing.assert_close(model(x), original)
