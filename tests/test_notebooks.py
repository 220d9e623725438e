"""Both notebooks run top to bottom in quick mode (QUICK=1) in a kernel of this Python, from the
repository root, and produce their figures and key results."""
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600  # per cell; a quick run takes about a minute on a 2-core CPU

# notebook -> lines its outputs must contain
EXPECTED = {
    "Hold_Me_Tight.ipynb": ["median margin per subspace", "median ratio high/low frequency",
                            "at the standard model's smallest median"],
    "NADs.ipynb": ["LeNet on D(v), v = LeNet NAD 0", "precomputed NADs in nads/",
                   "carrier coefficient after poisoning"],
}


def _outputs(nb):
    """(all text of the outputs, number of images) of an executed notebook."""
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise AssertionError(f"{out['ename']}: {out['evalue']}")
            text.append(out.get("text", ""))
            data = out.get("data", {})
            text.append(data.get("text/plain", ""))
            images += any(k in data for k in ("image/png", "image/jpeg"))
    return "".join(text), images


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_in_quick_mode(name, tmp_path, monkeypatch):
    monkeypatch.setenv("QUICK", "1")
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))  # the notebooks write under it
    # one thread unless told otherwise: quick runs are small, and on a loaded CPU two threads
    # per process were measured up to 20x slower (oversubscription)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(ROOT / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import sys; print('kernel python:', sys.executable)"))
    # "python3" is the kernel of the running interpreter (jupyter_client swaps "python" in the
    # kernelspec for sys.executable), so the notebook sees this virtualenv
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()

    text, images = _outputs(nb)
    assert f"kernel python: {sys.executable}" in text
    assert "QUICK=True" in text
    for line in EXPECTED[name]:
        assert line in text, f"{name}: no output contains {line!r}"
    assert images >= 5, f"{name} displayed only {images} figures"
    assert list(tmp_path.rglob("*.png")), "the notebook wrote no figure under RESULTS_DIR"
