"""The network kernel (predict, loss_and_grad, one epoch) against the NumPy reference,
and loss_and_grad against central finite differences."""
import numpy as np
import pytest

import archfit as af
from archfit._kernels import _random
from archfit._kernels._network import Trainer, Status
from conftest import assert_close
import reference as ref

ACTIVATIONS = ["identity", "relu", "leaky_relu", "tanh", "sigmoid", "gelu"]


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
    return rng.normal(size=(n, k)) * 2


def encoded(model, y):
    if model.architecture.output == "softmax":
        return {"labels": np.asarray(y)}
    return {"targets": np.asarray(y, dtype=np.float64).reshape(len(y), -1)}


HEAD_CASES = [("softmax", None), ("sigmoid", None), ("linear", None), ("linear", "huber")]


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
