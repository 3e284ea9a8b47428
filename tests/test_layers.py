"""Layers beyond Dense in everything that handles a network: the architecture
(validation, layout, summary, dictionary form), fits with every optimizer,
early stopping, checkpoints, populations, selection, ensembles, files of
format versions 1 and 2, ONNX, sparse inputs. The kernels themselves are
checked against the NumPy twin in tests/kernels/test_layers.py."""
import json

import numpy as np
import pytest

import archfit as af
from archfit import persistence


def resnet(n_in=10, k=3, output="softmax", width=16):
    return af.Architecture(n_in, [
        af.Dense(width, "relu"),
        af.Residual([af.LayerNorm(), af.Dense(2 * width, "relu"), af.Dense(width)]),
        af.Residual([af.LayerNorm(), af.Dense(width, "gelu"), af.Dense(width)]),
        af.LayerNorm(), af.Dense(k)], output)


def embedded(n_in=10, k=3, output="softmax"):
    """Periodic embeddings of the features, then a small residual MLP."""
    return af.Architecture(n_in, [
        af.Periodic(n_frequencies=8, sigma=0.1, dim=4), af.Dense(24, "relu"),
        af.Residual([af.LayerNorm(), af.Dense(24, "relu")]), af.Dense(k)], output)


def data(n=600, n_in=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = (X[:, :3] @ rng.normal(size=(3, 3)) + 0.3 * rng.normal(size=(n, 3))).argmax(axis=1)
    return X, y


# ---- the architecture ---------------------------------------------------------------------------
def test_layout_names_shapes_and_decay():
    arch = resnet()
    names = [e.name for e in arch.layout]
    assert names[:4] == ["dense0.weight", "dense0.bias", "layer_norm0.gain", "layer_norm0.bias"]
    assert [n.kind for n in arch.nodes].count("add") == 2
    assert [n.name for n in arch.nodes if n.kind == "add"] == ["residual0", "residual1"]
    assert {e.name for e in arch.decayed} == {f"dense{i}.weight" for i in range(6)}
    starts = [e.start for e in arch.layout]
    assert starts == sorted(starts) and arch.layout[-1].stop == arch.n_parameters
    assert arch.n_parameters == sum(int(np.prod(e.shape)) for e in arch.layout)
    assert not arch.is_dense and arch.reads_sparse


def test_summary_shows_kinds_and_blocks():
    text = resnet().summary()
    assert "kind" in text.splitlines()[0]
    assert "  layer_norm0" in text and "residual add" in text and "x + f(x)" in text
    assert f"{resnet().n_parameters:,} parameters" in text


def test_a_dense_layer_has_its_own_dropout_or_the_fits():
    X, y = data(300)
    own = af.Architecture(10, [af.Dense(16, "relu", dropout=0.0), af.Dense(3)], "softmax")
    plain = af.Architecture(10, [af.Dense(16, "relu"), af.Dense(3)], "softmax")
    assert own != plain and own.to_dict()["layers"][0]["dropout"] == 0.0
    assert "dropout" not in plain.to_dict()["layers"][0]
    assert af.Architecture.from_dict(own.to_dict()) == own
    assert "relu, dropout 0" in own.summary()
    hp = af.Hyperparameters(epochs=3, batch_size=32)
    # a rate of 0 of its own: the fit's dropout does not reach it
    no_mask = af.fit(af.Model(own), X, y, hp.replace(dropout=0.5))
    assert no_mask.parameters.tobytes() == af.fit(af.Model(plain), X, y, hp).parameters.tobytes()
    # its own rate: the same masks as the fit's rate would draw
    rated = af.Architecture(10, [af.Dense(16, "relu", dropout=0.3), af.Dense(3)], "softmax")
    assert af.fit(af.Model(rated), X, y, hp).parameters.tobytes() == \
        af.fit(af.Model(plain), X, y, hp.replace(dropout=0.3)).parameters.tobytes()


def test_periodic_layout_and_width():
    arch = embedded()
    names = [(e.name, e.shape) for e in arch.layout[:3]]
    assert names == [("periodic0.frequencies", (10, 8)), ("periodic0.weight", (10, 16, 4)),
                     ("periodic0.bias", (10, 4))]
    assert arch.nodes[0].n_out == 40 and arch.nodes[1].n_in == 40
    assert "periodic0.weight" in {e.name for e in arch.decayed}
    assert "periodic0.frequencies" not in {e.name for e in arch.decayed}
    assert af.Architecture.from_dict(arch.to_dict()) == arch
    theta = af.Model(arch, "float64").init(3)
    frequencies = theta[arch.layout[0].start:arch.layout[0].stop]
    assert 0.05 < frequencies.std() < 0.2               # N(0, sigma = 0.1)
    assert np.abs(theta[arch.layout[1].start:arch.layout[1].stop]).max() <= 1 / np.sqrt(16)


def test_periodic_embeddings_fit_a_periodic_target():
    # y depends on sin(3x): an MLP on raw x struggles, periodic features do not
    rng = np.random.default_rng(4)
    X = rng.uniform(-3, 3, size=(2000, 2))
    y = (np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=2000)).astype(np.float64)
    hp = af.Hyperparameters(epochs=60, batch_size=64, learning_rate=3e-3, seed=1)
    plain = af.fit(af.Model(af.Architecture(2, [af.Dense(32, "relu"), af.Dense(1)])),
                   X[:1500], y[:1500], hp)
    periodic = af.fit(af.Model(af.Architecture(2, [af.Periodic(8, 0.5, 8), af.Dense(32, "relu"),
                                                   af.Dense(1)])), X[:1500], y[:1500], hp)
    assert periodic.score(X[1500:], y[1500:]) > 0.9 > plain.score(X[1500:], y[1500:]) + 0.05


def test_dictionary_form_round_trips_and_reads_version_1_layers():
    arch = resnet()
    d = arch.to_dict()
    assert d["layers"][1]["kind"] == "residual" and d["layers"][1]["layers"][0] == {
        "kind": "layer_norm", "epsilon": 1e-5}
    assert af.Architecture.from_dict(json.loads(json.dumps(d))) == arch
    old = {"n_inputs": 4, "layers": [{"units": 8, "activation": "relu"}, {"units": 2}],
           "output": "softmax"}
    assert af.Architecture.from_dict(old) == af.Architecture(
        4, [af.Dense(8, "relu"), af.Dense(2)], "softmax")


@pytest.mark.parametrize("make, error, message", [
    (lambda: af.Architecture(6, [af.Residual([af.Dense(5)]), af.Dense(2)], "softmax"),
     ValueError, "must keep the width: its input has 6 columns"),
    (lambda: af.Residual([]), ValueError, "at least one layer"),
    (lambda: af.Residual([af.Residual([af.Dense(3)])]), ValueError, "do not nest"),
    (lambda: af.Residual(af.Dense(3)), TypeError, "sequence"),
    (lambda: af.Residual([af.Dense(3), "relu"]), TypeError, "Dense or LayerNorm"),
    (lambda: af.Architecture(6, [af.Dense(4), af.LayerNorm()], "linear"), ValueError,
     "must be a Dense layer"),
    (lambda: af.Architecture(6, [af.Residual([af.Dense(6)])], "linear"), ValueError,
     "must be a Dense layer"),
    (lambda: af.LayerNorm(epsilon=0), ValueError, "LayerNorm.epsilon must be > 0"),
    (lambda: af.Dense(4, dropout=1.0), ValueError, "Dense.dropout must be < 1"),
    (lambda: af.Dense(4, dropout="some"), TypeError, "Dense.dropout"),
    (lambda: af.Architecture(3, [af.Dense(2, dropout=0.1)], "softmax"), ValueError,
     "the last layer's outputs are the network's"),
    (lambda: af.Periodic(0), ValueError, "Periodic.n_frequencies must be >= 1"),
    (lambda: af.Periodic(sigma=-1.0), ValueError, "Periodic.sigma must be > 0"),
    (lambda: af.Periodic(dim=0), ValueError, "Periodic.dim must be >= 1"),
    (lambda: af.Periodic(activation="swish"), ValueError, "activation must be one of"),
    (lambda: af.Residual([af.Periodic()]), TypeError, "Dense or LayerNorm"),
    (lambda: af.LayerNorm(epsilon="small"), TypeError, "LayerNorm.epsilon"),
    (lambda: af.Architecture.from_dict({"n_inputs": 3, "layers": [{"kind": "conv"}],
                                        "output": "linear"}),
     ValueError, "unknown kind of layer 'conv'"),
    (lambda: af.Architecture.from_dict({"n_inputs": 3, "layers": [
        {"kind": "layer_norm", "units": 3}, {"kind": "dense", "units": 1}], "output": "linear"}),
     ValueError, "a layer_norm layer takes"),
    (lambda: af.Architecture(6, [af.Residual([af.Dense(6)])] * 40 + [af.Dense(1)], "linear"),
     ValueError, "at most 64 layers"),
])
def test_bad_layers_are_refused_in_words(make, error, message):
    with pytest.raises(error, match=message):
        make()


# ---- fitting ---------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw", "lbfgs"])
def test_every_optimizer_fits_a_resnet(optimizer):
    X, y = data()
    lr = {"sgd": 0.05, "momentum": 0.02}.get(optimizer, 3e-3)
    hp = af.Hyperparameters(optimizer=optimizer, learning_rate=lr, epochs=40, batch_size=32,
                            l2=1e-4, dropout=0.1 if optimizer != "lbfgs" else 0.0)
    if optimizer == "lbfgs":
        with pytest.warns(af.ConvergenceWarning):       # 40 iterations: not converged
            fitted = af.fit(af.Model(resnet()), X[:450], y[:450], hp)
    else:
        fitted = af.fit(af.Model(resnet()), X[:450], y[:450], hp)
    assert fitted.score(X[450:], y[450:]) > 0.8


def stopped_and_resumed(model, X, y, hp, path, epoch):
    """A fit with checkpoints stopped by an exception after `epoch`, then
    resumed from its checkpoint to the end."""
    class Stop(Exception):
        pass

    def stop(record):
        if record["epoch"] == epoch:
            raise Stop
    with pytest.raises(Stop):
        af.fit(model, X, y, hp, checkpoint=path, callback=stop)
    return af.fit(model, X, y, hp, checkpoint=path)


def test_early_stopping_checkpoints_and_threads_keep_the_bits(tmp_path):
    X, y = data(900)
    model = af.Model(resnet(width=64))
    hp = af.Hyperparameters(epochs=30, batch_size=128, dropout=0.1, early_stopping=True,
                            patience=3, seed=3, schedule="cosine")
    one = af.fit(model, X, y, hp.replace(n_threads=1))
    two = af.fit(model, X, y, hp.replace(n_threads=2))
    assert one.parameters.tobytes() == two.parameters.tobytes()
    resumed = stopped_and_resumed(model, X, y, hp, tmp_path / "fit.ckpt", 4)
    assert resumed.parameters.tobytes() == one.parameters.tobytes()
    assert resumed.n_epochs == one.n_epochs


def test_populations_equal_single_fits_and_select_chooses():
    X, y = data()
    model = af.Model(resnet())
    hps = [af.Hyperparameters(epochs=15, batch_size=32, learning_rate=3e-3, seed=s, dropout=0.1)
           for s in range(3)]
    members = af.fit_many(model, X, y, hps)
    for member, hp in zip(members, hps):
        assert member.parameters.tobytes() == af.fit(model, X, y, hp).parameters.tobytes()
    ensemble = af.Ensemble(members)
    assert ensemble.score(X, y) > 0.8
    dense = af.Model(af.Architecture(10, [af.Dense(16, "relu"), af.Dense(3)], "softmax"))
    chosen = af.select([dense, model], X, y, {"learning_rate": [1e-3, 3e-3]},
                       base=af.Hyperparameters(epochs=5, batch_size=32), cv=2)
    assert len(chosen.table) == 4 and chosen.best is not None


def test_sparse_inputs_reach_a_network_that_starts_with_a_norm():
    from scipy import sparse
    X, y = data(300)
    X[np.abs(X) < 1.0] = 0.0
    Xs = sparse.csr_matrix(X)
    for arch, reads in ((resnet(), True),
                        (af.Architecture(10, [af.LayerNorm(), af.Dense(3)], "softmax"), False),
                        (af.Architecture(10, [af.Residual([af.Dense(10, "relu")]), af.Dense(3)],
                                         "softmax"), False)):
        model = af.Model(arch, "float64")
        assert arch.reads_sparse == reads
        hp = af.Hyperparameters(epochs=3, batch_size=32)
        dense_fit, sparse_fit = af.fit(model, X, y, hp), af.fit(model, Xs, y, hp)
        np.testing.assert_allclose(sparse_fit.parameters, dense_fit.parameters, rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(sparse_fit.predict_proba(Xs), dense_fit.predict_proba(X),
                                   rtol=1e-10)
        loss_s, grad_s = model.loss_and_grad(dense_fit.parameters, Xs, y)
        loss_d, grad_d = model.loss_and_grad(dense_fit.parameters, X, y)
        np.testing.assert_allclose(grad_s, grad_d, rtol=1e-10, atol=1e-14)


def test_the_kernel_refuses_sparse_rows_for_a_dense_reading_network():
    from scipy import sparse
    model = af.Model(af.Architecture(4, [af.LayerNorm(), af.Dense(2)], "softmax"))
    m = sparse.csr_matrix(np.eye(4, dtype=np.float32))
    out = np.empty((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="first layer is dense"):
        model._kernel.predict_sparse(model.init(0), m.data, m.indices.astype(np.intc),
                                     m.indptr.astype(np.intp), out)


# ---- files -------------------------------------------------------------------------------------
def test_files_keep_the_kinds_and_version_1_files_load(tmp_path):
    X, y = data(200)
    fitted = af.fit(af.Model(resnet()), X, y, af.Hyperparameters(epochs=2))
    path = fitted.save(tmp_path / "m.archfit")
    again = af.load(path)
    assert again.architecture == fitted.architecture
    assert np.array_equal(again.predict_proba(X), fitted.predict_proba(X))
    assert json.loads(path.read_bytes()[16:16 + int.from_bytes(
        path.read_bytes()[8:16], "little")])["version"] == 2
    # a file written by an archfit of format version 1: Dense layers without a kind
    old = af.fit(af.Model(af.Architecture(10, [af.Dense(8, "relu"), af.Dense(3)], "softmax")),
                 X, y, af.Hyperparameters(epochs=2))
    header, arrays = persistence.fit_model_fields(old)
    for layer in header["model"]["architecture"]["layers"]:
        del layer["kind"]
    version = persistence.FORMAT_VERSION
    persistence.FORMAT_VERSION = 1
    try:
        data_v1 = persistence.pack(dict(header, format="archfit.FitModel"), arrays)
    finally:
        persistence.FORMAT_VERSION = version
    (tmp_path / "v1.archfit").write_bytes(data_v1)
    loaded = af.load(tmp_path / "v1.archfit")
    assert loaded.architecture == old.architecture
    assert np.array_equal(loaded.predict_proba(X), old.predict_proba(X))


def test_an_unknown_kind_in_a_file_is_refused(tmp_path):
    X, y = data(100)
    fitted = af.fit(af.Model(resnet()), X, y, af.Hyperparameters(epochs=1))
    header, arrays = persistence.fit_model_fields(fitted)
    header["model"]["architecture"]["layers"][0]["kind"] = "attention"
    (tmp_path / "x.archfit").write_bytes(persistence.pack(dict(header, format="archfit.FitModel"),
                                                          arrays))
    with pytest.raises(persistence.FileFormatError, match="unknown kind of layer 'attention'"):
        af.load(tmp_path / "x.archfit")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", [resnet, embedded])
def test_onnx_export_of_every_kind(tmp_path, dtype, make):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, y = data(200)
    fitted = af.fit(af.Model(make(), dtype), X, y,
                    af.Hyperparameters(epochs=3, standardize=True))
    fitted.to_onnx(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(None, {"X": X.astype(dtype)})
    tolerance = 1e-5 if dtype == "float32" else 1e-6     # float64 gelu's erf runs in float32
    np.testing.assert_allclose(probabilities, fitted.predict_proba(X), rtol=tolerance,
                               atol=tolerance)
    assert np.array_equal(labels, fitted.predict(X))


# ---- categorical inputs -------------------------------------------------------------------------
def categorical_data(n=800, seed=0):
    """2 numeric columns and 2 categorical ones (cardinalities 6 and 3); the
    class depends on the first category and on x0."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, 2))
    a, b = rng.integers(0, 6, n), rng.integers(0, 3, n)
    y = ((a % 3) + (numeric[:, 0] > 0)) % 3
    return np.column_stack([numeric, a, b]).astype(np.float64), y


CATEGORICAL = af.Inputs(numeric=2, categorical=[6, 3])


def categorical_net(first=None):
    return af.Architecture(inputs=CATEGORICAL, layers=[
        first or af.Embedding(4), af.Dense(32, "relu"), af.Dense(3)], output="softmax")


@pytest.mark.parametrize("first", [af.Embedding(4), af.OneHot()])
def test_categorical_inputs_are_learned(first):
    X, y = categorical_data()
    fitted = af.fit(af.Model(categorical_net(first)), X[:600], y[:600],
                    af.Hyperparameters(epochs=60, batch_size=32, learning_rate=3e-3))
    assert fitted.score(X[600:], y[600:]) > 0.9
    # the same rows with their codes read from a pandas frame of categories
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1],
                          "a": pd.Categorical(X[:, 2].astype(int), categories=range(6)),
                          "b": pd.Categorical(X[:, 3].astype(int), categories=range(3))})
    np.testing.assert_array_equal(af.Model(categorical_net(first)).predict(
        fitted.parameters, frame[600:]), fitted.predict_proba(X[600:]))


def test_a_missing_or_unseen_category_takes_its_own_row():
    pd = pytest.importorskip("pandas")
    model = af.Model(categorical_net(), "float64")
    theta = model.init(0)
    frame = pd.DataFrame({"x0": [0.5, 0.5], "x1": [1.0, 1.0],
                          "a": pd.Categorical([2, None], categories=range(6)),
                          "b": pd.Categorical([1, 1], categories=range(3))})
    from_frame = model.predict(theta, frame)
    from_codes = model.predict(theta, np.array([[0.5, 1.0, 2, 1], [0.5, 1.0, -1, 1]]))
    np.testing.assert_array_equal(from_frame, from_codes)
    assert not np.array_equal(from_codes[0], from_codes[1])
    # the row for unseen values is the table's last
    table = model.unflatten(theta)["embedding0.table0"]
    assert table.shape == (7, 4)


@pytest.mark.parametrize("bad, message", [
    (6, "categorical input 0 \\(column 2\\) holds 6 at row 3; its codes are whole numbers "
        "0 .. 5, or -1"),
    (-2, "holds -2 at row 3"),
    (1.5, "holds 1.5 at row 3"),
])
def test_codes_outside_the_categories_are_refused_before_any_kernel(bad, message):
    X, y = categorical_data(20)
    X[3, 2] = bad
    model = af.Model(categorical_net())
    for call in (lambda: model.predict(model.init(0), X),
                 lambda: model.predict(model.init(0), X[:5]),
                 lambda: model.loss_and_grad(model.init(0), X, y),
                 lambda: af.fit(model, X, y, af.Hyperparameters(epochs=1)),
                 lambda: af.fit(model, X[5:], y[5:], af.Hyperparameters(epochs=1),
                                validation=(X, y))):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("make, error, message", [
    (lambda: af.Inputs.of(2, [0]), ValueError, "Inputs.categorical\\[0\\] must be >= 1"),
    (lambda: af.Inputs.of(-1), ValueError, "Inputs.numeric must be >= 0"),
    (lambda: af.Architecture(inputs=CATEGORICAL, layers=[af.Dense(3)]), ValueError,
     "would read the categorical inputs' codes as numbers"),
    (lambda: af.Architecture(inputs=CATEGORICAL, layers=[af.LayerNorm(), af.Dense(3)]),
     ValueError, "put an Embedding or OneHot layer before it"),
    (lambda: af.Architecture(4, [af.Embedding(3), af.Dense(2)]), ValueError,
     "needs categorical inputs"),
    (lambda: af.Architecture(inputs=af.Inputs(0, (3,)), layers=[af.Periodic(), af.Dense(2)]),
     ValueError, "embeds numeric inputs, and there are none"),
    (lambda: af.Architecture(5, [af.Dense(2)], inputs=af.Inputs(2, (3,))), ValueError,
     "contradicts"),
    (lambda: af.Architecture(layers=[af.Dense(2)]), TypeError, "n_inputs"),
    (lambda: af.Embedding(0), ValueError, "Embedding.dim must be >= 1"),
])
def test_bad_categorical_architectures_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_categorical_networks_in_files_populations_and_standardisation(tmp_path):
    X, y = categorical_data(400)
    arch = af.Architecture(inputs=CATEGORICAL, layers=[
        af.Periodic(4, 0.2, 3), af.Embedding(3), af.Dense(16, "relu"), af.Dense(3)],
        output="softmax")
    assert af.Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    assert "(2 numeric + 2 categorical)" in arch.summary()
    model = af.Model(arch)
    hp = af.Hyperparameters(epochs=4, batch_size=32, standardize=True)
    fitted = af.fit(model, X, y, hp)
    scaling = fitted.standardization
    assert scaling.feature_mean[2:].tolist() == [0, 0] and scaling.feature_scale[2:].tolist() \
        == [1, 1]                                       # the codes are left as they are
    again = af.load(fitted.save(tmp_path / "c.archfit"))
    assert again.architecture == arch
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    members = af.fit_many(model, X, y, [hp.replace(seed=s) for s in range(2)])
    assert members[1].parameters.tobytes() == af.fit(model, X, y, hp.replace(seed=1)) \
        .parameters.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("first", [af.Embedding(4), af.OneHot()])
def test_onnx_export_of_categorical_inputs(tmp_path, dtype, first):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, y = categorical_data(200)
    X[:7, 2] = -1                                       # unseen values
    arch = af.Architecture(inputs=CATEGORICAL, layers=[
        af.Periodic(3, 0.2, 2), first, af.Dense(8, "relu"), af.Dense(3)], output="softmax")
    fitted = af.fit(af.Model(arch, dtype), X, y, af.Hyperparameters(epochs=3))
    fitted.to_onnx(tmp_path / "c.onnx")
    session = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"])
    probabilities, _ = session.run(None, {"X": X.astype(dtype)})
    np.testing.assert_allclose(probabilities, fitted.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_categorical_networks_give_the_same_bits_on_any_thread_count():
    # wide enough that a step is cut into two shards shared by two threads
    rng = np.random.default_rng(3)
    n = 640
    X = np.column_stack([rng.normal(size=(n, 20)), rng.integers(-1, 10, n),
                         rng.integers(0, 100, n)]).astype(np.float32)
    y = rng.integers(0, 4, n)
    arch = af.Architecture(inputs=af.Inputs(20, (10, 100)), layers=[
        af.Periodic(8, 0.1, 4), af.Embedding(8), af.Dense(256, "relu", dropout=0.1),
        af.Residual([af.LayerNorm(), af.Dense(256, "relu")]), af.Dense(4)], output="softmax")
    model = af.Model(arch)
    assert model._kernel.training_plan(model.dtype, n, 160)["shards"] == 2
    hp = af.Hyperparameters(epochs=3, batch_size=160, seed=2)
    one = af.fit(model, X, y, hp.replace(n_threads=1))
    two = af.fit(model, X, y, hp.replace(n_threads=2))
    assert one.parameters.tobytes() == two.parameters.tobytes()
    from archfit._kernels import _plan
    _plan.calls_end_py()
    assert np.array_equal(model._predict(one.parameters, X, 1),
                          model._predict(one.parameters, X, 2))


# ---- piecewise-linear embeddings: bins fitted on the training rows ------------------------------
def piecewise(n_in=10, k=3, output="softmax", n_bins=8):
    return af.Architecture(n_in, [af.PiecewiseLinear(n_bins, 4), af.Dense(24, "relu"),
                                  af.Dense(k)], output)


def test_piecewise_layout_fitted_edges_and_summary():
    arch = piecewise()
    assert [(e.name, e.shape) for e in arch.layout[:4]] == [
        ("piecewise_linear0.edges", (10, 9)), ("piecewise_linear0.linear", (10, 4)),
        ("piecewise_linear0.weight", (10, 8, 4)), ("piecewise_linear0.bias", (10, 4))]
    assert [e.name for e in arch.fitted] == ["piecewise_linear0.edges"]
    decayed = {e.name for e in arch.decayed}
    assert {"piecewise_linear0.linear", "piecewise_linear0.weight"} <= decayed
    assert not {"piecewise_linear0.edges", "piecewise_linear0.bias"} & decayed
    assert arch.nodes[0].n_out == 40
    assert "8 bins (fitted edges)" in arch.summary()
    assert af.Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    # before a fit: standard normal quantiles, the same for every feature
    theta = af.Model(arch).init(0)
    edges = af.Model(arch).unflatten(theta)["piecewise_linear0.edges"]
    assert (np.diff(edges, axis=1) > 0).all() and np.allclose(edges[:, 4], 0, atol=1e-7)
    assert not af.Model(arch).unflatten(theta)["piecewise_linear0.weight"].any()


def test_quantile_edges_weights_repeats_and_few_values():
    from archfit.binning import quantile_edges
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    w = rng.integers(0, 4, 50).astype(float)
    repeated = np.repeat(x, w.astype(int))
    # a row of weight k and the row k times: the same edges, bit for bit
    assert quantile_edges(x, w, 7, np.float64).tobytes() == \
        quantile_edges(repeated, None, 7, np.float64).tobytes()
    plain = quantile_edges(x, None, 4, np.float64)
    assert plain[0] == x.min() and plain[-1] == x.max()
    assert plain[2] == np.sort(x)[24]                    # the median, a value of x
    # three distinct values: two bins, the last edge repeated into the others
    assert quantile_edges(np.array([0.0, 1.0, 1.0, 2.0]), None, 5, np.float64).tolist() == \
        [0.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert quantile_edges(np.full(9, 3.0), None, 3, np.float64).tolist() == [3.0] * 4
    # values one float32 apart in float64 but equal in float32: one edge
    close = np.array([1.0, 1.0 + 1e-12, 2.0, 3.0])
    assert quantile_edges(close, None, 3, np.float32).tolist() == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.filterwarnings("ignore::archfit.fitting.ConvergenceWarning")
@pytest.mark.parametrize("optimizer", ["adam", "momentum", "lbfgs"])
def test_a_fit_puts_the_training_rows_quantiles_in_theta_and_keeps_them(optimizer):
    from archfit.binning import quantile_edges
    X, y = data(300)
    X[:, 3] = np.round(X[:, 3])                         # a few distinct values
    w = np.random.default_rng(1).uniform(0.5, 2.0, 300)
    model = af.Model(piecewise(), "float64")
    hp = af.Hyperparameters(epochs=3, optimizer=optimizer, standardize=True, batch_size=32)
    fitted = af.fit(model, X, y, hp, sample_weight=w)
    edges = model.unflatten(fitted.parameters)["piecewise_linear0.edges"]
    scaled = fitted.standardization.features(X)
    for j in (0, 3):
        assert edges[j].tobytes() == quantile_edges(scaled[:, j], w, 8, np.float64).tobytes()
    # training moved the weights, not the edges; a fit continued keeps them
    assert np.unique(edges[3]).size < 9
    again = af.fit(model, X[:100], y[:100], hp, init=fitted)
    assert model.unflatten(again.parameters)["piecewise_linear0.edges"].tobytes() == \
        edges.tobytes()
    theta = model.init(5)
    given = af.fit(model, X, y, hp, init=theta)        # θ given: its edges are the user's
    assert model.unflatten(given.parameters)["piecewise_linear0.edges"].tobytes() == \
        model.unflatten(theta)["piecewise_linear0.edges"].tobytes()


def test_piecewise_linear_fits_a_step_target_an_mlp_does_not():
    # y jumps at thresholds of x: bins fitted on x find them
    rng = np.random.default_rng(2)
    X = rng.uniform(-3, 3, size=(2000, 2))
    y = np.floor(X[:, 0]) % 2 + 0.5 * (X[:, 1] > 0.7)
    hp = af.Hyperparameters(epochs=30, learning_rate=3e-3, batch_size=64)
    bins = af.fit(af.Model(af.Architecture(2, [af.PiecewiseLinear(48, 8), af.Dense(32, "relu"),
                                               af.Dense(1)], "linear")),
                  X[:1500], y[:1500], hp)
    plain = af.fit(af.Model(af.Architecture(2, [af.Dense(64, "relu"), af.Dense(32, "relu"),
                                                af.Dense(1)], "linear")), X[:1500], y[:1500], hp)
    # R² 0.94 and 0.73 when written
    assert bins.score(X[1500:], y[1500:]) > 0.9 > plain.score(X[1500:], y[1500:]) + 0.1


def test_population_members_bin_their_own_rows():
    X, y = data(400)
    model = af.Model(piecewise())
    hp = af.Hyperparameters(epochs=3, batch_size=32)
    rows = [np.arange(0, 300), np.arange(100, 400)]
    members = af.fit_many(model, X, y, hp, rows=rows)
    for k in range(2):
        single = af.fit(model, X[rows[k]], y[rows[k]], hp)
        assert members[k].parameters.tobytes() == single.parameters.tobytes()
    assert members[0].parameters[:90].tobytes() != members[1].parameters[:90].tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_piecewise_files_and_onnx(tmp_path, dtype):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, y = categorical_data(300)
    X[:5, 0] = [-50.0, 50.0, 0.0, 1e-3, -1e-3]          # beyond the edges, and between
    X[:7, 2] = -1
    arch = af.Architecture(inputs=CATEGORICAL, layers=[
        af.PiecewiseLinear(6, 3, "relu"), af.Embedding(2), af.Dense(8, "relu"), af.Dense(3)],
        output="softmax")
    fitted = af.fit(af.Model(arch, dtype), X[5:], y[5:],
                    af.Hyperparameters(epochs=3, standardize=True))
    again = af.load(fitted.save(tmp_path / "p.archfit"))
    assert again.parameters.tobytes() == fitted.parameters.tobytes()
    fitted.to_onnx(tmp_path / "p.onnx")
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    probabilities, _ = session.run(None, {"X": X.astype(dtype)})
    np.testing.assert_allclose(probabilities, fitted.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_piecewise_networks_give_the_same_bits_on_any_thread_count():
    rng = np.random.default_rng(4)
    n = 640
    X = rng.normal(size=(n, 20)).astype(np.float32)
    y = rng.integers(0, 4, n)
    arch = af.Architecture(20, [af.PiecewiseLinear(16, 8), af.Dense(256, "relu", dropout=0.1),
                                af.Residual([af.LayerNorm(), af.Dense(256, "relu")]),
                                af.Dense(4)], output="softmax")
    model = af.Model(arch)
    assert model._kernel.training_plan(model.dtype, n, 160)["shards"] == 2
    hp = af.Hyperparameters(epochs=3, batch_size=160, seed=2)
    one = af.fit(model, X, y, hp.replace(n_threads=1))
    two = af.fit(model, X, y, hp.replace(n_threads=2))
    assert one.parameters.tobytes() == two.parameters.tobytes()


@pytest.mark.parametrize("make, error, message", [
    (lambda: af.PiecewiseLinear(1), ValueError, "PiecewiseLinear.n_bins must be >= 2"),
    (lambda: af.PiecewiseLinear(dim=0), ValueError, "PiecewiseLinear.dim must be >= 1"),
    (lambda: af.PiecewiseLinear(activation="swish"), ValueError, "activation must be one of"),
    (lambda: af.PiecewiseLinear(n_bins=4.5), TypeError, "PiecewiseLinear.n_bins"),
    (lambda: af.Residual([af.PiecewiseLinear()]), TypeError, "Dense or LayerNorm"),
    (lambda: af.Architecture(4, [af.Dense(3), af.PiecewiseLinear(), af.Dense(2)]), ValueError,
     "must be the first layer"),
    (lambda: af.Architecture(inputs=af.Inputs(2, (3,)), layers=[
        af.Embedding(2), af.PiecewiseLinear(), af.Dense(2)]), ValueError,
     "must be the first layer"),
    (lambda: af.Architecture(inputs=af.Inputs(0, (3,)), layers=[af.PiecewiseLinear(),
                                                              af.Dense(2)]),
     ValueError, "embeds numeric inputs, and there are none"),
    (lambda: af.Architecture.from_dict({"n_inputs": 3, "output": "linear", "layers": [
        {"kind": "piecewise_linear", "n_bins": 4, "sigma": 1.0}, {"units": 1}]}),
     ValueError, "a piecewise_linear layer takes"),
])
def test_bad_piecewise_layers_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


# ---- an ensemble inside the network (BatchEnsemble, TabM) ----------------------------------------
def tabm(n_in=10, k=3, output="softmax", members=4, adapters="first", width=16):
    return af.Architecture(n_in, [af.Dense(width, "relu"),
                                  af.Residual([af.LayerNorm(), af.Dense(width, "relu")]),
                                  af.Dense(k)], output,
                           ensemble=af.BatchEnsemble(members, adapters))


def test_ensemble_layout_summary_and_dictionary_form():
    arch = tabm()
    assert [(e.name, e.shape) for e in arch.layout if e.name.startswith(("ens", "member"))] == [
        ("ensemble0.scale", (4, 10)), ("member_dense0.weight", (4, 16, 3)),
        ("member_dense0.bias", (4, 3))]
    assert [n.kind for n in arch.nodes] == ["replicate", "dense", "layer_norm", "dense", "add",
                                            "member_dense"]
    assert arch.members == 4 and arch.ensemble == af.BatchEnsemble(4)
    assert "member_dense0.weight" in {e.name for e in arch.decayed}
    assert "ensemble0.scale" not in {e.name for e in arch.decayed}
    text = arch.summary()
    assert "10 -> 4 x 10" in text and "dense per member" in text and "mean of 4" in text
    assert af.Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    assert arch != tabm(members=5) and arch != tabm(adapters="none")
    assert "ensemble=BatchEnsemble(k=4, adapters='first')" in repr(arch)
    signs = af.Model(arch).unflatten(af.Model(arch).init(0))["ensemble0.scale"]
    assert set(np.unique(signs)) == {-1.0, 1.0}
    # the members' rows make the work k times a row's
    plain = af.Architecture(10, list(arch.layers), "softmax")
    assert arch.flops_per_sample > 4 * plain.flops_per_sample - 100


def test_one_member_without_adapters_is_the_plain_network():
    X, y = data(300)
    plain = af.Model(af.Architecture(10, [af.Dense(16, "relu"), af.Dense(3)], "softmax"),
                     "float64")
    one = af.Model(af.Architecture(10, [af.Dense(16, "relu"), af.Dense(3)], "softmax",
                                   ensemble=af.BatchEnsemble(1, "none")), "float64")
    assert one.n_parameters == plain.n_parameters
    assert one.init(3).tobytes() == plain.init(3).tobytes()
    hp = af.Hyperparameters(epochs=3, batch_size=32)
    np.testing.assert_allclose(af.fit(one, X, y, hp).parameters,
                               af.fit(plain, X, y, hp).parameters, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("adapters", ["first", "all"])
@pytest.mark.parametrize("output,loss", [("softmax", None), ("sigmoid", None),
                                         ("linear", "huber"), ("exponential", None)])
def test_the_loss_and_prediction_are_the_members_means(output, loss, adapters):
    rng = np.random.default_rng(5)
    model = af.Model(tabm(output=output, adapters=adapters), "float64", loss)
    theta = model.init(1) + 0.1 * rng.normal(size=model.n_parameters)
    X = rng.normal(size=(30, 10))
    y = {"softmax": rng.integers(0, 3, 30), "sigmoid": rng.integers(0, 2, (30, 3)),
         "linear": rng.normal(size=(30, 3)), "exponential": rng.poisson(2.0, (30, 3))}[output]
    members = [model.member(theta, m) for m in range(4)]
    losses = [single.loss_and_grad(t, X, y)[0] for single, t in members]
    assert model.loss_and_grad(theta, X, y)[0] == pytest.approx(np.mean(losses), rel=1e-12)
    outputs = np.stack([single.predict(t, X) for single, t in members])
    np.testing.assert_allclose(model.predict(theta, X), outputs.mean(axis=0), rtol=1e-12)
    assert not np.allclose(outputs[0], outputs[1])          # the members differ
    with pytest.raises(ValueError, match="m must be <= 3"):
        model.member(theta, 4)


def test_an_ensemble_fits_saves_exports_and_predicts_each_member(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, y = data(500)
    fitted = af.fit(af.Model(tabm(members=8)), X[:400], y[:400],
                    af.Hyperparameters(epochs=30, learning_rate=3e-3, dropout=0.1,
                                       standardize=True))
    assert fitted.score(X[400:], y[400:]) > 0.8
    each = fitted.predict_members(X[400:])
    assert each.shape == (8, 100, 3)
    np.testing.assert_allclose(each.mean(axis=0), fitted.predict_proba(X[400:]), atol=1e-6)
    again = af.load(fitted.save(tmp_path / "t.archfit"))
    assert again.architecture == fitted.architecture
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    fitted.to_onnx(tmp_path / "t.onnx")
    session = ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"X": X.astype(np.float32)})[0],
                               fitted.predict_proba(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="is for a network with an ensemble inside"):
        af.fit(af.Model(resnet()), X, y, af.Hyperparameters(epochs=1)).predict_members(X)


def test_a_regression_ensemble_exports_in_the_targets_units(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 6))
    y = 100 + 10 * X[:, 0] + rng.normal(size=300)
    arch = af.Architecture(inputs=af.Inputs(4, (3, 5)), layers=[
        af.PiecewiseLinear(8, 4), af.Embedding(2), af.Dense(16, "relu"), af.Dense(1)],
        output="linear", ensemble=af.BatchEnsemble(4))
    X[:, 4] = rng.integers(0, 3, 300)
    X[:, 5] = rng.integers(-1, 5, 300)
    fitted = af.fit(af.Model(arch, "float64"), X, y,
                    af.Hyperparameters(epochs=5, standardize=True, standardize_targets=True))
    fitted.to_onnx(tmp_path / "r.onnx")
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"X": X})[0].ravel(), fitted.predict(X),
                               rtol=1e-6)
    np.testing.assert_allclose(fitted.predict_members(X).mean(axis=0).ravel(), fitted.predict(X),
                               rtol=1e-9)


def test_ensembles_give_the_same_bits_on_any_thread_count_and_in_populations():
    rng = np.random.default_rng(7)
    n = 640
    X = rng.normal(size=(n, 20)).astype(np.float32)
    y = rng.integers(0, 4, n)
    arch = af.Architecture(20, [af.Dense(128, "relu", dropout=0.1),
                                af.Residual([af.LayerNorm(), af.Dense(128, "relu")]),
                                af.Dense(4)], "softmax", ensemble=af.BatchEnsemble(8))
    model = af.Model(arch)
    assert model._kernel.training_plan(model.dtype, n, 160)["shards"] == 2
    hp = af.Hyperparameters(epochs=2, batch_size=160, seed=2)
    one = af.fit(model, X, y, hp.replace(n_threads=1))
    two = af.fit(model, X, y, hp.replace(n_threads=2))
    assert one.parameters.tobytes() == two.parameters.tobytes()
    members = af.fit_many(model, X, y, [hp.replace(seed=s) for s in (2, 3)])
    assert members[0].parameters.tobytes() == one.parameters.tobytes()
    from archfit._kernels import _plan
    _plan.calls_end_py()
    assert np.array_equal(model._predict(one.parameters, X, 1),
                          model._predict(one.parameters, X, 2))


@pytest.mark.parametrize("make, error, message", [
    (lambda: af.BatchEnsemble(0), ValueError, "BatchEnsemble.k must be >= 1"),
    (lambda: af.BatchEnsemble(2000), ValueError, "BatchEnsemble.k must be <= 1024"),
    (lambda: af.BatchEnsemble(2.5), TypeError, "BatchEnsemble.k"),
    (lambda: af.BatchEnsemble(4, "some"), ValueError, "must be 'all', 'first' or 'none'"),
    (lambda: af.Architecture(4, [af.Dense(2)], ensemble=4), TypeError,
     "ensemble must be a BatchEnsemble"),
    (lambda: af.Architecture(4, [af.Dense(3), af.Periodic(), af.Dense(2)],
                             ensemble=af.BatchEnsemble(2)), ValueError,
     "put the embedding layers first"),
    (lambda: af.Architecture.from_dict({"n_inputs": 3, "output": "linear", "layers": [
        {"units": 1}], "ensemble": {"k": 2, "members": 3}}), ValueError,
     "'ensemble' must be"),
    (lambda: af.Architecture.from_dict({"n_inputs": 3, "output": "linear", "layers": [
        {"units": 1}], "ensemble": {"k": -2}}), ValueError, "BatchEnsemble.k must be >= 1"),
])
def test_bad_ensembles_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_adapters_on_every_layer(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    arch = tabm(members=4, adapters="all")
    assert [n.kind for n in arch.nodes] == ["replicate", "adapted_dense", "layer_norm",
                                            "adapted_dense", "add", "member_dense"]
    assert [(e.name, e.shape) for e in arch.layout[:4]] == [
        ("adapted_dense0.weight", (10, 16)), ("adapted_dense0.scale_in", (4, 10)),
        ("adapted_dense0.scale_out", (4, 16)), ("adapted_dense0.bias", (4, 16))]
    assert {e.name for e in arch.decayed} == {"adapted_dense0.weight", "adapted_dense1.weight",
                                              "member_dense0.weight"}
    assert "dense, adapters" in arch.summary()
    weights = af.Model(arch).unflatten(af.Model(arch).init(0))
    assert set(np.unique(weights["adapted_dense0.scale_in"])) == {-1.0, 1.0}
    assert (weights["adapted_dense1.scale_in"] == 1).all()
    assert (weights["adapted_dense0.scale_out"] == 1).all()
    X, y = data(500)
    fitted = af.fit(af.Model(arch, "float64"), X[:400], y[:400],
                    af.Hyperparameters(epochs=40, learning_rate=3e-3, dropout=0.1,
                                       standardize=True))
    assert fitted.score(X[400:], y[400:]) > 0.8                   # 0.88 when written
    each = fitted.predict_members(X[400:])
    np.testing.assert_allclose(each.mean(axis=0), fitted.predict_proba(X[400:]), rtol=1e-12)
    fitted.to_onnx(tmp_path / "all.onnx")
    session = ort.InferenceSession(str(tmp_path / "all.onnx"),
                                   providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"X": X})[0], fitted.predict_proba(X),
                               rtol=1e-9, atol=1e-12)


def tabular(n_in=10, k=3, adapters="all"):
    """Piecewise-linear embeddings, then an ensemble with adapters: TabM's shape."""
    return af.Architecture(n_in, [af.PiecewiseLinear(8, 4), af.Dense(24, "relu"),
                                  af.Residual([af.LayerNorm(), af.Dense(24, "relu")]),
                                  af.Dense(k)], "softmax",
                           ensemble=af.BatchEnsemble(4, adapters))


@pytest.mark.filterwarnings("ignore::archfit.fitting.ConvergenceWarning")
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw", "lbfgs"])
def test_every_optimizer_fits_bins_and_an_ensemble(optimizer):
    X, y = data()
    lr = {"sgd": 0.05, "momentum": 0.02}.get(optimizer, 3e-3)
    hp = af.Hyperparameters(optimizer=optimizer, learning_rate=lr, epochs=30, batch_size=32,
                            l2=1e-4, dropout=0.1 if optimizer != "lbfgs" else 0.0,
                            standardize=True)
    model = af.Model(tabular())
    fitted = af.fit(model, X[:450], y[:450], hp)
    assert fitted.score(X[450:], y[450:]) > 0.75
    from archfit.binning import quantile_edges
    edges = model.unflatten(fitted.parameters)["piecewise_linear0.edges"]
    scaled = fitted.standardization.features(X[:450].astype(np.float32))   # as the fit did
    assert edges[0].tobytes() == quantile_edges(scaled[:, 0], None, 8, np.float32).tobytes()


def test_bins_and_ensembles_stop_early_resume_and_join_ensembles(tmp_path):
    X, y = data(900)
    model = af.Model(tabular())
    hp = af.Hyperparameters(epochs=20, batch_size=128, dropout=0.1, early_stopping=True,
                            patience=3, seed=3, standardize=True)
    whole = af.fit(model, X, y, hp)
    resumed = stopped_and_resumed(model, X, y, hp, tmp_path / "fit.ckpt", 3)
    assert resumed.parameters.tobytes() == whole.parameters.tobytes()
    members = af.fit_many(model, X, y, [hp.replace(seed=s) for s in (3, 4)])
    assert members[0].parameters.tobytes() == whole.parameters.tobytes()
    assert af.Ensemble(members).score(X, y) > 0.8
    chosen = af.select([model], X, y, {"learning_rate": [1e-3, 3e-3]},
                       base=af.Hyperparameters(epochs=4, batch_size=64, standardize=True), cv=2)
    assert len(chosen.table) == 2 and chosen.best is not None
