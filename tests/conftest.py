import json
from pathlib import Path

import pytest
import torch

COMPAT = json.loads((Path(__file__).parent / "data" / "checkpoint_compat.json").read_text())


def state_dict_from_compat(key, seed=0):
    """A random state_dict with exactly the parameter names and shapes of an authors' checkpoint."""
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.randn(shape, generator=g) if name.split(".")[-1] != "num_batches_tracked"
                   else torch.tensor(0)) for name, shape in COMPAT[key]}


@pytest.fixture
def compat():
    return COMPAT
