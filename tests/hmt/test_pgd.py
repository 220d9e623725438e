import pytest
import torch
import torch.nn as nn
from scipy.stats import ortho_group
from torch.utils.data import TensorDataset

from models import LeNet
from tests.helpers import orthogonal_transform
from utils.hmt.dykstra import FLIP, IDENTITY, sample_norms
from utils.hmt.pgd import L2PGD, pgd_accuracy, pgd_l2


def mnist_like(n, size, gen):
    """Images in [0, 1] with many pixels exactly 0 or 1, so that the box constraint binds."""
    x = torch.rand(n, 1, size, size, generator=gen, dtype=torch.float64)
    x[x < 0.5] = 0.0
    x[x > 0.9] = 1.0
    return x


def linear_model(gen, dim=64, classes=2):
    """f_k(x) = w_k . (x - 0.5): its decision boundaries pass through the grey image."""
    torch.manual_seed(int(torch.randint(0, 2 ** 31, (1,), generator=gen)))
    model = nn.Sequential(nn.Flatten(), nn.Linear(dim, classes)).double().eval()
    with torch.no_grad():
        model[1].bias.copy_(-0.5 * model[1].weight.sum(1))
    return model


@pytest.mark.parametrize("projection", ["dykstra", "plain"])
def test_pgd_never_leaves_the_ball_or_the_box(projection):
    gen = torch.Generator().manual_seed(0)
    q = ortho_group.rvs(64, random_state=0)
    torch.manual_seed(0)
    small = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    cases = [(small.double().eval(), 8, IDENTITY), (small, 8, orthogonal_transform(q)),
             (LeNet().double().eval(), 28, FLIP)]
    for model, size, transform in cases:
        pixels = mnist_like(16, size, gen)
        x = transform.forward(pixels)
        y = torch.randint(0, 10, (16,), generator=gen)
        eps = 2.0
        attack = L2PGD(eps, steps=5, step_size=1.5, transform=transform, projection=projection)
        adv = pgd_l2(model, x, y, attack, generator=gen).adversarial
        norms = sample_norms(adv - x)
        assert norms.max() <= eps * (1 + 1e-5)
        assert norms.min() > 0.5 * eps  # it did move, so the bounds are not trivially met
        back = transform.inverse(adv)
        assert back.min() >= -1e-5 and back.max() <= 1 + 1e-5


def test_dykstra_and_plain_pgd_agree_with_the_identity_when_the_box_cannot_bind():
    """Pixels in [0.3, 0.7] and eps 0.25 < 0.3: every point of the ball is a valid image, so
    both projections are the ball projection and both PGD paths are the same."""
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = LeNet().double().eval()
    x = 0.3 + 0.4 * torch.rand(8, 1, 28, 28, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (8,), generator=gen)
    runs = [pgd_l2(model, x, y, L2PGD(0.25, 6, 0.1, IDENTITY, projection=p),
                   generator=torch.Generator().manual_seed(5)).adversarial
            for p in ("dykstra", "plain")]
    torch.testing.assert_close(runs[0], runs[1], atol=1e-9, rtol=0)
    assert (sample_norms(runs[0] - x) > 0.2).all()


def test_pgd_finds_the_optimal_perturbation_of_a_linear_classifier():
    """For two classes, the loss grows along w_other - w_label; PGD from x goes to the ball's
    boundary along it (the box does not bind: pixels in [0.4, 0.6], eps 0.1)."""
    gen = torch.Generator().manual_seed(2)
    model = linear_model(gen)
    w = model[1].weight.detach()
    x = 0.4 + 0.2 * torch.rand(10, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (10,), generator=gen)
    direction = w[1 - y] - w[y]
    expected = x + 0.1 * (direction / direction.norm(dim=1, keepdim=True)).view(x.shape)
    res = pgd_l2(model, x, y, L2PGD(0.1, steps=3, step_size=0.1, random_start=False))
    torch.testing.assert_close(res.adversarial, expected, atol=1e-9, rtol=0)


def test_pgd_accuracy_of_a_linear_classifier_matches_its_margins():
    """A two-class linear classifier is robust at x exactly when it is right and its distance
    to the boundary, (f_y - f_other) / ||w_y - w_other||, exceeds eps."""
    gen = torch.Generator().manual_seed(3)
    model = linear_model(gen)
    x = 0.4 + 0.2 * torch.rand(300, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (300,), generator=gen)
    with torch.no_grad():
        f = model(x)
    w = model[1].weight.detach()
    idx = torch.arange(300)
    distance = (f[idx, y] - f[idx, 1 - y]) / (w[y] - w[1 - y]).norm(dim=1)
    eps = 0.05
    res = pgd_accuracy(model, TensorDataset(x, y), L2PGD(eps, steps=4, step_size=0.03),
                       restarts=1, batch_size=128)
    assert res.clean == pytest.approx(float((distance > 0).double().mean()))
    assert res.pgd == pytest.approx(float((distance > eps).double().mean()))
    assert 0 < res.pgd < res.clean


def test_training_attack_returns_valid_adversarial_examples():
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    model = LeNet().eval()
    pixels = mnist_like(8, 28, gen).float()
    x = FLIP.forward(pixels)
    y = torch.randint(0, 10, (8,), generator=gen)
    attack = L2PGD(eps=2.0, steps=3, step_size=0.75, transform=FLIP)
    adv = attack(model, x, y)
    assert adv.shape == x.shape and not adv.requires_grad
    assert sample_norms(adv - x).max() <= 2.0 * (1 + 1e-5)
    assert FLIP.inverse(adv).min() >= -1e-5
    with torch.no_grad():
        loss = nn.functional.cross_entropy
        assert loss(model(adv), y) > loss(model(x), y)
    assert attack.describe()["transform"] == "flip"


def test_early_stop_freezes_a_sample_at_its_first_misclassified_iterate():
    """Steps of 0.01 straight across a linear boundary at distance d: the sample is first
    misclassified after ceil(d / 0.01) steps, and stays there."""
    gen = torch.Generator().manual_seed(5)
    model = linear_model(gen)
    x = 0.4 + 0.2 * torch.rand(200, 1, 8, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
        f = model(x)
    w = model[1].weight.detach()
    idx = torch.arange(200)
    distance = (f[idx, y] - f[idx, 1 - y]) / (w[y] - w[1 - y]).norm(dim=1)
    fixed = L2PGD(0.1, steps=10, step_size=0.01, random_start=False)
    res = pgd_l2(model, x, y, fixed, early_stop=True)
    steps_needed = torch.ceil(distance / 0.01)
    crossed = steps_needed <= 10
    assert crossed.any() and (~crossed).any()
    assert torch.equal(res.fooled, crossed)
    torch.testing.assert_close(sample_norms(res.adversarial - x)[crossed],
                               0.01 * steps_needed[crossed], atol=1e-9, rtol=0)
    plain = pgd_l2(model, x, y, fixed)
    torch.testing.assert_close(sample_norms(plain.adversarial - x),
                               torch.full((200,), 0.1, dtype=torch.float64), atol=1e-9, rtol=0)
