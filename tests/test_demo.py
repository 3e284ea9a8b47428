"""The main job: ``python -m archfit demo`` on the shipped digits data."""
import re
import subprocess
import sys

import numpy as np

from archfit.datasets import load_digits


def test_shipped_digits_data():
    X, y = load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_demo_command_reaches_the_promised_accuracy():
    result = subprocess.run([sys.executable, "-m", "archfit", "demo"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dense0" in out and "parameters" in out          # the architecture summary
    assert len(re.findall(r"^epoch\s+\d+/40", out, re.M)) == 40  # one progress line per epoch
    accuracy = float(re.search(r"hold-out accuracy: ([0-9.]+)", out).group(1))
    assert accuracy >= 0.96
    assert re.search(r"training throughput: [\d,]+ samples/s", out)


def test_command_line_errors_are_one_line():
    result = subprocess.run([sys.executable, "-m", "archfit", "demo", "--epochs", "0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("archfit: error:") and "epochs" in result.stderr
    assert "Traceback" not in result.stderr
