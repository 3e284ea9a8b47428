"""The estimate of hold-out error: fit on part of the data, score on the rest."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from archfit import _parallel, _scoring
from archfit._targets import class_labels, encode
from archfit._kernels._hashing import Fingerprint
from archfit._progress import FitsProgress
from archfit._streaming import FileRows, features, rows_of
from archfit._validation import as_sample_weight, check_float, check_int, feature_names
from archfit.fit_model import FitModel, _checked_preprocessing
from archfit.fitting import fit
from archfit.folds import kfold, validation_split
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model
from archfit.population import compatible, fit_many, member_bytes
from archfit.preprocessing import Preprocessing
from archfit.tables import n_rows, take_rows

# The most training-state memory one population of fold fits may hold: a
# search of many candidates runs as several populations one after another.
POPULATION_BYTES = 256 * 2**20


@dataclass(frozen=True)
class HoldoutEstimate:
    """Hold-out scores of one (model, hyperparameters) pair over folds.

    Attributes
    ----------
    scores : ndarray
        One score per fold (higher is better).
    mean : float
        The estimate: mean of ``scores``.
    std : float
        Sample standard deviation of ``scores`` (0 for a single split).
    fits : tuple of FitModel
        The fit model of each fold, trained without that fold.
    folds : tuple of (train, test) index arrays
    seconds : tuple of float
        Wall time of each fold's fit.
    scoring : str
    """

    scores: np.ndarray
    mean: float
    std: float
    fits: tuple
    folds: tuple
    seconds: tuple
    scoring: str

    def __repr__(self):
        return (f"HoldoutEstimate({self.scoring}: {self.mean:.4f} ± {self.std:.4f} "
                f"over {len(self.scores)} fold(s))")


class Data:
    """Validated data shared by every fold fit: X once, y as given, folds."""

    def __init__(self, models: list[Model], X, y, sample_weight, classes, cv,
                 validation_fraction, seed, preprocessing=None):
        first = models[0].architecture
        dtype = np.float64 if any(m.dtype == np.float64 for m in models) else np.float32
        self.preprocessing = preprocessing
        if preprocessing is not None:
            # a table, read by each fit through its own refit of the preprocessing
            if not isinstance(preprocessing, Preprocessing):
                raise TypeError(f"preprocessing must be a Preprocessing, got "
                                f"{type(preprocessing).__name__}")
            for m in models:
                _checked_preprocessing(preprocessing, m)
            self.feature_names, self.X = None, X
            n = n_rows(X)
        else:
            self.feature_names = feature_names(X)
            self.X = features(X, first.n_inputs, np.dtype(dtype),
                              sparse=all(m.architecture.reads_sparse for m in models),
                              categorical=first.inputs.categorical)
            n = self.X.shape[0]
        self.y = np.asarray(y)
        if self.y.shape[:1] != (n,):
            raise ValueError(f"y has {self.y.shape[:1] or 'no'} rows, X has {n} samples")
        self.w = as_sample_weight(sample_weight, n, np.dtype(np.float64))
        self.classes = None
        labels = None
        if first.output == "softmax":
            self.classes = class_labels(self.y if classes is None else classes,
                                        "y" if classes is None else "classes",
                                        declared=classes is not None)
            labels = self.y
        # Validate y fully once (shape, NaN, unknown labels) before any fit.
        encode(self.y, first.output, first.n_outputs, n, np.dtype(dtype), self.classes)
        if validation_fraction is not None:
            if cv is not None:
                raise ValueError("give either cv or validation_fraction, not both")
            validation_fraction = check_float(validation_fraction, "validation_fraction",
                                              low=0.0, high=1.0, low_open=True, high_open=True)
            self.folds = [validation_split(n, validation_fraction, seed, labels)]
        else:
            if isinstance(cv, (bool, np.bool_)):
                raise TypeError("cv must be an integer number of folds")
            cv = 5 if cv is None else cv
            self.folds = kfold(n, check_int(cv, "cv", minimum=2), seed, labels)

    def subset(self, index):
        X = take_rows(self.X, index) if self.preprocessing is not None else rows_of(self.X, index)
        return (X, self.y[index],
                None if self.w is None else self.w[index])

    def test_score(self, scorer, fitted: FitModel, fold: int) -> float:
        """`fitted`'s score on the rows fold `fold` holds out."""
        return scorer(fitted, *self.subset(self.folds[fold][1]))


class FoldFitter:
    """Fits one (model, hyperparameters) on one fold and scores it on the rest.

    A callable object rather than a closure so that process-based joblib
    backends (dask, ray) can pickle it.
    """

    def __init__(self, data: Data, scorer, folder=None):
        self.data, self.scorer, self.folder = data, scorer, folder

    def __call__(self, task) -> tuple[Any, FitModel, float, float]:
        key, model, hp, init, fold = task
        X, y, w = self.data.subset(self.data.folds[fold][0])
        start = time.perf_counter()
        fitted = fit(model, X, y, hp, sample_weight=w, classes=self.data.classes, init=init,
                     checkpoint=checkpoint_path(self.folder, model, hp, init, fold),
                     preprocessing=self.data.preprocessing)
        seconds = time.perf_counter() - start
        return key, fitted, self.data.test_score(self.scorer, fitted, fold), seconds


class PopulationFitter:
    """Fits a population of fold tasks with ``fit_many`` (each member the fit
    ``FoldFitter`` would make) and scores each on its fold's rest; picklable
    for process-based backends."""

    def __init__(self, data: Data, scorer, n_threads: int, on_epoch=None):
        self.data, self.scorer, self.n_threads = data, scorer, n_threads
        self.on_epoch = on_epoch

    def __call__(self, tasks) -> list[tuple[Any, FitModel, float, float]]:
        start = time.perf_counter()
        callback = None
        if self.on_epoch is not None:
            def callback(k, record):
                # each epoch is a fraction of its fit (a progress bar's step)
                self.on_epoch(tasks[k][0], 1.0 / tasks[k][2].epochs)
        fitted = fit_many([t[1] for t in tasks], self.data.X, self.data.y,
                          [t[2] for t in tasks], rows=[self.data.folds[t[4]][0] for t in tasks],
                          sample_weight=self.data.w, init=[t[3] for t in tasks],
                          classes=self.data.classes, n_threads=self.n_threads,
                          callback=callback, preprocessing=self.data.preprocessing)
        # each fit's share of the population's time
        seconds = (time.perf_counter() - start) / len(tasks)
        return [(task[0], fit_model, self.data.test_score(self.scorer, fit_model, task[4]),
                 seconds) for task, fit_model in zip(tasks, fitted)]


def run_fits(fitter: FoldFitter, tasks, n_jobs: int, on_result=None, on_epoch=None) -> list:
    """The results of ``fitter`` on every task, fits that can share a
    population (one model, optimizer and batch size; data in memory; no
    checkpoints) trained as populations.

    In threads, a population's members share ``n_jobs`` threads; with a
    process-based joblib backend (dask, ray), populations are split so that
    ``n_jobs`` of them run at once, one thread each. Other fits run as before,
    ``n_jobs`` at a time. ``on_epoch(key, fraction)`` hears of each epoch of
    a population's fit in this process (for progress); ``on_result`` of each
    fit's end.
    """
    data = fitter.data
    if fitter.folder is not None or isinstance(data.X, FileRows):
        return _parallel.fit_in_parallel(fitter, tasks, n_jobs, on_result)
    groups: dict[Any, list] = {}
    singles = []
    for task in tasks:
        key = compatible(task[1], task[2])
        (singles if key is None else groups.setdefault(key, [])).append(task)
    external = _parallel.external_backend()
    populations = []
    for group in groups.values():
        size = sum(member_bytes(t[1], t[2], len(data.folds[t[4]][0])) for t in group)
        parts = max(-(-size // POPULATION_BYTES), n_jobs if external else 1)
        per = -(-len(group) // min(parts, len(group)))
        populations += [group[i:i + per] for i in range(0, len(group), per)]
    results = []

    def took(batch):
        for result in batch:
            results.append(result)
            if on_result is not None:
                on_result(result)
    if external:
        _parallel.fit_in_parallel(PopulationFitter(data, fitter.scorer, 1), populations,
                                  n_jobs, took)
    else:
        for population in populations:      # fit_many holds BLAS to one thread
            took(PopulationFitter(data, fitter.scorer, n_jobs, on_epoch)(population))
    if singles:
        results += _parallel.fit_in_parallel(fitter, singles, n_jobs, on_result)
    return results


def checkpoint_folder(folder):
    """``checkpoint=`` of holdout and select: None, or an existing folder."""
    if folder is None:
        return None
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path to a folder, got {type(folder).__name__}")
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"checkpoint must be an existing folder, got {folder!r}")
    return folder


def checkpoint_path(folder, model: Model, hp: Hyperparameters, init, fold) -> str | None:
    """The checkpoint of one fit in `folder`, named by what the fit is (model,
    hyperparameters, fold, starting point), so that a restarted search finds
    each finished fit again and a changed one starts afresh."""
    if folder is None:
        return None
    settings = hp.to_dict()
    settings.pop("n_threads", None)
    h = Fingerprint()
    h.update(json.dumps([model.to_dict(), settings, fold], sort_keys=True).encode())
    if init is not None:
        h.update(np.ascontiguousarray(init.parameters))
        h.update(str(init.n_epochs).encode())
    name = "refit" if fold is None else f"fold{fold}"
    return os.path.join(folder, f"{name}-{h.hexdigest()[:20]}.archfit")


def check_models(candidates) -> list[Model]:
    models = [candidates] if isinstance(candidates, Model) else candidates
    if not isinstance(models, (list, tuple)) or not models:
        raise TypeError("candidates must be a Model or a non-empty list of Models")
    for i, m in enumerate(models):
        if not isinstance(m, Model):
            raise TypeError(f"candidates[{i}] must be a Model, got {type(m).__name__}")
    first = models[0].architecture
    for i, m in enumerate(models[1:], 1):
        a = m.architecture
        if (a.n_inputs, a.output, a.n_outputs) != (first.n_inputs, first.output, first.n_outputs):
            raise ValueError(f"candidates[{i}] has a different input size, output head or "
                             "number of outputs; candidate models must all fit the same data")
    return list(models)


def holdout(model: Model, X, y, hyperparameters: Hyperparameters | None = None, *, cv=None,
            validation_fraction: float | None = None, scoring=None, n_jobs: int | None = None,
            sample_weight=None, classes=None, seed: int | None = None,
            checkpoint=None, verbose: bool = False,
            preprocessing: Preprocessing | None = None) -> HoldoutEstimate:
    """Estimate the hold-out score of fitting ``model`` with ``hyperparameters``.

    Parameters
    ----------
    model : Model
    X, y : the data, as for :func:`archfit.fit`
    hyperparameters : Hyperparameters, optional
    cv : int, optional
        Number of folds (5 unless ``validation_fraction`` is given); stratified by class for softmax outputs, shuffled
        with ``seed``.
    validation_fraction : float, optional
        Instead of folds: one split holding out this fraction.
    scoring : {"accuracy", "r2", "neg_loss"}, callable or None
        None: accuracy for softmax/sigmoid, R² for linear outputs. A callable
        is called as ``scoring(fitted, X_test, y_test)``.
    n_jobs : int, optional
        Threads the folds' fits share (or the active joblib backend's
        workers). The folds are fitted together as one population
        (:func:`archfit.fit_many`, each fit on one thread at a time) unless
        ``checkpoint`` is given or X is file-backed; each fit is limited to
        one BLAS thread. The estimate is the same for any ``n_jobs``.
    sample_weight : array-like, optional
        Used in fitting and in scoring.
    classes : array-like, optional
        All class labels, for softmax outputs.
    seed : int, optional
        Seed of the folds; defaults to the hyperparameters' seed.
    checkpoint : str or path-like, optional
        An existing folder: each fold's fit keeps a checkpoint there (see
        :func:`archfit.fit`), so that after a crash or Ctrl-C the same call
        returns the finished folds at once and resumes the others.
    verbose : bool
        A tqdm bar over the folds' fits (done, time left) when tqdm is
        installed, and a line per fold.
    preprocessing : Preprocessing, optional
        For X a table: each fold's fit refits its statistics on the fold's
        training rows (:func:`archfit.fit`), so the held-out rows are
        scored as new data.

    Returns
    -------
    HoldoutEstimate
    """
    models = check_models(model)
    hp = Hyperparameters() if hyperparameters is None else hyperparameters
    if not isinstance(hp, Hyperparameters):
        raise TypeError("hyperparameters must be a Hyperparameters")
    seed = hp.seed if seed is None else check_int(seed, "seed", minimum=0)
    name, scorer = _scoring.resolve(scoring, models[0].architecture.output)
    n_jobs = _parallel.effective_n_jobs(n_jobs)
    data = Data(models, X, y, sample_weight, classes, cv, validation_fraction, seed,
                preprocessing)
    tasks = [(fold, models[0], hp, None, fold) for fold in range(len(data.folds))]
    fitter = FoldFitter(data, scorer, checkpoint_folder(checkpoint))
    progress = FitsProgress(len(tasks), name) if verbose else None

    def on_result(result):
        if progress is not None:
            progress.fit_done(result[0])
            progress.say(f"fold {result[0] + 1}/{len(tasks)}: {name} {result[2]:.4f} "
                         f"({result[3]:.2f} s, {result[1].n_epochs} epochs)")
    try:
        results = run_fits(fitter, tasks, n_jobs, on_result,
                           None if progress is None else progress.advance)
    finally:
        if progress is not None:
            progress.close()
    results.sort(key=lambda r: r[0])
    scores = np.array([r[2] for r in results])
    return HoldoutEstimate(
        scores=scores, mean=float(scores.mean()),
        std=float(scores.std(ddof=1)) if len(scores) > 1 else 0.0,
        fits=tuple(r[1] for r in results), folds=tuple(data.folds),
        seconds=tuple(r[3] for r in results), scoring=name)
