import numpy as np
import pytest
import torch
import torch.nn as nn

from utils.errors import UserError
from utils.margin_compare import compare_margins
from utils.margins import margin_distribution
from utils.subspaces import diagonal_blocks


def _run(folder, seed, images, indices):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double().eval()
    subspaces = diagonal_blocks(4, 2, 1, 8, 8)
    margin_distribution(model, images, subspaces, folder, {"sample_indices": indices})


def test_compare_margins_summarises_two_runs_on_the_same_samples(tmp_path):
    images = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    _run(tmp_path / "a", 0, images, list(range(6)))
    _run(tmp_path / "b", 1, images, list(range(6)))
    c = compare_margins(tmp_path / "a", tmp_path / "b")
    ma, mb = np.load(tmp_path / "a" / "margins.npy"), np.load(tmp_path / "b" / "margins.npy")
    med_a, med_b = np.median(ma, axis=1), np.median(mb, axis=1)
    np.testing.assert_allclose(c["ratio"], med_b / med_a)
    assert c["smallest"] == int(np.argmin(med_a)) and len(c["ratio"]) == len(ma) == 3
    assert c["ratio_at_smallest"] == pytest.approx(med_b[c["smallest"]] / med_a[c["smallest"]])
    assert c["share_at_cap_reference"] == 0.0  # a linear model is crossed in one step

    _run(tmp_path / "c", 1, images, [5, 4, 3, 2, 1, 0])
    with pytest.raises(UserError, match="different samples"):
        compare_margins(tmp_path / "a", tmp_path / "c")
