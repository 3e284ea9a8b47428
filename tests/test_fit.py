"""fit and FitModel: reproducibility, continuation, accuracy on real data, every option."""
import numpy as np
import pytest

import archfit as af


def small_softmax(dtype="float64"):
    arch = af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax")
    return af.Model(arch, dtype=dtype)


@pytest.fixture(scope="module")
def digits_split():
    from archfit.datasets import load_digits
    X, y = load_digits()
    X = X / 16.0
    train, test = af.validation_split(len(y), 0.25, seed=0, labels=y)
    return X[train], y[train], X[test], y[test]


def friedman1(n, seed):
    """Friedman's #1 benchmark regression function (1991) with N(0, 1) noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 5))
    y = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2
         + 10 * X[:, 3] + 5 * X[:, 4] + rng.normal(size=n))
    return X, y


# ---- reproducibility ----------------------------------------------------------------------
def test_same_seed_gives_bitwise_identical_parameters(digits_split, dtype):
    X, y, _, _ = digits_split
    hp = af.Hyperparameters(epochs=3, batch_size=64, dropout=0.1, seed=7)
    a = af.fit(small_softmax(dtype), X, y, hp)
    b = af.fit(small_softmax(dtype), X, y, hp)
    assert a.parameters.tobytes() == b.parameters.tobytes()
    c = af.fit(small_softmax(dtype), X, y, hp.replace(seed=8))
    assert not np.array_equal(a.parameters, c.parameters)


@pytest.mark.parametrize("optimizer,schedule", [("adam", "constant"), ("momentum", "step"),
                                                ("sgd", "constant"), ("adamw", "step")])
def test_continuing_equals_one_longer_fit(digits_split, dtype, optimizer, schedule):
    X, y, _, _ = digits_split
    hp = af.Hyperparameters(optimizer=optimizer, schedule=schedule, step_size=2,
                            learning_rate=0.01, l2=1e-3, dropout=0.1, epochs=5, batch_size=50)
    model = small_softmax(dtype)
    long = af.fit(model, X, y, hp)
    first = af.fit(model, X, y, hp.replace(epochs=3))
    before = first.parameters.copy()
    second = af.fit(model, X, y, hp.replace(epochs=2), init=first)
    assert second.parameters.tobytes() == long.parameters.tobytes()
    assert [h["epoch"] for h in second.history] == [1, 2, 3, 4, 5]
    assert second is not first and np.array_equal(first.parameters, before)
    assert first.n_epochs == 3


def test_continuing_with_another_optimizer_starts_fresh_moments(digits_split):
    X, y, _, _ = digits_split
    model = small_softmax()
    first = af.fit(model, X, y, af.Hyperparameters(epochs=1))
    second = af.fit(model, X, y, af.Hyperparameters(optimizer="sgd", epochs=1), init=first)
    assert second.n_epochs == 2


def test_init_from_an_array(digits_split):
    X, y, _, _ = digits_split
    model = small_softmax()
    theta = model.init(3)
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=1), init=theta)
    assert fitted.n_epochs == 1 and not np.array_equal(fitted.parameters, theta)
    assert np.array_equal(theta, model.init(3))  # the caller's array is untouched


# ---- accuracy on real data ----------------------------------------------------------------
def test_digits_accuracy(digits_split, dtype):
    X, y, Xt, yt = digits_split
    arch = af.Architecture(64, [af.Dense(128, "relu"), af.Dense(10)], "softmax")
    hp = af.Hyperparameters(learning_rate=3e-3, batch_size=32, epochs=30, l2=1e-4, seed=0)
    fitted = af.fit(af.Model(arch, dtype), X, y, hp)
    assert fitted.score(Xt, yt) >= 0.96
    assert set(np.unique(fitted.predict(Xt))) <= set(range(10))


def test_regression_r2(dtype):
    X, y = friedman1(1500, 0)
    Xt, yt = friedman1(500, 1)
    arch = af.Architecture(5, [af.Dense(64, "tanh"), af.Dense(64, "tanh"), af.Dense(1)], "linear")
    mean, std = y.mean(), y.std()
    hp = af.Hyperparameters(learning_rate=3e-3, batch_size=32, epochs=120, seed=0)
    fitted = af.fit(af.Model(arch, dtype), X, (y - mean) / std, hp)
    assert fitted.predict(Xt).shape == (500,)
    assert fitted.score(Xt, (yt - mean) / std) >= 0.9


def test_lbfgs_regression():
    X, y = friedman1(600, 2)
    arch = af.Architecture(5, [af.Dense(32, "tanh"), af.Dense(1)], "linear")
    # 300 iterations do not reach L-BFGS's tolerance here: it says so
    with pytest.warns(af.ConvergenceWarning, match="300 iterations"):
        fitted = af.fit(af.Model(arch, "float64"), X, (y - y.mean()) / y.std(),
                        af.Hyperparameters(optimizer="lbfgs", epochs=300, l2=1e-4))
    assert fitted.score(X, (y - y.mean()) / y.std()) > 0.9
    assert fitted.n_epochs == 300
    # a cap on evaluations stops it sooner, and says so too
    with pytest.warns(af.ConvergenceWarning, match="evaluations"):
        capped = af.fit(af.Model(arch, "float64"), X, (y - y.mean()) / y.std(),
                        af.Hyperparameters(optimizer="lbfgs", epochs=300, l2=1e-4,
                                           max_evaluations=15))
    assert capped.n_epochs < 15
    losses = [h["train_loss"] for h in fitted.history]
    assert losses[-1] < losses[0]


def test_lbfgs_fit_does_not_depend_on_the_thread_count(digits_split):
    # the digits' objective runs in four chunks, shared by the threads; the
    # chunks' gradients are added in chunk order, so θ̂ and the history are
    # the same bits on one thread as on three, whatever BLAS's own count
    from threadpoolctl import threadpool_limits
    X, y, X_test, y_test = digits_split
    model = small_softmax("float32")
    assert model._kernel.gradient_plan(np.float32, len(y), 2)["chunks"] > 2
    fits = []
    for n_threads, blas in ((1, 1), (2, 2), (3, 1)):
        with threadpool_limits(blas, user_api="blas"), \
                pytest.warns(af.ConvergenceWarning, match="60 iterations"):
            fits.append(af.fit(model, X, y, af.Hyperparameters(
                optimizer="lbfgs", epochs=60, l2=1e-4, seed=3, n_threads=n_threads)))
    for other in fits[1:]:
        assert np.array_equal(other.parameters, fits[0].parameters)
        assert ([h["train_loss"] for h in other.history]
                == [h["train_loss"] for h in fits[0].history])
    assert fits[0].score(X_test, y_test) > 0.94


def test_huber_regression_resists_outliers():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 1))
    y = 3 * X[:, 0]
    y[:20] += 50  # gross outliers
    arch = af.Architecture(1, [af.Dense(1)], "linear")
    hp = af.Hyperparameters(learning_rate=0.05, epochs=200, batch_size=400)
    huber = af.fit(af.Model(arch, "float64", loss="huber"), X, y, hp)
    squared = af.fit(af.Model(arch, "float64"), X, y, hp)
    slope = lambda f: f.weights["dense0.weight"][0, 0]  # noqa: E731
    assert abs(slope(huber) - 3) < abs(slope(squared) - 3)
    assert abs(slope(huber) - 3) < 0.3


def test_multilabel_sigmoid():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 6))
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < -0.5], axis=1).astype(int)
    arch = af.Architecture(6, [af.Dense(16, "relu"), af.Dense(3)], "sigmoid")
    fitted = af.fit(af.Model(arch), X, Y, af.Hyperparameters(learning_rate=0.01, epochs=60))
    P = fitted.predict_proba(X)
    assert P.shape == (600, 3) and ((P >= 0) & (P <= 1)).all()
    assert set(np.unique(fitted.predict(X))) <= {0, 1}
    assert fitted.score(X, Y) > 0.9
    assert fitted.classes is None


def test_string_labels_and_declared_classes():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 2))
    y = np.where(X[:, 0] > 0, "cat", "dog")
    arch = af.Architecture(2, [af.Dense(3)], "softmax")
    fitted = af.fit(af.Model(arch), X, y, af.Hyperparameters(epochs=5),
                    classes=["bird", "cat", "dog"])
    assert fitted.classes.tolist() == ["bird", "cat", "dog"]
    assert set(fitted.predict(X)) <= {"bird", "cat", "dog"}
    with pytest.raises(ValueError, match="2 distinct classes"):
        af.fit(af.Model(arch), X, y, af.Hyperparameters(epochs=1))


# ---- options --------------------------------------------------------------------------------
def test_validation_set_is_recorded(digits_split):
    X, y, Xt, yt = digits_split
    fitted = af.fit(small_softmax(), X, y, af.Hyperparameters(epochs=3), validation=(Xt, yt))
    for h in fitted.history:
        assert {"epoch", "train_loss", "validation_loss", "validation_score", "seconds",
                "learning_rate"} <= set(h)
        assert h["seconds"] > 0
    last = fitted.history[-1]
    assert last["validation_score"] == pytest.approx(fitted.score(Xt, yt))


def test_early_stopping_stops_and_restores_best(digits_split):
    X, y, Xt, yt = digits_split
    hp = af.Hyperparameters(learning_rate=0.05, epochs=200, early_stopping=True, patience=3,
                            batch_size=16)
    fitted = af.fit(small_softmax(), X, y, hp, validation=(Xt, yt))
    history = fitted.history
    assert len(history) < 200
    losses = [h["validation_loss"] for h in history]
    best = int(np.argmin(losses))
    assert len(history) - 1 - best >= 3 - 1
    # classes are 0..9, so the digits are also the model's class indices
    restored, _ = fitted.model.loss_and_grad(fitted.parameters, Xt, yt)
    assert restored == pytest.approx(min(losses), rel=1e-9)


def test_early_stopping_holds_out_a_stratified_fraction(digits_split):
    X, y, _, _ = digits_split
    hp = af.Hyperparameters(epochs=2, early_stopping=True, validation_fraction=0.2)
    fitted = af.fit(small_softmax(), X, y, hp)
    assert "validation_loss" in fitted.history[0]


def test_validation_split_is_stratified_and_disjoint():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    train, val = af.validation_split(len(y), 0.2, seed=0, labels=y)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    assert np.bincount(y[val]).tolist() == [2, 4, 6, 8]


def test_schedules_set_the_learning_rate(digits_split):
    X, y, _, _ = digits_split
    step = af.fit(small_softmax(), X, y, af.Hyperparameters(
        epochs=5, schedule="step", step_size=2, gamma=0.5, learning_rate=0.01))
    assert [h["learning_rate"] for h in step.history] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.0025])
    cosine = af.fit(small_softmax(), X, y, af.Hyperparameters(
        epochs=4, schedule="cosine", learning_rate=0.01, min_learning_rate=0.001))
    rates = [h["learning_rate"] for h in cosine.history]
    assert rates[0] == pytest.approx(0.01) and all(a > b for a, b in zip(rates, rates[1:]))
    assert rates[-1] > 0.001
    # scikit-learn's invscaling: lr / (1 + samples seen before the epoch) ** power_t
    inv = af.fit(small_softmax(), X, y, af.Hyperparameters(
        epochs=3, schedule="invscaling", power_t=0.25, learning_rate=0.01))
    n = len(X)
    assert [h["learning_rate"] for h in inv.history] == pytest.approx(
        [0.01 / (1 + e * n) ** 0.25 for e in range(3)])


def test_plateau_schedule_reduces_rate():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = rng.normal(size=64)  # pure noise: the loss soon stops improving
    arch = af.Architecture(2, [af.Dense(1)], "linear")
    fitted = af.fit(af.Model(arch), X, y, af.Hyperparameters(
        schedule="plateau", plateau_patience=2, gamma=0.5, tolerance=1e-2, epochs=40,
        learning_rate=0.05, batch_size=64))
    rates = [h["learning_rate"] for h in fitted.history]
    assert rates[-1] < rates[0]
    assert all(r in (0.05 * 0.5 ** k for k in range(40)) for r in rates)


@pytest.mark.parametrize("optimizer,extra", [("sgd", {}), ("momentum", {}),
                                             ("momentum", {"nesterov": True}), ("adam", {}),
                                             ("adamw", {"l2": 1e-2})])
def test_every_optimizer_reduces_the_loss(digits_split, optimizer, extra):
    X, y, _, _ = digits_split
    hp = af.Hyperparameters(optimizer=optimizer, learning_rate=0.01, epochs=4, **extra)
    fitted = af.fit(small_softmax(), X, y, hp)
    losses = [h["train_loss"] for h in fitted.history]
    assert losses[-1] < losses[0] < 3


def test_sample_weights_of_zero_drop_samples():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5]
    arch = af.Architecture(3, [af.Dense(1)], "linear")
    model = af.Model(arch, "float64")
    hp = af.Hyperparameters(epochs=5, batch_size=1000, learning_rate=0.1, optimizer="sgd")
    w = np.r_[np.ones(30), np.zeros(10)]
    weighted = af.fit(model, X, y, hp, sample_weight=w)
    subset = af.fit(model, X[:30], y[:30], hp)
    np.testing.assert_allclose(weighted.parameters, subset.parameters, rtol=1e-12)
    doubled = af.fit(model, X, y, hp, sample_weight=np.r_[np.full(30, 2.0), np.ones(10)])
    repeated = af.fit(model, np.r_[X, X[:30]], np.r_[y, y[:30]], hp)
    np.testing.assert_allclose(doubled.parameters, repeated.parameters, rtol=1e-12)


def test_dropout_is_absent_at_prediction(digits_split):
    X, y, Xt, yt = digits_split
    import reference as ref
    fitted = af.fit(small_softmax(), X, y, af.Hyperparameters(epochs=10, dropout=0.3,
                                                              learning_rate=0.01))
    Z, _ = ref.forward(fitted.architecture, fitted.parameters, Xt)  # no masks, no scaling
    np.testing.assert_allclose(fitted.predict_proba(Xt), ref.head("softmax", Z[-1]), rtol=1e-10)
    assert fitted.score(Xt, yt) > 0.9


def test_callback_can_stop_training(digits_split):
    X, y, _, _ = digits_split
    seen = []
    fitted = af.fit(small_softmax(), X, y, af.Hyperparameters(epochs=10),
                    callback=lambda record: seen.append(record["epoch"]) or record["epoch"] == 3)
    assert seen == [1, 2, 3] and fitted.n_epochs == 3


def _blas_threads():
    from threadpoolctl import threadpool_info
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_n_threads_bounds_blas_and_archfit_threads_together(digits_split):
    X, y, _, _ = digits_split
    seen = []
    callback = lambda record: seen.append(_blas_threads())   # noqa: E731  runs inside the fit
    # a small network: one archfit thread, BLAS gets the budget
    af.fit(small_softmax(), X, y, af.Hyperparameters(epochs=1, n_threads=1), callback=callback)
    # a network whose steps are split into shards: archfit's threads, BLAS on one each
    big = af.Model(af.Architecture(64, [af.Dense(512, "relu"), af.Dense(10)], "softmax"))
    assert big._kernel.training_plan("float32", 128, 128)["shards"] == 2
    af.fit(big, X, y, af.Hyperparameters(epochs=1, batch_size=128, n_threads=2),
           callback=callback)
    assert seen == [{1}, {1}]


def test_sharded_fit_gives_the_same_bits_on_any_number_of_threads(digits_split, dtype):
    X, y, Xt, yt = digits_split
    model = af.Model(af.Architecture(64, [af.Dense(512, "relu"), af.Dense(10)], "softmax"),
                     dtype)
    fits = [af.fit(model, X, y, af.Hyperparameters(epochs=2, batch_size=128, dropout=0.1,
                                                   n_threads=t), validation=(Xt, yt))
            for t in (1, 2)]
    assert fits[0].parameters.tobytes() == fits[1].parameters.tobytes()
    for a, b in zip(fits[0].history, fits[1].history):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
            {k: v for k, v in b.items() if k != "seconds"}
    assert fits[0].score(Xt, yt) > 0.85    # two epochs: it learned


def test_validation_history_does_not_depend_on_blas_threads():
    # 1,200 validation rows through 16-64-3: products large enough for BLAS, whose
    # rounding depends on its thread count; the evaluation's plan keeps it out
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 16))
    y = (X[:, :4] @ rng.normal(size=(4, 3)) + 0.8 * rng.normal(size=(6000, 3))).argmax(axis=1)
    model = af.Model(af.Architecture(16, [af.Dense(64, "relu"), af.Dense(3)], "softmax"))
    hp = af.Hyperparameters(epochs=3, batch_size=32, seed=5)
    histories = []
    for blas in (1, 2, 3):
        with threadpool_limits(blas, user_api="blas"):
            fitted = af.fit(model, X[:4800], y[:4800], hp, validation=(X[4800:], y[4800:]))
        histories.append([{k: v for k, v in r.items() if k != "seconds"}
                          for r in fitted.history])
        # the recorded validation loss is the fit model's loss on the same rows, bit for bit
        assert fitted.history[-1]["validation_loss"] == fitted.loss(X[4800:], y[4800:])
        assert fitted.history[-1]["validation_score"] == fitted.score(X[4800:], y[4800:])
    assert histories[1] == histories[0] and histories[2] == histories[0]


def test_divergence_raises_naming_the_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) * 1e3
    y = rng.normal(size=50) * 1e3
    arch = af.Architecture(3, [af.Dense(8), af.Dense(1)], "linear")
    with pytest.raises(af.DivergenceError, match=r"epoch \d+.*smaller learning_rate") as info:
        af.fit(af.Model(arch, "float32"), X, y,
               af.Hyperparameters(optimizer="sgd", learning_rate=10.0, epochs=50))
    assert info.value.fit_model is None          # no early stopping: nothing kept


def test_divergence_under_early_stopping_keeps_the_best_fit_model():
    # a rate that makes progress first and diverges later: the best epoch so
    # far is on the exception, as a FitModel whose history ends there
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
    arch = af.Architecture(3, [af.Dense(16, "relu"), af.Dense(1)], "linear")
    hp = af.Hyperparameters(optimizer="sgd", learning_rate=0.02, epochs=60, batch_size=200,
                            early_stopping=True, patience=None)
    first = af.fit(af.Model(arch), X, y, hp.replace(epochs=3))
    with pytest.raises(af.DivergenceError) as info:
        af.fit(af.Model(arch), X, y, hp, init=first.parameters * 40)
    best = info.value.fit_model
    assert isinstance(best, af.FitModel) and np.isfinite(best.parameters).all()
    losses = [h["validation_loss"] for h in best.history]
    assert len(losses) >= 1 and np.isfinite(losses).all()
    assert np.isfinite(best.predict(X)).all()


def test_a_validation_part_too_small_for_early_stopping_is_refused():
    X = np.random.default_rng(2).normal(size=(6, 2))
    arch = af.Architecture(2, [af.Dense(1)], "linear")
    with pytest.raises(ValueError, match="validation set is too small"):
        af.fit(af.Model(arch), X, X[:, 0], af.Hyperparameters(early_stopping=True,
                                                                validation_fraction=0.1))


def test_poisson_regression_matches_the_glm():
    # an exponential head over one identity unit is a Poisson GLM: the same
    # fitted means as scikit-learn's PoissonRegressor
    sklearn_glm = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, size=(300, 2))
    y = rng.poisson(np.exp(0.5 + X @ [1.0, -0.7]))
    glm = sklearn_glm.PoissonRegressor(alpha=0, tol=1e-8, max_iter=1000).fit(X, y)
    arch = af.Architecture(2, [af.Dense(1, "identity"), af.Dense(1)], "exponential")
    model = af.Model(arch, "float64")
    assert model.loss == "poisson"
    # (warnings are errors here: L-BFGS converged)
    fitted = af.fit(model, X, y, af.Hyperparameters(optimizer="lbfgs", epochs=500,
                                                    gradient_tolerance=1e-10))
    np.testing.assert_allclose(fitted.predict(X), glm.predict(X), rtol=1e-4)
    assert fitted.predict(X).min() > 0 and fitted.score(X, y) > 0.1
    with pytest.raises(ValueError, match="non-negative"):
        af.fit(model, X, -y, af.Hyperparameters(epochs=1))
    with pytest.raises(TypeError, match="predict_proba"):
        fitted.predict_proba(X)



def test_verbose_without_tqdm_prints_a_line_per_epoch_and_how_it_ended(digits_split, capsys,
                                                                        no_tqdm):
    X, y, Xv, yv = digits_split
    af.fit(small_softmax(), X, y, af.Hyperparameters(epochs=2), validation=(Xv, yv),
           verbose=True)
    # progress goes to standard error, as tqdm's does
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/2  loss ") and "validation accuracy" in lines[0]
    assert "left)" in lines[0]
    assert lines[2].startswith("fitted 2 epoch(s); validation accuracy")


def test_verbose_says_which_epoch_early_stopping_restored(digits_split, capsys):
    pytest.importorskip("tqdm")
    X, y, _, _ = digits_split
    fitted = af.fit(small_softmax(), X, y, af.Hyperparameters(
        epochs=200, early_stopping=True, patience=2, learning_rate=0.05), verbose=True)
    out = capsys.readouterr()
    last = (out.out + out.err).strip().splitlines()[-1]
    kept = int(last.split("restored epoch ")[1].split(",")[0])
    assert last.startswith(f"early stopping ended the fit after epoch {fitted.n_epochs}")
    best = min(fitted.history, key=lambda r: r["validation_loss"])
    assert kept == best["epoch"]


# ---- the fit model ------------------------------------------------------------------------------
def test_fit_model_is_immutable(digits_split):
    X, y, _, _ = digits_split
    fitted = af.fit(small_softmax(), X, y, af.Hyperparameters(epochs=1))
    with pytest.raises(ValueError):
        fitted.parameters[0] = 1.0
    with pytest.raises(ValueError):
        fitted.weights["dense0.weight"][0, 0] = 1.0
    fitted.history[0]["train_loss"] = -1
    assert fitted.history[0]["train_loss"] > 0
    with pytest.raises(AttributeError):
        fitted.parameters = None
    assert fitted.hyperparameters.epochs == 1


def test_fit_model_refuses_non_finite_parameters():
    model = small_softmax()
    theta = model.init(0)
    theta[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        af.FitModel(model, theta, af.Hyperparameters(), classes=np.arange(10))


def test_predict_proba_needs_a_probabilistic_head():
    arch = af.Architecture(2, [af.Dense(1)], "linear")
    fitted = af.fit(af.Model(arch), np.ones((4, 2)), np.ones(4), af.Hyperparameters(epochs=1))
    with pytest.raises(TypeError, match="linear"):
        fitted.predict_proba(np.ones((1, 2)))


# ---- the cores a process may use ------------------------------------------------------------------
def test_cgroup_cpu_quota_is_read(tmp_path):
    from archfit._threads import cpu_quota
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(str(v2)) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(str(v2)) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(str(v1)) == 0.5
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_quota(str(v1)) is None
    assert cpu_quota(str(tmp_path / "none")) is None


def test_the_thread_budget_follows_affinity_and_quota(monkeypatch):
    from archfit import _threads
    real = _threads.usable_cores
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    for quota, cores in ((None, 4), (1.5, 2), (0.2, 1), (64.0, 4)):
        monkeypatch.setattr(_threads, "cpu_quota", lambda q=quota: q)
        _threads.usable_cores.cache_clear()
        assert _threads.usable_cores() == cores
    monkeypatch.setattr(_threads, "usable_cores", lambda: 1)
    assert _threads.budget(None) == 1 and _threads.budget(3) == 3
    real.cache_clear()          # read afresh after the patched affinity and quota
