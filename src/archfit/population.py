"""Many fits of one model at once: ``fit_many(model, X, y, hyperparameters) -> [FitModel]``.

A *population* is K fits that share the architecture, the dtype, the
optimizer kind and the batch size, and may differ in everything else: the
seed (so the initial θ and the shuffles), the learning rate and its schedule,
L2, dropout, momentum, the number of epochs, early stopping, the training rows
and the validation set. One kernel call runs an epoch of every member still
training (``kernels.Population``); each member's result is bit for bit what
``fit`` returns for it.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from archfit import _threads
from archfit._memory import reserve
from archfit._progress import PopulationProgress
from archfit._streaming import FileRows, features
from archfit._sparse import SparseRows
from archfit._validation import by_name, check_int, feature_names
from archfit.fit_model import FitModel, _checked_preprocessing
from archfit.fitting import DivergenceError, _Epochs, _encoding, _prepare, _run_epoch, _trainer
from archfit.hyperparameters import Hyperparameters
from archfit.kernels import Population, Status
from archfit.model import Model
from archfit.preprocessing import Preprocessing
from archfit.tables import n_rows, take_rows

# Settings every member of a population shares (besides the model): one step
# of every member has the same shape.
SHARED_SETTINGS = ("optimizer", "batch_size", "precision")


def fit_many(model: Model | Sequence[Model], X, y,
             hyperparameters: Hyperparameters | Sequence[Hyperparameters] | None = None, *,
             rows=None, validation=None, sample_weight=None, init=None, classes=None,
             callback: Callable[[int, dict[str, Any]], bool | None] | None = None,
             n_threads: int | None = None, verbose: bool = False,
             preprocessing: Preprocessing | None = None) -> list[FitModel]:
    """Fit K members together; member k's result equals
    ``fit(model[k], X[rows[k]], y[rows[k]], hyperparameters[k], ...)`` bit for bit.

    Every argument that may differ between members takes either one value,
    shared by all, or a list with one value per member; K is the length of
    the lists (they must agree), or 1.

    Parameters
    ----------
    model : Model or list of Model
        (A list always means one value per member, in every argument.)
        Members of one model (architecture, dtype, loss) that share
        ``optimizer``, ``batch_size`` and ``precision`` train as one population, one kernel
        call per epoch for all of them; members of other models or settings
        form populations of their own, trained one after another.
    X, y : the data, as for :func:`archfit.fit`
        One X shared by every member: with ``rows``, dense X in memory is not
        copied per member.
    hyperparameters : Hyperparameters or list of Hyperparameters
        Anything may differ, the seed included (``"lbfgs"`` is not a
        mini-batch optimizer: use :func:`archfit.fit`); members that differ
        in ``optimizer``, ``batch_size`` or ``precision`` train in different populations.
    rows : list of array-like of int, optional
        Member k trains on rows ``rows[k]`` of X and y (folds, bootstrap
        samples; repeats allowed), in that order.
    validation : tuple or list, optional
        One validation set, a tuple ``(X_val, y_val[, w_val])``, for all; or
        a list of them (or None) with one per member.
    sample_weight : array-like of shape (n_samples,), optional
        Weights of X's rows (with ``rows``, each member takes its rows').
    init : FitModel, array, or list of them (or None) per member, optional
        Starting points, as ``fit``'s ``init`` (None: ``model.init(seed)``).
    classes : array-like, optional
        All class labels of a softmax model.
    callback : callable, optional
        Called after every epoch of every member as ``callback(k, record)``;
        True stops member k.
    n_threads : int, optional
        Threads sharing the members (each member's epoch runs on one; the
        result does not depend on it). Default: the largest of the members'
        ``n_threads``, or BLAS's thread limit.
    verbose : bool
        Show progress: a tqdm bar over each population's epochs when tqdm
        is installed (else a line per epoch) with the members still
        training, their mean training loss and the best validation score; at
        the end, how many members stopped early.
    preprocessing : Preprocessing, optional
        For X a table (and validation sets of the same columns): each
        member gets the preprocessing's statistics refit on the rows it
        trains on, weighted, as ``fit(..., preprocessing=)`` does for one fit,
        so a fold's held-out rows never shape its scaling or vocabularies.
        A member whose ``init`` is a fit model keeps that model's own.

    Returns
    -------
    list of FitModel
        One per member, in order. A member whose early stopping ends it stops
        updating while the others go on.

    Raises
    ------
    TypeError, ValueError
        For invalid input or members that cannot share a population (the
        message names the first difference), before any kernel runs.
    DivergenceError
        When a member diverges; ``member`` is its index and ``fit_models``
        holds every member's fit after its last complete epoch (None for the
        members of populations not begun).
    KeyboardInterrupt
        On Ctrl-C, between two mini-batches; ``fit_models`` holds every
        member's fit after its last complete epoch (None for the members of
        populations not begun).
    """
    models, hps, rows, validation, init, K = _members(model, hyperparameters, rows, validation,
                                                      init)
    encodings = [None] * K
    if preprocessing is not None or any(_own_preprocessing(i) for i in init):
        X, y, rows, validation, sample_weight, encodings = _encoded(
            models, hps, preprocessing, init, X, y, rows, validation, sample_weight, classes)
    return _fit_many(models, hps, X, y, rows, validation, init, sample_weight, classes, callback,
                     n_threads, verbose, encodings)


def _fit_many(models, hps, X, y, rows, validation, init, sample_weight, classes, callback,
              n_threads, verbose, encodings) -> list[FitModel]:
    """fit_many on its members' lists; X numbers (a table encoded, member
    k's by ``encodings[k]``)."""
    K = len(models)
    groups = _groups(models, hps)
    if len(groups) > 1:
        return _fit_groups(groups, models, hps, X, y, rows, validation, init, sample_weight,
                           classes, callback, n_threads, verbose, encodings)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    if n_threads is not None:
        n_threads = check_int(n_threads, "n_threads", minimum=1)
    first = models[0]
    names = feature_names(X)
    fitted_names = {tuple(i.feature_names) for i in init
                    if isinstance(i, FitModel) and i.feature_names is not None}
    if names is not None and fitted_names:
        if len(fitted_names) > 1:
            raise ValueError("init: the members' starting fits name their features differently")
        names = list(next(iter(fitted_names)))
        X = by_name(X, names)
    X = features(X, first.architecture.n_inputs, first.dtype,
                 sparse=all(m.architecture.reads_sparse for m in models),
                 categorical=first.architecture.inputs.categorical)
    n = X.shape[0]
    y_all = y if rows is None else np.asarray(y)
    if rows is not None and y_all.shape[:1] != (n,):
        raise ValueError(f"y has {y_all.shape[:1] or 'no'} rows, X has {n} samples")
    _wrap_rows(rows, n)
    w_all = None if sample_weight is None else np.asarray(sample_weight)
    if rows is not None and w_all is not None and w_all.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w_all.shape}")

    preps = []
    for k in range(K):
        r = None if rows is None else rows[k]
        try:
            preps.append(_prepare(
                models[k], X, y_all if r is None else y_all[r], hps[k], validation[k], init[k],
                w_all if r is None or w_all is None else w_all[r], classes, rows=r,
                checked=True, names=names, encoded=encodings[k]))
        except (TypeError, ValueError) as error:
            raise type(error)(f"member {k}: {error}") from None
    return _Run(preps, callback, n_threads, verbose).go()


def _listed(value, name: str) -> list | None:
    """`value` as a list of per-member values, or None when it is one shared value."""
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{name} is an empty list: give one value per member")
        return value
    return None


def _members(model, hyperparameters, rows, validation, init):
    # A list holds one value per member; anything else is shared (a tuple
    # is one validation set; θ to start from is an array).
    lists = {"model": _listed(model, "model"),
             "hyperparameters": _listed(hyperparameters, "hyperparameters"),
             "validation": _listed(validation, "validation"), "init": _listed(init, "init")}
    if rows is not None:
        if not isinstance(rows, list) or not rows:
            raise TypeError("rows must be a non-empty list of row-index arrays, one per member")
        lists["rows"] = rows
    sizes = {name: len(v) for name, v in lists.items() if v is not None}
    K = max(sizes.values(), default=1)
    for name, size in sizes.items():
        if size != K:
            other = next(m for m, s in sizes.items() if s == K)
            raise ValueError(f"{name} has {size} members, {other} has {K}")

    def each(name, value):
        return lists[name] if lists.get(name) is not None else [value] * K

    models = each("model", model)
    hps = [Hyperparameters() if h is None else h
           for h in each("hyperparameters", hyperparameters)]
    for k, (m, h) in enumerate(zip(models, hps)):
        if not isinstance(m, Model):
            raise TypeError(f"model of member {k} must be a Model, got {type(m).__name__}")
        if not isinstance(h, Hyperparameters):
            raise TypeError(f"hyperparameters of member {k} must be a Hyperparameters, got "
                            f"{type(h).__name__}")
    for k, h in enumerate(hps):
        if h.optimizer == "lbfgs":
            raise ValueError(f"member {k}: optimizer='lbfgs' is not a mini-batch optimizer; "
                             "fit it with archfit.fit")
    member_rows = None
    if rows is not None:
        member_rows = [_row_index(r, k) for k, r in enumerate(lists["rows"])]
    return (models, hps, member_rows, each("validation", validation), each("init", init), K)


def _groups(models: list[Model], hps: list[Hyperparameters]) -> list[list[int]]:
    """The members' indices, grouped into populations: members of one model
    with the same SHARED_SETTINGS, in order of first appearance."""
    groups: dict = {}
    for k, (m, h) in enumerate(zip(models, hps)):
        key = (m, *(getattr(h, name) for name in SHARED_SETTINGS))
        groups.setdefault(key, []).append(k)
    return list(groups.values())


def _fit_groups(groups, models, hps, X, y, rows, validation, init, sample_weight, classes,
                callback, n_threads, verbose, encodings) -> list[FitModel]:
    """fit_many of each group in turn (each a population), results in the
    members' order; an error names the member by its index among all."""
    results: list = [None] * len(models)
    for group in groups:
        def pick(values):
            return None if values is None else [values[k] for k in group]

        def relay(k, record, group=group):
            return callback(group[k], record)
        try:
            fitted = _fit_many(pick(models), pick(hps), X, y, pick(rows), pick(validation),
                               pick(init), sample_weight, classes,
                               None if callback is None else relay, n_threads, verbose,
                               pick(encodings))
        except (DivergenceError, KeyboardInterrupt) as error:
            partial = getattr(error, "fit_models", None)
            if partial is not None:
                for k, fit_model in zip(group, partial):
                    results[k] = fit_model
                error.fit_models = results
            if isinstance(error, DivergenceError) and getattr(error, "member", None) is not None:
                error.member = group[error.member]
            raise
        except (TypeError, ValueError) as error:
            # "member j: ..." of the group means member group[j] of all
            text = str(error)
            for j in range(len(group) - 1, -1, -1):
                text = text.replace(f"member {j}:", f"member {group[j]}:")
            raise type(error)(text) from None
        for k, fit_model in zip(group, fitted):
            results[k] = fit_model
    return results


def _own_preprocessing(init) -> bool:
    return isinstance(init, FitModel) and init.preprocessing is not None


def _encoded(models, hps, preprocessing, init, X, y, rows, validation, sample_weight, classes):
    """Each member's preprocessing (init's own, or `preprocessing` refit on the
    rows the member trains on) and the data as the networks read it: one
    encoded X when every member reads all of table X through one encoding,
    else each distinct (encoding, rows) block encoded once and stacked, with
    the members' rows pointing into the stack (y and sample_weight alike)."""
    n = n_rows(X)
    y = np.asarray(y)
    if y.shape[:1] != (n,):
        raise ValueError(f"y has {y.shape[:1] or 'no'} rows, X has {n} samples")
    w = None if sample_weight is None else np.asarray(sample_weight)
    if w is not None and w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    _wrap_rows(rows, n)
    refits: dict = {}       # one refit per (rows, early-stopping split) of members
    encodings = []
    for k, (model, hp) in enumerate(zip(models, hps)):
        r = None if rows is None else rows[k]
        own = _own_preprocessing(init[k])
        if preprocessing is None and not own:
            raise ValueError(f"member {k}: X is a table for the members whose init carries a "
                             "preprocessing; give preprocessing= for the others")
        split = (None if validation[k] is not None or not hp.early_stopping else
                 (hp.validation_fraction, hp.seed, model.architecture.output))
        key = (None if r is None else r.tobytes(), split)
        try:
            if not own and key in refits:
                _checked_preprocessing(preprocessing, model)
                encoding = refits[key]
            else:
                encoding = _encoding(model, preprocessing, init[k],
                                     X if r is None else take_rows(X, r),
                                     y if r is None else y[r], hp,
                                     w if r is None or w is None else w[r], classes,
                                     validation[k])
        except (TypeError, ValueError) as error:
            raise type(error)(f"member {k}: {error}") from None
        if not own:
            refits[key] = encoding
        encodings.append(encoding)
    blocks: dict = {}
    parts, sources, member_rows = [], [], []
    for k, encoding in enumerate(encodings):
        r = np.arange(n, dtype=np.intp) if rows is None else rows[k]
        key = (id(encoding), r.tobytes())
        if key not in blocks:
            blocks[key] = sum(len(p) for p in parts)
            parts.append(encoding.transform(X if rows is None else take_rows(X, r)))
            sources.append(r)
        member_rows.append(np.arange(blocks[key], blocks[key] + len(r), dtype=np.intp))
    if rows is None and len(parts) == 1:
        X, member_rows = parts[0], None
    else:
        stacked = np.concatenate(sources)
        X, y = np.concatenate(parts), y[stacked]
        w = None if w is None else w[stacked]
    encoded_validation = []
    for k, (encoding, v) in enumerate(zip(encodings, validation)):
        if isinstance(v, (tuple, list)) and v:
            try:
                v = (encoding.transform(v[0], "validation X"), *v[1:])
            except (TypeError, ValueError) as error:
                raise type(error)(f"member {k}: {error}") from None
        encoded_validation.append(v)
    return X, y, member_rows, encoded_validation, w, encodings


def _wrap_rows(rows, n: int) -> None:
    """Check the members' row indices against n rows, and make negative ones
    count from the end, as in NumPy (in place)."""
    if rows is None:
        return
    for k, r in enumerate(rows):
        if r.min() < -n or r.max() >= n:
            raise ValueError(f"rows[{k}] holds row indices outside 0 .. {n - 1}")
        r %= n


def _row_index(r, k: int) -> np.ndarray:
    index = np.asarray(r)
    if index.ndim != 1 or index.size == 0:
        raise ValueError(f"rows[{k}] must be a non-empty 1-D array of row indices")
    if index.dtype == bool or not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"rows[{k}] must hold integer row indices, got {index.dtype}")
    return np.array(index, dtype=np.intp)     # a copy: negative indices are rewritten


class _Run:
    """The population's training: one kernel call per epoch for the members
    whose data is in memory; file-backed members' epochs run part by part."""

    def __init__(self, preps, callback, n_threads, verbose=False):
        self.preps = preps
        self.progress = None
        if verbose:
            self.progress = PopulationProgress(
                max(p.first_epoch + p.hp.epochs for p in preps), len(preps),
                preps[0].model.architecture.output)
        budget = (n_threads if n_threads is not None
                  else max(_threads.budget(p.hp.n_threads) for p in preps))
        self.threads = max(1, min(budget, len(preps)))
        # the population's memory, planned once: one block, each member's state a part
        sizes = [member_bytes(p.model, p.hp, _n(p), p.targets.values) for p in preps]
        reserve(sum(sizes), f"the training states of {len(preps)} members (gradients, "
                            "optimizer moments, batch buffers)")
        self.memory = np.empty(sum(sizes), dtype=np.uint8)
        ends = np.cumsum(sizes)
        self.trainers = [_trainer(p.model, p.hp, _n(p), p.targets, p.optimizer_state, 1,
                                  memory=self.memory[end - size:end])
                         for p, size, end in zip(preps, sizes, ends)]
        self.population = Population(self.trainers)
        self.on_file = []
        for k, (p, t) in enumerate(zip(preps, self.trainers)):
            if isinstance(p.X, FileRows):
                self.on_file.append(k)
            elif isinstance(p.X, SparseRows):
                self.population.bind_sparse(k, p.theta, p.X.values, p.X.indices, p.X.indptr,
                                            p.targets.labels, p.targets.values, p.weights)
            else:
                self.population.bind(k, p.theta, p.X, p.targets.labels, p.targets.values,
                                     p.weights, p.rows)
        self.runs = [_Epochs(p.model._in_precision(p.hp.precision), p.hp, p.theta, p.val,
                             p.history, t, p.first_epoch, _n(p), 1, None,
                             _member_callback(callback, k), None)
                     for k, (p, t) in enumerate(zip(preps, self.trainers))]

    def go(self) -> list[FitModel]:
        try:
            with _threads.blas_limit(1):
                while True:
                    active = [k for k, run in enumerate(self.runs) if run.going]
                    if not active:
                        break
                    self._epoch(active)
        except BaseException as error:
            if self.progress is not None:
                self.progress.close("interrupted" if isinstance(error, KeyboardInterrupt)
                                    else None)
            if isinstance(error, KeyboardInterrupt):
                error.fit_models = self._last_complete()
            raise
        if self.progress is not None:
            early = sum(run.stopped for run in self.runs)
            self.progress.close(f"fitted {len(self.runs)} members; {early} stopped before their "
                                "epochs ran out" if early else
                                f"fitted {len(self.runs)} members, every one to its last epoch")
        return [p.fit_model(*run.result()) for p, run in zip(self.preps, self.runs)]

    def _epoch(self, active):
        lrs = {k: self.runs[k].learning_rate() for k in active}
        together = [k for k in active if k not in self.on_file]
        start = time.perf_counter()
        out = dict(zip(together, self.population.epoch(
            together, [lrs[k] for k in together], [self.runs[k].epoch for k in together],
            self.threads, interruptible=True)))
        for k in active:
            if k in self.on_file:
                p = self.preps[k]
                out[k] = _run_epoch(self.trainers[k], p.theta, p.X, p.targets, p.weights, lrs[k],
                                    self.runs[k].epoch, self.threads)
        # every member's record gets an equal share of the population's epoch
        took = time.perf_counter() - start
        seconds = took / len(active)
        for k in active:
            try:
                self.runs[k].done_epoch(*out[k], seconds, lrs[k])
            except DivergenceError as error:
                raise self._diverged(k, error) from None
        if self.progress is not None:
            records = [self.runs[k].history[-1] for k in active
                       if self.runs[k].history and self.runs[k].epoch > self.runs[k].first_epoch]
            if records:
                self.progress.epoch(records, took)

    def _diverged(self, k: int, error: DivergenceError) -> DivergenceError:
        final = DivergenceError(f"member {k}: {error}")
        final.member = k
        best = getattr(error, "_best", None)
        final.fit_model = None if best is None else self.preps[k].fit_model(best[0], best[1],
                                                                            None)
        final.fit_models = self._last_complete()
        return final

    def _last_complete(self) -> list[FitModel]:
        """Every member's fit after its last complete epoch."""
        return [p.fit_model(*run.last_complete()) for p, run in zip(self.preps, self.runs)]


def member_bytes(model: Model, hp: Hyperparameters, n_samples: int, values=None) -> int:
    """Bytes of one member's training state (the kernel's plan): a
    population's memory is the sum over its members."""
    n_targets = 0 if values is None else values.shape[1]
    kernel = model._in_precision(hp.precision)._kernel
    return kernel.training_plan(model.dtype, n_samples, hp.batch_size, hp.dropout,
                                hp.shuffle, n_targets, 1)["bytes"]


def compatible(model: Model, hp: Hyperparameters):
    """The key of the populations a fit may join (None: it cannot join one)."""
    if hp.optimizer == "lbfgs":
        return None
    return (model, *(getattr(hp, name) for name in SHARED_SETTINGS))


def _n(prep) -> int:
    return prep.X.shape[0] if prep.rows is None else len(prep.rows)


def _member_callback(callback, k):
    if callback is None:
        return None
    return lambda record: callback(k, record)
