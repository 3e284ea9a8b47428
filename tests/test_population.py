"""fit_many: every member ends bit for bit as its own fit, whatever it shares."""
import numpy as np
import pytest
import scipy.sparse

import archfit as af
from archfit import population


def _data(n=600, d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, :4] @ rng.normal(size=(4, k)) + 0.5 * rng.normal(size=(n, k))).argmax(axis=1)
    return X, y


def _without_time(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def _same_fit(a: af.FitModel, b: af.FitModel):
    assert a.model == b.model
    assert np.array_equal(a.parameters, b.parameters), "θ̂ differs"
    assert _without_time(a.history) == _without_time(b.history)
    assert a._training_data == b._training_data
    if a.classes is None:
        assert b.classes is None
    else:
        assert np.array_equal(a.classes, b.classes)
    sa, sb = a._optimizer_state, b._optimizer_state
    assert (sa is None) == (sb is None)
    if sa is not None:
        assert np.array_equal(sa[0], sb[0]) and np.array_equal(sa[1], sb[1])
        assert sa[2:] == sb[2:]


def _check(model, X, y, hps, rows=None, **kw):
    many = af.fit_many(model, X, y, hps, rows=rows, **kw)
    assert len(many) == len(hps)
    for k, hp in enumerate(hps):
        Xk, yk = (X, y) if rows is None else (X[rows[k]], y[rows[k]])
        extra = {name: (value[k] if isinstance(value, list) else value)
                 for name, value in kw.items()}
        if "sample_weight" in extra and rows is not None and extra["sample_weight"] is not None:
            extra["sample_weight"] = np.asarray(extra["sample_weight"])[rows[k]]
        _same_fit(af.fit(model, Xk, yk, hp, **extra), many[k])
    return many


SOFTMAX = af.Model(af.Architecture(12, [af.Dense(24, activation="relu"),
                                        af.Dense(16, activation="tanh"), af.Dense(3)],
                                   output="softmax"))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_members_equal_their_own_fits(optimizer, dtype):
    X, y = _data()
    model = af.Model(SOFTMAX.architecture, dtype=dtype)
    hps = [af.Hyperparameters(optimizer=optimizer, batch_size=32, epochs=6, seed=s,
                              learning_rate=lr, l2=l2, dropout=p, nesterov=(s == 2),
                              momentum=0.8 + 0.05 * s, schedule=sched)
           for s, lr, l2, p, sched in [(0, 1e-2, 0.0, 0.0, "constant"),
                                       (1, 3e-3, 1e-3, 0.2, "cosine"),
                                       (2, 2e-2, 1e-4, 0.1, "step"),
                                       (3, 5e-3, 0.0, 0.0, "invscaling")]]
    _check(model, X, y, hps)


def test_per_member_rows_early_stopping_and_epochs():
    X, y = _data(900)
    folds = af.kfold(len(y), 3, 0, y)
    rows = [folds[k % 3][0] for k in range(6)]
    hps = [af.Hyperparameters(batch_size=16, epochs=12 + k, seed=k, learning_rate=0.02,
                              dropout=0.1 * (k % 2), early_stopping=(k % 2 == 0), patience=2,
                              tolerance=1e-2, schedule="plateau" if k == 3 else "constant")
           for k in range(6)]
    many = _check(SOFTMAX, X, y, hps, rows=rows)
    # early stopping ended some members before their epochs ran out
    assert any(m.n_epochs < hp.epochs for m, hp in zip(many, hps))
    assert len({m.n_epochs for m in many}) > 1


def test_bootstrap_rows_with_repeats_weights_and_negative_indices():
    X, y = _data(400)
    rng = np.random.default_rng(3)
    rows = [rng.integers(0, len(y), size=len(y)) for _ in range(3)]
    rows[2] = rows[2] - len(y)          # negative indices count from the end
    w = rng.uniform(0.5, 2.0, size=len(y))
    hps = [af.Hyperparameters(batch_size=32, epochs=4, seed=k) for k in range(3)]
    many = af.fit_many(SOFTMAX, X, y, hps, rows=rows, sample_weight=w)
    for k in range(3):
        r = rows[k] % len(y)
        _same_fit(af.fit(SOFTMAX, X[r], y[r], hps[k], sample_weight=w[r]), many[k])


def test_rows_without_shuffle_and_with_standardize_copy_the_rows():
    X, y = _data(300)
    rows = [np.arange(0, 200), np.arange(100, 300)]
    hps = [af.Hyperparameters(batch_size=32, epochs=3, shuffle=False),
           af.Hyperparameters(batch_size=32, epochs=3, standardize=True, seed=4)]
    _check(SOFTMAX, X, y, hps, rows=rows)


def test_linear_and_sigmoid_heads_validation_per_member_and_init():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 6))
    Y = X @ rng.normal(size=(6, 2))
    linear = af.Model(af.Architecture(6, [af.Dense(16, activation="tanh"), af.Dense(2)],
                                      output="linear"), loss="huber")
    start = af.fit(linear, X, Y, af.Hyperparameters(batch_size=64, epochs=2))
    hps = [af.Hyperparameters(batch_size=64, epochs=3, seed=k, standardize_targets=(k == 1))
           for k in range(3)]
    validation = [(X[:50], Y[:50]), None, (X[50:80], Y[50:80])]
    _check(linear, X, Y, hps, validation=validation,
           init=[None, None, start.parameters.copy()])
    _check(linear, X, Y, [af.Hyperparameters(batch_size=64, epochs=2, seed=k) for k in range(2)],
           init=start)
    labels = (X[:, :3] > 0).astype(float)
    sigmoid = af.Model(af.Architecture(6, [af.Dense(8, activation="relu"), af.Dense(3)],
                                       output="sigmoid"))
    _check(sigmoid, X, labels, [af.Hyperparameters(batch_size=50, epochs=3, seed=k)
                                for k in range(2)], validation=(X[:40], labels[:40]))


def test_sparse_x():
    X, y = _data(300)
    X[np.abs(X) < 1.0] = 0.0
    S = scipy.sparse.csr_matrix(X)
    rows = [np.arange(200), np.arange(100, 300)]
    many = af.fit_many(SOFTMAX, S, y, [af.Hyperparameters(batch_size=32, epochs=3, seed=k)
                                       for k in range(2)], rows=rows)
    for k in range(2):
        _same_fit(af.fit(SOFTMAX, S[rows[k]], y[rows[k]],
                         af.Hyperparameters(batch_size=32, epochs=3, seed=k)), many[k])


def test_file_backed_x(tmp_path):
    X, y = _data(300)
    path = tmp_path / "X.f32"
    mapped = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mapped[:] = X
    mapped.flush()
    mapped = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    hps = [af.Hyperparameters(batch_size=32, epochs=3, seed=k) for k in range(2)]
    many = af.fit_many(SOFTMAX, mapped, y, hps)
    for k in range(2):
        _same_fit(af.fit(SOFTMAX, mapped, y, hps[k]), many[k])


def test_any_thread_count_gives_the_same_bits():
    X, y = _data()
    big = af.Model(af.Architecture(12, [af.Dense(256, activation="relu"), af.Dense(3)],
                                   output="softmax"))
    one = af.fit_many(big, X, y, [af.Hyperparameters(batch_size=128, epochs=2, seed=k,
                                                     n_threads=1) for k in range(3)])
    two = af.fit_many(big, X, y, [af.Hyperparameters(batch_size=128, epochs=2, seed=k,
                                                     n_threads=2) for k in range(3)])
    for a, b in zip(one, two):
        assert np.array_equal(a.parameters, b.parameters)
    _same_fit(af.fit(big, X, y, af.Hyperparameters(batch_size=128, epochs=2, seed=1,
                                                   n_threads=2)), two[1])


def test_callback_stops_one_member():
    X, y = _data()
    seen = []

    def callback(k, record):
        seen.append((k, record["epoch"]))
        return k == 1 and record["epoch"] == 2
    many = af.fit_many(SOFTMAX, X, y, [af.Hyperparameters(batch_size=32, epochs=4, seed=k)
                                       for k in range(3)], callback=callback)
    assert [m.n_epochs for m in many] == [4, 2, 4]
    assert (1, 2) in seen and (1, 3) not in seen and (0, 4) in seen


def test_divergence_names_the_member():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) * 1e3
    y = rng.normal(size=50) * 1e3
    model = af.Model(af.Architecture(3, [af.Dense(8), af.Dense(1)], "linear"))
    hps = [af.Hyperparameters(optimizer="sgd", learning_rate=lr, epochs=50)
           for lr in (1e-9, 10.0)]
    with pytest.raises(af.DivergenceError, match=r"member 1: training diverged in epoch") \
            as caught:
        af.fit_many(model, X, y, hps)
    assert caught.value.member == 1
    assert len(caught.value.fit_models) == 2


def test_interrupt_keeps_every_members_last_epoch():
    X, y = _data()

    def callback(k, record):
        if record["epoch"] == 2 and k == 1:
            raise KeyboardInterrupt
    hps = [af.Hyperparameters(batch_size=32, epochs=5, seed=k) for k in range(3)]
    with pytest.raises(KeyboardInterrupt) as caught:
        af.fit_many(SOFTMAX, X, y, hps, callback=callback)
    kept = caught.value.fit_models
    assert [m.n_epochs for m in kept] == [2, 2, 1]
    _same_fit(af.fit(SOFTMAX, X, y, af.Hyperparameters(batch_size=32, epochs=2, seed=0)),
              kept[0])


# ---- bad input: refused before any kernel runs ---------------------------------------------
@pytest.fixture
def no_kernel(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a kernel ran")
    monkeypatch.setattr(population, "Population", refuse)


@pytest.mark.parametrize("models, hps, message", [
    (SOFTMAX, [af.Hyperparameters(optimizer="lbfgs")], "lbfgs"),
    (SOFTMAX, [af.Hyperparameters(), af.Hyperparameters(optimizer="lbfgs")],
     "member 1: optimizer='lbfgs'"),
    ([SOFTMAX] * 2, [af.Hyperparameters()] * 3, "model has 2 members, hyperparameters has 3"),
    (SOFTMAX, [], "empty list"),
])
def test_mismatched_members(no_kernel, models, hps, message):
    X, y = _data(100)
    with pytest.raises(ValueError, match=message):
        af.fit_many(models, X, y, hps)


def test_members_of_other_models_and_settings_form_populations_of_their_own():
    # member k is bit for bit its own fit, whatever population it trains in
    X, y = _data(300)
    other = af.Model(af.Architecture(12, [af.Dense(8, "tanh"), af.Dense(3)], output="softmax"))
    wide = af.Model(SOFTMAX.architecture, dtype="float64")
    models = [SOFTMAX, other, SOFTMAX, wide, SOFTMAX]
    hps = [af.Hyperparameters(epochs=3, batch_size=32, seed=k) for k in range(5)]
    hps[2] = hps[2].replace(batch_size=64)
    hps[4] = hps[4].replace(optimizer="sgd", learning_rate=0.05)
    from archfit.population import _groups
    assert _groups(models, hps) == [[0], [1], [2], [3], [4]]
    assert _groups([SOFTMAX, other, SOFTMAX], [hps[0]] * 3) == [[0, 2], [1]]
    seen = []
    fitted = af.fit_many(models, X, y, hps, callback=lambda k, record: seen.append(k))
    for k in range(5):
        _same_fit(af.fit(models[k], X, y, hps[k]), fitted[k])
    assert sorted(set(seen)) == [0, 1, 2, 3, 4] and seen.count(3) == 3


def test_an_error_in_a_later_population_names_the_member_among_all():
    X, y = _data(100)
    other = af.Model(af.Architecture(12, [af.Dense(8), af.Dense(3)], output="softmax"))
    with pytest.raises(ValueError, match="member 2: validation"):
        af.fit_many([SOFTMAX, other, other], X, y, [af.Hyperparameters(epochs=1)] * 3,
                    validation=[None, None, (X[:5], y[:4])])


def test_an_interrupt_keeps_every_members_fit_across_populations():
    X, y = _data(200)
    other = af.Model(af.Architecture(12, [af.Dense(8), af.Dense(3)], output="softmax"))

    def stop(k, record):
        if k == 2 and record["epoch"] == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt) as caught:
        af.fit_many([SOFTMAX, SOFTMAX, other, other], X, y,
                    [af.Hyperparameters(epochs=3, batch_size=32, seed=k) for k in range(4)],
                    callback=stop)
    kept = caught.value.fit_models
    assert [m.n_epochs for m in kept[:2]] == [3, 3]         # the first population finished
    assert kept[2].n_epochs in (1, 2) and kept[3] is not None


def test_bad_rows_and_member_data(no_kernel):
    X, y = _data(100)
    hps = [af.Hyperparameters(epochs=1)] * 2
    with pytest.raises(ValueError, match="outside"):
        af.fit_many(SOFTMAX, X, y, hps, rows=[np.arange(10), np.array([5, 100])])
    with pytest.raises(TypeError, match="integer row indices"):
        af.fit_many(SOFTMAX, X, y, hps, rows=[np.arange(10), np.ones(10, bool)])
    with pytest.raises(ValueError, match="non-empty"):
        af.fit_many(SOFTMAX, X, y, hps, rows=[np.arange(10), np.array([], int)])
    with pytest.raises(TypeError, match="list of row-index arrays"):
        af.fit_many(SOFTMAX, X, y, hps, rows=np.arange(10))
    with pytest.raises(ValueError, match="member 1: .*validation set is too small"):
        af.fit_many(SOFTMAX, X, y, [af.Hyperparameters(), af.Hyperparameters(
            early_stopping=True, validation_fraction=0.01)], rows=[np.arange(50), np.arange(10)])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN|finite"):
        af.fit_many(SOFTMAX, bad, y, hps)
    with pytest.raises(ValueError, match="rows"):
        af.fit_many(SOFTMAX, X, y[:50], hps, rows=[np.arange(10)] * 2)
    with pytest.raises(TypeError, match="callback"):
        af.fit_many(SOFTMAX, X, y, hps, callback=3)


# ---- holdout and select train their folds as populations -----------------------------------
def _table(selection):
    return [{k: v for k, v in row.items() if k != "fit_seconds"} for row in selection.table]


@pytest.mark.parametrize("search", ["grid", "halving"])
def test_select_as_populations_gives_todays_table(monkeypatch, search):
    from archfit import estimation
    from archfit.datasets import load_digits
    X, y = load_digits()
    X, y = X[:600], y[:600]
    candidates = [af.Model(af.Architecture(64, [af.Dense(h, activation="relu"), af.Dense(10)],
                                           output="softmax")) for h in (16, 32)]
    space = {"learning_rate": [1e-3, 3e-3], "dropout": [0.0, 0.1], "optimizer": ["adam", "sgd"],
             "batch_size": [32, 64]}
    base = af.Hyperparameters(epochs=4, early_stopping=(search == "grid"), patience=1)
    calls = []
    real = estimation.fit_many
    monkeypatch.setattr(estimation, "fit_many", lambda *a, **k: calls.append(1) or real(*a, **k))
    together = af.select(candidates, X, y, space, base=base, search=search, cv=3, n_jobs=2,
                         n_candidates=8, seed=1, refit=True)
    # groups: model x optimizer x batch size
    assert 1 < len(calls) <= (8 if search == "grid" else 24)
    monkeypatch.setattr(estimation, "compatible", lambda model, hp: None)   # one fit at a time
    apart = af.select(candidates, X, y, space, base=base, search=search, cv=3, n_jobs=2,
                      n_candidates=8, seed=1, refit=True)
    assert _table(together) == _table(apart)
    assert together.best_index == apart.best_index
    assert np.array_equal(together.best.parameters, apart.best.parameters)


def test_holdout_as_a_population_gives_todays_estimate(monkeypatch):
    from archfit import estimation
    X, y = _data(600)
    w = np.random.default_rng(0).uniform(0.5, 1.5, size=len(y))
    hp = af.Hyperparameters(batch_size=32, epochs=3, dropout=0.1)
    together = af.holdout(SOFTMAX, X, y, hp, cv=4, n_jobs=2, sample_weight=w)
    monkeypatch.setattr(estimation, "compatible", lambda model, hp: None)
    apart = af.holdout(SOFTMAX, X, y, hp, cv=4, n_jobs=1, sample_weight=w)
    assert np.array_equal(together.scores, apart.scores)
    for a, b in zip(together.fits, apart.fits):
        _same_fit(a, b)


@pytest.mark.filterwarnings("ignore::archfit.ConvergenceWarning")
def test_lbfgs_candidates_still_fit_one_at_a_time():
    X, y = _data(300)
    sel = af.select(SOFTMAX, X, y, {"optimizer": ["adam", "lbfgs"]},
                    base=af.Hyperparameters(epochs=3, batch_size=32), cv=2, refit=False)
    assert len(sel.table) == 2 and all(np.isfinite(r["mean_score"]) for r in sel.table)


def test_verbose_reports_the_populations_epochs(no_tqdm, capsys):
    X, y = _data()
    hps = [af.Hyperparameters(batch_size=32, epochs=e, seed=k) for k, e in enumerate((2, 3))]
    af.fit_many(SOFTMAX, X, y, hps, validation=(X[:50], y[:50]), verbose=True)
    # progress goes to standard error, as tqdm's does
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("epoch 1/3  training 2/2  mean loss ")
    assert "best validation accuracy" in lines[0]
    assert lines[2].startswith("epoch 3/3  training 1/2")
    assert lines[3] == "fitted 2 members, every one to its last epoch"


def test_named_features_and_continued_members():
    pd = pytest.importorskip("pandas")
    X, y = _data(300)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    hps = [af.Hyperparameters(batch_size=32, epochs=2, seed=k) for k in range(2)]
    first = af.fit_many(SOFTMAX, frame, y, hps)
    assert first[0].feature_names == list(frame.columns)
    # continued from fits on named columns, given the columns in another order
    shuffled = frame[list(reversed(frame.columns))]
    more = af.fit_many(SOFTMAX, shuffled, y, hps, init=first)
    for k in range(2):
        _same_fit(af.fit(SOFTMAX, shuffled, y, hps[k], init=first[k]), more[k])
        assert more[k].n_epochs == 4
