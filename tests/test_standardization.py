"""Standardisation that travels with the fit model; feature names; label types."""
import numpy as np
import pytest

import archfit as af
from archfit.scaling import Standardization


def _regression(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) * [1, 10, 100, 1000, 0.01] + [0, 5, -50, 3000, 1]
    X[:, 4] = 7.0                                       # a constant column
    y = X[:, 0] + X[:, 1] / 10 - X[:, 2] / 100 + 0.1 * rng.normal(size=n)
    return X, 1000 + 300 * y


LINEAR = af.Model(af.Architecture(5, [af.Dense(16, activation="tanh"), af.Dense(1)]), "float64")
HP = af.Hyperparameters(epochs=60, batch_size=32, learning_rate=3e-3, standardize=True,
                        standardize_targets=True)


def test_statistics_come_from_the_training_rows_and_are_applied_everywhere(tmp_path):
    X, y = _regression()
    fitted = af.fit(LINEAR, X, y, HP.replace(early_stopping=True, validation_fraction=0.25))
    scaling = fitted.standardization
    train = np.setdiff1d(np.arange(len(y)), af.validation_split(len(y), 0.25, 0)[1])
    assert np.allclose(scaling.feature_mean, X[train].mean(axis=0))
    assert np.allclose(scaling.feature_scale[:4], X[train].std(axis=0)[:4])
    assert scaling.feature_scale[4] == 1.0                        # constant column
    assert np.allclose(scaling.target_mean, y[train].mean())
    # predictions: the network on standardised X, mapped back to y's units
    by_hand = LINEAR.predict(fitted.parameters, (X - scaling.feature_mean) / scaling.feature_scale)
    expected = by_hand[:, 0] * scaling.target_scale[0] + scaling.target_mean[0]
    assert np.allclose(fitted.predict(X), expected, rtol=1e-12)
    assert fitted.score(X, y) > 0.95
    # it is in the file, and a continued fit keeps it
    loaded = af.load(fitted.save(tmp_path / "m.archfit"))
    assert loaded.standardization == scaling
    assert np.array_equal(loaded.predict(X), fitted.predict(X))
    more = af.fit(LINEAR, X * 2, y, HP.replace(epochs=1), init=fitted)
    assert more.standardization == scaling
    with pytest.raises(ValueError, match="init was fit with standardize=True"):
        af.fit(LINEAR, X, y, HP.replace(standardize=False), init=fitted)


def test_the_fit_is_the_same_as_on_standardised_data_and_inputs_are_untouched():
    X, y = _regression()
    X32 = X.astype(np.float32)
    before = X32.copy()
    model = af.Model(LINEAR.architecture, "float32")
    hp = HP.replace(standardize_targets=False, epochs=3)
    fitted = af.fit(model, X32, y, hp)
    s = fitted.standardization
    by_hand = ((X32 - s.feature_mean.astype(np.float32)) / s.feature_scale.astype(np.float32))
    plain = af.fit(model, by_hand, y, hp.replace(standardize=False))
    assert fitted.parameters.tobytes() == plain.parameters.tobytes()
    assert np.array_equal(X32, before)


def test_raw_data_needs_it():
    X, y = _regression()
    raw = af.fit(LINEAR, X, y, HP.replace(standardize=False, standardize_targets=False))
    scaled = af.fit(LINEAR, X, y, HP)
    assert scaled.score(X, y) > 0.95 > raw.score(X, y)


def test_onnx_contains_the_standardisation(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, y = _regression()
    model = af.Model(LINEAR.architecture, "float32")
    fitted = af.fit(model, X.astype(np.float32), y, HP.replace(epochs=5))
    session = ort.InferenceSession(fitted.to_onnx(tmp_path / "m.onnx").SerializeToString())
    values = session.run(None, {"X": X.astype(np.float32)})[0]
    np.testing.assert_allclose(values[:, 0], fitted.predict(X), rtol=1e-5, atol=1e-3)


def test_standardize_targets_is_for_linear_outputs_and_files_work(tmp_path):
    X, y = _regression()
    softmax = af.Model(af.Architecture(5, [af.Dense(2)], output="softmax"))
    with pytest.raises(ValueError, match="standardize_targets is for linear outputs"):
        af.fit(softmax, X, y > 1000, HP)
    with pytest.raises(TypeError, match="standardize must be True or False"):
        af.Hyperparameters(standardize="yes")
    path = tmp_path / "X.npy"
    np.save(path, X)
    from_file = af.fit(LINEAR, np.load(path, mmap_mode="r"), y, HP.replace(epochs=2))
    in_memory = af.fit(LINEAR, X, y, HP.replace(epochs=2))
    assert from_file.parameters.tobytes() == in_memory.parameters.tobytes()
    assert from_file.standardization == in_memory.standardization
    assert np.array_equal(from_file.predict(np.load(path, mmap_mode="r")), in_memory.predict(X))


def test_statistics_in_parts_equal_the_whole():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 4)) * 1e3 + 1e6
    mean, scale = Standardization.statistics([X[:1], X[1:300], X[300:301], X[301:]])
    assert np.allclose(mean, X.mean(axis=0), rtol=1e-14)
    assert np.allclose(scale, X.std(axis=0), rtol=1e-9)
    with pytest.raises(ValueError, match="finite"):
        Standardization([0.0], [0.0])


def test_a_data_frame_fit_matches_columns_by_name(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = (frame.a - 2 * frame.c > 0).astype(int)
    model = af.Model(af.Architecture(3, [af.Dense(8, activation="relu"), af.Dense(2)],
                                     output="softmax"))
    fitted = af.fit(model, frame, y, af.Hyperparameters(epochs=5),
                    validation=(frame[["c", "a", "b"]], y))
    assert fitted.feature_names == ["a", "b", "c"]
    reordered = frame[["c", "b", "a"]]
    assert np.array_equal(fitted.predict(reordered), fitted.predict(frame))
    with pytest.warns(UserWarning, match="no column names"):    # as scikit-learn warns
        from_array = fitted.predict_proba(frame.to_numpy())
    assert np.array_equal(from_array, fitted.predict_proba(frame))
    assert fitted.score(reordered, y) == fitted.score(frame, y)
    with pytest.raises(ValueError, match="lacks column\\(s\\) the model was fit on: 'b'"):
        fitted.predict(frame[["a", "c"]])
    assert af.load(fitted.save(tmp_path / "m")).feature_names == ["a", "b", "c"]
    chosen = af.select(model, frame, y, {"learning_rate": [1e-3]},
                       base=af.Hyperparameters(epochs=2), cv=2)
    assert chosen.best.feature_names == ["a", "b", "c"]


def test_continuous_targets_are_not_class_labels():
    model = af.Model(af.Architecture(2, [af.Dense(2)], output="softmax"))
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="continuous values \\(0.5 is not a whole number\\).*"
                                         "output='linear'"):
        af.fit(model, X, np.arange(10) % 2 + 0.5)
    with pytest.raises(ValueError, match="continuous"):
        af.holdout(model, X, np.arange(10) % 2 + 0.5, cv=2)
    af.fit(model, X, (np.arange(10) % 2).astype(float), af.Hyperparameters(epochs=1))
    # declared classes may be any values
    af.fit(model, X, np.arange(10) % 2 + 0.5, af.Hyperparameters(epochs=1), classes=[0.5, 1.5])


@pytest.mark.parametrize("targets", [False, True])
def test_the_statistics_weigh_rows_as_repeats(targets):
    # a row of weight k and the row k times: the same statistics, and with
    # L-BFGS the same fit to rounding
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 10, size=(40, 5))
    w = rng.integers(0, 4, 40)
    y = X @ rng.normal(size=5) + rng.normal(size=40) if targets else (X[:, 0] > 5).astype(int)
    output = "linear" if targets else "softmax"
    model = af.Model(af.Architecture(5, [af.Dense(16, "tanh"), af.Dense(1 if targets else 2)],
                                     output), "float64")
    hp = af.Hyperparameters(optimizer="lbfgs", epochs=500, standardize=True,
                            standardize_targets=targets)
    weighted = af.fit(model, X, y, hp, sample_weight=w.astype(float))
    repeated = af.fit(model, np.repeat(X, w, axis=0), np.repeat(y, w, axis=0), hp)
    a, b = weighted.standardization, repeated.standardization
    np.testing.assert_allclose(a.feature_mean, b.feature_mean, rtol=1e-13)
    np.testing.assert_allclose(a.feature_scale, b.feature_scale, rtol=1e-13)
    if targets:
        np.testing.assert_allclose(a.target_mean, b.target_mean, rtol=1e-13)
    np.testing.assert_allclose(weighted.predict(X) if targets else weighted.predict_proba(X),
                               repeated.predict(X) if targets else repeated.predict_proba(X),
                               rtol=1e-6, atol=1e-9)
