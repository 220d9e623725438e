"""README.md and docs/: the example runs as written, and every relative link and image exists."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "nads" / "README.md",
         ROOT / "Models" / "README.md", ROOT / "tests" / "data" / "originals" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_the_readme_example_runs_as_written(tmp_path):
    """Saved as a file and run from another folder, with the repository on PYTHONPATH, as the
    README says."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use the tools on your own network", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    assert "PYTHONPATH=/path/to/repo python my_script.py" in section
    (tmp_path / "my_script.py").write_text(code)
    proc = subprocess.run([sys.executable, "my_script.py"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT),
                                          "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and all("median margin" in line for line in lines)
    assert all(float(line.split()[-1]) > 0 for line in lines)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_exist(page):
    missing = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
