"""Property-based hostile input at every public entry point.

Generated arrays of any shape, dtype (bool, ints, float16/32/64, complex,
object, strings), stride and content (NaN, inf, huge, empty) and generated
bytes for ``load``. Every case must end in a documented exception
(``TypeError``/``ValueError``, ``MemoryError`` for impossible sizes) or in a
correct result; a crash would show as a failed subprocess in test_isolated.py.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import archfit as af
from archfit import persistence

DOCUMENTED = (TypeError, ValueError, MemoryError)
# In CI the examples are derandomised, so a landing's outcome is reproducible;
# elsewhere every run explores new examples.
SETTINGS = settings(max_examples=150, deadline=None, derandomize=os.environ.get("CI") == "true",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NUMERIC = [np.bool_, np.int8, np.int64, np.uint16, np.float16, np.float32, np.float64,
           np.complex128]


@st.composite
def hostile_arrays(draw, max_dims=3):
    kind = draw(st.sampled_from(["numeric", "object", "string", "list", "scalar", "ragged"]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=6))
    if kind == "numeric":
        dtype = draw(st.sampled_from(NUMERIC))
        arr = draw(hnp.arrays(dtype, shape))   # includes NaN, inf, extremes
        if arr.ndim >= 1 and draw(st.booleans()):
            arr = arr[::-1] if draw(st.booleans()) else np.asfortranarray(arr)
        if arr.ndim == 2 and draw(st.booleans()):
            arr = arr.T
        if draw(st.booleans()) and arr.flags.owndata:
            arr.flags.writeable = False
        return arr
    if kind == "object":
        values = draw(st.lists(st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3)),
                               min_size=1, max_size=12))
        return np.array(values, dtype=object).reshape(-1, 1) if draw(st.booleans()) \
            else np.array(values, dtype=object)
    if kind == "string":
        return np.array(draw(st.lists(st.text(max_size=3), min_size=0, max_size=8)))
    if kind == "list":
        return draw(st.lists(st.lists(st.floats(), max_size=4), max_size=5))
    if kind == "scalar":
        return draw(st.one_of(st.floats(), st.integers(), st.text(max_size=2), st.none()))
    return [[1.0, 2.0], [3.0]]


def classifier():
    arch = af.Architecture(3, [af.Dense(4, "relu"), af.Dense(3)], "softmax")
    return af.Model(arch, "float32")


MODELS = {
    "softmax": classifier(),
    "sigmoid": af.Model(af.Architecture(3, [af.Dense(4, "tanh"), af.Dense(2)], "sigmoid"), "float64"),
    "linear": af.Model(af.Architecture(3, [af.Dense(2, "gelu"), af.Dense(1)], "linear"), "float64"),
}
rng = np.random.default_rng(0)
X_OK = rng.normal(size=(12, 3))
Y_OK = {"softmax": np.arange(12) % 3, "sigmoid": (rng.normal(size=(12, 2)) > 0).astype(int),
        "linear": rng.normal(size=12)}
FITTED = {k: af.fit(m, X_OK, Y_OK[k], af.Hyperparameters(epochs=2)) for k, m in MODELS.items()}


def check_outputs(out, n, k, dtype=None):
    assert isinstance(out, np.ndarray) and out.shape[0] == n
    if out.dtype.kind == "f":
        assert np.isfinite(out).all()


@pytest.mark.parametrize("head", list(MODELS))
@SETTINGS
@given(X=hostile_arrays())
def test_model_predict(head, X):
    model = MODELS[head]
    try:
        out = model.predict(model.init(0), X)
    except DOCUMENTED:
        return
    check_outputs(out, np.shape(X)[0], model.architecture.n_outputs)


@pytest.mark.parametrize("head", list(MODELS))
@SETTINGS
@given(X=hostile_arrays(), y=hostile_arrays(), w=st.one_of(st.none(), hostile_arrays(max_dims=2)))
def test_model_loss_and_grad(head, X, y, w):
    model = MODELS[head]
    theta = model.init(1)
    try:
        loss, grad = model.loss_and_grad(theta, X, y, sample_weight=w)
    except DOCUMENTED:
        return
    assert np.isfinite(loss) and grad.shape == theta.shape and np.isfinite(grad).all()


@SETTINGS
@given(theta=hostile_arrays(max_dims=2))
def test_model_theta(theta):
    model = MODELS["linear"]
    try:
        out = model.predict(theta, X_OK)
    except DOCUMENTED:
        return
    check_outputs(out, 12, 1)


@pytest.mark.parametrize("head", list(MODELS))
@SETTINGS
@given(X=hostile_arrays(), y=hostile_arrays(), w=st.one_of(st.none(), hostile_arrays(max_dims=2)),
       batch=st.integers(1, 20))
def test_fit(head, X, y, w, batch):
    model = MODELS[head]
    try:
        fitted = af.fit(model, X, y, af.Hyperparameters(epochs=1, batch_size=batch),
                        sample_weight=w)
    except DOCUMENTED:
        return
    assert np.isfinite(fitted.parameters).all()


@pytest.mark.parametrize("head", list(MODELS))
@SETTINGS
@given(X=hostile_arrays(), y=hostile_arrays())
def test_fit_model_methods(head, X, y):
    fitted = FITTED[head]
    for call in (lambda: fitted.predict(X), lambda: fitted.predict_proba(X),
                 lambda: fitted.score(X, y), lambda: fitted.loss(X, y)):
        try:
            out = call()
        except DOCUMENTED:
            continue
        if isinstance(out, np.ndarray):
            assert out.shape[0] == np.shape(X)[0]
        else:
            assert np.isfinite(out)


FIELDS = ["optimizer", "learning_rate", "schedule", "batch_size", "epochs", "l2", "dropout",
          "seed", "n_threads", "momentum", "beta1", "early_stopping", "validation_fraction"]


@SETTINGS
@given(kwargs=st.dictionaries(st.sampled_from(FIELDS), st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
    st.lists(st.integers(), max_size=2)), max_size=4))
def test_hyperparameters(kwargs):
    try:
        hp = af.Hyperparameters(**kwargs)
    except DOCUMENTED:
        return
    assert af.Hyperparameters.from_json(hp.to_json()) == hp


@SETTINGS
@given(n_inputs=st.one_of(st.integers(-5, 2**40), st.floats(), st.text(max_size=3)),
       units=st.lists(st.one_of(st.integers(-3, 2**33), st.floats()), min_size=0, max_size=4),
       activation=st.sampled_from(["relu", "gelu", "identity", "swish", "", None]),
       output=st.sampled_from(["softmax", "sigmoid", "linear", "relu", None]))
def test_architecture(n_inputs, units, activation, output):
    try:
        layers = [af.Dense(u, activation) for u in units[:-1]] + [af.Dense(u) for u in units[-1:]]
        arch = af.Architecture(n_inputs, layers, output)
    except DOCUMENTED:
        return
    assert af.Architecture.from_dict(arch.to_dict()) == arch
    from archfit._memory import available_bytes
    available = available_bytes()
    if arch.n_parameters <= 10**6:
        assert af.Model(arch).init(0).shape == (arch.n_parameters,)
    elif available is not None and 4 * arch.n_parameters > available:
        # more than the machine holds: a clean MemoryError, never the OOM killer
        with pytest.raises(MemoryError, match="not enough memory"):
            af.Model(arch).init(0)


BLOB = FITTED["softmax"].to_bytes()


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300),
                      st.integers(0, len(BLOB) - 1).map(lambda n: BLOB[:n]),
                      st.tuples(st.integers(0, len(BLOB) - 1), st.integers(1, 255)).map(
                          lambda t: BLOB[:t[0]] + bytes([BLOB[t[0]] ^ t[1]]) + BLOB[t[0] + 1:])))
def test_load_corrupted_bytes(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "model.archfit"
    path.write_bytes(data)
    with pytest.raises(af.FileFormatError):
        af.load(path)
    assert persistence.from_bytes(BLOB).parameters.tobytes() == FITTED["softmax"].parameters.tobytes()


# ---- layers beyond Dense and categorical inputs -----------------------------------------------
CATEGORICAL = af.Model(af.Architecture(
    inputs=af.Inputs(numeric=1, categorical=[2, 3]),
    layers=[af.Periodic(2, 0.1, 2), af.Embedding(2), af.LayerNorm(),
            af.Residual([af.Dense(4, "relu"), af.Dense(6)]), af.Dense(3)], output="softmax"))


@SETTINGS
@given(X=hostile_arrays(), y=hostile_arrays())
def test_categorical_inputs(X, y):
    # codes may be anything: only whole numbers 0 .. cardinality - 1 or -1 reach a kernel
    theta = CATEGORICAL.init(0)
    try:
        out = CATEGORICAL.predict(theta, X)
    except DOCUMENTED:
        pass
    else:
        check_outputs(out, np.shape(X)[0], 3)
    try:
        loss, grad = CATEGORICAL.loss_and_grad(theta, X, y)
    except DOCUMENTED:
        return
    assert np.isfinite(loss) and np.isfinite(grad).all()


LAYER_DICTS = st.recursive(
    st.one_of(st.none(), st.integers(-3, 70), st.floats(allow_nan=True), st.text(max_size=8),
              st.sampled_from(["dense", "layer_norm", "residual", "periodic", "embedding",
                               "one_hot", "piecewise_linear", "relu", "identity"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["kind", "units", "activation", "dropout", "epsilon",
                                         "layers", "dim", "n_frequencies", "sigma", "n_bins",
                                         "x"]),
                        inner, max_size=5)),
    max_leaves=12)


ENSEMBLES = st.one_of(st.none(), st.dictionaries(
    st.sampled_from(["k", "adapters", "x"]),
    st.one_of(st.none(), st.integers(-2, 5), st.floats(allow_nan=True),
              st.sampled_from(["first", "none", "all", ""])), max_size=3))


@SETTINGS
@given(layers=st.lists(LAYER_DICTS, max_size=5), n_inputs=st.integers(-1, 6),
       categorical=st.one_of(st.none(), st.lists(st.integers(-1, 5), max_size=3)),
       ensemble=ENSEMBLES)
def test_architecture_dicts(layers, n_inputs, categorical, ensemble):
    # a saved file's architecture may be anything: a documented error, or a
    # network the kernels run
    d = {"n_inputs": n_inputs, "layers": layers, "output": "softmax"}
    if categorical is not None:
        d["inputs"] = {"numeric": n_inputs - len(categorical), "categorical": categorical}
    if ensemble is not None:
        d["ensemble"] = ensemble
    try:
        arch = af.Architecture.from_dict(d)
    except DOCUMENTED:
        return
    model = af.Model(arch, "float64")
    rows = np.zeros((2, arch.n_inputs))
    out = model.predict(model.init(0), rows)
    check_outputs(out, 2, arch.n_outputs)
