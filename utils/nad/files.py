"""The files of a NAD computation and the reading of a NAD file.

In a folder (``nads/`` for the shipped ones): ``<Arch>_NADs.npy`` [k, 1024] float32 (one NAD per
row), ``<Arch>_eigenvals.npy`` [k], ``<Arch>_NADs.json`` (how they were computed, and under
``"files"`` the sha256 of the two arrays), ``<Arch>_NADs.png``, and while a computation runs its
resume folder ``.<Arch>_gradients.partial/``.
"""
from pathlib import Path

import numpy as np

from ..common.errors import UserError
from ..common.run_folder import check_unit

NAD_SIZE = 1024  # pixels of the 1x32x32 images NADs are computed for


def nad_paths(out_dir, arch):
    out_dir = Path(out_dir)
    return {"nads": out_dir / f"{arch}_NADs.npy", "eigenvals": out_dir / f"{arch}_eigenvals.npy",
            "json": out_dir / f"{arch}_NADs.json", "png": out_dir / f"{arch}_NADs.png",
            "partial": out_dir / f".{arch}_gradients.partial"}


def read_nads(path, size=NAD_SIZE):
    """NADs [k, size] (float32, one per row) from a ``.npy`` file, checked: a UserError when it
    is missing, damaged, not a [k, size] array of finite real numbers with non-zero rows, or
    differs from the hash that the ``<stem>.json`` beside it records (one written by
    scripts.nad_computation; a JSON without hashes, from older versions, is not checked)."""
    path = Path(path)
    recompute = "compute NADs with 'python -m scripts.nad_computation --arch ARCH'"
    if path.is_dir():
        raise UserError(f"the NAD file {path} is a folder; give the <Arch>_NADs.npy file inside "
                        f"it")
    if not path.is_file():
        raise UserError(f"the NAD file {path} does not exist; {recompute}, or give the path of "
                        f"an existing <Arch>_NADs.npy")
    try:
        nads = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises many types for damaged files
        raise UserError(f"the NAD file {path} cannot be read as a .npy array "
                        f"({type(e).__name__}); it is damaged or not a NAD file: {recompute}") \
            from None
    if not isinstance(nads, np.ndarray):  # an .npz archive
        nads.close()
        raise UserError(f"the NAD file {path} is an .npz archive, not a .npy array; give an "
                        f"<Arch>_NADs.npy file")
    if nads.ndim != 2 or len(nads) == 0 or nads.shape[1] != size or nads.dtype.kind not in "fiu":
        raise UserError(f"the NAD file {path} holds a {nads.dtype} array of shape "
                        f"{list(nads.shape)}, not NADs [k, {size}] of real numbers; {recompute}")
    nads = nads.astype(np.float32)
    if not np.isfinite(nads).all() or not np.abs(nads).max(axis=1).all():
        raise UserError(f"the NAD file {path} holds NaN, infinite or all-zero rows; {recompute}")
    meta = path.with_suffix(".json")
    if meta.is_file():
        check_unit(path.parent, meta.name, [path.name], f"{recompute} again",
                   hashes_required=False)
    return nads
