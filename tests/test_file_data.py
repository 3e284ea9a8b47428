"""Data larger than memory: file-backed arrays are read a part at a time,
with the same results as the same data in memory."""
import mmap
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import archfit as af
from archfit import _streaming


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    # parts of a few dozen rows, so that every fit and prediction has many
    monkeypatch.setattr(_streaming, "PART_BYTES", 40 * 16 * 8)


def _on_disk(tmp_path, X, name="X.npy", mode="r"):
    path = tmp_path / name
    np.save(path, X)
    return np.load(path, mmap_mode=mode)


def _classification(n=1001, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 16))
    return X, (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)


MODEL32 = af.Model(af.Architecture(16, [af.Dense(12, activation="tanh"), af.Dense(2)],
                                   output="softmax"), "float32")


@pytest.mark.parametrize("file_dtype, model_dtype", [("float32", "float32"),
                                                     ("float64", "float32"),
                                                     ("float64", "float64"),
                                                     ("int16", "float32")])
@pytest.mark.parametrize("hp", [
    af.Hyperparameters(epochs=3, batch_size=50, dropout=0.2),
    af.Hyperparameters(epochs=3, batch_size=64, shuffle=False, optimizer="momentum"),
    af.Hyperparameters(epochs=6, batch_size=32, early_stopping=True, patience=2),
], ids=["dropout", "no-shuffle", "early-stopping"])
def test_a_file_gives_the_same_fit_as_memory(tmp_path, file_dtype, model_dtype, hp):
    X, y = _classification()
    X = (X * 100).astype(file_dtype)
    Xm = _on_disk(tmp_path, X)
    model = af.Model(MODEL32.architecture, model_dtype)
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    from_file = af.fit(model, Xm, y, hp, sample_weight=w)
    in_memory = af.fit(model, np.array(X), y, hp, sample_weight=w)
    assert from_file.parameters.tobytes() == in_memory.parameters.tobytes()
    assert from_file.training_data == in_memory.training_data
    assert np.array_equal(from_file.predict_proba(Xm), in_memory.predict_proba(X))
    assert np.array_equal(from_file.predict(Xm), in_memory.predict(X))
    assert from_file.score(Xm, y) == in_memory.score(X, y)
    assert from_file.loss(Xm, y) == pytest.approx(in_memory.loss(X, y), rel=1e-5)


def test_linear_targets_and_slices_of_a_file(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(700, 20))
    Y = np.column_stack([X[:, 0] - X[:, 3], X[:, 1] ** 2])
    Xm = _on_disk(tmp_path, X)[100:, 2:18]            # a view: offset rows and columns
    model = af.Model(af.Architecture(16, [af.Dense(8, activation="relu"), af.Dense(2)]))
    hp = af.Hyperparameters(epochs=2, batch_size=30)
    from_file = af.fit(model, Xm, Y[100:], hp)
    in_memory = af.fit(model, np.ascontiguousarray(X[100:, 2:18]), Y[100:], hp)
    assert from_file.parameters.tobytes() == in_memory.parameters.tobytes()


@pytest.mark.parametrize("kind", ["copy-on-write memmap", "raw mmap"])
def test_mappings_that_cannot_be_read_again_from_the_file(tmp_path, kind):
    X, y = _classification(300)
    X = X.astype(np.float32)
    if kind == "copy-on-write memmap":
        Xm = _on_disk(tmp_path, X, mode="c")
        Xm[0, 0] = X[0, 0] = 7.0        # changed in memory only: the file must not be read
    else:
        path = tmp_path / "raw.bin"
        X.tofile(path)
        with open(path, "rb") as f:
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        Xm = np.frombuffer(buffer, dtype=np.float32).reshape(X.shape)
    assert _streaming.file_backed(Xm)
    assert _streaming.FileRows(Xm, 16, np.float32)._file is None
    hp = af.Hyperparameters(epochs=2, batch_size=16)
    assert (af.fit(MODEL32, Xm, y, hp).parameters.tobytes()
            == af.fit(MODEL32, X, y, hp).parameters.tobytes())


def test_bad_files_are_refused_before_any_kernel_runs(tmp_path):
    X, y = _classification(400)
    bad = X.copy()
    bad[237, 3] = np.nan
    with pytest.raises(ValueError, match=r"X \(rows \d+ to \d+\) contains 1 NaN"):
        af.fit(MODEL32, _on_disk(tmp_path, bad), y, af.Hyperparameters(epochs=1))
    huge = X.copy()
    huge[5, 5] = 1e300
    with pytest.raises(ValueError, match="converted to float32"):
        af.fit(MODEL32, _on_disk(tmp_path, huge, "huge.npy"), y)
    with pytest.raises(ValueError, match="has 15 features"):
        af.fit(MODEL32, _on_disk(tmp_path, X[:, :15].copy(), "narrow.npy"), y)
    with pytest.raises(TypeError, match="real-valued"):
        af.fit(MODEL32, _on_disk(tmp_path, X.astype("complex64"), "complex.npy"), y)
    with pytest.raises(ValueError, match="lbfgs.*in memory"):
        af.fit(MODEL32, _on_disk(tmp_path, X, "ok.npy"), y, af.Hyperparameters(optimizer="lbfgs"))
    fitted = af.fit(MODEL32, X, y, af.Hyperparameters(epochs=1))
    with pytest.raises(ValueError, match="contains 1 NaN"):
        fitted.predict(_on_disk(tmp_path, bad, "bad2.npy"))


def test_holdout_and_select_on_a_file(tmp_path):
    X, y = _classification(600)
    Xm = _on_disk(tmp_path, X)
    hp = af.Hyperparameters(epochs=2, batch_size=32)
    from_file = af.holdout(MODEL32, Xm, y, hp, cv=3)
    in_memory = af.holdout(MODEL32, X, y, hp, cv=3)
    assert np.array_equal(from_file.scores, in_memory.scores)
    custom = af.holdout(MODEL32, Xm, y, hp, cv=2,
                        scoring=lambda fitted, X, y: float(isinstance(X, np.ndarray)))
    assert list(custom.scores) == [1.0, 1.0]
    chosen = af.select(MODEL32, Xm, y, {"learning_rate": [1e-3, 1e-2]}, base=hp, cv=2)
    again = af.select(MODEL32, X, y, {"learning_rate": [1e-3, 1e-2]}, base=hp, cv=2)
    assert [r["scores"] for r in chosen.table] == [r["scores"] for r in again.table]
    assert chosen.best.parameters.tobytes() == again.best.parameters.tobytes()


RSS_CHILD = """
import sys, time
import numpy as np
import archfit as af

path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# the file, written a block at a time (never mapped here)
rows = np.arange(n, dtype=np.float32)
header = {"descr": "<f4", "fortran_order": False, "shape": (n, d)}
with open(path, "wb") as f:
    np.lib.format.write_array_header_1_0(f, header)
    block = 1 << 13
    for lo in range(0, n, block):
        r = rows[lo:lo + block, None]
        part = np.sin(r * 0.001 + np.arange(d, dtype=np.float32)) + (r % 7 == 0)
        f.write(part.astype("<f4").tobytes())
y = (np.arange(n) % 7 == 0).astype(np.int8)
X = np.load(path, mmap_mode="r")
model = af.Model(af.Architecture(d, [af.Dense(8, activation="relu"), af.Dense(2)],
                                 output="softmax"), "float32")

def status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")        # the peak (VmHWM) starts again from here
before = status_mib("VmRSS")
start = time.perf_counter()
fitted = af.fit(model, X, y, af.Hyperparameters(epochs=1, batch_size=512))
seconds = time.perf_counter() - start
score = fitted.score(X, y)
peak = status_mib("VmHWM")
same = af.fit(model, np.array(X), y, af.Hyperparameters(epochs=1, batch_size=512))
print(before, peak, seconds, score, int(same.parameters.tobytes() == fitted.parameters.tobytes()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_2_gib_file_fits_in_little_memory(tmp_path):
    n, d = 2**31 // (4 * 256), 256
    path = tmp_path / "big.npy"
    try:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(RSS_CHILD), str(path),
                                 str(n), str(d)], capture_output=True, text=True, timeout=600)
    finally:
        path.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    before, peak, seconds, score, same = map(float, result.stdout.split())
    print(f"2 GiB float32 file: one epoch in {seconds:.1f} s; resident memory "
          f"{before:.0f} MiB before the fit, {peak:.0f} MiB at the most")
    assert peak - before < 300
    assert score > 0.85         # learnable: every seventh row is marked
    assert same                 # the same θ̂ as the same data in memory


@pytest.mark.parametrize("standardize", [False, True])
def test_bins_and_an_ensemble_from_a_file(tmp_path, monkeypatch, standardize):
    # the bin edges of a file's rows: all of them, as in memory, or evenly
    # spaced ones when the file has more than binning.FILE_ROWS
    from archfit import binning
    X, y = _classification()
    Xm = _on_disk(tmp_path, X)
    model = af.Model(af.Architecture(16, [af.PiecewiseLinear(6, 2), af.Dense(8, "relu"),
                                          af.Dense(2)], "softmax",
                                     ensemble=af.BatchEnsemble(3, "all")), "float64")
    w = np.random.default_rng(4).uniform(0.5, 2.0, len(y))
    hp = af.Hyperparameters(epochs=2, batch_size=64, standardize=standardize)
    from_file = af.fit(model, Xm, y, hp, sample_weight=w)
    in_memory = af.fit(model, np.array(X), y, hp, sample_weight=w)
    if standardize:
        # the statistics, summed a part at a time, differ in their last bits
        np.testing.assert_allclose(from_file.parameters, in_memory.parameters, rtol=1e-9,
                                   atol=1e-12)
    else:
        assert from_file.parameters.tobytes() == in_memory.parameters.tobytes()
    monkeypatch.setattr(binning, "FILE_ROWS", 100)
    sampled = af.fit(model, Xm, y, hp, sample_weight=w)
    rows = np.unique(np.linspace(0, len(X) - 1, 100).astype(np.int64))
    seen = X[rows] if not standardize else sampled.standardization.features(X[rows])
    edges = model.unflatten(sampled.parameters)["piecewise_linear0.edges"]
    assert edges[5].tobytes() == binning.quantile_edges(seen[:, 5], w[rows], 6,
                                                        np.float64).tobytes()
