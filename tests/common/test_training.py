import pytest
import torch
from torch.utils.data import TensorDataset

from models import LeNet
from utils.common.errors import UserError
from utils.common.training import TrainConfig, evaluate, train


def test_learning_rate_schedules():
    tri = TrainConfig(epochs=30, max_lr=0.21)
    assert tri.lr_at(0) == 0 and tri.lr_at(12) == pytest.approx(0.21) and tri.lr_at(30) == 0
    assert tri.lr_at(6) == pytest.approx(0.105) and tri.lr_at(21) == pytest.approx(0.105)
    lin = TrainConfig(epochs=20, max_lr=0.5, schedule="linear")
    assert lin.lr_at(0) == 0.5 and lin.lr_at(10) == pytest.approx(0.25) and lin.lr_at(20) == 0


def _task(n=640, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.5 * torch.rand(n, 1, 28, 28, generator=g)
    x[y == 1, :, :14] += 0.5  # class 1: bright top half
    return TensorDataset(x, y)


def test_training_learns_and_resume_gives_the_same_model(tmp_path):
    data = _task()
    config = TrainConfig(epochs=4, batch_size=64, max_lr=0.21, seed=1)
    torch.manual_seed(0)
    straight = train(LeNet(), data, config, "cpu")
    assert evaluate(straight, data, "cpu") > 0.8

    batches = []

    def stop_in_second_epoch(model, x, y):
        batches.append(1)
        if len(batches) == 12:  # 10 batches per epoch: the 2nd batch of epoch 2
            raise KeyboardInterrupt
        return x

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(LeNet(), data, config, "cpu", state_path=tmp_path / "state.pt",
              attack=stop_in_second_epoch)
    assert torch.load(tmp_path / "state.pt", weights_only=True)["epoch"] == 1
    resumed = train(LeNet(), data, config, "cpu", state_path=tmp_path / "state.pt", resume=True)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_training_leaves_the_global_random_numbers_to_the_attack():
    """The data order has its own generators: a training run without an attack draws nothing
    from torch's global generator, so adversarial training's random starts depend only on the
    seed and on the attack."""
    model, data = LeNet(), _task(n=128)
    torch.manual_seed(0)
    expected = torch.rand(5)
    torch.manual_seed(0)
    train(model, data, TrainConfig(epochs=3, batch_size=64), "cpu")
    torch.testing.assert_close(torch.rand(5), expected, rtol=0, atol=0)


def test_every_rank_draws_its_own_random_numbers(monkeypatch):
    """A single process (rank 0) keeps the configured seed; under torchrun every rank gets its
    own, so ranks do not repeat each other's augmentations and PGD random starts."""
    from utils.common import distributed
    from utils.common.training import rank_seed
    seeds = []
    for r in range(4):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        seeds.append(rank_seed(7))
    assert seeds[0] == 7 and len(set(seeds)) == 4
    draws = [torch.rand(3, generator=torch.Generator().manual_seed(s)) for s in seeds]
    assert all(not torch.equal(draws[0], d) for d in draws[1:])


def test_a_diverging_training_stops_keeping_the_last_finished_epoch(tmp_path):
    """The loss becomes infinite in the second epoch (the data's second half is infinite and
    epoch 2 reaches it): one sentence naming the batch, the state of epoch 1 kept, no NaN
    weights returned."""
    data = _task(n=256)
    x = data.tensors[0].clone()
    config = TrainConfig(epochs=2, batch_size=256, max_lr=0.1, seed=1)
    seen = []

    def poison_second_epoch(model, x, y):
        seen.append(1)
        return x * float("inf") if len(seen) == 2 else x
    state = tmp_path / "state.pt"
    with pytest.raises(UserError, match="the training diverged: the loss is nan at batch 1 of "
                                        f"epoch 2; the state after epoch 1 is kept in {state}"):
        train(LeNet(), TensorDataset(x, data.tensors[1]), config, "cpu", state_path=state,
              attack=poison_second_epoch)
    assert torch.load(state, weights_only=True)["epoch"] == 1


def test_a_diverging_grouped_training_names_the_network():
    from utils.nad.grouped_training import train_stacked
    data = _task(n=128)
    bad = TensorDataset(data.tensors[0] * float("inf"), data.tensors[1])
    with pytest.raises(UserError, match=r"the loss of network\(s\) \[1\] of this group is not "
                                        r"finite at batch 1 of epoch 1"):
        train_stacked([LeNet(), LeNet()], [data, bad], TrainConfig(epochs=1, batch_size=64),
                      [0, 1], "cpu")
