"""An epoch in parts (``train_epoch_part``: data gathered by the caller, as
for files larger than memory) is bit for bit one whole epoch."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import archfit as af
from archfit.kernels import Status, Trainer


def _network(dtype, output, width):
    arch = af.Architecture(12, [af.Dense(width, activation="relu"), af.Dense(3)], output)
    return af.Model(arch, dtype=dtype)


@pytest.mark.parametrize("output, width", [("softmax", 8), ("linear", 8), ("softmax", 300)],
                         ids=["labels", "targets", "sharded"])
@pytest.mark.parametrize("optimizer, dropout, shuffle", [("adam", 0.0, True),
                                                         ("momentum", 0.3, True),
                                                         ("sgd", 0.2, False)])
def test_parts_of_an_epoch_are_the_whole_epoch(dtype, output, width, optimizer, dropout,
                                               shuffle):
    rng = np.random.default_rng(4)
    model = _network(dtype, output, width)
    n, batch = 203, 20                       # parts of 60, 60, 60 and 23 rows
    X = rng.normal(size=(n, 12)).astype(dtype)
    labels = rng.integers(0, 3, n).astype(np.intc) if output == "softmax" else None
    targets = None if output == "softmax" else rng.normal(size=(n, 3)).astype(dtype)
    weights = rng.uniform(0.5, 2, n).astype(dtype)
    settings = dict(dropout=dropout, shuffle=shuffle, seed=11, l2=0.01,
                    n_targets=0 if targets is None else 3, threads=2)
    whole_theta, parts_theta = model.init(0), model.init(0)
    whole = Trainer(model._kernel, model.dtype, n, batch, optimizer, **settings)
    parts = Trainer(model._kernel, model.dtype, n, batch, optimizer, **settings)
    with threadpool_limits(1, user_api="blas"):
        for epoch in range(2):
            loss, weight, status = whole.epoch(whole_theta, X, labels, targets, weights, 0.01,
                                               epoch, 2)
            assert status == Status.OK
            order = parts.order(epoch)
            if not shuffle:
                assert np.array_equal(order, np.arange(n))
            total = [0.0, 0.0]
            for lo in range(0, n, 3 * batch):
                at = order[lo:lo + 3 * batch]
                got = parts.epoch_part(
                    parts_theta, np.ascontiguousarray(X[at]),
                    None if labels is None else np.ascontiguousarray(labels[at]),
                    None if targets is None else np.ascontiguousarray(targets[at]),
                    np.ascontiguousarray(weights[at]), 0.01, epoch, lo, 2)
                assert got[2] == Status.OK
                total[0] += got[0]
                total[1] += got[1]
            assert parts_theta.tobytes() == whole_theta.tobytes()
            assert total[1] == pytest.approx(weight, rel=1e-12)
            assert total[0] == pytest.approx(loss, rel=1e-12)
    assert parts.step == whole.step
    assert parts.m.tobytes() == whole.m.tobytes() and parts.v.tobytes() == whole.v.tobytes()


def test_a_part_that_does_not_fit_the_epoch_is_refused(dtype):
    model = _network(dtype, "softmax", 8)
    trainer = Trainer(model._kernel, model.dtype, 45, 10, "sgd")
    theta = model.init(0)
    X = np.zeros((15, 12), dtype)
    y = np.zeros(15, np.intc)
    for first, rows in [(5, 10), (0, 15), (40, 15)]:      # not at a batch; ragged; past the end
        with pytest.raises(ValueError, match="not a part of an epoch of 45 rows"):
            trainer.epoch_part(theta, X[:rows], y[:rows], None, None, 0.1, 0, first)
    with pytest.raises(ValueError, match="first must be >= 0"):
        trainer.epoch_part(theta, X[:10], y[:10], None, None, 0.1, 0, -1)
    assert theta.tobytes() == model.init(0).tobytes()       # refused before any step
    _, _, status = trainer.epoch_part(theta, X[:5], y[:5], None, None, 0.1, 0, 40)
    assert status == Status.OK                                # the last, short part


def test_restore_sets_the_moments_and_the_step(dtype):
    model = _network(dtype, "softmax", 8)
    trainer = Trainer(model._kernel, model.dtype, 30, 10, "adam")
    theta = model.init(0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 12)).astype(dtype), rng.integers(0, 3, 30).astype(np.intc)
    saved = (theta.copy(), trainer.m, trainer.v, trainer.step)
    trainer.epoch(theta, X, y, None, None, 0.01, 0)
    first = theta.copy()
    theta[:] = saved[0]
    trainer.restore(saved[1], saved[2], saved[3])
    trainer.epoch(theta, X, y, None, None, 0.01, 0)
    assert theta.tobytes() == first.tobytes() and trainer.step == 3
