"""A population's epoch (``train_population`` through ``kernels.Population``)
is bit for bit each member's own ``train_epoch``, on any thread count."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import archfit as af
from archfit.kernels import Population, Status, Trainer


def _model(dtype, output, width):
    arch = af.Architecture(12, [af.Dense(width, activation="tanh"), af.Dense(3)], output)
    return af.Model(arch, dtype=dtype)


@pytest.mark.parametrize("output, width", [("softmax", 8), ("linear", 16), ("softmax", 300)],
                         ids=["labels", "targets", "sharded"])
@pytest.mark.parametrize("threads", [1, 2])
def test_members_are_their_own_epochs(dtype, output, width, threads):
    rng = np.random.default_rng(5)
    model = _model(dtype, output, width)
    n, batch = 150, 16
    X = rng.normal(size=(n, 12)).astype(dtype)
    # members: own rows of X (folds, a bootstrap sample), whole X without shuffle
    rows = [np.arange(0, 100), np.arange(50, 150), rng.integers(0, n, 120), None]
    settings = [dict(optimizer="adam", dropout=0.0, shuffle=True, seed=1, l2=0.0),
                dict(optimizer="adam", dropout=0.3, shuffle=True, seed=2, l2=0.01),
                dict(optimizer="adam", dropout=0.1, shuffle=True, seed=3, l2=0.0),
                dict(optimizer="adam", dropout=0.0, shuffle=False, seed=4, l2=0.001)]
    n_targets = 0 if output == "softmax" else 3

    def member_data(r):
        m = n if r is None else len(r)
        labels = rng.integers(0, 3, m).astype(np.intc) if output == "softmax" else None
        targets = None if output == "softmax" else rng.normal(size=(m, 3)).astype(dtype)
        return labels, targets, rng.uniform(0.5, 2, m).astype(dtype)
    data = [member_data(r) for r in rows]

    def trainer(r, s):
        return Trainer(model._kernel, model.dtype, n if r is None else len(r), batch,
                       n_targets=n_targets, threads=2, **s)
    alone = [trainer(r, s) for r, s in zip(rows, settings)]
    together = [trainer(r, s) for r, s in zip(rows, settings)]
    theta_alone = [model.init(k) for k in range(4)]
    theta_together = [t.copy() for t in theta_alone]
    population = Population(together)
    for k, (r, (labels, targets, weights)) in enumerate(zip(rows, data)):
        population.bind(k, theta_together[k], X, labels, targets, weights,
                        None if r is None else r.astype(np.intp))
    with threadpool_limits(1, user_api="blas"):
        for epoch in range(3):
            members = [0, 1, 2, 3] if epoch < 2 else [3, 1]      # members that still train
            lrs = [0.01 * (k + 1) for k in members]
            got = population.epoch(members, lrs, [epoch] * len(members), threads)
            for k, lr, (loss, weight, status) in zip(members, lrs, got):
                r = rows[k]
                labels, targets, weights = data[k]
                Xk = X if r is None else np.ascontiguousarray(X[r])
                want = alone[k].epoch(theta_alone[k], Xk, labels, targets, weights, lr, epoch,
                                      threads)
                assert status == want[2] == Status.OK
                assert (loss, weight) == want[:2]
                assert theta_together[k].tobytes() == theta_alone[k].tobytes()
    for a, b in zip(alone, together):
        assert a.step == b.step and a.m.tobytes() == b.m.tobytes()


def test_bad_members_are_refused(dtype):
    model = _model(dtype, "softmax", 8)
    other = np.float64 if np.dtype(dtype) == np.float32 else np.float32
    X = np.zeros((20, 12), dtype=dtype)
    labels = np.zeros(20, dtype=np.intc)
    t = Trainer(model._kernel, model.dtype, 20, 4, "adam")
    fixed = Trainer(model._kernel, model.dtype, 10, 4, "adam", shuffle=False)
    pop = Population([t, fixed])
    with pytest.raises(TypeError):
        pop.bind(0, np.zeros(model.n_parameters, other), X.astype(other), labels, None, None)
    with pytest.raises(ValueError, match="shape"):
        pop.bind(0, np.zeros(3, dtype), X, labels, None, None)
    with pytest.raises(ValueError, match="rows"):
        pop.bind(0, model.init(0), X[:5], labels[:5], None, None)
    with pytest.raises(ValueError, match="rows out of range"):
        pop.bind(0, model.init(0), X, labels, None, None,
                 np.array([0, 1, 20] + [0] * 17, dtype=np.intp))
    with pytest.raises(ValueError, match="shuffle"):
        pop.bind(1, model.init(0), X, labels[:10], None, None, np.arange(10, dtype=np.intp))
    with pytest.raises(IndexError):
        pop.bind(2, model.init(0), X, labels, None, None)
    with pytest.raises(ValueError, match="bind it first"):
        pop.epoch([0], [0.1], [0])
    with pytest.raises(ValueError, match="distinct"):
        pop.epoch([0, 0], [0.1, 0.1], [0, 0])
    with pytest.raises(ValueError, match="one learning rate"):
        pop.epoch([0], [0.1, 0.2], [0])
    with pytest.raises(ValueError, match="at least one"):
        Population([])
    with pytest.raises(TypeError, match="Trainers"):
        Population([t, "x"])
    with pytest.raises(ValueError, match="memory"):
        Trainer(model._kernel, model.dtype, 20, 4, "adam", memory=np.zeros(10, np.uint8))
    assert pop.epoch([], [], []) == []
