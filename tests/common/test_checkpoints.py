import torch

from models import imagenet_resnet50
from utils.common.checkpoints import from_robustness, load_weights


def robustness_checkpoint(state):
    """A checkpoint laid out like the `robustness` library's: the network under
    module.model. and module.attacker.model., the normaliser's buffers beside it."""
    model = {}
    for k, v in state.items():
        model["module.model." + k] = v
        model["module.attacker.model." + k] = v  # shared storage: saved once
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    for prefix in ("module.normalizer.", "module.attacker.normalize."):
        model[prefix + "new_mean"] = mean.view(3, 1, 1)
        model[prefix + "new_std"] = std.view(3, 1, 1)
    return {"model": model, "optimizer": {"state": {}, "param_groups": []}, "schedule": None,
            "epoch": 90}


def test_robustness_checkpoint_unwraps_to_the_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    state = imagenet_resnet50().state_dict()
    wrapped = robustness_checkpoint(state)
    unwrapped = from_robustness(wrapped["model"])
    assert list(unwrapped) == list(state)
    assert all(torch.equal(unwrapped[k], state[k]) for k in state)
    # the same without the DataParallel prefix
    bare = {k[len("module."):]: v for k, v in wrapped["model"].items()}
    assert list(from_robustness(bare)) == list(state)
    # a plain state_dict passes through unchanged
    assert from_robustness(state) is state

    path = tmp_path / "robust_resnet50.pt"
    torch.save(wrapped, path)
    net = load_weights(imagenet_resnet50(), path, "ResNet50")
    assert torch.equal(net.conv1.weight, state["conv1.weight"])
    assert torch.equal(net.fc.bias, state["fc.bias"])
