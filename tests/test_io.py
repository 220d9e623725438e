import torch

from utils.io import save_torch, sha256


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
