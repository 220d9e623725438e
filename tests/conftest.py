import pytest

from tests.helpers import COMPAT


@pytest.fixture
def compat():
    return COMPAT


@pytest.fixture
def no_work(monkeypatch):
    """Training, DeepFool and NAD gradients fail the test if they start."""
    import utils.hmt.experiment
    import utils.nad.computation
    import utils.nad.directional_bias

    def work(*a, **k):
        raise AssertionError("the work started")
    monkeypatch.setattr(utils.hmt.experiment, "margin_distribution", work)
    monkeypatch.setattr(utils.nad.computation, "iter_gradients", work)
    monkeypatch.setattr(utils.nad.directional_bias, "train", work)
