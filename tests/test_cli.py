"""The command line end to end, through subprocess: train -> info -> predict -> plot,
and every error case with its exit status."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import archfit as af


def archfit(*args, cwd=None):
    result = subprocess.run([sys.executable, "-m", "archfit", *map(str, args)],
                            capture_output=True, text=True, timeout=300, cwd=cwd)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory):
    from archfit.datasets import load_digits
    X, y = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"p{i}" for i in range(64)] + ["digit"])
        for row, label in zip(X / 16, y):
            w.writerow([f"{v:.4f}" for v in row] + [f"d{label}"])   # string labels
    return path


@pytest.fixture(scope="module")
def trained(csv_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "digits.archfit"
    code, stdout, stderr = archfit("train", csv_data, "--target", "digit", "--hidden", "64,32",
                                   "--epochs", "25", "--lr", "0.005", "--progress", "plain",
                                   "-o", out)
    assert code == 0, stderr
    return out, stdout


def test_train_prints_architecture_progress_and_score(trained):
    path, stdout = trained
    assert "64 -> 64" in stdout and "64 -> 32" in stdout
    assert stdout.count("epoch ") == 25
    score = float(stdout.split("hold-out accuracy: ")[1].split()[0])
    assert score > 0.9
    fitted = af.load(path)
    assert fitted.classes.tolist() == [f"d{i}" for i in range(10)]
    assert fitted.training_data["target"] == "digit"


def test_info(trained):
    path, _ = trained
    code, stdout, stderr = archfit("info", path)
    assert code == 0, stderr
    for text in ("softmax", "learning_rate", "0.005", "history: 25 epochs", "xxh64x2:",
                 "feature_names", "d9"):
        assert text in stdout, text


def test_predict(trained, csv_data, tmp_path):
    path, _ = trained
    out = tmp_path / "predictions.csv"
    code, stdout, stderr = archfit("predict", path, csv_data, "-o", out)
    assert code == 0, stderr
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "prediction" and rows[0][1] == "probability_d0"
    assert len(rows) == 1798
    with open(csv_data) as f:
        truth = [r[-1] for r in list(csv.reader(f))[1:]]
    accuracy = np.mean([r[0] == t for r, t in zip(rows[1:], truth)])
    assert accuracy > 0.9
    code, stdout, _ = archfit("predict", path, csv_data)   # to standard output
    assert code == 0 and stdout.splitlines()[0].startswith("prediction,")


def test_plot(trained, tmp_path):
    path, _ = trained
    png = tmp_path / "curve.png"
    code, _, stderr = archfit("plot", path, "-o", png)
    assert code == 0, stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_regression_from_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X @ [1.0, -1.0, 0.5] + 0.05 * rng.normal(size=400)
    data = tmp_path / "reg.npz"
    np.savez(data, X=X, y=y)
    out = tmp_path / "reg.archfit"
    code, stdout, stderr = archfit("train", data, "--target", "y", "--hidden", "16",
                                   "--epochs", "60", "--lr", "0.01", "-q", "-o", out)
    assert code == 0, stderr and stdout == ""
    assert af.load(out).architecture.output == "linear"
    code, stdout, _ = archfit("predict", out, data)
    values = np.array([float(v) for v in stdout.split()[1:]])
    assert np.corrcoef(values, y)[0, 1] > 0.95


def test_progress_bar_with_tqdm(csv_data, tmp_path):
    pytest.importorskip("tqdm")
    code, stdout, stderr = archfit("train", csv_data, "--target", "digit", "--epochs", "3",
                                   "--progress", "bar", "-o", tmp_path / "m")
    assert code == 0, stderr
    assert "epoch/s" in stdout or "s/epoch" in stdout
    assert "val_score" in stdout


@pytest.mark.parametrize("make,args,message", [
    (None, ["info", "missing.archfit"], "No such file"),
    ("text", ["info", "{file}"], "not an archfit file"),
    ("csv", ["train", "{file}", "--target", "nope", "-o", "m"], "unknown target column 'nope'"),
    ("badcsv", ["train", "{file}", "--target", "y", "-o", "m"], "column 'a' is not numeric"),
    ("csv", ["train", "{file}", "--target", "y", "--hidden", "4,x", "-o", "m"], "--hidden"),
    ("csv", ["train", "{file}", "--target", "y", "--epochs", "0", "-o", "m"], "epochs"),
    (None, ["train", "missing.csv", "--target", "y", "-o", "m"], "no such file"),
    ("text", ["predict", "{file}", "data.csv"], "not an archfit file"),
    ("text", ["plot", "{file}", "-o", "x.png"], "not an archfit file"),
])
def test_errors_are_one_line(tmp_path, make, args, message):
    file = tmp_path / "input"
    if make == "text":
        file.write_text("just some text\n")
    elif make == "csv":
        file.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    elif make == "badcsv":
        file.write_text("a,b,y\n1,2,0\nseven,4,1\n")
    code, stdout, stderr = archfit(*[a.replace("{file}", str(file)) for a in args], cwd=tmp_path)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archfit: error:"), stderr
    assert message in lines[0]
    assert "Traceback" not in stderr


def test_usage_errors_exit_2():
    code, _, stderr = archfit("train")
    assert code == 2 and "usage" in stderr and "Traceback" not in stderr


def test_console_script_is_declared():
    from importlib.metadata import entry_points
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("archfit") == "archfit.cli:main"
