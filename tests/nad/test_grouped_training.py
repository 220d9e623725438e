"""Networks trained together (utils.nad.grouped_training) against the same networks trained one at
a time by utils.common.training.train, on fresh random data."""
from dataclasses import replace

import pytest
import torch
from torch.utils.data import TensorDataset

from models import build_nad_model
from utils.common.training import TrainConfig, train
from utils.nad.grouped_training import group, to_groups, train_stacked


def _data(seed, n=200):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 32, 32, generator=g),
                         torch.randint(0, 2, (n,), generator=g))


def _tiny_batch_norm_net():
    """A convolution, batch norm and linear layer: what VGG11 and ResNet18 are made of."""
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(900, 2))


def _networks(arch, seeds):
    nets = []
    for s in seeds:
        torch.manual_seed(s)
        nets.append(_tiny_batch_norm_net() if arch == "BatchNorm"
                    else build_nad_model(arch, num_classes=2))
    return nets


@pytest.mark.parametrize("arch, config", [
    ("LeNet", TrainConfig(epochs=2, batch_size=64, max_lr=0.5, momentum=0.0, weight_decay=0.0,
                          schedule="linear")),
    ("LogReg", TrainConfig(epochs=2, batch_size=64, max_lr=0.21, momentum=0.9,
                           weight_decay=5e-4, schedule="triangular")),
    ("BatchNorm", TrainConfig(epochs=2, batch_size=50, max_lr=0.05, momentum=0.9,
                              weight_decay=5e-4, schedule="triangular")),
])
def test_grouped_training_equals_one_network_at_a_time(arch, config):
    """Each network has its own data, seed (initial weights and sample order); weights, and
    batch norm's running statistics, end where train() leaves them alone."""
    seeds = [3, 7, 11]
    datasets = [_data(s) for s in seeds]
    alone = [train(net, d, replace(config, seed=s), "cpu")
             for net, d, s in zip(_networks(arch, seeds), datasets, seeds)]
    together = train_stacked(_networks(arch, seeds), datasets, config, seeds, "cpu")
    for a, b in zip(alone, together):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-5 * max(1.0, x.abs().max()),
                                       msg=f"{arch} {name}")
    moved = [(p - q).abs().max() for p, q in zip(alone[0].parameters(),
                                                 _networks(arch, seeds[:1])[0].parameters())]
    assert max(moved) > 1e-3  # they trained


def test_grouped_network_computes_every_network_and_refuses_mixed_channels():
    nets = _networks("LeNet", [1, 2])
    x = torch.randn(5, 2, 1, 32, 32)
    grouped = group(nets, (1, 32, 32))
    with torch.no_grad():
        out = grouped(to_groups(x)).view(5, 2, 2)
        for i, net in enumerate(nets):
            torch.testing.assert_close(out[:, i], net(x[:, i]), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="mixes the channels"):
        group(_networks("DenseNet121", [1, 2]), (1, 32, 32))
    with pytest.raises(ValueError, match="one dataset and one seed"):
        train_stacked(nets, [_data(0)], TrainConfig(epochs=1), [0, 1], "cpu")
