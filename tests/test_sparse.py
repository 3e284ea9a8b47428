"""Sparse X through the Python API: never made dense, the same fits as dense X
to rounding, every entry point."""
import numpy as np
import pytest

import archfit as af

sparse = pytest.importorskip("scipy.sparse")


@pytest.fixture
def never_dense(monkeypatch):
    """Fail any attempt to make a sparse matrix dense."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("sparse X was made dense")
    for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix, sparse.csr_array):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)


def _data(n=1500, d=300, density=0.03, seed=0):
    rng = np.random.default_rng(seed)
    X = sparse.random(n, d, density=density, format="csr", random_state=seed)
    y = (X @ rng.normal(size=d) > 0).astype(int)
    return X, y


def _model(dtype="float32", d=300):
    return af.Model(af.Architecture(d, [af.Dense(32, activation="relu"), af.Dense(2)],
                                    output="softmax"), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["csr", "csc", "coo", "csr_array"])
def test_a_sparse_fit_is_the_dense_fit_to_rounding(dtype, layout, never_dense):
    X, y = _data()
    dense = _dense_copy(X)
    Xs = sparse.csr_array(X) if layout == "csr_array" else X.asformat(layout)
    model = _model(dtype)
    hp = af.Hyperparameters(epochs=4, batch_size=64, dropout=0.1, l2=1e-4)
    from_sparse = af.fit(model, Xs, y, hp)
    from_dense = af.fit(model, dense, y, hp)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(from_sparse.parameters, from_dense.parameters, rtol=tol,
                               atol=tol)
    np.testing.assert_allclose(from_sparse.predict_proba(Xs), from_dense.predict_proba(dense),
                               rtol=tol, atol=tol)
    assert from_sparse.score(Xs, y) == pytest.approx(from_dense.score(dense, y), abs=2e-3)
    assert from_sparse.loss(Xs, y) == pytest.approx(from_dense.loss(dense, y), rel=tol)
    assert from_sparse.training_data["n_samples"] == 1500


def _dense_copy(X):
    out = np.zeros(X.shape)
    coo = X.tocoo()
    np.add.at(out, (coo.row, coo.col), coo.data)
    return out


def test_every_entry_point_takes_sparse_x(never_dense):
    X, y = _data()
    model = _model()
    hp = af.Hyperparameters(epochs=3, batch_size=64)
    fitted = af.fit(model, X, y, hp.replace(early_stopping=True, patience=2),
                    validation=(X[:200], y[:200]))
    assert fitted.history[-1]["validation_score"] > 0.5
    loss, grad = model.loss_and_grad(model.init(0), X, y)
    dense_loss, dense_grad = model.loss_and_grad(model.init(0), _dense_copy(X), y)
    assert loss == pytest.approx(dense_loss, rel=1e-5)
    np.testing.assert_allclose(grad, dense_grad, rtol=1e-4, atol=1e-6)
    estimate = af.holdout(model, X, y, hp, cv=3,
                          scoring=lambda f, Xt, yt: float(sparse.issparse(Xt)))
    assert list(estimate.scores) == [1.0, 1.0, 1.0]
    chosen = af.select(model, X, y, {"learning_rate": [1e-3, 1e-2]}, base=hp, cv=2)
    assert chosen.best.score(X, y) > 0.6
    with pytest.warns(af.ConvergenceWarning):
        lbfgs = af.fit(model, X, y, af.Hyperparameters(optimizer="lbfgs", epochs=5))
    assert lbfgs.n_epochs >= 1


def test_the_scikit_learn_adapters_keep_it_sparse(never_dense):
    pytest.importorskip("sklearn")
    from archfit.sklearn import MLPClassifier
    X, y = _data()
    clf = MLPClassifier((16,), max_iter=3, random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X.tocsc(), y)
    assert clf.predict(X).shape == (1500,)


def test_bad_sparse_input_is_refused_first():
    X, y = _data(n=50)
    model = _model()
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match=r"X \(sparse\) contains 1 NaN"):
        af.fit(model, bad, y)
    with pytest.raises(ValueError, match="has 299 features"):
        af.fit(model, X[:, :299], y)
    with pytest.raises(ValueError, match="standardize=True would centre sparse X"):
        af.fit(model, X, y, af.Hyperparameters(standardize=True))
    huge = X.astype(np.float64)
    huge.data[0] = 1e300
    with pytest.raises(ValueError, match="converted to float32"):
        af.fit(model, huge, y)
    dense_fit = af.fit(model, _dense_copy(X), y, af.Hyperparameters(epochs=1, standardize=True))
    with pytest.raises(ValueError, match="standardises its features"):
        dense_fit.predict(X)
    with pytest.raises(ValueError, match="empty"):
        af.fit(model, X[:0], y[:0])
