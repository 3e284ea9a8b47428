"""Sparse X (compressed sparse rows): the first layer's products and weight
gradient as sparse x dense kernels, against the same data dense."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import archfit as af
from archfit.kernels import Status, Trainer
from conftest import assert_close

sparse = pytest.importorskip("scipy.sparse")


def _csr(X, dtype):
    m = sparse.csr_matrix(X.astype(dtype))
    return (np.ascontiguousarray(m.data), np.ascontiguousarray(m.indices, dtype=np.intc),
            np.ascontiguousarray(m.indptr, dtype=np.intp))


def _data(n=230, d=40, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < density)
    X[min(3, n - 1)] = 0.0                    # an empty row
    return X, rng.integers(0, 3, n)


def _model(dtype, width=24, output="softmax", k=3):
    return af.Model(af.Architecture(40, [af.Dense(width, activation="tanh"),
                                         af.Dense(7, activation="relu"), af.Dense(k)], output),
                    dtype=dtype)


@pytest.mark.parametrize("n", [1, 5, 230, 1100])
def test_predict_matches_dense(dtype, n):
    X, _ = _data(n=n)
    model = _model(dtype)
    theta = model.init(1)
    dense = np.empty((n, 3), dtype)
    sparse_out = np.empty((n, 3), dtype)
    model._kernel.predict(theta, np.ascontiguousarray(X, dtype=dtype), dense, 2)
    model._kernel.predict_sparse(theta, *_csr(X, dtype), sparse_out, 2)
    assert_close(sparse_out, dense, dtype)


@pytest.mark.parametrize("n", [1, 230, 1100])
def test_evaluation_is_the_sparse_prediction_and_the_dense_loss(dtype, n):
    X, y = _data(n=n, seed=3)
    model = _model(dtype)
    theta = model.init(4)
    labels = y.astype(np.intc)
    w = np.random.default_rng(5).uniform(0.5, 2, n).astype(dtype)
    predicted = np.empty((n, 3), dtype)
    model._kernel.predict_sparse(theta, *_csr(X, dtype), predicted, 2)
    dense = model._kernel.evaluate(theta, np.ascontiguousarray(X, dtype=dtype), labels, None, w)
    losses = set()
    for threads in (1, 2, 3):
        out = np.full((n, 3), np.nan, dtype)
        losses.add(model._kernel.evaluate_sparse(theta, *_csr(X, dtype), labels, None, w, out,
                                                 threads))
        assert np.array_equal(out, predicted)
    assert len(losses) == 1
    assert losses.pop() == pytest.approx(dense, rel=1e-5 if dtype == np.float32 else 1e-9)
    with pytest.raises(ValueError, match="at least one row"):
        model._kernel.evaluate_sparse(theta, np.empty(0, dtype), np.empty(0, np.intc),
                                      np.zeros(1, np.intp), labels[:0], None, None)


def test_loss_and_grad_match_dense(dtype):
    X, y = _data()
    model = _model(dtype)
    theta = model.init(2)
    g_dense, g_sparse = np.empty_like(theta), np.empty_like(theta)
    labels = y.astype(np.intc)
    loss_dense = model._kernel.loss_and_grad(theta, np.ascontiguousarray(X, dtype=dtype),
                                             labels, None, None, g_dense, 0.01)
    loss_sparse = model._kernel.loss_and_grad_sparse(theta, *_csr(X, dtype), labels, None, None,
                                                     g_sparse, 0.01)
    assert loss_sparse == pytest.approx(loss_dense, rel=1e-5 if dtype == np.float32 else 1e-9)
    assert_close(g_sparse, g_dense, dtype)


@pytest.mark.parametrize("optimizer, dropout, shuffle, width",
                         [("adam", 0.0, True, 24), ("momentum", 0.3, True, 24),
                          ("sgd", 0.0, False, 24), ("adam", 0.1, True, 300)],
                         ids=["adam", "dropout", "in-order", "sharded"])
def test_an_epoch_matches_dense(dtype, optimizer, dropout, shuffle, width):
    X, y = _data(n=700)
    model = _model(dtype, width)
    weights = np.random.default_rng(5).uniform(0.5, 2, len(y)).astype(dtype)
    settings = dict(dropout=dropout, shuffle=shuffle, seed=4, l2=0.01, threads=2)
    dense_theta, sparse_theta = model.init(0), model.init(0)
    dense = Trainer(model._kernel, model.dtype, len(y), 50, optimizer, **settings)
    sparse_trainer = Trainer(model._kernel, model.dtype, len(y), 50, optimizer, **settings)
    labels = y.astype(np.intc)
    with threadpool_limits(1, user_api="blas"):
        for epoch in range(2):
            a = dense.epoch(dense_theta, np.ascontiguousarray(X, dtype=dtype), labels, None,
                            weights, 0.01, epoch, 2)
            b = sparse_trainer.epoch_sparse(sparse_theta, *_csr(X, dtype), labels, None,
                                            weights, 0.01, epoch, 2)
            assert a[2] == b[2] == Status.OK
            assert b[1] == pytest.approx(a[1]) and b[0] == pytest.approx(a[0], rel=1e-4)
    assert_close(sparse_theta, dense_theta, dtype, scale=100)


def test_a_regression_epoch_and_thread_counts(dtype):
    X, _ = _data(n=500)
    y = np.random.default_rng(1).normal(size=(500, 2)).astype(dtype)
    model = _model(dtype, 300, "linear", 2)
    thetas = []
    for threads in (1, 2):
        theta = model.init(0)
        trainer = Trainer(model._kernel, model.dtype, 500, 64, "adam", n_targets=2,
                          threads=threads)
        with threadpool_limits(1, user_api="blas"):
            assert trainer.epoch_sparse(theta, *_csr(X, dtype), None, y, None, 0.01, 0,
                                        threads)[2] == Status.OK
        thetas.append(theta)
    assert thetas[0].tobytes() == thetas[1].tobytes()      # same bits for any thread count
