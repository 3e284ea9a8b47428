"""Hold-out estimates and selection: folds, estimates, grid/random/halving, parallel runs,
scale-out on a dask cluster, and errors before any fit."""
import os
import sys

import numpy as np
import pytest

import archfit as af
from archfit.distributions import Choice, IntUniform, LogUniform, Uniform


@pytest.fixture(scope="module")
def digits():
    from archfit.datasets import load_digits
    X, y = load_digits()
    rng = np.random.default_rng(0)
    keep = np.sort(rng.permutation(len(y))[:600])   # a subset keeps the suite fast
    return X[keep] / 16.0, y[keep]


def small(width=16, dtype="float32"):
    return af.Model(af.Architecture(64, [af.Dense(width, "relu"), af.Dense(10)], "softmax"), dtype)


BASE = af.Hyperparameters(epochs=4, batch_size=32, learning_rate=0.01)


# ---- folds ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stratified", [False, True])
def test_kfold_partitions_the_samples(stratified):
    y = np.repeat([0, 1, 2], [20, 33, 47])
    folds = af.kfold(len(y), 5, seed=1, labels=y if stratified else None)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(y)))            # each sample once
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0                   # no overlap
        assert len(train) + len(test) == len(y)
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 1
    if stratified:
        for _, test in folds:
            counts = np.bincount(y[test], minlength=3)
            assert np.all(np.abs(counts - np.array([20, 33, 47]) / 5) <= 1)


def test_kfold_is_seeded():
    a = af.kfold(50, 5, seed=3)
    b = af.kfold(50, 5, seed=3)
    c = af.kfold(50, 5, seed=4)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c))


# ---- the estimate ----------------------------------------------------------------------------
def test_holdout_matches_a_hand_computed_mean(digits):
    X, y = digits
    est = af.holdout(small(), X, y, BASE, cv=3)
    by_hand = []
    for train, test in af.kfold(len(y), 3, seed=BASE.seed, labels=y):
        fitted = af.fit(small(), X[train], y[train], BASE, classes=np.arange(10))
        by_hand.append(fitted.score(X[test], y[test]))
    np.testing.assert_allclose(est.scores, by_hand, rtol=0, atol=0)
    assert est.mean == pytest.approx(np.mean(by_hand))
    assert est.std == pytest.approx(np.std(by_hand, ddof=1))
    assert len(est.fits) == 3 and all(isinstance(f, af.FitModel) for f in est.fits)
    assert est.scoring == "accuracy" and est.mean > 0.8


def test_holdout_single_split_and_neg_loss(digits):
    X, y = digits
    est = af.holdout(small(), X, y, BASE, validation_fraction=0.25, scoring="neg_loss")
    train, val = est.folds[0]
    assert len(est.scores) == 1 and len(val) == pytest.approx(150, abs=5)
    assert est.scores[0] == pytest.approx(-est.fits[0].loss(X[val], y[val]))
    assert est.std == 0.0


def test_holdout_regression_uses_r2():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, 2.0, -1.0]
    model = af.Model(af.Architecture(3, [af.Dense(1)], "linear"), "float64")
    est = af.holdout(model, X, y, af.Hyperparameters(learning_rate=0.05, epochs=80), cv=4)
    assert est.scoring == "r2" and est.mean > 0.99


def test_custom_scoring_callable(digits):
    X, y = digits
    est = af.holdout(small(), X, y, BASE, cv=2,
                     scoring=lambda fitted, X, y: float(np.mean(fitted.predict(X) != y)))
    assert 0 <= est.mean < 0.3


# ---- searches --------------------------------------------------------------------------------
def test_grid_visits_every_combination(digits):
    X, y = digits
    space = {"learning_rate": [1e-3, 1e-2], "l2": [0.0, 1e-4, 1e-3]}
    sel = af.select(small(), X, y, space, base=BASE, cv=2)
    visited = [(r["params"]["learning_rate"], r["params"]["l2"]) for r in sel.table]
    assert sorted(visited) == sorted((a, b) for a in [1e-3, 1e-2] for b in [0.0, 1e-4, 1e-3])
    best = max(sel.table, key=lambda r: r["mean_score"])
    assert sel.best_index == best["candidate"] and sel.best_score == best["mean_score"]
    assert sel.best_hyperparameters.learning_rate == best["params"]["learning_rate"]
    assert sel.best.hyperparameters == sel.best_hyperparameters
    assert sel.best.n_epochs == BASE.epochs
    assert sorted(r["rank"] for r in sel.table) == list(range(1, 7))
    for r in sel.table:
        assert len(r["scores"]) == 2 and r["fit_seconds"] > 0


def test_model_selection_among_architectures(digits):
    X, y = digits
    models = [small(4), small(32)]
    sel = af.select(models, X, y, {}, base=BASE, cv=2)
    assert [r["model"] for r in sel.table] == [0, 1]
    assert sel.best_model is models[sel.table[sel.best_index]["model"]]
    assert sel.best.model == sel.best_model


def test_random_search_draws_from_the_distributions(digits):
    X, y = digits
    space = {"learning_rate": LogUniform(1e-4, 1e-1), "l2": Uniform(0, 1e-3),
             "batch_size": IntUniform(16, 64), "optimizer": Choice(["adam", "sgd"]),
             "momentum": [0.5, 0.9]}
    sel = af.select(small(), X, y, space, base=BASE.replace(epochs=1), search="random",
                    n_candidates=6, cv=2, refit=False)
    assert len(sel.table) == 6 and sel.best is None
    for r in sel.table:
        p = r["params"]
        assert 1e-4 <= p["learning_rate"] <= 1e-1 and 0 <= p["l2"] <= 1e-3
        assert 16 <= p["batch_size"] <= 64 and isinstance(p["batch_size"], int)
        assert p["optimizer"] in ("adam", "sgd") and p["momentum"] in (0.5, 0.9)
    again = af.select(small(), X, y, space, base=BASE.replace(epochs=1), search="random",
                      n_candidates=6, cv=2, refit=False)
    assert [r["params"] for r in sel.table] == [r["params"] for r in again.table]


def test_log_uniform_covers_decades_evenly():
    rng = np.random.default_rng(0)
    draws = np.array([LogUniform(1e-4, 1e0).sample(rng) for _ in range(4000)])
    counts = np.histogram(np.log10(draws), bins=4, range=(-4, 0))[0]
    assert counts.min() > 900


def test_halving_keeps_the_best_half_and_gives_survivors_more_epochs(digits):
    X, y = digits
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 2e-1]
    sel = af.select(small(), X, y, {"learning_rate": lrs}, base=BASE.replace(epochs=8),
                    search="halving", cv=2)
    rounds = [r["rounds"] for r in sel.table]
    # 8 candidates -> 4 -> 2 -> 1, with 1, 2, 4, 8 epochs
    assert sorted(len(r) for r in rounds) == [1, 1, 1, 1, 2, 2, 3, 4]
    for k, epochs in enumerate([1, 2, 4, 8]):
        entrants = [r for r in rounds if len(r) > k]
        assert all(r[k][0] == epochs for r in entrants)
        if k + 1 < 4:
            survivors = [r for r in entrants if len(r) > k + 1]
            assert len(survivors) == len(entrants) // 2
            # the survivors are the best half of that round's entrants
            cut = sorted((r[k][1] for r in entrants), reverse=True)[len(survivors) - 1]
            assert all(r[k][1] >= cut for r in survivors)
    winner = sel.table[sel.best_index]
    assert len(winner["rounds"]) == 4 and winner["epochs"] == 8 and winner["rank"] == 1
    assert sel.best.n_epochs == 8


def test_halving_continues_fits_instead_of_restarting(digits, monkeypatch):
    X, y = digits
    import archfit.estimation
    inits = []
    real_fit_many = archfit.estimation.fit_many

    def spy(*args, **kwargs):       # the folds' fits run as populations
        inits.extend(kwargs.get("init"))
        return real_fit_many(*args, **kwargs)

    monkeypatch.setattr(archfit.estimation, "fit_many", spy)
    af.select(small(), X, y, {"learning_rate": [1e-3, 1e-2]}, base=BASE.replace(epochs=4),
              search="halving", cv=2, refit=False)
    # round 1: 2 candidates x 2 folds from scratch; round 2: 1 candidate x 2 folds continued
    assert [i is None for i in inits] == [True] * 4 + [False] * 2
    assert all(i.n_epochs == 2 for i in inits[4:])


@pytest.mark.parametrize("search", ["grid", "halving"])
def test_identical_results_for_one_or_two_jobs(digits, search):
    X, y = digits
    space = {"learning_rate": [1e-3, 1e-2], "l2": [0.0, 1e-3]}
    runs = [af.select(small(), X, y, space, base=BASE, cv=2, search=search, n_jobs=n)
            for n in (1, 2)]
    assert [r["scores"] for r in runs[0].table] == [r["scores"] for r in runs[1].table]
    assert runs[0].best.parameters.tobytes() == runs[1].best.parameters.tobytes()


def test_verbose_prints_a_line_per_candidate(digits, capsys):
    X, y = digits
    af.select(small(), X, y, {"learning_rate": [1e-3, 1e-2]}, base=BASE, cv=2,
              verbose=True, refit=False)
    captured = capsys.readouterr()
    out = captured.err                                    # progress goes to standard error
    assert captured.out == ""
    lines = [line for line in out.replace("\r", "\n").splitlines() if "] model " in line]
    assert len(lines) == 2 and all("learning_rate" in line for line in lines)
    if "fits" in out:                                     # tqdm installed: the bar over four fits
        assert "best accuracy " in out and "4/4 fits" in out


def test_holdout_verbose_reports_each_fold(digits, capsys):
    X, y = digits
    af.holdout(small(), X, y, BASE, cv=3, verbose=True)
    out = capsys.readouterr().err
    assert all(f"fold {k}/3: accuracy " in out for k in (1, 2, 3)) and "3/3" in out


def test_plot_writes_a_png(digits, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = digits
    sel = af.select([small(4), small(16)], X, y, {"learning_rate": [1e-3, 1e-2]},
                    base=BASE.replace(epochs=1), cv=2, refit=False)
    path = sel.plot(tmp_path / "search.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# ---- scale-out -------------------------------------------------------------------------------
def scored_on_a_dask_worker(fitted, X, y):
    from distributed import get_worker
    get_worker()  # raises ValueError unless this runs inside a dask worker
    return fitted.score(X, y)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_select_on_a_dask_cluster_matches_the_local_run(digits):
    joblib = pytest.importorskip("joblib")
    distributed = pytest.importorskip("distributed")
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    X, y = digits
    space = {"learning_rate": [1e-3, 1e-2]}
    local = af.select(small(), X, y, space, base=BASE, cv=2, n_jobs=1,
                      scoring=lambda f, X, y: f.score(X, y))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        assert os.getpid() not in pids and len(pids) == 2
        with joblib.parallel_config(backend="dask"):
            remote = af.select(small(), X, y, space, base=BASE, cv=2, n_jobs=2,
                               scoring=scored_on_a_dask_worker)
    assert [r["scores"] for r in local.table] == [r["scores"] for r in remote.table]
    assert local.best.parameters.tobytes() == remote.best.parameters.tobytes()


# ---- errors before any fit ---------------------------------------------------------------------
@pytest.fixture
def no_fit(monkeypatch):
    import archfit.estimation
    import archfit.selection

    def boom(*a, **k):
        raise AssertionError("a fit started before the input was validated")
    monkeypatch.setattr(archfit.estimation, "fit", boom)
    monkeypatch.setattr(archfit.selection, "fit", boom)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(space={}), ValueError, "nothing to select"),
    (dict(space={"learning_rat": [0.1]}), ValueError, "unknown hyperparameter"),
    (dict(space={"learning_rate": []}), ValueError, "empty list"),
    (dict(space={"learning_rate": [0.1, -1.0]}), ValueError, "learning_rate"),
    (dict(space={"batch_size": IntUniform(0, 10)}), ValueError, "batch_size"),
    (dict(space={"learning_rate": 0.1}), TypeError, "list of values"),
    (dict(space=[("learning_rate", [0.1])]), TypeError, "dict"),
    (dict(space={"learning_rate": [0.1]}, cv=200), ValueError, "smallest class"),
    (dict(space={"learning_rate": [0.1]}, cv=1), ValueError, "cv"),
    (dict(space={"learning_rate": [0.1]}, scoring="f1"), ValueError, "scoring"),
    (dict(space={"learning_rate": [0.1]}, scoring="r2"), ValueError, "linear"),
    (dict(space={"learning_rate": [0.1]}, search="bayes"), ValueError, "search"),
    (dict(space={"learning_rate": LogUniform(1e-3, 1e-1)}), ValueError, "grid search needs"),
    (dict(space={"epochs": [1, 2]}, search="halving"), ValueError, "budget"),
    (dict(space={"learning_rate": [0.1]}, n_jobs=0), ValueError, "n_jobs"),
    (dict(space={"learning_rate": [0.1]}, cv=3, validation_fraction=0.2), ValueError, "not both"),
])
def test_select_errors(digits, no_fit, kwargs, exc, match):
    X, y = digits
    with pytest.raises(exc, match=match):
        af.select(small(), X, y, **kwargs)


def test_select_rejects_bad_candidates_and_data(digits, no_fit):
    X, y = digits
    with pytest.raises(TypeError, match="candidates"):
        af.select([], X, y, {"learning_rate": [0.1]})
    linear = af.Model(af.Architecture(64, [af.Dense(10)], "linear"))
    with pytest.raises(ValueError, match="output head"):
        af.select([small(), linear], X, y, {})
    with pytest.raises(ValueError, match="NaN"):
        af.select(small(), np.where(X > 0.5, np.nan, X), y, {"learning_rate": [0.1]})
    with pytest.raises(ValueError, match="rows"):
        af.select(small(), X, y[:-1], {"learning_rate": [0.1]})
    with pytest.raises(ValueError, match="NaN"):
        af.holdout(small(), X, np.where(y > 5, np.nan, y))


def test_thread_pool_without_joblib_gives_the_same_results(digits, monkeypatch):
    X, y = digits
    space = {"learning_rate": [1e-3, 1e-2]}
    with_joblib = af.select(small(), X, y, space, base=BASE, cv=2, n_jobs=2, refit=False)
    monkeypatch.setitem(sys.modules, "joblib", None)   # import joblib now fails
    without = af.select(small(), X, y, space, base=BASE, cv=2, n_jobs=2, refit=False)
    assert [r["scores"] for r in with_joblib.table] == [r["scores"] for r in without.table]


def test_verbose_bar_moves_with_the_epochs_of_populations(digits, monkeypatch):
    # a search's fits train together: the bar advances epoch by epoch, each fit
    # counts once in all (early stopping's unused epochs are made up at its end)
    from archfit._progress import FitsProgress
    X, y = digits
    steps = []
    real = FitsProgress.advance

    def spy(self, key, fraction):
        steps.append((key, fraction))
        return real(self, key, fraction)
    monkeypatch.setattr(FitsProgress, "advance", spy)
    bars = []
    real_close = FitsProgress.close

    def keep(self, *args):
        if self.bar is not None:
            bars.append(self.bar.n)
        return real_close(self, *args)
    monkeypatch.setattr(FitsProgress, "close", keep)
    base = BASE.replace(epochs=4, early_stopping=True, patience=1)
    af.select(small(), X, y, {"learning_rate": [1e-3, 1e-2]}, base=base, cv=2, verbose=True,
              refit=False)
    assert len({key for key, _ in steps}) == 4
    assert all(abs(fraction - 0.25) < 1e-12 for _, fraction in steps)
    if bars:                                     # tqdm installed
        assert bars[0] == pytest.approx(4.0)


def test_fits_progress_counts_each_fit_once():
    from archfit._progress import FitsProgress
    import io
    progress = FitsProgress(2, "accuracy", file=io.StringIO())
    progress.advance("a", 0.5)
    progress.advance("a", 0.25)
    progress.fit_done("a")
    progress.fit_done("b")
    if progress.bar is not None:
        assert progress.bar.n == pytest.approx(2.0)
    assert progress.partial == {} and progress.finished == 2
    progress.close()


def test_fits_progress_never_passes_its_total():
    # twenty epochs of 0.05 add up to 1.0000000000000002: the bar once went past its
    # total (tqdm's "clamping frac" warning, a negative time left, "10.95/18")
    pytest.importorskip("tqdm")
    import io
    import warnings
    from archfit._progress import FitsProgress
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        progress = FitsProgress(3, "accuracy", file=out)
        for key in range(3):
            for _ in range(20):
                progress.advance(key, 0.05)
                assert progress.bar.n <= progress.total
        for key in range(3):
            progress.fit_done(key)
        progress.add(2)
        for key in (3, 4):
            progress.advance(key, 1.0)
            progress.fit_done(key)
        assert progress.bar.n == 5 and progress.finished == 5
        progress.close()
    text = out.getvalue()
    assert "5/5 fits" in text and "<-" not in text and ".95/" not in text


def test_select_verbose_under_warnings_as_errors(digits):
    # the docs' example, with every warning an error (as python -W error runs it)
    import subprocess
    import sys
    script = ("import warnings; warnings.simplefilter('error')\n"
              "import archfit as af\n"
              "from archfit.datasets import load_digits\n"
              "X, y = load_digits()\n"
              "net = lambda w: af.Model(af.Architecture(64, [af.Dense(w, 'relu'), af.Dense(10)],"
              " 'softmax'))\n"
              "base = af.Hyperparameters(epochs=20, batch_size=32, standardize=True)\n"
              "af.select([net(16), net(64)], X, y, space={'learning_rate': [1e-3, 3e-3, 1e-2]},"
              " base=base, cv=3, n_jobs=2, verbose=True, refit=False)\n")
    result = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Warning" not in result.stderr and "<-" not in result.stderr
