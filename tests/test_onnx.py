"""ONNX export: onnxruntime reproduces predict_proba / predict for every activation and head."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import archfit as af  # noqa: E402
from archfit.kernels import ACTIVATIONS  # noqa: E402


def run(model_proto, X):
    session = ort.InferenceSession(model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


def fitted_model(output, activation, dtype="float32", labels=None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    k = 3
    if output == "softmax":
        y = labels[np.arange(80) % 3] if labels is not None else np.arange(80) % 3
    elif output == "sigmoid":
        y = (rng.normal(size=(80, k)) > 0).astype(int)
    elif output == "exponential":
        y = rng.poisson(2.0, size=(80, k))
    else:
        y = rng.normal(size=(80, k))
    arch = af.Architecture(5, [af.Dense(7, activation), af.Dense(6, activation), af.Dense(k)],
                           output)
    return af.fit(af.Model(arch, dtype), X, y, af.Hyperparameters(epochs=5, learning_rate=0.01)), X


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "linear", "exponential"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_onnxruntime_matches_archfit_float32(output, activation):
    fitted, X = fitted_model(output, activation)
    X32 = X.astype(np.float32)
    got = run(fitted.to_onnx(), X32)
    if output in ("linear", "exponential"):
        np.testing.assert_allclose(got["values"], fitted.predict(X32), atol=1e-5, rtol=1e-5)
    else:
        np.testing.assert_allclose(got["probabilities"], fitted.predict_proba(X32), atol=1e-5)
    if output == "softmax":
        assert np.array_equal(got["label"], fitted.predict(X32))


@pytest.mark.parametrize("activation,atol", [("tanh", 1e-12), ("gelu", 1e-6)])
def test_float64_and_string_labels(tmp_path, activation, atol):
    # gelu's erf runs in float32 in a float64 graph (onnxruntime has no float64 Erf)
    fitted, X = fitted_model("softmax", activation, "float64", np.array(["a", "b", "c"]))
    path = tmp_path / "model.onnx"
    fitted.to_onnx(path)
    got = run(onnx.load(str(path)), X)
    np.testing.assert_allclose(got["probabilities"], fitted.predict_proba(X), atol=atol)
    assert got["label"].tolist() == fitted.predict(X).tolist()


def test_graph_is_standard():
    fitted, _ = fitted_model("softmax", "relu")
    proto = fitted.to_onnx()
    ops = [n.op_type for n in proto.graph.node]
    assert ops[:2] == ["Gemm", "Relu"] and "Softmax" in ops
    onnx.checker.check_model(proto, full_check=True)


def test_export_needs_a_fit_model():
    from archfit.onnx_export import to_onnx
    with pytest.raises(TypeError, match="FitModel"):
        to_onnx("model")
