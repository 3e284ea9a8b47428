"""Choosing hyperparameters (tuning) and models (model selection) by hold-out score."""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import fields
from typing import Any, Sequence

import numpy as np

from archfit import _parallel, _scoring
from archfit._validation import check_int
from archfit.distributions import Choice, Distribution
from archfit.fit_model import FitModel
from archfit.fitting import fit
from archfit._progress import FitsProgress, metric_name
from archfit.estimation import (Data, FoldFitter, check_models, checkpoint_folder, run_fits,
                                checkpoint_path)
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model
from archfit.preprocessing import Preprocessing

SEARCHES = ("grid", "random", "halving")


class Selection:
    """The outcome of :func:`select`.

    Attributes
    ----------
    best : FitModel or None
        The best candidate refit on all the data (None with ``refit=False``).
    best_model : Model
    best_hyperparameters : Hyperparameters
    best_index : int
        Row of ``table`` that won.
    best_score : float
        Its mean hold-out score.
    table : list of dict
        One row per candidate: ``candidate``, ``model`` (index into the
        candidate models), ``params`` (the searched values), ``scores`` (per
        fold), ``mean_score``, ``std_score``, ``fit_seconds``, ``epochs``,
        ``rank`` and, for halving, ``rounds`` (``(epochs, mean_score)`` per
        round the candidate took part in).
    scoring : str
    """

    def __init__(self, table, models, hyperparameters, best_index, best, scoring, space):
        self.table = table
        self.models = models
        self.best_index = best_index
        self.best_model = models[table[best_index]["model"]]
        self.best_hyperparameters = hyperparameters[best_index]
        self.best_score = table[best_index]["mean_score"]
        self.best = best
        self.scoring = scoring
        self.space = space

    def __repr__(self):
        return (f"Selection({len(self.table)} candidates, best {self.scoring} "
                f"{self.best_score:.4f} with {self.table[self.best_index]['params']})")

    def plot(self, path) -> str:
        """Plot mean hold-out score (± one standard deviation over folds) against
        each searched hyperparameter, and against the candidate model when there
        are several, to a PNG file. Needs matplotlib (``pip install matplotlib``).
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("Selection.plot needs matplotlib: pip install matplotlib") from None
        axes_names = list(self.space) + (["model"] if len(self.models) > 1 else [])
        if not axes_names:
            axes_names = ["candidate"]
        fig = Figure(figsize=(4.2 * len(axes_names), 3.4), layout="constrained")
        FigureCanvasAgg(fig)
        means = np.array([row["mean_score"] for row in self.table])
        stds = np.array([row["std_score"] for row in self.table])
        model_of = np.array([row["model"] for row in self.table])
        model_names = ["-".join(map(str, m.architecture.sizes)) for m in self.models]
        for i, name in enumerate(axes_names):
            ax = fig.add_subplot(1, len(axes_names), i + 1)
            if name == "model":
                x = model_of.astype(float)
                ax.set_xticks(range(len(model_names)), model_names, rotation=20)
            elif name == "candidate":
                x = np.arange(len(self.table), dtype=float)
            else:
                values = [row["params"][name] for row in self.table]
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                    x = np.array(values, dtype=float)
                    if (x > 0).all() and x.max() / x.min() >= 10:
                        ax.set_xscale("log")
                else:
                    labels = sorted({repr(v) for v in values})
                    x = np.array([labels.index(repr(v)) for v in values], dtype=float)
                    ax.set_xticks(range(len(labels)), labels, rotation=20)
            for m in np.unique(model_of):
                sel = model_of == m
                label = model_names[m] if len(self.models) > 1 else None
                ax.errorbar(x[sel], means[sel], yerr=stds[sel], fmt="o", alpha=0.75,
                            capsize=3, label=label)
            best = self.best_index
            ax.plot([x[best]], [means[best]], "r*", markersize=14, label="best")
            ax.set_xlabel(name)
            ax.set_ylabel(f"hold-out {self.scoring}")
            ax.grid(alpha=0.3)
        fig.axes[0].legend(loc="best")
        fig.savefig(path, dpi=100)
        return str(path)


def _check_space(space, base: Hyperparameters, n_models: int, search: str) -> dict[str, Any]:
    if not isinstance(space, dict):
        raise TypeError("space must be a dict mapping Hyperparameters field names to "
                        "lists of values or distributions")
    names = {f.name for f in fields(Hyperparameters)}
    unknown = [k for k in space if k not in names]
    if unknown:
        raise ValueError(f"space has unknown hyperparameter name(s) {unknown}; "
                         f"valid names are {sorted(names)}")
    if not space and n_models == 1:
        raise ValueError("space is empty and there is a single candidate model: nothing to select")
    checked = {}
    for name, values in space.items():
        if isinstance(values, Distribution):
            bounds = (values.values if isinstance(values, Choice)
                      else [values.low, values.high])
            for v in bounds:
                base.replace(**{name: v})   # raises naming the field if out of range
            checked[name] = values
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"space[{name!r}] must be a list of values or a distribution")
        if len(values) == 0:
            raise ValueError(f"space[{name!r}] is an empty list")
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        for v in values:
            base.replace(**{name: v})
        checked[name] = values
    if search == "halving" and "epochs" in checked:
        raise ValueError("successive halving uses epochs as its budget: remove 'epochs' from "
                         "space and set the full budget with base.epochs")
    return checked


def _candidates(space, n_models, search, n_candidates, rng):
    """List of (model_index, params dict)."""
    lists = all(not isinstance(v, Distribution) or isinstance(v, Choice) for v in space.values())
    if search == "grid" or (search == "halving" and lists and n_candidates is None):
        if not lists:
            raise ValueError("grid search needs lists of values; use search='random' for "
                             "distributions")
        keys = list(space)
        grids = [space[k].values if isinstance(space[k], Choice) else space[k] for k in keys]
        return [(m, dict(zip(keys, combo)))
                for m in range(n_models) for combo in itertools.product(*grids)]
    n_candidates = 10 if n_candidates is None else n_candidates
    out = []
    for _ in range(n_candidates):
        m = int(rng.integers(n_models))
        params = {}
        for k, v in space.items():
            if isinstance(v, Distribution):
                params[k] = v.sample(rng)
            else:
                params[k] = v[int(rng.integers(len(v)))]
        out.append((m, params))
    return out


def select(candidates: Model | list[Model], X, y, space: dict[str, Any], *,
           base: Hyperparameters | None = None, cv: int | None = None,
           validation_fraction: float | None = None, search: str = "grid",
           n_candidates: int | None = None, n_jobs: int | None = None, refit: bool = True,
           scoring=None, seed: int | None = None, halving_factor: int = 2,
           sample_weight=None, classes=None, verbose: bool = False,
           checkpoint=None, preprocessing: Preprocessing | None = None) -> Selection:
    """Choose a model and hyperparameters by an estimate of hold-out score.

    Choosing among architectures is model selection and choosing among
    hyperparameters is tuning; both are done by the same estimate.

    Parameters
    ----------
    candidates : Model or list of Model
        Models to choose among; they must share input size and output head.
    X, y : the data, as for :func:`archfit.fit`
    space : dict
        Hyperparameters field name → list of values, or a distribution from
        :mod:`archfit.distributions` (``LogUniform``, ``Uniform``,
        ``IntUniform``, ``Choice``) for random search.
    base : Hyperparameters, optional
        Values of every field not in ``space``.
    cv : int, optional
        Folds of the estimate (5 unless ``validation_fraction`` is given);
        stratified for softmax outputs.
    validation_fraction : float, optional
        One split instead of folds.
    search : {"grid", "random", "halving"}
        ``grid``: every combination (lists only). ``random``: ``n_candidates``
        draws (default 10). ``halving``: successive halving with epochs as the
        budget: every candidate gets a small number of epochs, the best
        ``1/halving_factor`` continue - from their fit models, not from scratch -
        with ``halving_factor`` times the epochs, until the last round trains
        for ``base.epochs``. Its candidates are the grid when ``space`` holds
        only lists and ``n_candidates`` is None, else random draws.
    n_jobs : int, optional
        Fits run in parallel on threads (the kernels release the GIL), each with
        one BLAS thread; with joblib installed, ``joblib.parallel_config``
        chooses another backend (dask, ray) to run them on a cluster.
    refit : bool, default True
        Refit the winner on all the data (``Selection.best``).
    scoring : {"accuracy", "r2", "neg_loss"}, callable or None
        As in :func:`archfit.holdout`.
    seed : int, optional
        Seeds the folds and random draws; defaults to ``base.seed``.
    halving_factor : int, default 2
    sample_weight, classes : as for :func:`archfit.fit`
    verbose : bool
        A tqdm bar over the fits (done, time left, the best mean score) when
        tqdm is installed, and a line per finished candidate.
    checkpoint : str or path-like, optional
        An existing folder where every fit (each candidate on each fold, each
        halving round, the refit) keeps a checkpoint (see
        :func:`archfit.fit`): after a crash or Ctrl-C the same call does not
        refit finished candidates, resumes the interrupted ones, and gives the
        same table and best fit model.
    preprocessing : Preprocessing, optional
        For X a table: every fit (each fold's, the refit) refits its
        statistics on the rows it trains on (:func:`archfit.fit`).

    Returns
    -------
    Selection
        The same seed gives the same table and the same best fit model,
        whatever ``n_jobs``.
    """
    models = check_models(candidates)
    base = Hyperparameters() if base is None else base
    if not isinstance(base, Hyperparameters):
        raise TypeError("base must be a Hyperparameters")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    if n_candidates is not None:
        n_candidates = check_int(n_candidates, "n_candidates", minimum=1)
    halving_factor = check_int(halving_factor, "halving_factor", minimum=2)
    seed = base.seed if seed is None else check_int(seed, "seed", minimum=0)
    space = _check_space(space, base, len(models), search)
    name, scorer = _scoring.resolve(scoring, models[0].architecture.output)
    n_jobs = _parallel.effective_n_jobs(n_jobs)
    data = Data(models, X, y, sample_weight, classes, cv, validation_fraction, seed,
                preprocessing)
    rng = np.random.default_rng([seed, 0x5E1EC7])
    configs = _candidates(space, len(models), search, n_candidates, rng)
    hps = [base.replace(**params) for _, params in configs]

    folder = checkpoint_folder(checkpoint)
    fitter = FoldFitter(data, scorer, folder)
    progress = (FitsProgress(len(configs) * len(data.folds), metric_name(
        models[0].architecture.output) if name in ("accuracy", "r2") else name)
        if verbose else None)
    try:
        if search == "halving":
            rows = _halving(configs, hps, models, data, fitter, n_jobs, halving_factor, progress)
        else:
            rows = _evaluate_all(configs, hps, models, data, fitter, n_jobs, progress)
    finally:
        if progress is not None:
            progress.close()
    means = np.array([r["mean_score"] for r in rows])
    # rank: halving survivors first (a candidate eliminated early was judged on
    # less training), then by mean score; ties keep the earlier candidate.
    reached = np.array([len(r.get("rounds", [None])) for r in rows])
    order = sorted(range(len(rows)), key=lambda i: (-reached[i], -means[i], i))
    for rank, i in enumerate(order, 1):
        rows[i]["rank"] = rank
    best_index = order[0]
    best = None
    if refit:
        model = models[rows[best_index]["model"]]
        best = fit(model, data.X, data.y, hps[best_index], sample_weight=data.w,
                   classes=data.classes, preprocessing=data.preprocessing,
                   checkpoint=checkpoint_path(folder, model, hps[best_index], None, None))
        if data.feature_names is not None:
            best = best._with_training_data(dict(best.training_data,
                                                  feature_names=data.feature_names))
    return Selection(rows, models, hps, best_index, best, name, space)


def _row(index, config, scores, seconds, epochs):
    scores = [float(s) for s in scores]
    return {"candidate": index, "model": config[0], "params": dict(config[1]),
            "scores": scores, "mean_score": float(np.mean(scores)),
            "std_score": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "fit_seconds": float(sum(seconds)), "epochs": epochs}


def _say(progress, index, total, row):
    if progress is not None:
        progress.score(row["mean_score"])
        progress.say(f"[{index + 1}/{total}] model {row['model']} {row['params']}: "
                     f"{row['mean_score']:.4f} ± {row['std_score']:.4f} "
                     f"({row['fit_seconds']:.2f} s, {row['epochs']} epochs)")


def _evaluate_all(configs, hps, models, data, fitter, n_jobs, progress):
    n_folds = len(data.folds)
    tasks = [((c, f), models[configs[c][0]], hps[c], None, f)
             for c in range(len(configs)) for f in range(n_folds)]
    done: dict[int, list] = {}
    rows: dict[int, dict] = {}

    def on_result(result):
        (c, f), fitted, score, seconds = result
        if progress is not None:
            progress.fit_done((c, f))
        done.setdefault(c, []).append((f, score, seconds, fitted.n_epochs))
        if len(done[c]) == n_folds:
            parts = sorted(done.pop(c))
            rows[c] = _row(c, configs[c], [p[1] for p in parts], [p[2] for p in parts],
                           max(p[3] for p in parts))
            _say(progress, c, len(configs), rows[c])

    run_fits(fitter, tasks, n_jobs, on_result, None if progress is None else progress.advance)
    return [rows[c] for c in range(len(configs))]


def _halving(configs, hps, models, data, fitter, n_jobs, factor, progress):
    n_folds = len(data.folds)
    full = hps[0].epochs
    n_rounds = 1 + max(0, math.ceil(math.log(len(configs), factor) - 1e-9))
    budgets = []
    for r in range(n_rounds):
        e = max(1, round(full / factor ** (n_rounds - 1 - r)))
        budgets.append(max(e, budgets[-1] + 1 if budgets else 1))
    budgets = [min(b, full) for b in budgets]
    fits: dict[int, list] = {c: [None] * n_folds for c in range(len(configs))}
    seconds = {c: 0.0 for c in range(len(configs))}
    rows: dict[int, dict] = {}
    alive = list(range(len(configs)))
    trained = 0
    for r, budget in enumerate(budgets):
        extra = budget - trained
        if extra > 0:
            tasks = [((c, f), models[configs[c][0]], hps[c].replace(epochs=extra),
                      fits[c][f], f) for c in alive for f in range(n_folds)]
            if progress is not None:
                progress.add(len(tasks) if r else 0)
            results = run_fits(fitter, tasks, n_jobs,
                               None if progress is None else lambda r: progress.fit_done(r[0]),
                               None if progress is None else progress.advance)
            scores: dict[int, list] = {c: [None] * n_folds for c in alive}
            for (c, f), fitted, score, secs in results:
                fits[c][f] = fitted
                scores[c][f] = score
                seconds[c] += secs
            for c in alive:
                row = _row(c, configs[c], scores[c], [seconds[c]], budget)
                row["rounds"] = rows[c]["rounds"] + [(budget, row["mean_score"])] if c in rows \
                    else [(budget, row["mean_score"])]
                rows[c] = row
            trained = budget
        if r < len(budgets) - 1:
            keep = max(1, math.ceil(len(alive) / factor))
            ranked = sorted(alive, key=lambda c: (-rows[c]["mean_score"], c))
            for c in ranked[keep:]:
                _say(progress, c, len(configs), rows[c])
                fits[c] = [None] * n_folds   # free the eliminated candidates' fits
            alive = sorted(ranked[:keep])
    for c in alive:
        _say(progress, c, len(configs), rows[c])
    return [rows[c] for c in range(len(configs))]
