import numpy as np
import pytest
import torch

from tests.helpers import small_disk
from utils.common.io import DiskFull, save_npy, save_torch, sha256


def test_equal_checkpoints_are_equal_files(tmp_path):
    """run.json records a checkpoint's sha256: the same weights must give the same bytes,
    whatever temporary name the atomic write used."""
    state = {"w": torch.randn(3, 4), "b": torch.randn(4)}
    a = save_torch(tmp_path / "a" / "model.t7", state)
    b = save_torch(tmp_path / "b" / "model.t7", {k: v.clone() for k, v in state.items()})
    assert sha256(a) == sha256(b)
    loaded = torch.load(a, weights_only=True)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert not list((tmp_path / "a").glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("mount", [True, False], ids=["tmpfs if allowed", "simulated"])
def test_a_full_disk_is_one_sentence_naming_the_file_and_the_space_it_needs(tmp_path,
                                                                           monkeypatch, mount):
    with small_disk(tmp_path, monkeypatch, mount=mount) as (folder, grow):
        big = np.zeros(2_000_000, np.float32)  # 8 MB
        with pytest.raises(DiskFull, match=f"no space left on the device of {folder}/big.npy: "
                                           f"it needs 8.0 MB and .* are free"):
            save_npy(folder / "big.npy", big)
        assert not list(folder.iterdir())  # no half-written or temporary file
        grow()
        save_npy(folder / "big.npy", big)
        np.testing.assert_array_equal(np.load(folder / "big.npy"), big)
