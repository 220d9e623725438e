"""requirements.txt and environment.yml name the same packages at the same versions."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_requirements_and_environment_agree():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert {"torch", "torchvision", "numpy", "scipy", "matplotlib", "tqdm", "jupyter",
            "pytest"} <= set(req)
    assert req == env


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert readme.index("make demo") < 400 and readme.index("make test") < 400


def test_git_commit_marks_uncommitted_changes(tmp_path, monkeypatch):
    import subprocess

    import utils.common.provenance as provenance
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    assert provenance.git_commit() == "unknown"  # not a git checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    (tmp_path / "code.py").write_text("a = 1\n")
    for args in [["init", "-q"], ["add", "code.py"], ["commit", "-qm", "c"]]:
        subprocess.run(git + args, check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert provenance.git_commit() == head
    (tmp_path / "code.py").write_text("a = 2\n")
    assert provenance.git_commit() == head + "-dirty"
