"""Every kind of layer in the kernels' table (LayerNorm, residual blocks,
periodic embeddings, Dense beside them) against the NumPy twin (reference.nodes_*) and central finite
differences: predictions, loss and gradient, a training epoch with every
optimizer, dropout and sample weights, sharded steps, one row; float32 and
float64, on whichever instruction-set path this run takes (test_isolated.py
runs this suite on every path the CPU can run)."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import archfit as af
from archfit._kernels import _random
from archfit.kernels import Status, Trainer
from conftest import assert_close
import reference as ref
from test_network import encoded, make_targets as targets


def architectures(n_in=6, k=3, output="softmax"):
    """Networks built of every kind: a norm first, blocks at the input and
    after a dense layer, blocks back to back, a norm inside and after a block."""
    return {
        "categorical": af.Architecture(
            inputs=af.Inputs(numeric=n_in - 2, categorical=[3, 5]),
            layers=[af.Embedding(2), af.Dense(7, "tanh"), af.Dense(k)], output=output),
        "periodic-then-onehot": af.Architecture(
            inputs=af.Inputs(numeric=n_in - 2, categorical=[3, 5]),
            layers=[af.Periodic(2, 0.3, 2), af.OneHot(), af.LayerNorm(), af.Dense(k)],
            output=output),
        "codes-only": af.Architecture(
            inputs=af.Inputs(numeric=0, categorical=[4] * n_in),
            layers=[af.Embedding(3), af.Residual([af.Dense(9, "relu"), af.Dense(3 * n_in)]),
                    af.Dense(k)], output=output),
        "norm-first": af.Architecture(n_in, [af.LayerNorm(), af.Dense(7, "tanh"), af.Dense(k)],
                                      output),
        "block-at-input": af.Architecture(n_in, [
            af.Residual([af.Dense(5, "gelu"), af.Dense(n_in)]), af.Dense(k)], output),
        "resnet": af.Architecture(n_in, [
            af.Dense(8, "relu"),
            af.Residual([af.LayerNorm(), af.Dense(9, "relu"), af.Dense(8)]),
            af.Residual([af.LayerNorm(epsilon=1e-3), af.Dense(4, "sigmoid"), af.Dense(8)]),
            af.LayerNorm(), af.Dense(k)], output),
        "norm-in-block-end": af.Architecture(n_in, [
            af.Dense(5, "leaky_relu"), af.Residual([af.Dense(5, "tanh"), af.LayerNorm()]),
            af.Dense(k)], output),
        "periodic": af.Architecture(n_in, [af.Periodic(3, 0.3, 4), af.Dense(7, "relu"),
                                           af.Dense(k)], output),
        "own-dropout": af.Architecture(n_in, [
            af.Dense(7, "relu", dropout=0.5), af.Dense(6, "tanh", dropout=0.0),
            af.Residual([af.Dense(5, "relu", dropout=0.1), af.Dense(6)]), af.Dense(k)], output),
        "piecewise": af.Architecture(n_in, [af.PiecewiseLinear(4, 3, "relu"),
                                            af.Dense(7, "tanh"), af.Dense(k)], output),
        "piecewise-categorical": af.Architecture(
            inputs=af.Inputs(numeric=n_in - 2, categorical=[3, 5]),
            layers=[af.PiecewiseLinear(3, 2), af.Embedding(2), af.LayerNorm(),
                    af.Residual([af.Dense(6, "relu"), af.Dense(2 * (n_in - 2) + 4)]),
                    af.Dense(k)], output=output),
        "ensemble": af.Architecture(n_in, [
            af.Dense(6, "relu"), af.Residual([af.LayerNorm(), af.Dense(5, "gelu"), af.Dense(6)]),
            af.Dense(k)], output, ensemble=af.BatchEnsemble(3)),
        "ensemble-embedded": af.Architecture(
            inputs=af.Inputs(numeric=n_in - 2, categorical=[3, 5]),
            layers=[af.PiecewiseLinear(3, 2), af.Embedding(2), af.Dense(5, "tanh"), af.Dense(k)],
            output=output, ensemble=af.BatchEnsemble(4, adapters="none")),
        "ensemble-head-only": af.Architecture(n_in, [af.Dense(k)], output,
                                              ensemble=af.BatchEnsemble(2)),
        "ensemble-adapters": af.Architecture(n_in, [
            af.Dense(6, "gelu", dropout=0.2), af.Residual([af.LayerNorm(), af.Dense(6, "tanh")]),
            af.Dense(5, "relu"), af.Dense(k)], output, ensemble=af.BatchEnsemble(3, "all")),
        "periodic-inside": af.Architecture(n_in, [
            af.Dense(4, "tanh"), af.Periodic(2, 0.5, 3, activation="identity"), af.LayerNorm(),
            af.Residual([af.Dense(12, "gelu")]), af.Dense(k)], output),
    }


NAMES = list(architectures())
OUTPUTS = [("softmax", None), ("sigmoid", None), ("linear", "huber"), ("exponential", None)]


def inputs(model, n, rng, dtype=np.float64):
    """Rows for the model: normal numeric columns, then valid codes (some -1)."""
    arch_inputs = model.architecture.inputs
    X = rng.normal(size=(n, arch_inputs.numeric))
    codes = [rng.integers(-1, c, n) for c in arch_inputs.categorical]
    return np.column_stack([X] + codes).astype(dtype) if codes else X.astype(dtype)


def perturbed(model, seed):
    """θ away from its initial value (gains not all one, biases not zero)."""
    rng = np.random.default_rng(seed)
    return model.init(seed) + (0.2 * rng.normal(size=model.n_parameters)).astype(model.dtype)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("output,loss", OUTPUTS)
def test_predict_matches_the_twin(dtype, name, output, loss):
    rng = np.random.default_rng(0)
    model = af.Model(architectures(output=output)[name], dtype, loss)
    theta = perturbed(model, 1)
    for n in (1, 5, 300):                       # one row, a chunk, chunks
        X = inputs(model, n, rng)
        expected = ref.nodes_predict(model, theta, X.astype(dtype))
        assert_close(model.predict(theta, X), expected, dtype, scale=50)


@pytest.mark.parametrize("name", NAMES)
def test_a_rows_prediction_does_not_depend_on_the_batch(dtype, name):
    # scikit-learn asks it of predict_proba (check_methods_sample_order_invariance,
    # rtol 1e-7: a float32 ulp fails), and a user comparing a row's score alone
    # and in a batch expects it: every product is a row's own FMA chain
    rng = np.random.default_rng(3)
    model = af.Model(architectures()[name], dtype)
    theta = perturbed(model, 4)
    X = inputs(model, 700, rng)
    full = model.predict(theta, X)
    order = rng.permutation(len(X))
    assert model.predict(theta, X[order]).tobytes() == full[order].tobytes()
    for i in (0, 1, 699):
        assert model.predict(theta, X[i:i + 1]).tobytes() == full[i:i + 1].tobytes()
    assert model.predict(theta, X[5:8]).tobytes() == full[5:8].tobytes()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("output,loss", OUTPUTS)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_grad_match_the_twin(dtype, name, output, loss, weighted):
    rng = np.random.default_rng(2)
    model = af.Model(architectures(output=output)[name], dtype, loss)
    theta = perturbed(model, 3)
    X = inputs(model, 40, rng, dtype)
    y = targets(model, 40, rng)
    w = rng.uniform(0.5, 2.0, 40) if weighted else None
    loss_value, grad = model.loss_and_grad(theta, X, y, sample_weight=w, l2=0.03)
    expected_loss, expected_grad = ref.nodes_loss_and_grad(
        model, theta, X, weights=None if w is None else w.astype(dtype), l2=0.03,
        **encoded(model, y))
    assert_close(loss_value, expected_loss, dtype, scale=20)
    assert_close(grad, expected_grad, dtype, scale=200)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(4)
    model = af.Model(architectures()[name], "float64")
    theta = perturbed(model, 5)
    X = inputs(model, 12, rng)
    y = rng.integers(0, 3, 12)
    _, grad = model.loss_and_grad(theta, X, y, l2=0.02)
    h = 1e-6
    numeric = np.zeros_like(theta)
    fitted = np.zeros(model.n_parameters, dtype=bool)
    for entry in model.architecture.fitted:
        fitted[entry.start:entry.stop] = True       # bin edges: fixed, gradient zero
    for i in np.flatnonzero(~fitted):
        e = np.zeros_like(theta)
        e[i] = h
        numeric[i] = (model.loss_and_grad(theta + e, X, y, l2=0.02)[0]
                      - model.loss_and_grad(theta - e, X, y, l2=0.02)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_l2_decays_dense_weights_only():
    model = af.Model(architectures()["resnet"], "float64")
    theta = perturbed(model, 6)
    X = np.random.default_rng(7).normal(size=(10, 6))
    y = np.arange(10) % 3
    _, g0 = model.loss_and_grad(theta, X, y)
    _, g1 = model.loss_and_grad(theta, X, y, l2=0.5)
    mask = ref.decay_mask(model.architecture)
    np.testing.assert_allclose(g1 - g0, 0.5 * mask * theta, atol=1e-12)
    gains = [e for e in model.architecture.layout if e.name.endswith(".gain")]
    assert gains and all(mask[e.start:e.stop].sum() == 0 for e in gains)


def rates(arch, dropout):
    """Each node's dropout rate in a fit at `dropout`: a dense node before the
    last takes its own rate, or the fit's."""
    last = len(arch.nodes) - 1
    return {i: (node.layer.dropout if node.layer.dropout is not None else dropout)
            for i, node in enumerate(arch.nodes)
            if node.kind in ("dense", "adapted_dense") and i < last}


def reference_epoch(model, theta, X, y, *, batch_size, optimizer, lr, l2, epoch, seed,
                    shuffle=True, weights=None, dropout=0.0):
    """A NumPy training loop: the kernel's order and dropout draws (masks for
    the dense nodes before the last, each at its rate, in order), then the
    twin's gradient."""
    arch = model.architecture
    n = len(X)
    order = _random.permutation(n, seed, epoch, 0) if shuffle else np.arange(n)
    opt = ref.Optimizer(optimizer, lr)
    mask = ref.decay_mask(arch)
    theta = theta.astype(np.float64)
    masked = {i: rate for i, rate in rates(arch, dropout).items() if rate > 0}
    draws = _random.uniform(n * sum(arch.nodes[i].n_out * arch.nodes[i].members
                                    for i in masked), seed, epoch, 1) if masked else None
    used = 0
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        masks = None
        if masked:
            masks = {}
            for i, rate in masked.items():
                width = arch.nodes[i].n_out
                rows = len(idx) * arch.nodes[i].members         # an ensemble's members' rows
                u = draws[used:used + rows * width].reshape(rows, width)
                used += rows * width
                masks[i] = np.where(u < rate, 0.0, 1 / (1 - rate))
        w = None if weights is None else weights[idx]
        _, g = ref.nodes_loss_and_grad(model, theta, X[idx], weights=w, masks=masks,
                                       **encoded(model, y[idx]))
        opt.step(theta, g, mask, l2)
    return theta


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_epoch_matches_a_numpy_training_loop(dtype, name, optimizer):
    rng = np.random.default_rng(8)
    model = af.Model(architectures()[name], dtype)
    X = inputs(model, 37, rng, dtype)
    y = rng.integers(0, 3, 37)
    theta = perturbed(model, 9)
    expected = reference_epoch(model, theta, X.astype(np.float64), y, batch_size=8,
                               optimizer=optimizer, lr=0.05, l2=0.01, epoch=2, seed=4)
    trainer = Trainer(model._kernel, model.dtype, 37, 8, optimizer, l2=0.01, seed=4)
    _, weight_sum, status = trainer.epoch(theta, X, y.astype(np.intc), None, None, 0.05, 2)
    assert status == Status.OK and weight_sum == 37
    assert_close(theta, expected, dtype, scale=500)


@pytest.mark.parametrize("name", NAMES)
def test_epoch_with_dropout_and_weights_matches_the_loop(dtype, name):
    rng = np.random.default_rng(10)
    model = af.Model(architectures(k=2, output="linear")[name], dtype)
    X = inputs(model, 21, rng, dtype)
    y = rng.normal(size=(21, 2))
    w = rng.uniform(0.5, 2, 21)
    theta = perturbed(model, 11)
    expected = reference_epoch(model, theta, X.astype(np.float64), y, batch_size=5,
                               optimizer="sgd", lr=0.05, l2=0.0, epoch=1, seed=6,
                               weights=w, dropout=0.3)
    trainer = Trainer(model._kernel, model.dtype, 21, 5, "sgd", dropout=0.3, seed=6,
                      n_targets=2)
    _, _, status = trainer.epoch(theta, X, None, y.astype(dtype), w.astype(dtype), 0.05, 1)
    assert status == Status.OK
    assert_close(theta, expected, dtype, scale=500)


def wide_resnet(dtype, output="softmax", k=4):
    """Wide enough that a 160-row mini-batch is cut into two shards, and its
    dense layers are packed where the CPU has the packed GEMM."""
    arch = af.Architecture(60, [af.Periodic(8, 0.2, 4), af.Dense(128, "relu"),
                                af.Residual([af.LayerNorm(), af.Dense(192, "relu"),
                                             af.Dense(128)]),
                                af.LayerNorm(), af.Dense(k)], output)
    return af.Model(arch, dtype)


def test_wide_network_shards_its_steps():
    model = wide_resnet("float32")
    assert model._kernel.training_plan(model.dtype, 160, 160)["shards"] == 2


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_sharded_epoch_matches_the_loop_and_any_thread_count(dtype, optimizer):
    rng = np.random.default_rng(12)
    model = wide_resnet(dtype)
    n = 350                                 # batches of 160, 160 and 30 rows
    X = rng.normal(size=(n, 60)).astype(dtype)
    y = rng.integers(0, 4, n)
    theta0 = perturbed(model, 13)
    expected = reference_epoch(model, theta0, X.astype(np.float64), y, batch_size=160,
                               optimizer=optimizer, lr=0.01, l2=0.01, epoch=1, seed=5,
                               dropout=0.1)
    results = []
    for threads in (1, 2):
        theta = theta0.copy()
        trainer = Trainer(model._kernel, model.dtype, n, 160, optimizer, l2=0.01, seed=5,
                          dropout=0.1, threads=2)
        with threadpool_limits(1, user_api="blas"):
            _, _, status = trainer.epoch(theta, X, y.astype(np.intc), None, None, 0.01, 1,
                                         threads)
        assert status == Status.OK
        results.append(theta)
    assert results[0].tobytes() == results[1].tobytes()
    assert_close(results[0], expected, dtype, scale=3000)


def test_predictions_and_gradients_do_not_depend_on_threads(dtype):
    rng = np.random.default_rng(14)
    model = wide_resnet(dtype)
    theta = perturbed(model, 15)
    X = rng.normal(size=(1000, 60)).astype(dtype)
    y = rng.integers(0, 4, 1000)
    from archfit._kernels import _plan
    outs, grads = [], []
    for threads in (1, 2):
        _plan.calls_end_py()                # a recent call: the threads stay awake
        outs.append(model._predict(theta, X, threads))
        grads.append(model.loss_and_grad(theta, X, y, n_threads=threads)[1])
    assert outs[0].tobytes() == outs[1].tobytes()
    assert grads[0].tobytes() == grads[1].tobytes()
    # one row alone gives what it gets among others, up to the products' order
    assert_close(model.predict(theta, X[:1])[0], outs[0][0], dtype, scale=50)


# ---- any stack of kinds --------------------------------------------------------------------
def _random_stack(rng, n_in):
    """A random architecture of every kind (and its width at each point)."""
    layers, width = [], n_in
    for _ in range(rng.integers(1, 5)):
        choice = rng.integers(0, 4)
        if choice == 0:
            width = int(rng.integers(1, 9))
            layers.append(af.Dense(width, str(rng.choice(["relu", "tanh", "gelu", "sigmoid",
                                                          "leaky_relu", "identity"]))))
        elif choice == 1:
            layers.append(af.LayerNorm(epsilon=float(rng.choice([1e-5, 0.1]))))
        elif choice == 2:
            inner = [af.LayerNorm()] if rng.integers(0, 2) else []
            inner += [af.Dense(int(rng.integers(1, 7)), "relu"), af.Dense(width)]
            layers.append(af.Residual(inner))
        elif width <= 6:
            dim = int(rng.integers(1, 4))
            layers.append(af.Periodic(int(rng.integers(1, 4)), float(rng.uniform(0.05, 0.5)),
                                      dim, str(rng.choice(["relu", "identity"]))))
            width *= dim
    return layers + [af.Dense(3)]


@pytest.mark.parametrize("seed", range(24))
def test_random_stacks_match_the_twin(dtype, seed):
    rng = np.random.default_rng(100 + seed)
    n_in = int(rng.integers(1, 6))
    arch = af.Architecture(n_in, _random_stack(rng, n_in), "softmax")
    model = af.Model(arch, dtype)
    theta = perturbed(model, seed)
    n = int(rng.integers(1, 40))
    X = rng.normal(size=(n, n_in)).astype(dtype)
    y = rng.integers(0, 3, n)
    assert_close(model.predict(theta, X), ref.nodes_predict(model, theta, X), dtype, scale=100)
    loss, grad = model.loss_and_grad(theta, X, y, l2=0.01)
    expected_loss, expected_grad = ref.nodes_loss_and_grad(model, theta, X, labels=y, l2=0.01)
    assert_close(loss, expected_loss, dtype, scale=100)
    assert_close(grad, expected_grad, dtype, scale=2000)
