"""Bad input raises a clear TypeError/ValueError naming the problem, before any kernel
runs; input a user would expect to work does work."""
import numpy as np
import pytest

import archfit as af
import archfit.fitting


@pytest.fixture
def model(dtype):
    arch = af.Architecture(3, [af.Dense(4, "relu"), af.Dense(3)], "softmax")
    return af.Model(arch, dtype=dtype)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = np.arange(30) % 3
    return X, y


class ExplodingKernel:
    """Stands in for the compiled kernel: any call means validation came too late.

    The one exception is ``predict_ready``, the fast path that validates small
    inputs itself in C: it is reached, and must decline (return None, having
    computed nothing) so that the Python layer raises its full error.
    """

    def __init__(self, real=None):
        self._real = real

    def predict_ready(self, theta, X, n_threads=1):
        out = self._real.predict_ready(theta, X, n_threads)
        assert out is None, "predict_ready computed outputs for invalid input"
        return None

    def __getattr__(self, name):
        raise AssertionError(f"kernel.{name} was reached with invalid input")


@pytest.fixture
def no_kernel(monkeypatch):
    def guard(model):
        monkeypatch.setattr(model, "_kernel", ExplodingKernel(model._kernel))
        monkeypatch.setattr(archfit.fitting, "Trainer", ExplodingKernel)
    return guard


BAD_X = [
    (np.zeros(3), ValueError, "2-dimensional"),
    (np.zeros((2, 3, 1)), ValueError, "2-dimensional"),
    (np.zeros((5, 4)), ValueError, "4 features"),
    (np.zeros((0, 3)), ValueError, "empty"),
    (np.array([[1, 2, "a"]], dtype=object), TypeError, "numeric"),
    (np.array([["1", "2", "3"]]), TypeError, "numeric"),
    (np.zeros((2, 3), dtype=complex), TypeError, "complex"),
    (np.array([[0.0, np.nan, 1.0]]), ValueError, "NaN"),
    (np.array([[0.0, np.inf, 1.0]]), ValueError, "NaN or infinite"),
    ([[1, 2], [3]], ValueError, "could not be read"),
]


@pytest.mark.parametrize("X,exc,match", BAD_X)
def test_predict_rejects_bad_X(model, no_kernel, X, exc, match):
    theta = model.init(0)
    no_kernel(model)
    with pytest.raises(exc, match=match):
        model.predict(theta, X)


@pytest.mark.parametrize("X,exc,match", BAD_X)
def test_fit_rejects_bad_X(model, no_kernel, X, exc, match):
    no_kernel(model)
    with pytest.raises(exc, match=match):
        af.fit(model, X, np.zeros(len(X) if hasattr(X, "__len__") else 1), af.Hyperparameters())


def test_float64_overflowing_float32_is_refused():
    arch = af.Architecture(1, [af.Dense(1)], "linear")
    with pytest.raises(ValueError, match="converted to float32"):
        af.Model(arch, "float32").predict(np.zeros(2, np.float32), [[1e300]])


@pytest.mark.parametrize("y,exc,match", [
    (np.array([0, 1, np.nan] * 10), ValueError, "NaN"),
    (np.zeros((30, 2)), ValueError, "1-dimensional"),
    (np.arange(29) % 3, ValueError, "29 labels"),
    (np.array([0, 1, None] * 10, dtype=object), ValueError, "missing"),
    (np.array([0, 1, 2j] * 10), TypeError, "complex"),
    (np.array([0, 1, 2, 3] * 7 + [0, 1]), ValueError, "4 distinct classes"),
])
def test_fit_rejects_bad_labels(model, data, no_kernel, y, exc, match):
    X, _ = data
    no_kernel(model)
    with pytest.raises(exc, match=match):
        af.fit(model, X, y)


def test_regression_targets_validated(no_kernel):
    arch = af.Architecture(2, [af.Dense(2)], "linear")
    model = af.Model(arch)
    no_kernel(model)
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="shape"):
        af.fit(model, X, np.zeros(4))          # needs (4, 2)
    with pytest.raises(ValueError, match="NaN"):
        af.fit(model, X, np.full((4, 2), np.inf))
    with pytest.raises(TypeError, match="numeric"):
        af.fit(model, X, np.array([["a", "b"]] * 4))


def test_sigmoid_targets_must_be_indicators(no_kernel):
    model = af.Model(af.Architecture(2, [af.Dense(2)], "sigmoid"))
    no_kernel(model)
    with pytest.raises(ValueError, match="0/1"):
        af.fit(model, np.zeros((3, 2)), np.array([[0, 2], [1, 0], [0, 1]]))


def test_unseen_labels_at_score_time(model, data):
    X, y = data
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=1))
    with pytest.raises(ValueError, match=r"not among the classes.*\[7\]"):
        fitted.score(X[:3], [0, 1, 7])


def test_string_labels_unseen(data):
    X, _ = data
    model = af.Model(af.Architecture(3, [af.Dense(2)], "softmax"))
    fitted = af.fit(model, X, np.array(["a", "b"] * 15), af.Hyperparameters(epochs=1))
    with pytest.raises(ValueError, match="'c'"):
        fitted.score(X[:2], ["a", "c"])


@pytest.mark.parametrize("theta_fn,exc,match", [
    (lambda m: m.init(0)[:-1], ValueError, "length"),
    (lambda m: np.concatenate([m.init(0), [0]]).astype(m.dtype), ValueError, "length"),
    (lambda m: m.init(0).astype(np.float16), TypeError, "dtype"),
    (lambda m: m.init(0).reshape(1, -1), ValueError, "1-dimensional"),
    (lambda m: list(m.init(0)), TypeError, "ndarray"),
    (lambda m: np.full(m.n_parameters, np.nan, m.dtype), ValueError, "NaN"),
])
def test_bad_theta(model, data, no_kernel, theta_fn, exc, match):
    X, y = data
    theta = theta_fn(model)
    no_kernel(model)
    with pytest.raises(exc, match=match):
        model.predict(theta, X)
    with pytest.raises(exc, match=match):
        model.loss_and_grad(theta, X, y)
    with pytest.raises(exc, match=match):
        af.fit(model, X, y, init=theta)


def test_wrong_dtype_theta_for_the_other_dtype():
    arch = af.Architecture(3, [af.Dense(2)], "linear")
    theta64 = af.Model(arch, "float64").init(0)
    with pytest.raises(TypeError, match="float32"):
        af.Model(arch, "float32").predict(theta64, np.zeros((1, 3)))


@pytest.mark.parametrize("w,match", [
    (np.ones(29), "shape"), (-np.ones(30), "non-negative"), (np.zeros(30), "positive sum"),
    (np.full(30, np.nan), "NaN"), (np.array(["a"] * 30), "numeric"),
])
def test_bad_sample_weight(model, data, no_kernel, w, match):
    X, y = data
    no_kernel(model)
    with pytest.raises((ValueError, TypeError), match=match):
        af.fit(model, X, y, sample_weight=w)


def test_bad_arguments_to_fit(model, data, no_kernel):
    X, y = data
    with pytest.raises(TypeError, match="Hyperparameters"):
        af.fit(model, X, y, {"epochs": 3})
    with pytest.raises(TypeError, match="Model"):
        af.fit("model", X, y)
    with pytest.raises(TypeError, match="callback"):
        af.fit(model, X, y, callback=3)
    with pytest.raises(TypeError, match="validation"):
        af.fit(model, X, y, validation=X)
    other = af.Model(af.Architecture(3, [af.Dense(3)], "softmax"), model.dtype.name)
    prior = af.fit(other, X, y, af.Hyperparameters(epochs=1))
    no_kernel(model)
    with pytest.raises(ValueError, match="different model"):
        af.fit(model, X, y, init=prior)
    with pytest.raises(ValueError, match="validation y"):
        af.fit(model, X, y, validation=(X[:3], [0, 1, 5]))


def test_hyperparameter_errors_come_at_construction():
    with pytest.raises(ValueError, match="batch_size"):
        af.Hyperparameters(batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        af.Hyperparameters(batch_size=-3)
    with pytest.raises(ValueError, match="learning_rate"):
        af.Hyperparameters(learning_rate=0.0)


def test_early_stopping_needs_two_samples():
    model = af.Model(af.Architecture(3, [af.Dense(1)], "linear"))
    with pytest.raises(ValueError, match="validation set"):
        af.fit(model, np.zeros((1, 3)), np.zeros(1), af.Hyperparameters(early_stopping=True))


# ---- what a user would expect to work, works ---------------------------------------------------
def test_integer_and_bool_X(model, data):
    _, y = data
    Xi = np.random.default_rng(0).integers(0, 5, size=(30, 3))
    fitted = af.fit(model, Xi, y, af.Hyperparameters(epochs=1))
    assert fitted.predict(Xi).shape == (30,)
    assert fitted.predict(Xi.astype(bool)).shape == (30,)
    assert fitted.predict(Xi.tolist()).shape == (30,)


def test_float64_X_for_a_float32_model(data):
    X, y = data
    model = af.Model(af.Architecture(3, [af.Dense(3)], "softmax"), "float32")
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=1))
    assert fitted.predict_proba(X).dtype == np.float32


def test_non_contiguous_and_read_only_arrays(model, data):
    X, y = data
    wide = np.asfortranarray(np.repeat(X, 2, axis=1))[:, ::2]   # strided, Fortran-ordered
    assert not wide.flags.c_contiguous
    ro_X, ro_y = X.copy(), y.copy()
    ro_X.flags.writeable = ro_y.flags.writeable = False
    a = af.fit(model, wide, y, af.Hyperparameters(epochs=2))
    b = af.fit(model, ro_X, ro_y, af.Hyperparameters(epochs=2))
    assert np.array_equal(a.parameters, b.parameters)
    theta = model.init(0)
    theta.flags.writeable = False
    assert model.predict(theta, ro_X).shape == (30, 3)
    assert model.loss_and_grad(theta, ro_X, ro_y)[1].flags.writeable
    strided_theta = np.repeat(model.init(0), 2)[::2]
    assert np.array_equal(model.predict(strided_theta, X), model.predict(model.init(0), X))


def test_a_single_sample(model, data):
    X, y = data
    fitted = af.fit(model, X[:1], y[:1], af.Hyperparameters(epochs=2), classes=[0, 1, 2])
    assert fitted.predict(X[:1]).shape == (1,)
    assert fitted.predict_proba(X[0:1]).shape == (1, 3)


def test_batch_larger_than_the_data(model, data):
    X, y = data
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=3, batch_size=10_000))
    assert fitted.n_epochs == 3


def test_nothing_is_damaged_by_a_failed_fit(model, data):
    X, y = data
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=1))
    before = fitted.parameters.copy()
    with pytest.raises(ValueError):
        af.fit(model, X, np.full(30, 9), init=fitted)
    assert np.array_equal(fitted.parameters, before)


def test_a_nan_is_located():
    # the API names the first bad cell, as the command line does
    arch = af.Architecture(3, [af.Dense(2)], "softmax")
    X = np.zeros((10, 3))
    X[7, 2] = np.nan
    X[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"X contains 2 NaN or infinite value\(s\); the first "
                                         r"is NaN at row 7, column 2"):
        af.fit(af.Model(arch), X, np.arange(10) % 2)
    with pytest.raises(ValueError, match="sample_weight .*the first is an infinite value at "
                                         "row 3"):
        af.fit(af.Model(arch), np.zeros((10, 3)), np.arange(10) % 2,
               sample_weight=[1, 1, 1, np.inf, 1, 1, 1, 1, 1, 1])


def test_an_array_after_a_frame_warns_as_scikit_learn_does():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = (frame["a"] > 0).astype(int).to_numpy()
    fitted = af.fit(af.Model(af.Architecture(3, [af.Dense(2)], "softmax")), frame, y,
                    af.Hyperparameters(epochs=2))
    with pytest.warns(UserWarning, match="no column names, but this was fit on named "
                                         "columns; its columns are taken to be 'a', 'b', 'c'"):
        from_array = fitted.predict_proba(frame.to_numpy())
    assert np.array_equal(from_array, fitted.predict_proba(frame))   # no warning for a frame
    for call in (lambda: fitted.predict(frame.to_numpy()),
                 lambda: fitted.score(frame.to_numpy(), y),
                 lambda: af.Ensemble([fitted, fitted]).predict(frame.to_numpy())):
        with pytest.warns(UserWarning, match="no column names"):
            call()
    # columns matched by name, whatever their order
    assert np.array_equal(fitted.predict_proba(frame[["c", "a", "b"]]), from_array)


def test_data_frames_of_mixed_columns():
    # booleans and nullable numbers are numbers; text and dates are refused,
    # naming the column and saying what to do, before any kernel runs
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "flag": rng.integers(0, 2, 40).astype(bool),
                          "count": pd.array(rng.integers(0, 5, 40), dtype="Int64")})
    y = rng.integers(0, 2, 40)
    model = af.Model(af.Architecture(3, [af.Dense(4, "relu"), af.Dense(2)], "softmax"))
    fitted = af.fit(model, frame, y, af.Hyperparameters(epochs=1))
    as_numbers = frame.astype("float64").to_numpy()
    with pytest.warns(UserWarning, match="names"):
        np.testing.assert_array_equal(fitted.predict_proba(frame), fitted.predict_proba(as_numbers))
    frame.loc[3, "count"] = None
    with pytest.raises(ValueError, match="NaN at row 3, column 2"):
        af.fit(model, frame, y)
    # a frame of one nullable dtype is numbers too
    counts = pd.DataFrame({"a": pd.array(rng.integers(0, 5, 40), dtype="Int64"),
                           "b": pd.array(rng.integers(0, 5, 40), dtype="Int64")})
    narrow = af.Model(af.Architecture(2, [af.Dense(4, "relu"), af.Dense(2)], "softmax"))
    af.fit(narrow, counts, y, af.Hyperparameters(epochs=1))
    for column, message in (("text", r"column 'c' holds .* values, not numbers; a table of "
                                     r"text, .* is read through a Preprocessing"),
                            ("dates", r"column 'c' holds dates or times .*\.dt\.year")):
        bad = frame.drop(columns="count").assign(
            c=np.array(["x", "y"] * 20) if column == "text"
            else pd.date_range("2024-01-01", periods=40))
        with pytest.raises(TypeError, match=message):
            af.fit(model, bad, y)
