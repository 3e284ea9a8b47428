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
    code, stdout, stderr = archfit("train", "--network", csv_data, "--target", "digit", "--hidden", "64,32",
                                   "--epochs", "25", "--lr", "0.005", "--progress", "plain",
                                   "-o", out)
    assert code == 0, stderr
    return out, stdout, stderr


def test_train_prints_architecture_progress_and_score(trained):
    path, stdout, stderr = trained
    assert "64 -> 64" in stdout and "64 -> 32" in stdout
    # progress on standard error, results on standard output
    assert stderr.count("epoch ") == 25 and "epoch " not in stdout
    assert " ms" in stderr and "(0 ms" not in stderr and "about 0.0 s left" not in stderr
    score = float(stdout.split("hold-out accuracy: ")[1].split()[0])
    assert score > 0.9
    fitted = af.load(path)
    assert fitted.classes.tolist() == [f"d{i}" for i in range(10)]
    assert fitted.training_data["target"] == "digit"


def test_info(trained):
    path, _, _ = trained
    code, stdout, stderr = archfit("info", path)
    assert code == 0, stderr
    for text in ("softmax", "learning_rate", "0.005", "history: 25 epochs", "xxh64x2:",
                 "feature_names", "d9"):
        assert text in stdout, text


def test_predict(trained, csv_data, tmp_path):
    path, _, _ = trained
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
    path, _, _ = trained
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
    code, stdout, stderr = archfit("train", "--network", data, "--target", "y", "--hidden", "16",
                                   "--epochs", "60", "--lr", "0.01", "-q", "-o", out)
    assert code == 0, stderr and stdout == ""
    assert af.load(out).architecture.output == "linear"
    code, stdout, _ = archfit("predict", out, data)
    values = np.array([float(v) for v in stdout.split()[1:]])
    assert np.corrcoef(values, y)[0, 1] > 0.95


def test_progress_bar_with_tqdm(csv_data, tmp_path):
    pytest.importorskip("tqdm")
    code, stdout, stderr = archfit("train", "--network", csv_data, "--target", "digit", "--epochs", "3",
                                   "--progress", "bar", "-o", tmp_path / "m")
    assert code == 0, stderr
    assert "epoch/s" in stderr or "s/epoch" in stderr
    assert "validation accuracy" in stderr
    assert "\r" not in stdout and "epoch" not in stdout.replace("epochs", "")
    # not a terminal and not asked for: no progress at all
    code, stdout, stderr = archfit("train", "--network", csv_data, "--target", "digit", "--epochs", "3",
                                   "-o", tmp_path / "m")
    assert code == 0 and stderr == "" and "\r" not in stdout


@pytest.mark.parametrize("make,args,message", [
    (None, ["info", "missing.archfit"], "no such file: missing.archfit"),
    (None, ["predict", "missing.archfit", "x.csv"], "no such file: missing.archfit"),
    ("text", ["plot", "{file}", "-o", "/nonexistent/x.png"], "does not exist"),
    ("text", ["info", "{file}"], "not an archfit file"),
    ("csv", ["train", "--network", "{file}", "--target", "nope", "-o", "m"], "unknown target column 'nope'"),
    ("badcsv", ["train", "--network", "{file}", "--target", "y", "-o", "m"], "column 'a' is not numeric"),
    ("csv", ["train", "--network", "{file}", "--target", "y", "--epochs", "0", "-o", "m"], "epochs"),
    ("csv", ["train", "--network", "{file}", "--target", "y", "--dtype", "float64",
             "--precision", "bfloat16", "-o", "m"], "precision='bfloat16' is for float32 models"),
    (None, ["train", "missing.csv", "--target", "y", "-o", "m"], "no such file: missing.csv"),
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


@pytest.mark.parametrize("args", [["train"], ["train", "--network", "d.csv", "--target", "y", "--hidden",
                                              "64,abc", "-o", "m"],
                                   ["train", "--network", "d.csv", "--target", "y", "--sep", "ab", "-o", "m"],
                                   ["train", "--network", "d.csv", "--target", "y", "--optimizer", "rmsprop",
                                    "-o", "m"]])
def test_usage_errors_exit_2(args):
    code, _, stderr = archfit(*args)
    assert code == 2 and "usage" in stderr and "Traceback" not in stderr


def test_console_script_is_declared():
    from importlib.metadata import entry_points
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("archfit") == "archfit.cli:run"


# ---- a new user's data: scikit-learn's raw sets, written to CSV at test time -----------------
@pytest.fixture(scope="module")
def raw_sets(tmp_path_factory):
    sklearn = pytest.importorskip("sklearn.datasets")
    pytest.importorskip("pandas")
    folder = tmp_path_factory.mktemp("raw")
    paths = {}
    for name, frame in [("breast_cancer", sklearn.load_breast_cancer(as_frame=True).frame),
                        ("wine", sklearn.load_wine(as_frame=True).frame),
                        ("diabetes", sklearn.load_diabetes(as_frame=True, scaled=False).frame)]:
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


@pytest.mark.parametrize("name, metric, least", [("breast_cancer", "accuracy", 0.95),
                                                 ("wine", "accuracy", 0.91),
                                                 ("diabetes", "R²", 0.40)])
def test_the_defaults_on_raw_data(raw_sets, tmp_path, name, metric, least):
    out = tmp_path / "m.archfit"
    code, stdout, stderr = archfit("train", "--network", raw_sets[name], "--target", "target",
                                   "--progress", "none", "-o", out)
    assert code == 0, stderr
    score = float(stdout.split(f"hold-out {metric}: ")[1].split()[0])
    assert score >= least
    scaling = af.load(out).standardization
    assert scaling is not None and (scaling.target_mean is not None) == (metric == "R²")
    code, stdout, _ = archfit("info", out)
    assert "standardisation: " in stdout and "features standardised" in stdout
    assert "held out by the command line" in stdout and "(20% of the data; 20% asked)" in stdout
    assert "validation_fraction" in stdout and "(not used: no early stopping)" in stdout
    if name == "wine":      # without scaling, markedly worse: the default matters
        code, stdout, _ = archfit("train", "--network", raw_sets[name], "--target", "target", "--no-scale",
                                  "--progress", "none", "-o", tmp_path / "raw.archfit")
        assert float(stdout.split("hold-out accuracy: ")[1].split()[0]) < score


def _blank_cells(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    path = tmp_path / "blanks.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "mean perimeter", "y"])
        for i, (row, label) in enumerate(zip(X, y)):
            cells = [f"{v:.5f}" for v in row]
            if i in (5, 40):
                cells[2] = ""
            w.writerow(cells + [label])
    return path


@pytest.mark.parametrize("engine", ["pyarrow", "pandas", "python"])
def test_missing_values_are_named_or_imputed(tmp_path, engine):
    from archfit.io import read
    if engine != "python":
        pytest.importorskip(engine)
    path = _blank_cells(tmp_path)
    with pytest.raises(ValueError, match="column 'mean perimeter' has 2 missing value\\(s\\), "
                                         "the first at line 7"):
        read(path, "y", engine=engine)
    table = read(path, "y", engine=engine, missing="keep")
    assert np.isnan(table.X[:, 2]).sum() == 2 and table.y.dtype.kind == "i"


def test_impute_travels_with_the_model(tmp_path):
    path = _blank_cells(tmp_path)
    code, _, stderr = archfit("train", "--network", path, "--target", "y", "-q", "-o", tmp_path / "m")
    assert code == 1 and "missing value(s), the first at line 7" in stderr
    assert "--impute" in stderr
    code, _, stderr = archfit("train", "--network", path, "--target", "y", "--impute", "median", "-q",
                              "-o", tmp_path / "m")
    assert code == 0, stderr
    fitted = af.load(tmp_path / "m")
    assert fitted.training_data["impute"]["strategy"] == "median"
    code, stdout, stderr = archfit("predict", tmp_path / "m", path)
    assert code == 0, stderr and len(stdout.splitlines()) == 201
    code, stdout, _ = archfit("info", tmp_path / "m")
    assert "2 cell(s) filled with the training rows' median" in stdout


def test_command_line_rough_edges(raw_sets, tmp_path):
    data = raw_sets["breast_cancer"]
    # the output path is checked before training
    code, _, stderr = archfit("train", "--network", data, "--target", "target", "-o",
                              tmp_path / "nowhere" / "m.archfit")
    assert code == 1 and "does not exist" in stderr and "Epoch" not in stderr
    # every row trained on
    code, stdout, stderr = archfit("train", "--network", data, "--target", "target", "--epochs", "5",
                                   "--validation-fraction", "0", "--progress", "none",
                                   "-o", tmp_path / "all.archfit")
    assert code == 0, stderr
    assert "training accuracy" in stdout and "holding out none" in stdout
    assert af.load(tmp_path / "all.archfit").training_data["n_samples"] == 569
    code, _, stderr = archfit("train", "--network", data, "--target", "target", "--validation-fraction",
                              "1.5", "-o", tmp_path / "x")
    assert code == 1 and "--validation-fraction must be in [0, 1)" in stderr
    # a 0/1 target with one sigmoid output
    code, stdout, stderr = archfit("train", "--network", data, "--target", "target", "--output", "sigmoid",
                                   "--epochs", "5", "--progress", "plain",
                                   "-o", tmp_path / "sig.archfit")
    assert code == 0, stderr
    assert "validation accuracy" in stderr
    assert af.load(tmp_path / "sig.archfit").architecture.output == "sigmoid"
    # --help shows the defaults
    code, stdout, _ = archfit("train", "--help")
    assert "(default: 50)" in stdout and "(default: 64)" in stdout and "(default: 0.001)" in stdout


def test_a_closed_pipe_ends_quietly(raw_sets, tmp_path):
    out = tmp_path / "m.archfit"
    assert archfit("train", "--network", raw_sets["wine"], "--target", "target", "--epochs", "2", "-q",
                   "-o", out)[0] == 0
    big = tmp_path / "big.csv"
    with open(raw_sets["wine"]) as f:
        lines = f.read().splitlines()
    big.write_text("\n".join([lines[0]] + lines[1:] * 200) + "\n")
    child = subprocess.Popen([sys.executable, "-m", "archfit", "predict", str(out), str(big)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.readline()
    child.stdout.close()                  # as `| head -1` does
    err = child.stderr.read().decode()
    child.stderr.close()
    assert child.wait(timeout=120) == 0, err
    assert err == ""


def test_parquet_input(raw_sets, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "wine.parquet"
    pd.read_csv(raw_sets["wine"]).to_parquet(path)
    code, stdout, stderr = archfit("train", "--network", path, "--target", "target", "--epochs", "3", "-q",
                                   "-o", tmp_path / "m")
    assert code == 0, stderr
    code, stdout, stderr = archfit("predict", tmp_path / "m", path)
    assert code == 0 and len(stdout.splitlines()) == 179


# ---- the first hour: what a new user tripped over -------------------------------------------
def test_version_and_help():
    code, stdout, _ = archfit("--version")
    assert code == 0 and stdout.strip() == f"archfit {af.__version__}"
    code, stdout, _ = archfit("train", "--help")
    assert code == 0 and "(default: None)" not in stdout
    # every option explains itself: no bare "--dtype {float32,float64}" line
    dtype = stdout.split("--dtype {float32,float64}")[2].splitlines()[1]
    assert "floating-point" in dtype
    assert "(default: 0)" in stdout          # a zero default is still a default
    code, stdout, _ = archfit("predict", "--help")
    assert "Parquet" in stdout and "(default: None)" not in stdout


@pytest.mark.parametrize("sep, suffix", [(";", ".csv"), ("\t", ".tsv"), ("|", ".txt")])
def test_the_separator_is_detected_or_given(raw_sets, tmp_path, sep, suffix):
    pd = pytest.importorskip("pandas")
    path = tmp_path / f"wine{suffix}"
    pd.read_csv(raw_sets["wine"]).to_csv(path, sep=sep, index=False)
    code, stdout, stderr = archfit("train", "--network", path, "--target", "target", "--epochs", "3",
                                   "-o", tmp_path / "m")
    assert code == 0, stderr
    assert "13 features" in stdout
    code, stdout, stderr = archfit("predict", tmp_path / "m", path)
    assert code == 0 and len(stdout.splitlines()) == 179, stderr
    # a wrong separator named by hand: the message says how the file was read
    code, _, stderr = archfit("train", "--network", path, "--target", "target", "--sep", ",", "-o",
                              tmp_path / "x")
    assert code == 1 and "unknown target column 'target'" in stderr
    assert "read as comma-separated; --sep sets another separator" in stderr


def test_a_pandas_index_column_is_not_a_feature(raw_sets, tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "indexed.csv"
    pd.read_csv(raw_sets["wine"]).to_csv(path)          # index=True: an unnamed first column
    code, stdout, stderr = archfit("train", "--network", path, "--target", "target", "--epochs", "3",
                                   "-o", tmp_path / "m")
    assert code == 0, stderr
    assert "first column has no name" in stderr and "not used as a feature" in stderr
    names = af.load(tmp_path / "m").feature_names
    assert len(names) == 13 and "" not in names and "Unnamed: 0" not in names
    code, stdout, stderr = archfit("predict", tmp_path / "m", path)
    assert code == 0 and len(stdout.splitlines()) == 179, stderr


def _dated(tmp_path, n=600):
    import datetime
    rng = np.random.default_rng(0)
    path = tmp_path / "dated.csv"
    with open(path, "w") as f:
        f.write("date,x,y\n")
        for i in range(n):     # a date a row, as a CSV of daily readings has
            day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
            f.write(f"{day.isoformat()},{rng.normal():.4f},{rng.normal():.4f}\n")
    return path


def test_a_target_with_a_value_per_row_is_refused(tmp_path):
    path = _dated(tmp_path)
    code, _, stderr = archfit("train", "--network", path, "--target", "date", "-o", tmp_path / "m")
    assert code == 1 and "distinct values in 600 rows" in stderr
    assert "--output linear" in stderr and not (tmp_path / "m").exists()
    # a fractional target forced into a classifier
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b\n" + "".join(f"{i},{i / 7:.3f}\n" for i in range(50)))
    code, _, stderr = archfit("train", "--network", numbers, "--target", "b", "--output", "softmax",
                              "-o", tmp_path / "m")
    assert code == 1 and "fractional numbers" in stderr


def test_dates_as_features_are_refused_in_words(tmp_path):
    path = _dated(tmp_path)
    code, _, stderr = archfit("train", "--network", path, "--target", "y", "-o", tmp_path / "m")
    assert code == 1 and "holds dates" in stderr and "days since" in stderr
    assert "datetime" not in stderr and "(line 2: 2024-01-01" in stderr


def test_sigmoid_models_predict_probabilities(raw_sets, tmp_path):
    out = tmp_path / "s.archfit"
    code, _, stderr = archfit("train", "--network", raw_sets["breast_cancer"], "--target", "target",
                              "--output", "sigmoid", "--epochs", "5", "-q", "-o", out)
    assert code == 0, stderr
    code, stdout, stderr = archfit("predict", out, raw_sets["breast_cancer"])
    assert code == 0, stderr
    rows = list(csv.reader(stdout.splitlines()))
    assert rows[0] == ["prediction", "probability_1"]
    p = np.array([float(r[1]) for r in rows[1:]])
    assert len(p) == 569 and (p > 0).all() and (p < 1).all() and len(np.unique(p)) > 100
    assert all((float(r[1]) >= 0.5) == (r[0] == "1") for r in rows[1:])


def test_every_command_reads_an_ensemble(tmp_path):
    from archfit.datasets import load_digits
    X, y = load_digits()
    model = af.Model(af.Architecture(64, [af.Dense(16, "relu"), af.Dense(10)], "softmax"))
    members = af.fit_many(model, X[:1500], y[:1500],
                          [af.Hyperparameters(epochs=4, seed=s, standardize=True)
                           for s in range(3)], validation=(X[1500:], y[1500:]))
    ensemble = af.Ensemble(members)
    path = tmp_path / "e.archfit"
    ensemble.save(path)
    data = tmp_path / "x.npz"
    np.savez(data, X=X[1500:], y=y[1500:])
    code, stdout, stderr = archfit("info", path)
    assert code == 0, stderr
    assert "ensemble of 3 fit models" in stdout and "differing: seed" in stdout
    assert stdout.count("validation accuracy") == 3
    code, stdout, stderr = archfit("predict", path, data)
    assert code == 0, stderr
    rows = list(csv.reader(stdout.splitlines()))
    assert rows[0][:2] == ["prediction", "probability_0"] and len(rows) == 298
    assert [int(r[0]) for r in rows[1:]] == ensemble.predict(X[1500:]).tolist()
    code, _, stderr = archfit("plot", path, "-o", tmp_path / "e.png")
    assert code == 0 and (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG", stderr


def test_info_on_many_classes_and_few_held_out(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "many.csv"
    with open(path, "w") as f:
        f.write("a,b,label\n")
        for i in range(300):
            f.write(f"{rng.normal():.3f},{rng.normal():.3f},c{i % 60}\n")
    code, _, stderr = archfit("train", "--network", path, "--target", "label", "--epochs", "2", "-q",
                              "-o", tmp_path / "m")
    assert code == 0, stderr
    code, stdout, _ = archfit("info", tmp_path / "m")
    line = next(s for s in stdout.splitlines() if s.startswith("classes"))
    assert line.startswith("classes (60): ") and "(60 in all)" in line and len(line) < 250
    held = next(s for s in stdout.splitlines() if s.startswith("validation:"))
    assert "60 rows (20% of the data; 20% asked)" in held


def test_saved_files_follow_the_umask(raw_sets, tmp_path):
    out = tmp_path / "m.archfit"
    code, _, stderr = archfit("train", "--network", raw_sets["wine"], "--target", "target", "--epochs", "2",
                              "-q", "-o", out)
    assert code == 0, stderr
    mask = os.umask(0o022)
    os.umask(mask)
    assert (out.stat().st_mode & 0o777) == 0o666 & ~mask
    other = tmp_path / "other.txt"
    other.write_text("x")
    assert (out.stat().st_mode & 0o777) == (other.stat().st_mode & 0o777)


def test_layers_and_an_ensemble_from_the_command_line(csv_data, tmp_path):
    out = tmp_path / "tabm.archfit"
    layers = '[{"kind": "piecewise_linear", "n_bins": 8, "dim": 4}, {"kind": "dense", ' \
        '"units": 32, "activation": "relu"}]'
    code, stdout, stderr = archfit("train", "--network", csv_data, "--target", "digit", "--layers", layers,
                                   "--ensemble", "4", "--adapters", "all", "--epochs", "8",
                                   "--lr", "0.003", "-o", out)
    assert code == 0, stderr
    assert "256 -> 4 x 256" in stdout and "mean of 4" in stdout
    assert float(stdout.split("hold-out accuracy: ")[1].split()[0]) > 0.85
    fitted = af.load(out)
    assert fitted.architecture.members == 4 and fitted.architecture.ensemble.adapters == "all"
    assert fitted.architecture.fitted[0].name == "piecewise_linear0.edges"
    code, _, stderr = archfit("train", "--network", csv_data, "--target", "digit", "--ensemble", "0")
    assert code == 2 and "--ensemble: the members, a whole number from 1 to 1024" in stderr


# ---- the tabular learner, the default of `archfit train` --------------------------------------
@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory):
    """A CSV as people have them: text, booleans, ISO dates and empty cells."""
    rng = np.random.default_rng(0)
    n = 400
    path = tmp_path_factory.mktemp("messy") / "sales.csv"
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.lognormal(size=n)
    day = rng.integers(0, 365, n)
    price = np.log(size) + (colour == "red") * 2 + rng.normal(scale=0.1, size=n)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "colour", "sold", "day", "price"])
        for i in range(n):
            w.writerow([f"{size[i]:.4f}" if i % 7 else "", colour[i], bool(i % 2),
                        str(np.datetime64("2024-01-01") + day[i]), f"{price[i]:.5f}"])
    return path


def test_train_defaults_to_the_tabular_learner(messy_csv, tmp_path):
    out = tmp_path / "sales.archfit"
    code, stdout, stderr = archfit("train", messy_csv, "--target", "price", "--members", "4",
                                   "-o", out)
    assert code == 0, stderr
    assert "tabular learner (4 networks)" in stdout and "validation RMSE" in stdout
    ensemble = af.Ensemble.load(out)
    assert ensemble.record["target"] == "price" and ensemble.record["trained"] == 4
    assert ensemble.preprocessing.kinds == {"size": "numeric", "colour": "categorical",
                                            "sold": "categorical", "day": "date"}
    code, stdout, stderr = archfit("info", out)
    assert code == 0, stderr
    assert "archfit tabular learner (regression)" in stdout
    assert "colour: categorical, 3 values ['blue', 'green', 'red']" in stdout
    assert "size: numeric" in stdout and "missing -> indicator" in stdout
    code, stdout, stderr = archfit("predict", out, messy_csv)
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert lines[0] == "prediction" and len(lines) == 401
    predicted = np.array([float(v) for v in lines[1:]])
    truth = np.loadtxt(messy_csv, delimiter=",", skiprows=1, usecols=4)
    assert np.corrcoef(predicted, truth)[0, 1] > 0.9     # a seventh of the sizes missing


def test_train_tabular_classifies_and_refuses_network_options(raw_sets, tmp_path):
    out = tmp_path / "wine.archfit"
    code, stdout, stderr = archfit("train", raw_sets["wine"], "--target", "target",
                                   "--members", "4", "-q", "-o", out)
    assert code == 0, stderr
    assert af.Ensemble.load(out).record["task"] == "classification"
    code, _, stderr = archfit("train", raw_sets["wine"], "--target", "target", "--hidden",
                              "32", "--epochs", "3", "-o", out)
    assert code == 1 and "--hidden, --epochs set up one network: add --network" in stderr
    code, _, stderr = archfit("train", "--network", raw_sets["wine"], "--target", "target",
                              "--members", "4", "-o", out)
    assert code == 1 and "leave out --network" in stderr
    code, _, stderr = archfit("train", raw_sets["wine"], "--target", "target",
                              "--validation-fraction", "0", "-o", out)
    assert code == 1 and "--validation-fraction must be in (0, 1)" in stderr


@pytest.mark.filterwarnings("ignore:precision='bfloat16'.*:RuntimeWarning")
def test_a_network_trains_in_bfloat16_and_info_says_so(csv_data, tmp_path):
    out = tmp_path / "bf16.archfit"
    code, stdout, stderr = archfit("train", "--network", csv_data, "--target", "digit",
                                   "--hidden", "64", "--epochs", "10", "--lr", "0.005",
                                   "--precision", "bfloat16", "-o", out)
    assert code == 0, stderr
    assert float(stdout.split("hold-out accuracy: ")[1].split()[0]) > 0.9
    code, stdout, stderr = archfit("info", out)
    assert code == 0 and "precision" in stdout and "bfloat16" in stdout
    # the tabular learner's members too
    code, stdout, stderr = archfit("train", csv_data, "--target", "digit", "--members", "2",
                                   "--precision", "bfloat16", "-q", "-o", out)
    assert code == 0, stderr
    ensemble = af.Ensemble.load(out)
    assert {m.precision for m in ensemble.members} == {"bfloat16"}
    assert ensemble.record["precision"] == "bfloat16"
