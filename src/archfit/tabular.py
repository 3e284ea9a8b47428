"""The tabular learner: many networks with sampled settings, trained as
populations, stopped early, and averaged as ensemble selection chooses.

``fit_tabular(X, y)`` takes a table as it comes (text, categories, dates,
missing cells), and returns an :class:`~archfit.Ensemble` that carries the
table's :class:`~archfit.preprocessing.Preprocessing` and the record of how it was built.

How (TabM and TabPack's recipe, on archfit's populations):

1. a validation split (``validation=``, or a stratified fifth of the rows);
2. the preprocessing fitted on the training rows (robust scaling with smooth
   clipping, indicators for missing numbers, vocabularies), by sample weight;
3. ``n_members`` networks whose architectures and hyperparameters are drawn
   from :data:`~archfit.tabular.SPACE`; members of one architecture train as one population
   (one kernel call per epoch), each with its own learning rate, weight decay,
   dropout and seed, each stopped early on the validation split at its best
   epoch;
4. bagged ensemble selection (:func:`archfit.ensemble_selection.bagged`) on the
   validation predictions, redone as each population finishes: the members
   chosen, with weights, form the ensemble.

The ranges of :data:`~archfit.tabular.SPACE` and the defaults were chosen on the development
suite of ``benchmarks/tabular.py``; its record holds the figures.
"""
from __future__ import annotations

import math
import time

import numpy as np

from archfit._targets import class_labels
from archfit._validation import as_sample_weight, check_float, check_int
from archfit.architecture import Architecture
from archfit.ensemble import Ensemble, log_targets
from archfit.ensemble_selection import bagged
from archfit.folds import validation_split
from archfit.hyperparameters import PRECISIONS, Hyperparameters
from archfit.io import looks_categorical
from archfit.layers import Dense, Embedding, OneHot, PiecewiseLinear
from archfit.model import Model
from archfit.preprocessing import Preprocessing
from archfit.tables import n_rows, take_rows

TASKS = ("auto", "classification", "regression")

# Where members' settings are drawn from: (low, high) ranges, uniform unless
# marked log-uniform (a third number is a step), and choices drawn with the
# probabilities given. Chosen on benchmarks/tabular.py's development suite
# (benchmarks/RESULTS.md): narrower networks and no periodic embeddings or
# BatchEnsemble inside members kept the accuracy at a third of the time.
SPACE = {
    "numeric_embedding": {"piecewise_linear": 0.7, "none": 0.3},
    "n_bins": (16, 64),                     # piecewise-linear bins per feature
    "embedding_dim": (8, 24),               # numbers per numeric feature
    "category_encoding": {"embedding": 0.5, "one_hot": 0.5},
    "category_dim": (4, 16),                # numbers per category (embedding)
    "depth": (1, 3),                        # hidden Dense layers
    "width": (64, 256, 64),                 # units per hidden layer (a multiple of 64)
    "activation": {"relu": 0.7, "gelu": 0.3},
    "learning_rate": (5e-4, 5e-3, "log"),
    "weight_decay": (1e-5, 3e-2, "log"),    # AdamW's decoupled decay
    "dropout": (0.0, 0.3),                  # classification; regression: none
}
# Numbers per row the embeddings give the first Dense layer, about (per kind).
EMBEDDED_INPUTS = 256
# Members sharing one architecture (one population).
PER_ARCHITECTURE = 4
# Early stopping: epochs without improvement of the validation loss.
PATIENCE = 12
# Epochs a member may run, at most.
MAX_EPOCHS = 200


def fit_tabular(X, y, *, validation=None, time_budget: float | None = None,
                n_members: int = 12, seed: int = 0, sample_weight=None, categorical=(),
                task: str = "auto", validation_fraction: float = 0.2,
                target_transform: str | None = None, n_threads: int | None = None,
                precision: str = "float32", verbose: bool = False) -> Ensemble:
    """Fit an ensemble of networks to a table.

    Parameters
    ----------
    X : table or array
        A pandas DataFrame, pyarrow Table, dict of columns or 2-D array;
        text, categorical, boolean, date and missing cells are encoded (see
        :class:`~archfit.preprocessing.Preprocessing`).
    y : array-like (n_samples,) or (n_samples, n_outputs)
        Class labels, or values for regression.
    validation : tuple (X_val, y_val) or (X_val, y_val, w_val), optional
        Rows for early stopping and ensemble selection; default:
        ``validation_fraction`` of the rows (stratified by class), which then
        do not train.
    time_budget : float, optional
        Seconds: populations not begun by then are skipped, and those
        training stop at their best epoch so far. None: no limit.
    n_members : int, default 12
        Networks trained (the ensemble holds those selection chooses).
    seed : int, default 0
        Seeds the split, the draws from :data:`~archfit.tabular.SPACE`, and every member.
    sample_weight : array-like (n_samples,), optional
        Weights of the rows: of the preprocessing's statistics, the
        training losses and the validation losses alike.
    categorical : sequence of str
        Columns to read as categories whatever their cells.
    task : {"auto", "classification", "regression"}
        "auto": classification for text, booleans, or integers with at most
        20 distinct values; regression otherwise.
    validation_fraction : float in (0, 1), default 0.2
        Without ``validation``: the share of rows held out for it.
    target_transform : {None, "log"}
        Regression only: ``"log"`` fits log(y) (y must be positive) and
        predicts exp of the members' weighted mean, for prices and other
        quantities whose errors are relative; the validation figures are then
        in log units.
    n_threads : int, optional
        Threads sharing the members; the result does not depend on it.
    precision : {"float32", "bfloat16"}, default "float32"
        The members' ``Hyperparameters.precision``: ``"bfloat16"`` runs their
        dense products on a CPU's bfloat16 arithmetic (AMX, AVX512_BF16).
    verbose : bool
        Show progress: members trained, the ensemble's validation score, the
        time left.

    Returns
    -------
    Ensemble
        With ``preprocessing`` and a ``record``: the task, the settings,
        every member's draw, epochs and validation loss, and the selection.
    """
    started = time.perf_counter()
    n_members = check_int(n_members, "n_members", minimum=1, maximum=1024)
    seed = check_int(seed, "seed", minimum=0)
    if time_budget is not None:
        time_budget = check_float(time_budget, "time_budget", low=0.0, low_open=True)
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if isinstance(categorical, str):
        raise TypeError("categorical must be a sequence of column names")
    validation_fraction = check_float(validation_fraction, "validation_fraction", low=0.0,
                                      high=1.0, low_open=True, high_open=True)
    if target_transform not in (None, "log"):
        raise ValueError(f"target_transform must be None or 'log', got {target_transform!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    data = _Data.of(X, y, validation, sample_weight, categorical, task, seed,
                    validation_fraction, target_transform)
    draws = _draws(n_members, seed, data)
    progress = _Progress(n_members, data.task, verbose, time_budget)
    deadline = None if time_budget is None else started + time_budget
    fits, predictions, records = [], [], []
    counts, order, loss, score = None, [], math.inf, math.nan
    for group in _by_architecture(draws):
        if deadline is not None and time.perf_counter() > deadline and fits:
            break
        members = _train(group, data, n_threads, deadline, progress, precision)
        for draw, fm in zip(group, members):
            fits.append(fm)
            predictions.append(data.validation_predictions(fm))
            records.append(_member_record(draw, fm))
        counts, order, loss = bagged(predictions, data.task, data.val_targets, data.val_weights,
                                     seed=seed)
        score = data.score_of(counts, predictions)
        progress.selected(len(fits), score)
    progress.close()
    chosen = [k for k in range(len(fits)) if counts[k] > 0]
    members = [fits[k]._with_preprocessing(data.preprocessing) for k in chosen]
    record = {
        "learner": "fit_tabular", "task": data.task, "seed": seed, "n_members": n_members,
        "trained": len(fits), "time_budget": time_budget,
        "seconds": round(time.perf_counter() - started, 3),
        "space": {k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()})
                  for k, v in SPACE.items()},
        "members": records, "chosen": chosen, "selection_order": order,
        "validation_loss": loss, "validation_score": score,
        "target_transform": target_transform, "precision": precision,
    }
    return Ensemble(members, counts[chosen], record, target_transform)


# ---- the data, once ------------------------------------------------------------------------
class _Data:
    """The training and validation rows as the networks read them, their
    targets, and the task's head."""

    @classmethod
    def of(cls, X, y, validation, sample_weight, categorical, task, seed, fraction,
           transform=None):
        self = cls()
        y = np.asarray(y)
        if y.ndim not in (1, 2) or len(y) == 0:
            raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_outputs), got "
                             f"{y.shape}")
        n = n_rows(X)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} rows, X has {n}")
        if task == "auto":
            task = "classification" if y.ndim == 1 and _looks_categorical(y) else "regression"
        if task == "classification" and y.ndim != 1:
            raise ValueError("classification takes one label per row: y of shape (n_samples,)")
        if transform is not None and task != "regression":
            raise ValueError("target_transform is for regression")
        self.task = task
        w = as_sample_weight(sample_weight, n, np.dtype(np.float64))
        if task == "classification":
            self.classes = class_labels(y, "y")
            if len(self.classes) < 2:
                raise ValueError("y holds one class only; classification needs two or more")
        else:
            y = np.asarray(y, dtype=np.float64)
            if not np.isfinite(y).all():
                raise ValueError("y contains NaN or infinite values")
            self.classes = None
        if validation is None:
            labels = y if task == "classification" else None
            train, val = validation_split(n, fraction, seed, labels)
            Xt, yt, Xv, yv = take_rows(X, train), y[train], take_rows(X, val), y[val]
            wt = None if w is None else w[train]
            wv = None if w is None else w[val]
        else:
            if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
                raise TypeError("validation must be a tuple (X_val, y_val) or "
                                "(X_val, y_val, w_val)")
            Xt, yt, wt = X, y, w
            Xv, yv = validation[0], np.asarray(validation[1])
            if task == "regression":
                yv = np.asarray(yv, dtype=np.float64)
            if len(yv) != n_rows(Xv):
                raise ValueError(f"validation y has {len(yv)} rows, validation X has "
                                 f"{n_rows(Xv)}")
            wv = (as_sample_weight(validation[2], len(yv), np.dtype(np.float64))
                  if len(validation) == 3 else None)
        if transform == "log":
            yt, yv = log_targets(yt), log_targets(yv)
        self.preprocessing = Preprocessing.fit(Xt, sample_weight=wt, categorical=categorical)
        self.X = self.preprocessing.transform(Xt)
        self.X_val = self.preprocessing.transform(Xv, "validation X")
        self.y, self.w, self.y_val, self.val_weights = yt, wt, yv, wv
        self.n_outputs = len(self.classes) if task == "classification" else (
            1 if y.ndim == 1 else y.shape[1])
        if task == "classification":
            unknown = np.setdiff1d(np.unique(yv), self.classes)
            if len(unknown):
                raise ValueError(f"validation y holds labels absent from y: {unknown[:5]}")
            self.val_targets = np.searchsorted(self.classes, yv)
        else:
            self.val_targets = yv.reshape(len(yv), -1)
        return self

    @property
    def inputs(self):
        return self.preprocessing.inputs

    def validation_predictions(self, fm) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(fm.predict_proba(self.X_val), dtype=np.float64)
        return np.asarray(fm.predict(self.X_val), dtype=np.float64).reshape(len(self.X_val), -1)

    def score_of(self, counts, predictions) -> float:
        """The selected average's validation accuracy, or its RMSE."""
        average = np.tensordot(counts / counts.sum(), np.stack(predictions), axes=1)
        w = self.val_weights
        if self.task == "classification":
            right = (np.argmax(average, axis=1) == self.val_targets).astype(np.float64)
            return float(right.mean() if w is None else w @ right / w.sum())
        rows = ((average - self.val_targets) ** 2).mean(axis=1)
        return float(math.sqrt(rows.mean() if w is None else w @ rows / w.sum()))


def _looks_categorical(y: np.ndarray) -> bool:
    """io.looks_categorical's rule; cells of other kinds (dates) as objects."""
    return looks_categorical(y if y.dtype.kind in "biufUSO" else y.astype(object))


# ---- members' settings -----------------------------------------------------------------------
def _draw(rng, name):
    spec = SPACE[name]
    if isinstance(spec, dict):
        choices = list(spec)
        return choices[rng.choice(len(choices), p=np.array(list(spec.values())))]
    if len(spec) == 3 and spec[2] == "log":
        return float(math.exp(rng.uniform(math.log(spec[0]), math.log(spec[1]))))
    if isinstance(spec[0], int):
        step = spec[2] if len(spec) == 3 else 1
        return int(rng.integers(spec[0] // step, spec[1] // step + 1) * step)
    return float(rng.uniform(spec[0], spec[1]))


def _draws(n_members: int, seed: int, data) -> list[dict]:
    """Each member's settings: architectures drawn once per PER_ARCHITECTURE
    members, the fitting's per member."""
    rng = np.random.default_rng([seed, 0x7AB])
    draws, shape = [], None
    numeric, categorical = data.inputs.numeric, len(data.inputs.categorical)
    for k in range(n_members):
        if k % PER_ARCHITECTURE == 0:
            shape = {name: _draw(rng, name) for name in (
                "numeric_embedding", "n_bins", "embedding_dim", "category_encoding",
                "category_dim", "depth", "width", "activation")}
            if numeric == 0:
                shape["numeric_embedding"] = "none"
            # a wide table gets narrower embeddings: the first layer's inputs stay
            # near EMBEDDED_INPUTS, whose product with the width sets a step's cost
            if numeric:
                shape["embedding_dim"] = max(2, min(shape["embedding_dim"],
                                                    EMBEDDED_INPUTS // numeric))
            if categorical:
                shape["category_dim"] = max(2, min(shape["category_dim"],
                                                   EMBEDDED_INPUTS // categorical))
            shape["architecture"] = k // PER_ARCHITECTURE
        fitting = {name: _draw(rng, name) for name in ("learning_rate", "weight_decay",
                                                        "dropout")}
        if data.task == "regression":
            # dropout's noise left regression members far from their best (diamonds:
            # validation losses 2-8 times a member's without; RESULTS.md); drawn all
            # the same, so the other draws stay put
            fitting["dropout"] = 0.0
        draws.append(dict(shape, **fitting, seed=int(rng.integers(2**31)),
                          numeric=numeric, categorical=categorical))
    return draws


def _by_architecture(draws):
    groups: dict[int, list] = {}
    for d in draws:
        groups.setdefault(d["architecture"], []).append(d)
    return list(groups.values())


def architecture_of(draw: dict, inputs, task: str, n_outputs: int) -> Architecture:
    """The architecture a member's draw describes."""
    layers = []
    if draw["numeric_embedding"] == "piecewise_linear":
        layers.append(PiecewiseLinear(draw["n_bins"], draw["embedding_dim"]))
    if inputs.categorical:
        layers.append(OneHot() if draw["category_encoding"] == "one_hot"
                      else Embedding(draw["category_dim"]))
    layers += [Dense(draw["width"], draw["activation"]) for _ in range(draw["depth"])]
    layers.append(Dense(n_outputs))
    return Architecture(inputs=inputs, layers=layers,
                        output="softmax" if task == "classification" else "linear")


def _batch_size(n: int) -> int:
    """Rows per step: about n / 128 as a power of two, from 64 to 1,024.
    Smaller tables take more steps an epoch and so need fewer epochs (with
    a floor of 256 instead, a member of a 300-row table took two steps an
    epoch)."""
    return int(min(1024, max(64, 2 ** round(math.log2(max(n, 1) / 128)))))


def _train(group, data, n_threads, deadline, progress, precision="float32"):
    """One population: the group's members, trained together."""
    arch = architecture_of(group[0], data.inputs, data.task, data.n_outputs)
    model = Model(arch)
    hps = [Hyperparameters(optimizer="adamw", learning_rate=d["learning_rate"],
                           l2=d["weight_decay"], dropout=d["dropout"], seed=d["seed"],
                           batch_size=_batch_size(len(data.X)), epochs=MAX_EPOCHS,
                           early_stopping=True, patience=PATIENCE, restore_best=True,
                           standardize_targets=data.task == "regression",
                           precision=precision)
           for d in group]
    validation = ((data.X_val, data.y_val) if data.val_weights is None
                  else (data.X_val, data.y_val, data.val_weights))

    def callback(k, record):
        progress.epoch(record)
        return deadline is not None and time.perf_counter() > deadline

    from archfit.population import fit_many
    members = fit_many(model, data.X, data.y, hps, validation=validation,
                       sample_weight=data.w, classes=data.classes, callback=callback,
                       n_threads=n_threads)
    progress.trained(len(members))
    return members


def _member_record(draw: dict, fm) -> dict:
    history = fm.history
    best = min(history, key=lambda h: h.get("validation_loss", math.inf))
    return dict({k: v for k, v in draw.items() if k not in ("numeric", "categorical")},
                epochs=len(history), best_epoch=best["epoch"],
                validation_loss=best.get("validation_loss"),
                validation_score=best.get("validation_score"))


# ---- progress -----------------------------------------------------------------------------
class _Progress:
    """Members trained, the ensemble's validation score and the time left:
    a tqdm bar when tqdm is installed, else a line per population."""

    def __init__(self, total: int, task: str, verbose: bool, budget):
        self.verbose, self.total, self.done = verbose, total, 0
        self.metric = "accuracy" if task == "classification" else "RMSE"
        self.started, self.budget = time.perf_counter(), budget
        self.bar = None
        if verbose:
            from archfit._progress import _Bar
            self.bar = _Bar(total, "member")

    def epoch(self, record) -> None:
        if self.bar is not None and self.bar.bar is not None:
            self.bar.bar.set_postfix_str(f"epoch {record['epoch']}", refresh=False)

    def trained(self, k: int) -> None:
        self.done += k
        if self.bar is not None and self.bar.bar is not None:
            self.bar.bar.update(k)

    def selected(self, n: int, score: float) -> None:
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else math.nan
        if self.budget is not None:
            left = min(left, max(0.0, self.budget - elapsed))
        text = f"ensemble of {n} trained: validation {self.metric} {score:.4g}"
        if self.bar is not None and self.bar.bar is not None:
            self.bar.bar.set_postfix_str(text)
        else:
            import sys
            print(f"{self.done}/{self.total} members, {text}, about {left:.0f} s left",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
