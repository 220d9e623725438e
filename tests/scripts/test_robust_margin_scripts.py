"""End to end on the bundled MNIST sample and the shipped checkpoints (small and fast)."""
import re
import subprocess
import sys

import numpy as np

from utils.common.data import ROOT


def run_script(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_attack_eval_prints_clean_and_pgd_accuracy():
    for flipped in ([], ["--flipped"]):
        variant = "MNIST_flipped" if flipped else "MNIST"
        out = run_script("scripts.attack_eval", "--dataset", "MNIST", "--checkpoint",
                         f"Models/Pretrained/{variant}/LeNet/model.t7", "--eps", "2",
                         "--samples", "40", "--steps", "10", "--restarts", "0",
                         "--device", "cpu", *flipped)
        assert out.returncode == 0, out.stderr
        last = out.stdout.strip().splitlines()[-1]
        m = re.fullmatch(r"clean_acc: (\d+\.\d\d) pgd_acc: (\d+\.\d\d)", last)
        assert m, last
        clean, pgd = float(m.group(1)), float(m.group(2))
        assert clean > 90 and pgd < clean


def test_attack_eval_explains_a_checkpoint_of_another_architecture():
    out = run_script("scripts.attack_eval", "--checkpoint",
                     "Models/Pretrained/MNIST/LeNet/model.t7", "--model", "ResNet18",
                     "--samples", "10", "--device", "cpu")
    assert out.returncode == 2
    assert out.stderr.startswith("error: checkpoint") and "does not fit ResNet18" in out.stderr


def test_margin_robust_mnist_with_the_shipped_checkpoint(tmp_path):
    out = run_script("scripts.margin_robust_mnist", "--samples", "3", "--block-step", "20",
                     "--results-dir", str(tmp_path), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "margin_MNIST_robust" / "LeNet"
    margins = np.load(folder / "margins.npy")
    assert margins.shape == (2, 3) and (margins > 0).all()
    assert (folder / "run.json").is_file()
