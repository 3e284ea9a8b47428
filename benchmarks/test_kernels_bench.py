"""pytest-benchmark suite for the kernels: ``pytest benchmarks/``.

Not part of the test run: speed is reported here, never asserted.
"""
import numpy as np
import pytest

import archfit as af
from archfit._kernels._network import Trainer

WORKLOADS = {
    "W1 64-32-10 b32": ((64, 32, 10), 32),
    "W2 784-256-128-10 b128": ((784, 256, 128, 10), 128),
    "W4 8-64-64-1 b64": ((8, 64, 64, 1), 64),
}
N_SAMPLES = 4096


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
    benchmark.extra_info["samples_per_second"] = N_SAMPLES / benchmark.stats.stats.median


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
