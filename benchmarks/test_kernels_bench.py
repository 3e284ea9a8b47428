"""pytest-benchmark suite for the kernels: ``pytest benchmarks/``.

Not part of the test run: speed is reported here, never asserted.
"""
import numpy as np
import pytest

from threadpoolctl import threadpool_limits

import archfit as af
from archfit._kernels._blas import PACKED_GEMM, gemm_py, pack_py, packed_gemm_py
from archfit.kernels import Trainer

WORKLOADS = {
    "W1 64-32-10 b32": ((64, 32, 10), 32),
    "W2 784-256-128-10 b128": ((784, 256, 128, 10), 128),
    "W4 8-64-64-1 b64": ((8, 64, 64, 1), 64),
}
N_SAMPLES = 4096


def record(benchmark, key, work):
    """extra_info[key] = work per second at the median (absent with --benchmark-disable)."""
    if benchmark.stats is not None:
        benchmark.extra_info[key] = work / benchmark.stats.stats.median


def make(sizes, dtype):
    layers = [af.Dense(s, "relu") for s in sizes[1:-1]] + [af.Dense(sizes[-1])]
    output = "softmax" if sizes[-1] > 1 else "linear"
    model = af.Model(af.Architecture(sizes[0], layers, output), dtype)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_SAMPLES, sizes[0])).astype(dtype)
    if output == "softmax":
        return model, X, rng.integers(0, sizes[-1], N_SAMPLES).astype(np.intc), None
    return model, X, None, rng.normal(size=(N_SAMPLES, 1)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_train_epoch(benchmark, name, dtype):
    sizes, batch = WORKLOADS[name]
    model, X, labels, targets = make(sizes, dtype)
    theta = model.init(0)
    trainer = Trainer(model._kernel, model.dtype, N_SAMPLES, batch, "adam",
                      n_targets=0 if targets is None else 1)
    counter = iter(range(10**9))
    benchmark(lambda: trainer.epoch(theta, X, labels, targets, None, 1e-4, next(counter)))
    record(benchmark, "samples_per_second", N_SAMPLES)


@pytest.mark.parametrize("batch", [1, 4096])
def test_predict_w2(benchmark, batch):
    model, X, _, _ = make((784, 256, 128, 10), "float32")
    fitted = af.FitModel(model, model.init(0), af.Hyperparameters(), classes=np.arange(10))
    rows = X[:batch]
    benchmark(fitted.predict_proba, rows)


def test_loss_and_grad_w2(benchmark):
    model, X, labels, _ = make((784, 256, 128, 10), "float32")
    theta = model.init(0)
    benchmark(model.loss_and_grad, theta, X[:1024], labels[:1024])


@pytest.mark.parametrize("threads", [1, 2])
def test_train_epoch_w2_threads(benchmark, threads):
    """W2's step is cut into two shards: archfit's threads share it, BLAS on one each."""
    model, X, labels, _ = make((784, 256, 128, 10), "float32")
    theta = model.init(0)
    trainer = Trainer(model._kernel, model.dtype, N_SAMPLES, 128, "adam", threads=threads)
    counter = iter(range(10**9))
    with threadpool_limits(1, user_api="blas"):
        benchmark(lambda: trainer.epoch(theta, X, labels, None, None, 1e-4, next(counter),
                                        threads))
    record(benchmark, "samples_per_second", N_SAMPLES)


@pytest.mark.skipif(not PACKED_GEMM, reason="the packed GEMM needs AVX2 and FMA")
@pytest.mark.parametrize("kernel", ["archfit-packed", "openblas"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", ["192x784x256", "64x784x256", "128x1024x2048"])
def test_packed_gemm(benchmark, kernel, dtype, shape):
    """One thread's product with W packed beforehand (as predictions and sharded
    training steps use it) against OpenBLAS packing W inside every call.

    192 x 784 x 256: a prediction chunk of W2's first layer; 64 x 784 x 256: a
    training shard of it; 128 x 1024 x 2048: a W3 shard (BLAS keeps those)."""
    m, k, n = map(int, shape.split("x"))
    rng = np.random.default_rng(0)
    A = rng.normal(size=(m, k)).astype(dtype)
    W = rng.normal(size=(k, n)).astype(dtype)
    C = np.zeros((m, n), dtype)
    with threadpool_limits(1, user_api="blas"):
        if kernel == "openblas":
            benchmark(np.matmul, A, W, out=C)
        else:
            benchmark(packed_gemm_py, A, pack_py(W), C)
    record(benchmark, "gflops", 2 * m * n * k / 1e9)


@pytest.mark.parametrize("kernel", ["archfit", "openblas"])
@pytest.mark.parametrize("shape", ["64x64x64 NN", "64x64x64 TN", "32x32x64 NN"])
def test_small_gemm(benchmark, kernel, shape):
    """archfit's register-blocked small GEMM against OpenBLAS on small networks' shapes.

    alpha 1, beta 0 takes archfit's kernel; an alpha a hair from 1 sends the
    same product to OpenBLAS."""
    dims, kind = shape.split()
    m, n, k = map(int, dims.split("x"))
    trans_a = kind == "TN"
    rng = np.random.default_rng(0)
    A = rng.normal(size=(k, m) if trans_a else (m, k)).astype(np.float32)
    B = rng.normal(size=(k, n)).astype(np.float32)
    C = np.zeros((m, n), np.float32)
    alpha = 1.0 if kernel == "archfit" else 1.0000001
    with threadpool_limits(1, user_api="blas"):
        benchmark(gemm_py, A, B, C, trans_a, False, alpha, 0.0)
    record(benchmark, "gflops", 2 * m * n * k / 1e9)


@pytest.mark.parametrize("threads", [1, 2])
def test_one_sample_kernel_w2(benchmark, threads):
    """The C-validated one-sample path: large layers' columns shared among threads."""
    model, X, _, _ = make((784, 256, 128, 10), "float32")
    theta = model.init(0)
    benchmark(model._kernel.predict_ready, theta, X[:1], threads)
