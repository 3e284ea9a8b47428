"""archfit.sklearn: scikit-learn's full estimator checks, and use in its tools."""
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
import scipy.sparse as sp  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import archfit as af  # noqa: E402
from archfit.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Short fits are the point of these tests; scikit-learn's convergence warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Every check scikit-learn has runs; these are the only expected failures.
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data":
        "At the default settings (Adam on shuffled mini-batches) repeating a row changes which "
        "rows share a batch and how many updates an epoch makes, so weight 2 and a repeated "
        "row give different (equally valid) fits, as for scikit-learn's own MLPs; with the "
        "settings scikit-learn tests its MLPs with, the check passes "
        "(test_sample_weights_equal_repeated_rows).",
    "check_sample_weight_equivalence_on_sparse_data":
        "The same check on sparse input, with the same reason.",
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("estimator", [MLPClassifier(random_state=0), MLPRegressor(random_state=0)],
                         ids=["classifier", "regressor"])
def test_check_estimator(estimator):
    results = check_estimator(estimator, on_fail=None, expected_failed_checks=EXPECTED_FAILURES)
    failed = [(r["check_name"], str(r["exception"])[:300]) for r in results
              if r["status"] == "failed"]
    assert failed == []
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert xfailed <= set(EXPECTED_FAILURES)
    assert len(results) > 50


@pytest.mark.parametrize("estimator", [
    MLPClassifier(solver="lbfgs"),
    MLPRegressor(solver="sgd", tol=1e-2, random_state=42)], ids=["classifier", "regressor"])
@pytest.mark.parametrize("data", ["dense", "sparse"])
def test_sample_weights_equal_repeated_rows(estimator, data):
    # scikit-learn's own check, with the settings scikit-learn runs it with for its
    # MLPs: a batch's L2 term is alpha over its total weight, as scikit-learn's
    from sklearn.utils import estimator_checks
    check = getattr(estimator_checks, f"check_sample_weight_equivalence_on_{data}_data")
    check(type(estimator).__name__, estimator)


def test_float64_input_is_fit_in_float64_and_float32_in_float32():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int)
    assert MLPClassifier((8,), max_iter=5).fit(X, y).fit_model_.model.dtype == np.float64
    assert MLPClassifier((8,), max_iter=5).fit(X.astype(np.float32), y) \
        .fit_model_.model.dtype == np.float32


@pytest.fixture(scope="module")
def digits():
    from archfit.datasets import load_digits
    return load_digits()


def test_classifier_on_digits_in_a_pipeline(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=30, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.9
    pipe.fit(X, y)
    clf = pipe[-1]
    assert isinstance(clf.fit_model_, af.FitModel)
    assert clf.fit_model_.architecture.sizes == (64, 64, 10)
    assert clf.classes_.tolist() == list(range(10))
    np.testing.assert_allclose(pipe.predict_proba(X[:5]).sum(axis=1), 1, rtol=1e-10)


def test_grid_search(digits):
    X, y = digits
    grid = GridSearchCV(MLPClassifier(max_iter=40, learning_rate_init=0.01, random_state=0),
                        {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1e-2]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X / 16, y)
    assert set(grid.best_params_) == {"hidden_layer_sizes", "alpha"}
    assert grid.best_score_ > 0.8


@pytest.mark.parametrize("output", ["multi-label", "multi-class", "regression"])
def test_same_start_same_path_as_scikit_learns_own_mlp(output):
    # From scikit-learn's initial weights, full-batch Adam in archfit follows
    # scikit-learn's MLP step for step: same loss, same gradient, same update.
    from sklearn import neural_network
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 4))
    if output == "multi-label":
        y = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1).astype(int)
        head, k = "sigmoid", 2
    elif output == "multi-class":
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
        head, k = "softmax", 3
    else:
        y = X[:, 0] - 2 * X[:, 1]
        head, k = "linear", 1
    Reference = neural_network.MLPRegressor if head == "linear" else neural_network.MLPClassifier
    start = Reference(hidden_layer_sizes=(16,), max_iter=1, learning_rate_init=1e-300, random_state=0).fit(X, y)
    model = af.Model(af.Architecture(4, [af.Dense(16, "relu"), af.Dense(k)], head), "float64")
    coefs, intercepts = start.coefs_, start.intercepts_
    if head == "softmax" and coefs[1].shape[1] != k:
        pytest.skip("scikit-learn uses a different output layout")
    theta = model.flatten({"dense0.weight": coefs[0], "dense0.bias": intercepts[0],
                           "dense1.weight": coefs[1], "dense1.bias": intercepts[1]})
    # alpha=0: scikit-learn's reported loss includes its L2 term, archfit's is the data loss
    reference = Reference(hidden_layer_sizes=(16,), max_iter=30, random_state=0, alpha=0.0).fit(X, y)
    ours = af.fit(model, X, y, af.Hyperparameters(batch_size=120, epochs=30), init=theta)
    losses = [h["train_loss"] for h in ours.history]
    # The first epoch is the same computation; after it the two Adams differ only in
    # where epsilon sits (archfit follows PyTorch: sqrt(v_hat) + eps; scikit-learn:
    # (sqrt(v) + eps) with the bias correction folded into the step), a 1e-7 effect.
    assert losses[0] == pytest.approx(reference.loss_curve_[0], rel=1e-12)
    np.testing.assert_allclose(losses, reference.loss_curve_, rtol=1e-5)
    final = model.unflatten(ours.parameters)
    np.testing.assert_allclose(final["dense0.weight"], reference.coefs_[0], rtol=1e-4, atol=1e-6)


def test_translation_is_thin():
    clf = MLPClassifier((5, 4), activation="logistic", solver="sgd", alpha=0.2, batch_size=10,
                        learning_rate="adaptive", max_iter=3, random_state=7, momentum=0.5,
                        nesterovs_momentum=False)
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    fm = clf.fit_model_
    assert fm.architecture.activations == ("sigmoid", "sigmoid", "identity")
    hp = fm.hyperparameters
    assert (hp.optimizer, hp.momentum, hp.nesterov, hp.batch_size, hp.seed) == (
        "momentum", 0.5, False, 10, 7)
    assert hp.l2 == pytest.approx(0.2 / 10) and hp.schedule == "plateau"
    # the same fit by hand, through archfit directly from scikit-learn's initial
    # draw (weights then biases per layer, ±sqrt(2 / (fan_in + fan_out)) for
    # logistic, from RandomState(random_state)), gives the same parameters
    rng = np.random.RandomState(7)
    start = []
    for fan_in, fan_out in [(3, 5), (5, 4), (4, 2)]:
        bound = np.sqrt(2.0 / (fan_in + fan_out))
        start += [rng.uniform(-bound, bound, (fan_in, fan_out)).ravel(),
                  rng.uniform(-bound, bound, fan_out)]
    by_hand = af.fit(fm.model, X, y, hp, init=np.concatenate(start))
    assert by_hand.parameters.tobytes() == fm.parameters.tobytes()
    assert clf.coefs_[0].shape == (3, 5) and clf.intercepts_[1].shape == (4,)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3


def test_partial_fit_and_warm_start():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 4))
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier((8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1])
    clf.partial_fit(X[50:], y[50:])
    assert clf.fit_model_.n_epochs == 2
    with pytest.raises(ValueError, match="not seen before"):
        clf.partial_fit(X[:3], [0, 1, 2])
    warm = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X, X[:, 0])
        first = warm.fit_model_
        warm.fit(X, X[:, 0])
    assert warm.fit_model_.n_epochs == 10 and first.n_epochs == 5


def test_sample_weight_multilabel_and_multioutput():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1).astype(int)
    clf = MLPClassifier((16,), max_iter=200, learning_rate_init=0.01, random_state=0).fit(X, Y)
    assert clf.fit_model_.architecture.output == "sigmoid"
    assert clf.predict(X).shape == (200, 2) and clf.score(X, Y) > 0.8
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=150, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, np.stack([X[:, 0], X[:, 1] * 2], axis=1), sample_weight=np.ones(200))
    assert reg.predict(X).shape == (200, 2)
    # full-batch L-BFGS: zero weights are the same objective as dropping the rows
    # (alpha=0: scikit-learn's alpha is divided by the batch, i.e. the row count)
    w = np.r_[np.ones(100), np.zeros(100)]
    y = X[:, 0]
    a = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", alpha=0.0, max_iter=50, random_state=0)
    b = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", alpha=0.0, max_iter=50, random_state=0)
    a.fit(X, y, sample_weight=w)
    b.fit(X[:100], y[:100])
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-8)


def test_convergence_warning_like_scikit_learn():
    X = np.random.default_rng(3).normal(size=(50, 2))
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, X[:, 0])
    # L-BFGS at its evaluation limit: archfit's warning, as scikit-learn's class
    with pytest.warns(ConvergenceWarning, match="L-BFGS stopped before converging"):
        MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_fun=3, tol=0.0,
                     random_state=0).fit(X, X[:, 0])


def test_bad_parameters_raise_at_fit():
    X, y = np.zeros((10, 2)), np.arange(10) % 2
    for kwargs, match in [({"activation": "swish"}, "activation"), ({"solver": "newton"}, "solver"),
                          ({"learning_rate": "cyclic"}, "learning_rate"),
                          ({"alpha": True}, "alpha"), ({"alpha": -1}, "alpha"),
                          ({"n_iter_no_change": 0}, "n_iter_no_change"),
                          ({"n_iter_no_change": 2.5}, "n_iter_no_change"),
                          ({"max_fun": 0}, "max_fun"),
                          ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
                          ({"batch_size": 0}, "batch_size"), ({"max_iter": 0}, "max_iter")]:
        with pytest.raises(ValueError, match=match):
            MLPClassifier(**kwargs).fit(X, y)


# ---- tables ------------------------------------------------------------------------------------
def _frame(n=600, seed=0):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n),
                       "c": pd.Series(rng.normal(size=n)).where(rng.random(n) > 0.1)})
    signal = df["a"] + 2.0 * (df["b"] == "y") + df["c"].fillna(0)
    return df, signal.to_numpy()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("estimator", [MLPClassifier(random_state=0, preprocessing="auto"),
                                       MLPRegressor(random_state=0, preprocessing="auto")],
                         ids=["classifier", "regressor"])
def test_check_estimator_with_a_preprocessing(estimator):
    results = check_estimator(estimator, on_fail=None)
    assert [(r["check_name"], str(r["exception"])[:300]) for r in results
            if r["status"] == "failed"] == []
    assert len(results) > 50


def test_the_adapters_read_tables_with_text_and_missing_cells():
    df, signal = _frame()
    y = (signal > 0.5).astype(int)
    clf = MLPClassifier((32,), preprocessing="auto", random_state=0, max_iter=60).fit(df, y)
    assert clf.score(df, y) > 0.9
    assert clf.n_features_in_ == 3 and list(clf.feature_names_in_) == ["a", "b", "c"]
    assert [c.shape for c in clf.coefs_] == [(7, 32), (32, 2)]    # a, c, c missing, b one-hot
    shuffled = df[["c", "b", "a"]]
    assert np.array_equal(clf.predict_proba(shuffled), clf.predict_proba(df))
    reg = MLPRegressor(hidden_layer_sizes=(32,), preprocessing="auto", random_state=0,
                       max_iter=60).fit(df, signal)
    assert reg.score(df, signal) > 0.9
    # a schema given: its statistics refit on the fit's rows (weighted); kept going on
    p = af.Preprocessing.fit(df, numeric="standard")
    w = np.random.default_rng(1).random(len(df)) + 0.5
    warm = MLPRegressor(hidden_layer_sizes=(8,), preprocessing=p, max_iter=5, warm_start=True,
                        random_state=0).fit(df.iloc[:400], signal[:400], sample_weight=w[:400])
    assert warm.fit_model_.preprocessing == p.refit(df.iloc[:400], w[:400])
    first = warm.fit_model_.preprocessing
    warm.fit(df, signal)
    warm.partial_fit(df, signal)
    assert warm.fit_model_.preprocessing == first and warm.fit_model_.n_epochs == 11
    # a later batch without some category continues the same network
    batch = df["b"] != "z"
    clf.partial_fit(df[batch], y[batch])
    assert clf.fit_model_.preprocessing.inputs == clf.fit_model_.architecture.inputs
    assert clf.n_iter_ == 1


def test_the_adapters_refuse_text_without_a_preprocessing_in_words():
    df, signal = _frame(100)
    with pytest.raises(ValueError, match="could not convert.*preprocessing='auto'"):
        MLPClassifier().fit(df, signal > 0)
    with pytest.raises(ValueError, match="preprocessing must be None, 'auto' or"):
        MLPClassifier(preprocessing="robust").fit(df, signal > 0)
    with pytest.raises(TypeError, match="not sparse X"):
        MLPRegressor(preprocessing="auto").fit(sp.csr_matrix(np.eye(4)), np.arange(4.0))
    fitted = MLPRegressor(preprocessing="auto", max_iter=2).fit(df, signal)
    with pytest.raises(ValueError, match="lacks column"):
        fitted.predict(df.drop(columns="b").assign(d=1.0))
