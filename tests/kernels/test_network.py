"""The network kernel (predict, loss_and_grad, one epoch) against the NumPy reference,
and loss_and_grad against central finite differences."""
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import archfit as af
from archfit._kernels import _plan, _random
from archfit.kernels import ACTIVATIONS, Status, Trainer
from conftest import assert_close
import reference as ref


def make_model(output, activation="tanh", dtype="float64", loss=None, k=3, n_in=4):
    arch = af.Architecture(n_in, [af.Dense(6, activation=activation),
                                  af.Dense(5, activation=activation), af.Dense(k)], output)
    return af.Model(arch, dtype=dtype, loss=loss, huber_delta=0.7)


def make_targets(model, n, rng):
    k = model.architecture.n_outputs
    out = model.architecture.output
    if out == "softmax":
        return rng.integers(0, k, n)
    if out == "sigmoid":
        return rng.integers(0, 2, (n, k)).astype(float)
    if out == "exponential":
        return rng.poisson(1.5, (n, k)).astype(float)
    return rng.normal(size=(n, k)) * 2


def encoded(model, y):
    if model.architecture.output == "softmax":
        return {"labels": np.asarray(y)}
    return {"targets": np.asarray(y, dtype=np.float64).reshape(len(y), -1)}


HEAD_CASES = [("softmax", None), ("sigmoid", None), ("linear", None), ("linear", "huber"),
              ("exponential", None)]


@pytest.mark.parametrize("output,loss", HEAD_CASES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_predict_matches_reference(dtype, output, loss, activation):
    rng = np.random.default_rng(0)
    model = make_model(output, activation, dtype, loss)
    theta = model.init(1) + (0.1 * rng.normal(size=model.n_parameters)).astype(dtype)
    X = rng.normal(size=(9, 4))
    Z, _ = ref.forward(model.architecture, theta, X.astype(dtype))
    assert_close(model.predict(theta, X), ref.head(output, Z[-1]), dtype, scale=20)


@pytest.mark.parametrize("output,loss", HEAD_CASES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_grad_matches_reference(dtype, output, loss, activation, weighted):
    rng = np.random.default_rng(1)
    model = make_model(output, activation, dtype, loss)
    theta = model.init(2) + (0.1 * rng.normal(size=model.n_parameters)).astype(dtype)
    X = rng.normal(size=(10, 4)).astype(dtype)
    y = make_targets(model, 10, rng)
    w = rng.uniform(0.2, 3, 10) if weighted else None
    loss_k, grad_k = model.loss_and_grad(theta, X, y, sample_weight=w, l2=0.3)
    loss_r, grad_r = ref.loss_and_grad(model, theta, X, weights=w, l2=0.3, **encoded(model, y))
    assert grad_k.dtype == theta.dtype and grad_k.shape == theta.shape
    assert_close(loss_k, loss_r, dtype, scale=20)
    assert_close(grad_k, grad_r, dtype, scale=50)


def test_loss_and_grad_accumulates_over_chunks(dtype):
    # more rows than one chunk (1024): gradients of the chunks must add up exactly
    rng = np.random.default_rng(2)
    model = make_model("softmax", "relu", dtype)
    theta = model.init(0)
    X = rng.normal(size=(2500, 4)).astype(dtype)
    y = rng.integers(0, 3, 2500)
    loss_k, grad_k = model.loss_and_grad(theta, X, y)
    loss_r, grad_r = ref.loss_and_grad(model, theta, X, labels=y)
    assert_close(loss_k, loss_r, dtype, scale=50)
    assert_close(grad_k, grad_r, dtype, scale=100)


def wide_model(dtype):
    """300-130-40-7: its products too large for smallgemm.h at a few rows, so
    predictions of many rows come in several chunks and a few rows are packed."""
    arch = af.Architecture(300, [af.Dense(130, "relu"), af.Dense(40, "tanh"), af.Dense(7)],
                           "softmax")
    return af.Model(arch, dtype=dtype)


def test_gradient_chunks_follow_the_rows_not_the_threads():
    arch = af.Architecture(64, [af.Dense(64, "relu"), af.Dense(10)], "softmax")
    kernel = af.Model(arch)._kernel
    for n in (1, 50, 1797, 5000, 100_000):
        plans = [kernel.gradient_plan(np.float32, n, t) for t in (1, 2, 3, 8)]
        assert len({(p["rows"], p["chunks"]) for p in plans}) == 1
        assert [p["threads"] for p in plans] == [min(t, plans[0]["chunks"]) for t in (1, 2, 3, 8)]
        assert plans[0]["rows"] * plans[0]["chunks"] >= n > plans[0]["rows"] * (plans[0]["chunks"] - 1)
    # the digits (1,797 rows) in four chunks, so two threads share them
    assert kernel.gradient_plan(np.float32, 1797, 2)["chunks"] == 4
    assert kernel.gradient_plan(np.float32, 100_000, 2)["rows"] == 1024


@pytest.mark.parametrize("sparse", [False, True])
def test_loss_and_grad_gives_the_same_bits_on_any_number_of_threads(dtype, sparse):
    import scipy.sparse
    model = wide_model(dtype)
    rng = np.random.default_rng(16)
    theta = model.init(7)
    X = rng.normal(size=(2100, 300)).astype(dtype)
    if sparse:
        X[rng.random(X.shape) < 0.9] = 0
    y = rng.integers(0, 7, 2100)
    w = rng.uniform(0.5, 2, 2100)
    data = scipy.sparse.csr_matrix(X) if sparse else X
    assert model._kernel.gradient_plan(dtype, 2100, 2)["chunks"] > 2
    results = []
    for blas in (1, 2):
        with threadpool_limits(blas, user_api="blas"):
            results += [model.loss_and_grad(theta, data, y, sample_weight=w, l2=0.01, n_threads=t)
                        for t in (1, 2, 3)]
    assert len({loss for loss, _ in results}) == 1
    assert all(np.array_equal(grad, results[0][1]) for _, grad in results)
    loss_r, grad_r = ref.loss_and_grad(model, theta, X, weights=w, l2=0.01, labels=y)
    assert_close(results[0][0], loss_r, dtype, scale=50)
    assert_close(results[0][1], grad_r, dtype, scale=200)


def test_loss_and_grad_refuses_a_bad_thread_count():
    model = make_model("softmax", "relu")
    theta = model.init(0)
    X = np.zeros((5, 4))
    with pytest.raises(ValueError, match="n_threads"):
        model.loss_and_grad(theta, X, np.zeros(5, int), n_threads=0)


@pytest.mark.parametrize("output,loss", HEAD_CASES)
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "relu", "leaky_relu"])
def test_gradient_matches_finite_differences(output, loss, activation):
    rng = np.random.default_rng(3)
    model = make_model(output, activation, "float64", loss)
    theta = model.init(4) + 0.1 * rng.normal(size=model.n_parameters)
    X = rng.normal(size=(8, 4))
    y = make_targets(model, 8, rng)
    w = rng.uniform(0.5, 2.0, 8)
    _, grad = model.loss_and_grad(theta, X, y, sample_weight=w, l2=0.05)
    h = 1e-6
    numeric = np.empty_like(theta)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = h
        up, _ = model.loss_and_grad(theta + e, X, y, sample_weight=w, l2=0.05)
        down, _ = model.loss_and_grad(theta - e, X, y, sample_weight=w, l2=0.05)
        numeric[i] = (up - down) / (2 * h)
    # relu kinks: a pre-activation within h of 0 would spoil the difference; none here
    relative = np.linalg.norm(grad - numeric) / np.linalg.norm(numeric)
    assert relative < 1e-6


def test_float32_gradient_agrees_with_float64():
    rng = np.random.default_rng(5)
    m64 = make_model("softmax", "gelu", "float64")
    m32 = make_model("softmax", "gelu", "float32")
    X = rng.normal(size=(50, 4))
    y = rng.integers(0, 3, 50)
    theta64 = m64.init(0)
    _, g64 = m64.loss_and_grad(theta64, X, y)
    _, g32 = m32.loss_and_grad(theta64.astype(np.float32), X, y)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)


# ---- one epoch of the training kernel against a NumPy training loop ----------------------------
def reference_epoch(model, theta, X, y, *, batch_size, optimizer, lr, l2, epoch, seed,
                    shuffle, weights=None, dropout=0.0, momentum=0.9):
    arch = model.architecture
    n = len(X)
    order = _random.permutation(n, seed, epoch, 0) if shuffle else np.arange(n)
    opt = ref.Optimizer(optimizer, lr, momentum=momentum)
    mask = ref.weight_mask(arch)
    theta = theta.astype(np.float64)
    hidden = arch.sizes[1:-1]
    draws = _random.uniform(n * sum(hidden), seed, epoch, 1) if dropout else None
    used = 0
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        masks = None
        if dropout:
            masks = []
            for width in hidden:
                u = draws[used:used + len(idx) * width].reshape(len(idx), width)
                used += len(idx) * width
                masks.append(np.where(u < dropout, 0.0, 1 / (1 - dropout)))
        w = None if weights is None else weights[idx]
        _, g = ref.loss_and_grad(model, theta, X[idx], weights=w, masks=masks,
                                 **encoded(model, y[idx]))
        opt.step(theta, g, mask, l2)
    return theta


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_epoch_matches_reference_training_loop(dtype, optimizer, shuffle):
    rng = np.random.default_rng(6)
    model = make_model("softmax", "tanh", dtype)
    X = rng.normal(size=(37, 4)).astype(dtype)
    y = rng.integers(0, 3, 37)
    theta = model.init(0)
    expected = reference_epoch(model, theta, X.astype(np.float64), y, batch_size=8,
                               optimizer=optimizer, lr=0.05, l2=0.01, epoch=3, seed=11,
                               shuffle=shuffle)
    trainer = Trainer(model._kernel, model.dtype, 37, 8, optimizer, l2=0.01, shuffle=shuffle,
                      seed=11)
    loss_sum, weight_sum, status = trainer.epoch(theta, X, y.astype(np.intc), None, None, 0.05, 3)
    assert status == Status.OK and weight_sum == 37
    assert trainer.step == 5  # ceil(37 / 8) updates
    assert_close(theta, expected, dtype, scale=200)


def test_epoch_with_dropout_and_weights_matches_reference(dtype):
    rng = np.random.default_rng(7)
    model = make_model("linear", "relu", dtype, k=2)
    X = rng.normal(size=(21, 4)).astype(dtype)
    y = rng.normal(size=(21, 2))
    w = rng.uniform(0.5, 2, 21)
    theta = model.init(0)
    expected = reference_epoch(model, theta, X.astype(np.float64), y, batch_size=5,
                               optimizer="sgd", lr=0.05, l2=0.0, epoch=0, seed=2,
                               shuffle=True, weights=w, dropout=0.3)
    trainer = Trainer(model._kernel, model.dtype, 21, 5, "sgd", dropout=0.3, shuffle=True,
                      seed=2, n_targets=2)
    _, _, status = trainer.epoch(theta, X, None, y.astype(dtype), w.astype(dtype), 0.05, 0)
    assert status == Status.OK
    assert_close(theta, expected, dtype, scale=200)


def test_epoch_reports_nonfinite_loss():
    model = make_model("linear", "identity", "float64", k=1)
    X = np.full((4, 4), 1e200)
    theta = model.init(0)
    trainer = Trainer(model._kernel, model.dtype, 4, 2, "sgd", shuffle=False, n_targets=1)
    _, _, status = trainer.epoch(theta, X, None, np.zeros((4, 1)), None, 0.1, 0)
    assert status != Status.OK


# ---- steps and predictions shared among threads ------------------------------------------------
def sharded_model(dtype, output="softmax", k=4, activation="tanh"):
    """Large enough that a 160-row mini-batch is cut into two shards."""
    arch = af.Architecture(60, [af.Dense(256, activation), af.Dense(128, "relu"),
                                af.Dense(k)], output)
    return af.Model(arch, dtype=dtype)


def test_shard_counts_follow_the_work_not_the_threads():
    def shards(model, rows):
        return model._kernel.training_plan(model.dtype, rows, rows)["shards"]
    assert shards(sharded_model("float32"), 160) == 2
    assert shards(sharded_model("float32"), 30) == 1     # too few rows to cut
    assert shards(make_model("softmax"), 4096) == 1      # too little work per row


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_sharded_epoch_matches_reference_training_loop(dtype, optimizer):
    rng = np.random.default_rng(8)
    model = sharded_model(dtype)
    n = 350                                # batches of 160, 160 and 30 rows
    X = rng.normal(size=(n, 60)).astype(dtype)
    y = rng.integers(0, 4, n)
    theta = model.init(0)
    expected = reference_epoch(model, theta, X.astype(np.float64), y, batch_size=160,
                               optimizer=optimizer, lr=0.01, l2=0.01, epoch=1, seed=5,
                               shuffle=True)
    trainer = Trainer(model._kernel, model.dtype, n, 160, optimizer, l2=0.01, seed=5, threads=2)
    with threadpool_limits(1, user_api="blas"):
        loss_sum, weight_sum, status = trainer.epoch(theta, X, y.astype(np.intc), None, None,
                                                     0.01, 1, 2)
    assert status == Status.OK and weight_sum == n and trainer.step == 3
    assert_close(theta, expected, dtype, scale=2000)


def test_sharded_epoch_with_dropout_and_weights_matches_reference(dtype):
    rng = np.random.default_rng(9)
    model = sharded_model(dtype, "linear", k=2, activation="relu")
    n = 330
    X = rng.normal(size=(n, 60)).astype(dtype)
    y = rng.normal(size=(n, 2))
    w = rng.uniform(0.5, 2, n)
    theta = model.init(0)
    expected = reference_epoch(model, theta, X.astype(np.float64), y, batch_size=160,
                               optimizer="sgd", lr=0.01, l2=0.0, epoch=2, seed=3,
                               shuffle=True, weights=w, dropout=0.25)
    trainer = Trainer(model._kernel, model.dtype, n, 160, "sgd", dropout=0.25, seed=3,
                      n_targets=2, threads=2)
    with threadpool_limits(1, user_api="blas"):
        _, _, status = trainer.epoch(theta, X, None, y.astype(dtype), w.astype(dtype),
                                     0.01, 2, 2)
    assert status == Status.OK
    assert_close(theta, expected, dtype, scale=2000)


def test_packed_weights_follow_every_update(dtype):
    # sharded steps read weights packed once per step (AVX2); each block's
    # update re-packs its rows, so after an epoch the packed copies are
    # exactly θ's weights packed afresh (a stale row would differ)
    from archfit._kernels import _blas
    model = sharded_model(dtype)
    kernel = model._kernel
    if not kernel.training_plan(dtype, 350, 160)["packed"]:
        pytest.skip("packed training needs a CPU with AVX2 and FMA")
    assert kernel.training_plan(dtype, 350, 30)["packed"]   # one shard reads them too
    wide = af.Model(af.Architecture(1024, [af.Dense(2048), af.Dense(2)], "softmax"))
    assert not wide._kernel.training_plan(dtype, 256, 256)["packed"]   # copies beyond 4 MiB
    rng = np.random.default_rng(14)
    X = rng.normal(size=(350, 60)).astype(dtype)
    y = rng.integers(0, 4, 350).astype(np.intc)
    theta = model.init(0)
    trainer = Trainer(kernel, model.dtype, 350, 160, "adam", seed=1, threads=2)
    assert trainer.packed.dtype == dtype
    for epoch in range(2):
        trainer.epoch(theta, X, y, None, None, 1e-2, epoch, 2)
    W0 = theta[:60 * 256].reshape(60, 256)
    W1 = theta[60 * 256 + 256:60 * 256 + 256 + 256 * 128].reshape(256, 128)
    # per packed layer: W packed, the batch's errors packed (160 rows), and
    # from layer 1 on W^T packed (256 x 128: no panel padding for either
    # dtype); layer 2 (128 x 4) is too small to pack
    P0, D0, P1, D1 = 60 * 256, 160 * 256, 256 * 128, 160 * 128
    packed = trainer.packed
    assert np.array_equal(packed[:P0], _blas.pack_py(W0))
    assert np.array_equal(packed[P0 + D0:P0 + D0 + P1], _blas.pack_py(W1))
    assert np.array_equal(packed[P0 + D0 + P1 + D1:P0 + D0 + 2 * P1 + D1],
                          _blas.pack_py(np.ascontiguousarray(W1.T)))


def test_one_shard_packed_epoch_matches_reference_and_not_blas_threads(dtype):
    # batches of 30 rows: one shard, whose products read the packed weights
    # (AVX2) instead of going to BLAS, so BLAS's thread count cannot matter
    rng = np.random.default_rng(17)
    model = sharded_model(dtype)
    plan = model._kernel.training_plan(dtype, 90, 30, threads=2)
    assert plan["shards"] == 1
    n = 90
    X = rng.normal(size=(n, 60)).astype(dtype)
    y = rng.integers(0, 4, n)
    start = model.init(0)
    expected = reference_epoch(model, start, X.astype(np.float64), y, batch_size=30,
                               optimizer="adam", lr=0.01, l2=0.01, epoch=1, seed=5,
                               shuffle=True)
    thetas = []
    for blas in (1, 2):
        theta = start.copy()
        trainer = Trainer(model._kernel, model.dtype, n, 30, "adam", l2=0.01, seed=5,
                          threads=2)
        with threadpool_limits(blas, user_api="blas"):
            _, _, status = trainer.epoch(theta, X, y.astype(np.intc), None, None, 0.01, 1, 2)
        assert status == Status.OK and trainer.step == 3
        thetas.append(theta)
    assert_close(thetas[0], expected, dtype, scale=2000)
    if plan["packed"]:
        assert np.array_equal(thetas[0], thetas[1])


@pytest.mark.parametrize("shuffle", [False, True])
def test_epoch_gives_the_same_bits_on_any_number_of_threads(dtype, shuffle):
    rng = np.random.default_rng(10)
    model = sharded_model(dtype)
    X = rng.normal(size=(500, 60)).astype(dtype)
    y = rng.integers(0, 4, 500).astype(np.intc)
    results = []
    with threadpool_limits(1, user_api="blas"):
        for threads in (1, 2, 3):
            theta = model.init(0)
            trainer = Trainer(model._kernel, model.dtype, 500, 160, "adam", shuffle=shuffle,
                              dropout=0.1, seed=4, threads=threads)
            losses = [trainer.epoch(theta, X, y, None, None, 1e-3, e, threads)[0]
                      for e in range(2)]
            results.append((theta, trainer.m, trainer.v, losses))
        # one trainer, more threads in its second epoch than in its first
        theta = model.init(0)
        trainer = Trainer(model._kernel, model.dtype, 500, 160, "adam", shuffle=shuffle,
                          dropout=0.1, seed=4, threads=3)
        losses = [trainer.epoch(theta, X, y, None, None, 1e-3, e, t)[0]
                  for e, t in enumerate((1, 3))]
        results.append((theta, trainer.m, trainer.v, losses))
    for theta, m, v, losses in results[1:]:
        assert np.array_equal(theta, results[0][0])
        assert np.array_equal(m, results[0][1]) and np.array_equal(v, results[0][2])
        assert losses == results[0][3]


def test_predict_gives_the_same_bits_on_any_number_of_threads(dtype):
    rng = np.random.default_rng(11)
    model = sharded_model(dtype)
    theta = model.init(2)
    X = rng.normal(size=(1000, 60)).astype(dtype)     # four chunks, the last one short
    outs = []
    with threadpool_limits(1, user_api="blas"):
        for threads in (1, 2, 4):
            out = np.empty((1000, 4), dtype=dtype)
            model._kernel.predict(theta, X, out, threads)
            outs.append(out)
    assert all(np.array_equal(o, outs[0]) for o in outs[1:])
    Z, _ = ref.forward(model.architecture, theta, X)
    assert_close(outs[0], ref.head("softmax", Z[-1]), dtype, scale=200)


def test_packed_predictions_do_not_depend_on_the_batch(dtype):
    # chunks read the weights packed once (AVX2): a row's outputs are the
    # same bits as when it is predicted alone or in another batch, of any size
    model = wide_model(dtype)
    arch = model.architecture
    if not model._kernel.prediction_plan(dtype, 1000)["packed"]:
        pytest.skip("the packed GEMM needs a CPU with AVX2 and FMA")
    # a few rows are packed too (300 x 130 is too large for smallgemm), in two chunks
    # once each has 4 MFLOP of work
    plans = {n: model._kernel.prediction_plan(dtype, n, 2) for n in (1, 2, 16, 17, 100, 256)}
    assert not plans[1]["packed"] and all(plans[n]["packed"] for n in (2, 16, 17, 100, 256))
    assert [plans[n]["chunks"] for n in (2, 16, 17, 100, 256)] == [1, 1, 1, 2, 2]
    assert plans[100]["threads"] == 2
    rng = np.random.default_rng(13)
    theta = model.init(4)
    X = rng.normal(size=(1000, 300)).astype(dtype)
    with threadpool_limits(1, user_api="blas"):
        outs = []
        for threads in (1, 2, 3):
            out = np.full((1000, 7), np.nan, dtype)
            model._kernel.predict(theta, X, out, threads)
            outs.append(out)
        assert all(np.array_equal(o, outs[0]) for o in outs[1:])
        shifted = np.full((600, 7), np.nan, dtype)
        model._kernel.predict(theta, X[400:], shifted, 2)
        assert np.array_equal(shifted, outs[0][400:])
        for i in (0, 517, 999):
            alone = np.empty((1, 7), dtype)
            model._kernel.predict(theta, X[i:i + 1], alone, 1)
            assert np.array_equal(alone[0], outs[0][i])
        for lo, hi in ((0, 2), (3, 20), (500, 600), (700, 956)):
            few = np.full((hi - lo, 7), np.nan, dtype)
            _plan.calls_end_py()        # a call just ended: small ones take the threads too
            model._kernel.predict(theta, X[lo:hi], few, 2)
            assert np.array_equal(few, outs[0][lo:hi])
            assert np.array_equal(model._kernel.predict_ready(theta, X[lo:hi], 2), few)
    Z, _ = ref.forward(arch, theta, X)
    assert_close(outs[0], ref.head("softmax", Z[-1]), dtype, scale=200)


@pytest.mark.parametrize("output,loss", HEAD_CASES)
@pytest.mark.parametrize("n", [1, 9, 300, 1000])
def test_evaluation_is_the_prediction_and_the_reference_loss(dtype, output, loss, n):
    # one row, one chunk, several chunks (packed weights on AVX2); weighted
    rng = np.random.default_rng(14)
    model = make_model(output, "tanh", dtype, loss, n_in=40)
    theta = model.init(5) + (0.1 * rng.normal(size=model.n_parameters)).astype(dtype)
    X = rng.normal(size=(n, 40)).astype(dtype)
    y = make_targets(model, n, rng)
    w = rng.uniform(0.2, 3, n).astype(dtype)
    enc = encoded(model, y)
    labels = enc.get("labels")
    labels = None if labels is None else labels.astype(np.int32)
    targets = enc.get("targets")
    targets = None if targets is None else targets.astype(dtype)
    predicted = np.empty((n, 3), dtype)
    with threadpool_limits(1, user_api="blas"):
        model._kernel.predict(theta, X, predicted, 2)
        for weights in (None, w):
            out = np.full((n, 3), np.nan, dtype)
            value = model._kernel.evaluate(theta, X, labels, targets, weights, out, 2)
            assert np.array_equal(out, predicted)
            assert model._kernel.evaluate(theta, X, labels, targets, weights, None, 1) == value
            expected, _ = ref.loss_and_grad(model, theta, X, weights=weights, **enc)
            assert_close(value, expected, dtype, scale=50)


def test_evaluation_gives_the_same_bits_on_any_number_of_threads(dtype):
    model = wide_model(dtype)
    rng = np.random.default_rng(15)
    theta = model.init(6)
    X = rng.normal(size=(1000, 300)).astype(dtype)
    labels = rng.integers(0, 7, 1000).astype(np.int32)
    with threadpool_limits(1, user_api="blas"):
        values = {model._kernel.evaluate(theta, X, labels, None, None, None, t) for t in (1, 2, 3)}
    assert len(values) == 1
    # through the model, BLAS's own thread count does not matter either
    fitted = af.FitModel(model, theta, af.Hyperparameters(), classes=np.arange(7))
    with threadpool_limits(2, user_api="blas"):
        two = fitted.loss(X, labels)
    with threadpool_limits(1, user_api="blas"):
        one = fitted.loss(X, labels)
    assert one == two == values.pop()      # the same plan, the same bits


def test_evaluation_of_no_rows_is_refused(dtype):
    model = make_model("softmax", "relu", dtype)
    theta = model.init(0)
    with pytest.raises(ValueError, match="at least one row"):
        model._kernel.evaluate(theta, np.empty((0, 4), dtype), np.empty(0, np.int32), None,
                               None, None, 1)


def test_a_few_rows_of_a_small_network_are_not_packed(dtype):
    # every product fits smallgemm (rows computed alone already): packing would only cost
    model = af.Model(af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax"),
                     dtype=dtype)
    assert not model._kernel.prediction_plan(dtype, 100, 2)["packed"]
    assert model._kernel.prediction_plan(dtype, 100, 2)["chunks"] == 1
    if not model._kernel.prediction_plan(dtype, 1000)["packed"]:
        return
    # on AVX2 smallgemm's rows, the packed GEMM's and one row's vecmat are one FMA chain
    rng = np.random.default_rng(16)
    theta = model.init(7)
    X = rng.normal(size=(1000, 64)).astype(dtype)
    whole = np.empty((1000, 10), dtype)
    model._kernel.predict(theta, X, whole, 2)
    for lo, hi in ((0, 1), (1, 3), (10, 110), (700, 956)):
        part = np.empty((hi - lo, 10), dtype)
        model._kernel.predict(theta, X[lo:hi], part, 2)
        assert np.array_equal(part, whole[lo:hi])


def test_one_sample_gives_the_same_bits_on_any_number_of_threads(dtype):
    # 200 x 256 and 256 x 64 layers are large enough to be shared among threads
    arch = af.Architecture(200, [af.Dense(256, "relu"), af.Dense(64, "tanh"), af.Dense(5)],
                           "softmax")
    model = af.Model(arch, dtype=dtype)
    assert model._kernel.splits_rows()
    rng = np.random.default_rng(12)
    theta = model.init(3)
    X = rng.normal(size=(1, 200)).astype(dtype)
    outs = []
    for threads in (1, 2, 3):
        out = np.empty((1, 5), dtype=dtype)
        _plan.calls_end_py()    # a call just ended: the threads are awake, and taken
        model._kernel.predict(theta, X, out, threads)
        outs.append(out)
        assert np.array_equal(model._kernel.predict_ready(theta, X, threads), out)
    assert all(np.array_equal(o, outs[0]) for o in outs[1:])
    time.sleep(0.01)            # after a pause, one thread: the same bits
    assert np.array_equal(model._kernel.predict_ready(theta, X, 2), outs[0])
    Z, _ = ref.forward(arch, theta, X)
    assert_close(outs[0], ref.head("softmax", Z[-1]), dtype, scale=200)


def test_small_work_after_a_pause_stays_on_one_thread():
    # waking sleeping threads costs more than a small prediction's work
    # (milliseconds on some virtual machines): after a pause it runs alone
    _plan.calls_end_py()
    assert _plan.idle_threads_py(2, 1e6) == 2          # calls in quick succession
    time.sleep(0.01)
    assert _plan.idle_threads_py(2, 1e6) == 1          # the first after a pause
    assert _plan.idle_threads_py(2, 1e12) == 2         # large work takes the threads anyway
    assert _plan.idle_threads_py(1, 1e6) == 1
    # the limit follows the wake measured last: 10 ms is 400 MFLOP on one thread
    try:
        _plan.set_wake_py(10_000_000)
        assert _plan.idle_threads_py(2, 3e8) == 1
        assert _plan.idle_threads_py(2, 5e8) == 2
        _plan.set_wake_py(0)
        assert _plan.idle_threads_py(2, 3e8) == 2
    finally:
        _plan.set_wake_py(0)
    # every kernel call counts as one: right after a prediction, threads again
    model = make_model("softmax", "relu")
    model._kernel.predict(model.init(0), np.zeros((3, 4)), np.empty((3, 3)), 1)
    assert _plan.idle_threads_py(2, 1e6) == 2


def test_predict_ready_takes_only_ready_arrays(dtype):
    model = make_model("softmax", "relu", dtype)
    theta = model.init(0)
    kernel = model._kernel
    rng = np.random.default_rng(13)
    X = rng.normal(size=(5, 4)).astype(dtype)
    other = np.float32 if dtype == "float64" else np.float64
    Z, _ = ref.forward(model.architecture, theta, X)
    assert_close(kernel.predict_ready(theta, X), ref.head("softmax", Z[-1]), dtype, scale=20)
    declined = [X.tolist(), X.astype(other), np.asfortranarray(X), X[:, :3].copy(),
                X[:0], np.zeros((257, 4), dtype), X.reshape(-1), X[None],
                np.where(X > 1, np.nan, X), np.where(X > 1, -np.inf, X)]
    for bad in declined:
        assert kernel.predict_ready(theta, bad) is None
    # the path taken (fast, or validated and converted) never changes a prediction
    assert np.array_equal(model.predict(theta, X), model.predict(theta, X.tolist()))
    assert np.array_equal(model.predict(theta, X[:1]), model.predict(theta, X[:1].tolist()))
