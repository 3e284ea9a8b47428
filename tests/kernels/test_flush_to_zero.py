"""Subnormal numbers are flushed to zero inside every kernel call, on every thread it
uses, and the caller's floating-point mode is restored exactly.

This is where archfit differs from the plain-NumPy reference: a value whose
magnitude is below the dtype's smallest normal number (1.2e-38 in float32,
2.2e-308 in float64) is zero inside the kernels, as an input and as a result.
No other result changes, which is why the rest of the kernel suite compares
with NumPy as before."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import archfit as af
from archfit._kernels import _cpu

TINY = {"float32": 1e-20, "float64": 1e-160}     # TINY**2 is subnormal
SUBNORMAL = {"float32": 1e-40, "float64": 1e-310}


@pytest.fixture(params=[False, True], ids=["caller-normal", "caller-flushing"])
def caller_mode(request):
    """The calling thread's mode before each test (and restored after it)."""
    previous = _cpu.set_flush_to_zero(request.param)
    yield request.param
    _cpu.set_flush_to_zero(previous)


def identity_model(dtype):
    return af.Model(af.Architecture(1, [af.Dense(1)], "linear"), dtype=dtype)


def test_the_test_hooks_read_and_set_the_mode():
    before = _cpu.set_flush_to_zero(True)
    assert _cpu.flushes_to_zero()
    assert _cpu.set_flush_to_zero(False) is True and not _cpu.flushes_to_zero()
    _cpu.set_flush_to_zero(before)
    x = np.float32(1e-20)
    assert x * x > 0                      # NumPy, in the normal mode: a subnormal result


@pytest.mark.parametrize("rows", [1, 5, 300])
def test_a_subnormal_result_is_zero_inside_the_kernels(dtype, rows, caller_mode):
    model = identity_model(dtype)
    theta = np.array([TINY[dtype], 0.0], dtype=dtype)       # f(x) = TINY * x
    X = np.full((rows, 1), TINY[dtype], dtype=dtype)
    assert np.all(model.predict(theta, X) == 0)             # TINY**2 flushed
    assert np.all(model.predict(theta, X.tolist()) == 0)    # the validated path too
    # a subnormal input counts as zero (denormals-are-zero)
    assert np.all(model.predict(np.array([1.0, 0.0], dtype), np.full((rows, 1), SUBNORMAL[dtype],
                                                                      dtype)) == 0)
    assert _cpu.flushes_to_zero() == caller_mode


def test_a_subnormal_gradient_is_zero(dtype, caller_mode):
    model = identity_model(dtype)
    theta = np.array([0.0, 0.0], dtype=dtype)
    X = np.full((4, 1), TINY[dtype], dtype=dtype)
    y = np.full(4, TINY[dtype])
    # d/dw 0.5 (w x - y)^2 = (w x - y) x = -TINY**2: subnormal, flushed
    loss, grad = model.loss_and_grad(theta, X, y)
    assert grad[0] == 0 and grad[1] != 0
    assert _cpu.flushes_to_zero() == caller_mode


def test_fits_and_predictions_leave_every_threads_mode_as_found(dtype, caller_mode):
    # a network whose steps are sharded over 2 threads and whose predictions
    # share chunks and one row's columns: every OpenMP worker restores its mode
    rng = np.random.default_rng(0)
    arch = af.Architecture(200, [af.Dense(256, "relu"), af.Dense(64, "tanh"), af.Dense(3)],
                           "softmax")
    model = af.Model(arch, dtype=dtype)
    assert model._kernel.training_plan(dtype, 400, 160, threads=2)["shards"] == 2
    X = rng.normal(size=(400, 200))
    y = rng.integers(0, 3, 400)
    workers_before = _cpu.worker_flags(2)
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=2, batch_size=160, n_threads=2))
    with threadpool_limits(1, user_api="blas"):
        fitted.predict_proba(X)                 # chunks on 2 threads
        fitted.predict_proba(X[:1])             # one row, columns on 2 threads
    assert _cpu.flushes_to_zero() == caller_mode
    assert _cpu.worker_flags(2) == workers_before


def test_training_through_subnormal_values_stays_finite_and_exact_elsewhere(dtype):
    # weights that make hidden activations subnormal: the fit goes on, and
    # its bits are what the same fit gives again (deterministic with FTZ)
    rng = np.random.default_rng(1)
    model = af.Model(af.Architecture(3, [af.Dense(4, "relu"), af.Dense(2)], "softmax"),
                     dtype=dtype)
    X = rng.normal(size=(64, 3)) * TINY[dtype]
    y = rng.integers(0, 2, 64)
    hp = af.Hyperparameters(epochs=3, batch_size=16, learning_rate=0.1)
    a = af.fit(model, X, y, hp)
    b = af.fit(model, X, y, hp)
    assert np.isfinite(a.parameters).all()
    assert np.array_equal(a.parameters, b.parameters)
