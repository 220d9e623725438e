import pytest

from tests.helpers import COMPAT


@pytest.fixture
def compat():
    return COMPAT
