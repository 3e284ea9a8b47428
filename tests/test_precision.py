"""Hyperparameters(precision="bfloat16"): fits whose dense products take
bfloat16 operands and float32 accumulation - accuracy next to float32 on real
and synthetic data, the same bits for any thread count and in populations,
predictions in the fit's precision, files, info, ONNX and bad input. The
products themselves are checked in tests/kernels/test_bf16.py."""
import json
import warnings

import numpy as np
import pytest

import archfit as af
from archfit.datasets import load_digits

pytestmark = pytest.mark.filterwarnings("ignore:precision='bfloat16'.*:RuntimeWarning")


def mlp(n_in, widths, k):
    return af.Architecture(n_in, [af.Dense(w, "relu") for w in widths] + [af.Dense(k)],
                           "softmax")


def test_digits_in_bfloat16_are_as_accurate_as_in_float32():
    X, y = load_digits()
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1400], order[1400:]
    model = af.Model(mlp(64, [256, 128], 10))
    scores = {}
    for precision in ("float32", "bfloat16"):
        hp = af.Hyperparameters(epochs=30, batch_size=64, seed=1, precision=precision)
        fitted = af.fit(model, X[train], y[train], hp)
        assert fitted.precision == precision
        scores[precision] = fitted.score(X[test], y[test])
    assert scores["float32"] > 0.97
    assert scores["bfloat16"] >= scores["float32"] - 0.005, scores


def test_w2_shaped_data_in_bfloat16_are_as_accurate_as_in_float32():
    # 784-256-128-10 on learnable synthetic data: 784 noisy views of 16 latent
    # factors, whose random linear map's largest coordinate is the class
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(6000, 16))
    X = (Z @ rng.normal(size=(16, 784)) / 4 + 0.5 * rng.normal(size=(6000, 784))).astype(
        np.float32)
    y = np.argmax(Z @ rng.normal(size=(16, 10)), axis=1)
    model = af.Model(mlp(784, [256, 128], 10))
    scores = {}
    for precision in ("float32", "bfloat16"):
        hp = af.Hyperparameters(epochs=6, batch_size=128, seed=2, precision=precision)
        scores[precision] = af.fit(model, X[:5000], y[:5000], hp).score(X[5000:], y[5000:])
    assert scores["float32"] > 0.85
    assert scores["bfloat16"] >= scores["float32"] - 0.005, scores


def test_bfloat16_fits_keep_the_bits_across_threads_and_in_populations():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(640, 20)).astype(np.float32)
    y = rng.integers(0, 4, 640)
    arch = af.Architecture(20, [af.Dense(256, "relu", dropout=0.1),
                                af.Residual([af.LayerNorm(), af.Dense(256, "relu")]),
                                af.Dense(4)], output="softmax")
    model = af.Model(arch)
    assert model._in_precision("bfloat16")._kernel.training_plan(
        model.dtype, 640, 160)["shards"] == 2
    hp = af.Hyperparameters(epochs=3, batch_size=160, seed=2, precision="bfloat16")
    one = af.fit(model, X, y, hp.replace(n_threads=1))
    two = af.fit(model, X, y, hp.replace(n_threads=2))
    assert one.parameters.tobytes() == two.parameters.tobytes()
    plain = af.fit(model, X, y, hp.replace(precision="float32"))
    assert one.parameters.tobytes() != plain.parameters.tobytes()
    members = af.fit_many(model, X, y, [hp, hp.replace(seed=5), hp.replace(precision="float32")])
    assert members[0].parameters.tobytes() == one.parameters.tobytes()
    assert members[2].parameters.tobytes() == plain.parameters.tobytes()
    alone = af.fit(model, X, y, hp.replace(seed=5))
    assert members[1].parameters.tobytes() == alone.parameters.tobytes()


def test_predictions_are_in_the_fits_precision_unless_asked(tmp_path):
    X, y = load_digits()
    X = (X / 16.0).astype(np.float32)
    model = af.Model(mlp(64, [64], 10))
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=3, precision="bfloat16"))
    twin = model._in_precision("bfloat16")
    assert np.array_equal(fitted.predict_proba(X), twin.predict(fitted.parameters, X))
    in_float32 = fitted.with_precision("float32")
    assert in_float32.precision == "float32"
    assert np.array_equal(in_float32.predict_proba(X), model.predict(fitted.parameters, X))
    assert not np.array_equal(in_float32.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_allclose(in_float32.predict_proba(X), fitted.predict_proba(X), atol=0.05)
    # one row alone gets its bits among others
    assert np.array_equal(fitted.predict_proba(X[7:8]), fitted.predict_proba(X)[7:8])
    # a file keeps the precision; info and ONNX say it
    path = tmp_path / "m.archfit"
    fitted.save(path)
    again = af.load(path)
    assert again.precision == "bfloat16"
    assert np.array_equal(again.predict_proba(X), fitted.predict_proba(X))
    from archfit.cli import main
    import contextlib
    import io
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["info", str(path)]) == 0
    assert "precision" in text.getvalue() and "bfloat16" in text.getvalue()
    onnx = pytest.importorskip("onnx")
    graph = fitted.to_onnx()
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["archfit.trained_precision"] == "bfloat16"
    assert "bfloat16" in graph.doc_string and onnx is not None


def test_bad_precisions_are_refused_before_anything_runs():
    X, y = load_digits()
    with pytest.raises(ValueError, match="precision must be one of"):
        af.Hyperparameters(precision="float16")
    with pytest.raises(ValueError, match="float32 models; this model is float64"):
        af.fit(af.Model(mlp(64, [8], 10), "float64"), X, y,
               af.Hyperparameters(precision="bfloat16"))
    with pytest.raises(ValueError, match="member 0: precision='bfloat16' is for float32"):
        af.fit_many(af.Model(mlp(64, [8], 10), "float64"), X, y,
                    [af.Hyperparameters(precision="bfloat16")] * 2)
    fitted = af.fit(af.Model(mlp(64, [8], 10), "float64"), X, y, af.Hyperparameters(epochs=1))
    with pytest.raises(ValueError, match="float32 models"):
        fitted.with_precision("bfloat16")
    assert json.loads(af.Hyperparameters().to_json())["precision"] == "float32"


def test_a_cpu_without_bfloat16_arithmetic_says_so_once():
    from archfit import model as model_module
    from archfit._kernels import _blas
    if _blas.BF16_BODY in ("vdpbf16ps", "amx"):
        pytest.skip("this CPU multiplies bfloat16 itself")
    model_module._warned_without_bfloat16 = False
    X, y = load_digits()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in range(2):
            af.fit(af.Model(mlp(64, [8], 10)), X, y,
                   af.Hyperparameters(epochs=1, seed=seed, precision="bfloat16"))
    said = [w for w in caught if "no bfloat16 arithmetic" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__
