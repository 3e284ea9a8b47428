"""The fitting algorithm: ``fit(model, X, y, hyperparameters) -> FitModel``."""
from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any, Callable

import numpy as np

from archfit import _threads, checkpoints
from archfit.kernels import Status, Trainer
from archfit._memory import reserve
from archfit._kernels._hashing import Fingerprint
from archfit._targets import Targets, class_labels, encode
from archfit._sparse import SparseRows
from archfit._streaming import FileRows, features, in_memory, rows_of
from archfit._validation import (as_parameters, as_sample_weight, by_name,
                                 check_int, feature_names)
from archfit.fit_model import FitModel, _checked_preprocessing, score_outputs
from archfit.folds import validation_split
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model
from archfit._progress import Progress, ending
from archfit.binning import fit_edges
from archfit.preprocessing import Preprocessing
from archfit.scaling import Standardization
from archfit.tables import n_rows, take_rows
from archfit.schedules import LearningRateSchedule


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters.

    Attributes
    ----------
    fit_model : FitModel or None
        With early stopping and ``restore_best``, the best fit model seen
        before the fit diverged (its history ends at that fit's last finite
        epoch); otherwise None.
    """

    fit_model = None


class ConvergenceWarning(UserWarning):
    """A fit stopped at its limit (L-BFGS's iterations or evaluations) before converging."""


def _divergence(epoch: int, learning_rate: float | None, what: str) -> DivergenceError:
    hint = (f"; try a smaller learning_rate (this epoch used {learning_rate:g})"
            if learning_rate is not None else "")
    return DivergenceError(f"training diverged in epoch {epoch}: {what} became NaN or infinite"
                           f"{hint}. Nothing that was given to fit was changed.")


def fit(model: Model, X, y, hyperparameters: Hyperparameters | None = None, *,
        validation: tuple | None = None, init: FitModel | np.ndarray | None = None,
        sample_weight=None, classes=None,
        callback: Callable[[dict[str, Any]], bool | None] | None = None,
        verbose: bool = False, checkpoint=None, checkpoint_every: int = 1,
        preprocessing: Preprocessing | None = None) -> FitModel:
    """Fit ``model`` to (X, y): find θ̂ by running the fitting algorithm.

    Parameters
    ----------
    model : Model
    X : array-like or scipy.sparse matrix of shape (n_samples, n_inputs)
        Bool, integer or float; converted to the model's dtype. Sparse X
        stays sparse: the first layer's products are sparse x dense. A
        ``numpy.memmap`` (or another array backed by a mapped file) is read a
        part at a time and never copied whole (docs/long-fits.md).
    y : array-like
        softmax: class labels (n_samples,) of any sortable type; sigmoid: a 0/1
        matrix (n_samples, n_outputs); linear: floats (n_samples,) or
        (n_samples, n_outputs).
    hyperparameters : Hyperparameters, optional
        Defaults to ``Hyperparameters()``.
    validation : tuple (X_val, y_val) or (X_val, y_val, w_val), optional
        A hold-out set: its loss and score are recorded every epoch, and early
        stopping watches one of them (``hyperparameters.monitor``).
    init : FitModel or ndarray, optional
        Start from these parameters instead of a fresh ``model.init(seed)``.
        From a FitModel, training continues: the epoch count, the schedule,
        the optimizer's moments (when the optimizer is the same) and the
        class labels carry over, and a NEW FitModel is returned.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights; each batch's loss is the weighted mean.
    classes : array-like, optional
        All class labels of a softmax model, when ``y`` may lack some.
    callback : callable, optional
        Called after every epoch with that epoch's history record; return
        True to stop.
    verbose : bool
        Show progress: a tqdm bar when tqdm is installed (epochs done, time
        left, the loss and the validation score by name), else a line per
        epoch; and at the end how the fit ended (early stopping, and the
        epoch it restored).
    checkpoint : str or path-like, optional
        A file holding the fit's state, written atomically every
        ``checkpoint_every`` epochs and when the fit ends. If it exists, the
        fit resumes from it - to exactly the θ̂ and history of a fit never
        interrupted - provided it was written by the same call (model,
        hyperparameters but ``n_threads``, data, starting point); otherwise
        a ``ValueError`` names what differs. A finished fit's checkpoint
        returns its result at once. Not with ``optimizer="lbfgs"``.
    checkpoint_every : int, default 1
        Epochs between checkpoints.
    preprocessing : Preprocessing, optional
        For a table X (a data frame, pyarrow Table or dict of columns, with
        text, categorical, date or missing cells): its schema - columns,
        kinds, vocabularies, indicators, which fix ``model``'s inputs - and
        settings, whose statistics this fit finds again on X's rows
        (:meth:`~archfit.preprocessing.Preprocessing.refit`, weighted). The fit model keeps them and
        applies them to every table it is given; a FitModel given as
        ``init`` keeps its own.

    Returns
    -------
    FitModel

    Raises
    ------
    TypeError, ValueError
        For invalid input, before any computation.
    DivergenceError
        If the loss or the parameters become non-finite; names the epoch.
    KeyboardInterrupt
        On Ctrl-C, noticed between two mini-batches even mid-epoch (in the
        main thread). Its ``fit_model`` attribute is the fit after the last
        complete epoch (the starting point before the first), which ``init=``
        continues; the inputs are unchanged.
    FileFormatError
        ``checkpoint`` is not a checkpoint, or is truncated or altered.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a Model, got {type(model).__name__}")
    hp = Hyperparameters() if hyperparameters is None else hyperparameters
    if not isinstance(hp, Hyperparameters):
        raise TypeError(f"hyperparameters must be a Hyperparameters, got {type(hp).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path, got {type(checkpoint).__name__}")
        checkpoint = os.fspath(checkpoint)
        if hp.optimizer == "lbfgs":
            raise ValueError("checkpoint is not supported with optimizer='lbfgs' (SciPy's "
                             "L-BFGS state cannot be saved)")
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
        folder = os.path.dirname(os.path.abspath(checkpoint))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"checkpoint: folder {folder} does not exist")
    prep = _prepare(model, X, y, hp, validation, init, sample_weight, classes,
                    preprocessing=preprocessing)
    computing = model._in_precision(hp.precision)       # its products in the fit's precision
    theta, history, optimizer_state = prep.theta, prep.history, prep.optimizer_state
    X, targets, weights, val, first_epoch = prep.X, prep.targets, prep.weights, prep.val, \
        prep.first_epoch
    fit_model, fingerprint, classes = prep.fit_model, prep.fingerprint, prep.classes

    keeper = None
    if checkpoint is not None:
        request = checkpoints.request(
            model, hp, fingerprint, None if val is None else _fingerprint(val[0], val[1]),
            theta, first_epoch, optimizer_state, classes)
        keeper = _Keeper(checkpoint, checkpoint_every, request, first_epoch, fit_model)
        saved = keeper.resume()
        if saved is not None:
            if saved.finished:
                return saved.fit_model
            theta = np.array(saved.fit_model.parameters, copy=True)
            history, optimizer_state = saved.fit_model.history, saved.fit_model._optimizer_state
            keeper.best = saved.best

    run = _fit_lbfgs if hp.optimizer == "lbfgs" else _fit_minibatch
    progress = (Progress(hp.epochs, model.architecture.output, first=first_epoch,
                         done=len(history) - first_epoch) if verbose else None)
    try:
        theta, history, optimizer_state = run(computing, hp, theta, X, targets, weights, val,
                                              history, optimizer_state, callback, progress,
                                              first_epoch, keeper)
        if progress is not None:
            progress.close(ending(history, first_epoch, hp.epochs, progress.kept or len(history),
                                  hp.early_stopping, hp.monitor, progress.metric))
            progress = None
    except DivergenceError as error:
        if progress is not None:
            progress.close("diverged")
        best = getattr(error, "_best", None)
        if best is not None:
            error.fit_model = fit_model(best[0], best[1], None)
        raise
    except KeyboardInterrupt as error:
        if progress is not None:
            progress.close("interrupted")
        done = getattr(error, "_archfit_done", None)
        error.fit_model = None if done is None else fit_model(*done)
        raise
    result = fit_model(theta, history, optimizer_state)
    if keeper is not None:
        keeper.finish(result)
    return result


class _Prepared:
    """One fit's inputs, validated and ready for the kernels: where it starts
    (θ, history, optimizer state), the training data (X, targets, weights, and
    with `rows` the rows of a shared X it trains on), the validation set, and
    what the fit model will carry (fingerprint, classes, standardisation)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def fit_model(self, theta, history, state) -> FitModel:
        return FitModel._of_fit(self.model, theta, self.hp, history, self.classes,
                                self.targets.ndim, state, self.fingerprint, self.standardization,
                                self.preprocessing)


def _prepare(model: Model, X, y, hp: Hyperparameters, validation, init, sample_weight,
             classes, rows: np.ndarray | None = None, checked: bool = False,
             names=None, preprocessing=None, encoded=None) -> _Prepared:
    """Validate one fit's data and starting point (everything ``fit`` checks
    before a kernel runs). With `rows`, the fit trains on those rows of X and
    y (X already checked, `checked`): X stays shared when the kernels can read
    the rows where they are (dense X in memory, shuffled, not standardised),
    and is copied otherwise; the result is that of a fit on X[rows], y[rows].
    `names`: checked X's feature names. `preprocessing`: the table's encoding,
    refit on X (unchecked X only); `encoded`: the preprocessing that already
    encoded X and the validation set, which the fit model carries."""
    arch, dtype = model.architecture, model.dtype
    model._in_precision(hp.precision)      # refused for float64 models, before anything runs

    if hp.standardize_targets and arch.output != "linear":
        raise ValueError(f"standardize_targets is for linear outputs; this model has a "
                         f"{arch.output} output")

    # ---- where to start ----------------------------------------------------------------
    history: list[dict[str, Any]] = []
    optimizer_state = standardization = None
    if isinstance(init, FitModel):
        if init.model != model:
            raise ValueError(f"init was fit with a different model ({init.model!r}); "
                             f"it cannot initialise {model!r}")
        history = init.history
        if init.classes is not None:
            if classes is not None and not np.array_equal(np.sort(np.asarray(classes)), init.classes):
                raise ValueError("classes differ from the classes of init")
            classes = init.classes
        state = init._optimizer_state
        if state is not None and state[3] == hp.optimizer:
            optimizer_state = state
        theta = np.array(init.parameters, copy=True)
        standardization = init.standardization
        had = (standardization is not None and standardization.feature_mean is not None,
               standardization is not None and standardization.target_mean is not None)
        if had != (hp.standardize, hp.standardize_targets):
            raise ValueError(f"init was fit with standardize={had[0]}, standardize_targets="
                             f"{had[1]}: its θ̂ is in those units, so continue it with the "
                             "same settings")
    elif init is not None:
        theta = np.array(as_parameters(init, model.n_parameters, dtype, "init"), copy=True)
    else:
        theta = None

    # ---- data --------------------------------------------------------------------------
    encoding = encoded
    if encoded is None:
        encoding = _encoding(model, preprocessing, init, X, y, hp, sample_weight, classes,
                             validation)
        if encoding is not None:
            X = encoding.transform(X)
            if validation is not None and isinstance(validation, (tuple, list)) and validation:
                validation = (encoding.transform(validation[0], "validation X"),
                              *validation[1:])
    if not checked:
        names = feature_names(X)
        if isinstance(init, FitModel) and init.feature_names is not None:
            X = by_name(X, init.feature_names)
            names = init.feature_names if names is not None else None
        X = features(X, arch.n_inputs, dtype, sparse=arch.reads_sparse,
                     categorical=arch.inputs.categorical)
    if rows is not None:
        shared = (isinstance(X, np.ndarray) and hp.shuffle and hp.optimizer != "lbfgs"
                  and not hp.standardize)
        if not shared:
            X, rows = rows_of(X, rows), None
    n = X.shape[0] if rows is None else len(rows)
    if classes is not None and arch.output == "softmax":
        classes = class_labels(classes, "classes", declared=True)
        if len(classes) != arch.n_outputs:
            raise ValueError(f"classes has {len(classes)} labels, the architecture has "
                             f"{arch.n_outputs} softmax outputs")
    targets = encode(y, arch.output, arch.n_outputs, n, dtype, classes)
    weights = as_sample_weight(sample_weight, n, dtype)

    val = None
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
            raise TypeError("validation must be a tuple (X_val, y_val) or (X_val, y_val, w_val)")
        Xv = in_memory(by_name(validation[0], names, "validation X"), arch.n_inputs, dtype,
                       "validation X", sparse=arch.reads_sparse,
                       categorical=arch.inputs.categorical)
        tv = encode(validation[1], arch.output, arch.n_outputs, Xv.shape[0], dtype,
                    targets.classes, "validation y")
        wv = (as_sample_weight(validation[2], Xv.shape[0], dtype)
              if len(validation) == 3 else None)
        val = (Xv, tv, wv)
    elif hp.early_stopping:
        train_idx, val_idx = validation_split(n, hp.validation_fraction, hp.seed, targets.labels)
        if len(val_idx) < 2:
            raise ValueError(f"The validation set is too small ({len(val_idx)} of {n} rows) for "
                             "early stopping. Increase validation_fraction or the size of the "
                             "data, or pass validation=(X_val, y_val).")
        if rows is not None:
            # the validation rows copied; the training rows still read from the shared X
            Xv, rows = rows_of(X, rows[val_idx]), np.ascontiguousarray(rows[train_idx])
        else:
            # the validation set in memory (a file's rows read now); the training part as X is
            Xv = X.take(val_idx) if isinstance(X, FileRows) else rows_of(X, val_idx)
            X = rows_of(X, train_idx)
        val = (Xv, targets.take(val_idx),
               None if weights is None else np.ascontiguousarray(weights[val_idx]))
        targets = targets.take(train_idx)
        weights = None if weights is None else np.ascontiguousarray(weights[train_idx])
        if weights is not None and not weights.sum() > 0:
            raise ValueError("sample_weight: the training part after the validation split "
                             "has zero total weight")

    fresh = theta is None
    if fresh:
        theta = model.init(hp.seed)
    fingerprint = _fingerprint(X, targets, rows)
    if names is not None:
        fingerprint["feature_names"] = names
    classes = targets.classes if arch.output == "softmax" else None
    if hp.standardize and isinstance(X, SparseRows):
        raise ValueError("standardize=True would centre sparse X and make it dense; scale "
                         "its columns beforehand (for example by their maxima) or pass it "
                         "dense")
    if standardization is None and (hp.standardize or hp.standardize_targets):
        standardization = _standardization(X, targets, hp, len(arch.inputs.categorical),
                                           weights)
    if standardization is not None:
        X, targets, val = _standardized(standardization, X, targets, val)
    if fresh and arch.fitted:
        # bin edges from the training rows as the network reads them
        fit_edges(arch, theta, X, weights, rows)
    return _Prepared(model=model, hp=hp, theta=theta, history=history,
                     optimizer_state=optimizer_state, X=X, rows=rows, targets=targets,
                     weights=weights, val=val, fingerprint=fingerprint, classes=classes,
                     standardization=standardization, preprocessing=encoding,
                     first_epoch=len(history))


def _encoding(model: Model, preprocessing, init, X, y, hp: Hyperparameters, sample_weight,
              classes, validation):
    """The preprocessing a fit applies: init's own, or `preprocessing` refit
    on the rows the fit trains on (weighted; without the rows an internal
    early-stopping split holds out); None for a fit on numbers."""
    own = init.preprocessing if isinstance(init, FitModel) else None
    if preprocessing is None:
        return own
    if not isinstance(preprocessing, Preprocessing):
        raise TypeError(f"preprocessing must be a Preprocessing, got "
                        f"{type(preprocessing).__name__}")
    _checked_preprocessing(preprocessing, model)
    if isinstance(init, FitModel):
        if own is None or list(own.kinds.items()) != list(preprocessing.kinds.items()):
            raise ValueError("init was fit with another preprocessing (or none); continue it "
                             "without preprocessing=, with its own")
        return own
    train = training_rows(model, hp, y, n_rows(X), classes, validation)
    if train is None:
        return preprocessing.refit(X, sample_weight)
    w = None if sample_weight is None else np.asarray(sample_weight)[train]
    return preprocessing.refit(take_rows(X, train), w)


def training_rows(model: Model, hp: Hyperparameters, y, n: int, classes,
                  validation) -> np.ndarray | None:
    """The rows of n that a fit without `validation` trains on when early
    stopping holds some out (the split ``_prepare`` makes), else None: all."""
    if validation is not None or not hp.early_stopping:
        return None
    arch = model.architecture
    if classes is not None and arch.output == "softmax":
        classes = class_labels(classes, "classes", declared=True)
    targets = encode(y, arch.output, arch.n_outputs, n, model.dtype, classes)
    return validation_split(n, hp.validation_fraction, hp.seed, targets.labels)[0]


class _Keeper:
    """Writes a fit's checkpoints (every `every` epochs of this fit, and at
    its end) and reads the one to resume from."""

    def __init__(self, path, every: int, request: dict, first_epoch: int, fit_model_of):
        self.path, self.every, self.request = path, every, request
        self.first_epoch, self.fit_model_of, self.best = first_epoch, fit_model_of, None

    def resume(self) -> checkpoints.Checkpoint | None:
        saved = checkpoints.read(self.path)
        if saved is None:
            return None
        differs = checkpoints.difference(saved.request, self.request)
        if differs is None and saved.first_epoch != self.first_epoch:
            differs = "the starting points differ"
        if differs is not None:
            raise ValueError(f"checkpoint {self.path} was written by another fit: {differs}. "
                             "Remove it, or pass another checkpoint path.")
        return saved

    def epoch_done(self, theta, history, state, best) -> None:
        if (len(history) - self.first_epoch) % self.every == 0:
            self._write(self.fit_model_of(theta.copy(), list(history), state), best, False)

    def finish(self, result: FitModel) -> None:
        self._write(result, None, True)

    def _write(self, fit_model, best, finished) -> None:
        checkpoints.write(self.path, checkpoints.Checkpoint(
            fit_model, self.request, self.first_epoch, best, finished))


def _standardization(X, targets: Targets, hp, codes: int = 0,
                     weights=None) -> Standardization:
    """The training rows' means and scales, weighted by their sample weights,
    in float64, a part at a time; the last `codes` columns (categorical
    inputs' codes) keep mean 0 and scale 1."""
    feature = target = (None, None)
    if hp.standardize:
        if isinstance(X, FileRows):
            parts = (X.take(lo=lo, hi=hi) for lo, hi in X.parts())
        else:
            parts = (X[lo:lo + 65536] for lo in range(0, len(X), 65536))
        mean, scale = Standardization.statistics(parts, weights)
        if codes:
            mean[-codes:], scale[-codes:] = 0.0, 1.0
        feature = (mean, scale)
    if hp.standardize_targets:
        target = Standardization.statistics([targets.values], weights)
    return Standardization(*feature, *target)


def _standardized(scaling: Standardization, X, targets: Targets, val):
    """The training data, and the validation set, in standardised units (new
    arrays: the caller's are never changed)."""
    X = X.transformed(scaling.features) if isinstance(X, FileRows) else scaling.features(X)
    if scaling.target_mean is not None:
        targets = targets.with_values(scaling.targets(targets.values))
    if val is not None:
        Xv, tv, wv = val
        if scaling.target_mean is not None:
            tv = tv.with_values(scaling.targets(tv.values))
        val = (scaling.features(Xv), tv, wv)
    return X, targets, val


def _fingerprint(X: np.ndarray, targets: Targets, rows=None) -> dict[str, Any]:
    """Shape, dtype and a hash of the data as fitted (after any validation
    split; with `rows`, of X[rows], read a part at a time).

    The hash is XXH64 of the bytes of X, then of the encoded targets, with
    seeds 0 and 1 (128 bits, "xxh64x2:" prefix): at several GB/s it costs a
    small fit little, where SHA-256 ("sha256:" in files saved by earlier
    versions; "blake2b:" in older ones) took a fifth of a 64-32-10 fit on
    4,096 rows.
    """
    h = Fingerprint()
    if isinstance(X, SparseRows):
        for part in X.parts():
            h.update(part)
    elif isinstance(X, FileRows):
        for lo, hi in X.parts():
            h.update(X.take(lo=lo, hi=hi))
            X.release()
    elif rows is not None:
        for lo in range(0, len(rows), 65536):
            h.update(np.ascontiguousarray(X[rows[lo:lo + 65536]]))
    else:
        h.update(X)
    for part in (targets.labels, targets.values):
        if part is not None:
            h.update(part)
    return {"n_samples": int(X.shape[0] if rows is None else len(rows)),
            "n_features": int(X.shape[1]),
            "dtype": X.dtype.name, "hash": "xxh64x2:" + h.hexdigest()}


def _record(model, theta, epoch, train_loss, learning_rate, seconds, val, n_threads=None):
    record = {"epoch": epoch, "train_loss": float(train_loss), "learning_rate": learning_rate,
              "seconds": seconds}
    if val is not None:
        Xv, tv, wv = val
        loss, outputs = model._evaluate(theta, Xv, tv, wv, n_threads)
        record["validation_loss"] = loss
        record["validation_score"] = score_outputs(model, outputs, tv, wv)
    return record


def _report(record, progress, callback) -> bool:
    """Show progress and call back; True when the callback asks to stop."""
    if progress is not None:
        progress.epoch(record)
    return callback is not None and bool(callback(dict(record)))


def _trainer(model, hp, n_samples, targets: Targets, optimizer_state, budget,
             memory=None) -> Trainer:
    """The kernel's state of one mini-batch fit, its memory reserved first
    (unless the caller gives the `memory` it reserved)."""
    m, v, step = (optimizer_state[:3] if optimizer_state is not None else (None, None, 0))
    n_targets = 0 if targets.values is None else targets.values.shape[1]
    kernel = model._in_precision(hp.precision)._kernel
    plan = kernel.training_plan(model.dtype, n_samples, hp.batch_size, hp.dropout,
                                hp.shuffle, n_targets, budget)
    if memory is None:
        reserve(plan["bytes"], "the training state (gradients, optimizer moments, batch "
                               "buffers)")
    return Trainer(kernel, model.dtype, n_samples, hp.batch_size, hp.optimizer,
                   momentum=hp.momentum, nesterov=hp.nesterov, beta1=hp.beta1,
                   beta2=hp.beta2, epsilon=hp.epsilon, l2=hp.l2, dropout=hp.dropout,
                   shuffle=hp.shuffle, seed=hp.seed, m=m, v=v, step=step,
                   n_targets=n_targets, threads=budget, memory=memory)


def _fit_minibatch(model, hp, theta, X, targets: Targets, weights, val, history,
                   optimizer_state, callback, progress, first_epoch, keeper):
    # The kernel plans the fit: a step cut into shards is shared by archfit's
    # threads; BLAS runs on one thread throughout (its threads would change
    # a product's bits, as OpenBLAS splits it by their number, and a fit has
    # the same bits on any number of threads). An epoch whose threads did not
    # get their cores is followed by one on a single thread, and the faster
    # is kept (_threads.EpochThreads).
    budget = _threads.budget(hp.n_threads)
    trainer = _trainer(model, hp, X.shape[0], targets, optimizer_state, budget)
    threads = trainer.plan["threads"]
    chooser = _threads.EpochThreads(threads)
    run = _Epochs(model, hp, theta, val, history, trainer, first_epoch, X.shape[0], threads,
                  keeper, callback, progress)
    try:
        with _threads.blas_limit(1):
            while run.going:
                lr = run.learning_rate()
                start = time.perf_counter()
                out = _run_epoch(trainer, theta, X, targets, weights, lr, run.epoch,
                                 chooser.begin())
                chooser.end()
                run.done_epoch(*out, time.perf_counter() - start, lr)
    except KeyboardInterrupt as error:
        error._archfit_done = run.last_complete()
        raise
    return run.result()


def _run_epoch(trainer, theta, X, targets, weights, lr, epoch, threads):
    """One epoch: in one kernel call, or for file-backed X part by part, each
    part's rows gathered in the epoch's order (the same bits)."""
    if isinstance(X, SparseRows):
        return trainer.epoch_sparse(theta, X.values, X.indices, X.indptr, targets.labels,
                                    targets.values, weights, lr, epoch, threads,
                                    interruptible=True)
    if not isinstance(X, FileRows):
        return trainer.epoch(theta, X, targets.labels, targets.values, weights, lr, epoch,
                             threads, interruptible=True)
    order = trainer.order(epoch)
    loss_sum = weight_sum = 0.0
    for lo, hi in X.parts(multiple=trainer.plan["rows"]):
        at = order[lo:hi]
        part = X.take(at)
        X.release()
        loss, weight, status = trainer.epoch_part(
            theta, part, None if targets.labels is None else targets.labels[at],
            None if targets.values is None else np.ascontiguousarray(targets.values[at]),
            None if weights is None else weights[at], lr, epoch, lo, threads,
            interruptible=True)
        if status != Status.OK:
            return loss_sum, weight_sum, status
        loss_sum, weight_sum = loss_sum + loss, weight_sum + weight
    return loss_sum, weight_sum, Status.OK


class _Epochs:
    """One mini-batch fit's course, epoch by epoch, whoever runs the epochs
    (``fit``'s loop, or ``fit_many``'s population): the schedule's learning
    rate, each epoch's record, early stopping, the rollback of an interrupted
    epoch, checkpoints, progress and the callback, and the result.

    θ (`theta`) is trained in place by the caller's kernel calls between
    ``learning_rate`` and ``done_epoch``.
    """

    def __init__(self, model, hp, theta, val, history, trainer, first_epoch, n_samples,
                 threads, keeper, callback, progress):
        self.model, self.hp, self.theta, self.val, self.trainer = model, hp, theta, val, trainer
        self.first_epoch, self.threads, self.keeper = first_epoch, threads, keeper
        self.callback, self.progress = callback, progress
        self.history = list(history)
        self.schedule = LearningRateSchedule(hp, first_epoch, n_samples)
        self.watch = _EarlyStopping(hp, self.schedule)
        # A resumed fit: replay what the schedule and early stopping watched
        for record in self.history[first_epoch:]:
            self.watch.observe(record)
        self.best_theta = keeper.best if keeper is not None else None
        # The last complete epoch (θ, the history's length, the optimizer's state):
        # what Ctrl-C leaves, and where an interrupted epoch starts again if the
        # program's SIGINT handler lets the fit go on.
        self.done = (theta.copy(), len(self.history), self._state())
        self.epoch = len(self.history)
        self.stopped = False

    def _state(self):
        return (self.trainer.m, self.trainer.v, self.trainer.step, self.hp.optimizer)

    @property
    def going(self) -> bool:
        """Another epoch is due."""
        return not self.stopped and self.epoch < self.first_epoch + self.hp.epochs

    def learning_rate(self) -> float:
        return self.schedule.at(self.epoch)

    def done_epoch(self, loss_sum, weight_sum, status, seconds, lr) -> None:
        """Take the kernel's result of the epoch just run."""
        theta = self.theta
        if status == Status.INTERRUPTED:
            theta[:] = self.done[0]
            self.trainer.restore(*self.done[2][:3])
            return
        if status != Status.OK:
            what = "the loss" if status == Status.NONFINITE_LOSS else "the parameters"
            error = _divergence(self.epoch + 1, lr, what)
            if self.best_theta is not None:
                error._best = (self.best_theta, list(self.history))
            raise error
        record = _record(self.model, theta, self.epoch + 1, loss_sum / weight_sum, lr, seconds,
                         self.val, self.threads)
        self.history.append(record)
        if self.watch.observe(record) and self.hp.restore_best:
            self.best_theta = theta.copy()
        self.epoch += 1
        self.done = (theta.copy(), len(self.history), self._state())
        if self.keeper is not None:
            self.keeper.epoch_done(theta, self.history, self.done[2], self.best_theta)
        if _report(record, self.progress, self.callback) or self.watch.exhausted:
            self.stopped = True

    def last_complete(self):
        """(θ, history, optimizer state) after the last complete epoch."""
        return (self.done[0], self.history[:self.done[1]], self.done[2])

    def result(self):
        """(θ̂, history, optimizer state): early stopping's best θ when it
        restores one (its moments then belong to another θ: no state)."""
        theta, final = self.theta, self._state()
        if self.best_theta is not None and not np.array_equal(self.best_theta, theta):
            theta, final = self.best_theta, None
            if self.progress is not None:
                self.progress.kept = self.watch.best_epoch
        return theta, self.history, final


class _EarlyStopping:
    """What early stopping watches, and the schedule's view of it: the best
    monitored value, its epoch, and the epochs since it improved."""

    def __init__(self, hp: Hyperparameters, schedule: LearningRateSchedule):
        self.hp, self.schedule = hp, schedule
        self.best, self.best_epoch, self.wait = math.inf, None, 0

    def observe(self, record) -> bool:
        """Take one epoch's record; True when early stopping counts it as the
        new best."""
        monitored = _monitored(record, self.hp.monitor)
        self.schedule.observe(monitored)
        if not self.hp.early_stopping:
            return False
        if monitored < self.best - self.hp.tolerance:
            self.best, self.best_epoch, self.wait = monitored, record["epoch"], 0
            return True
        self.wait += 1
        return False

    @property
    def exhausted(self) -> bool:
        """Patience has run out."""
        return (self.hp.early_stopping and self.hp.patience is not None
                and self.wait >= self.hp.patience)


def _monitored(record, monitor: str) -> float:
    """The value early stopping and plateau watch, lower being better."""
    if "validation_loss" not in record:
        return record["train_loss"]
    if monitor == "validation_score":
        return -record["validation_score"]
    return record["validation_loss"]


def _fit_lbfgs(model, hp, theta, X, targets: Targets, weights, val, history,
               optimizer_state, callback, progress, first_epoch, keeper):
    from scipy.optimize import minimize

    if isinstance(X, FileRows):
        raise ValueError("optimizer='lbfgs' evaluates the loss on all the data at every step "
                         "and needs X in memory; X is a file-backed array: use a mini-batch "
                         "optimizer, or load X into memory (numpy.asarray)")
    dtype = model.dtype
    grad = np.empty_like(theta)
    history = list(history)
    clock = [time.perf_counter()]
    asked_to_stop = []
    last = [theta.copy(), len(history)]     # the last complete iteration, for Ctrl-C

    def objective(x):
        t = np.ascontiguousarray(x, dtype=dtype)
        loss = model._loss_grad(t, X, targets, weights, grad, hp.l2, threads)
        if not (math.isfinite(loss) and np.isfinite(grad).all()):
            return math.inf, np.zeros_like(x)
        return loss, grad.astype(np.float64)

    def on_iteration(intermediate_result):
        t = np.ascontiguousarray(intermediate_result.x, dtype=dtype)
        now = time.perf_counter()
        epoch = len(history) + 1
        record = _record(model, t, epoch, intermediate_result.fun, None, now - clock[0], val)
        history.append(record)
        last[:] = [t.copy(), len(history)]
        clock[0] = now
        if _report(record, progress, callback):
            asked_to_stop.append(True)
            raise StopIteration

    options = {"maxiter": hp.epochs,
               "maxfun": 20 * hp.epochs + 20 if hp.max_evaluations is None
               else hp.max_evaluations}
    if hp.gradient_tolerance is not None:
        options["gtol"] = hp.gradient_tolerance
    # BLAS on one thread for the whole minimisation, as in a mini-batch fit
    # (the same bits on any number of threads; idle OpenBLAS threads woken
    # between objectives would also spin on the cores the chunks run on).
    threads = _threads.budget(hp.n_threads)
    try:
        with _threads.blas_limit(1):
            result = minimize(objective, theta.astype(np.float64), jac=True,
                              method="L-BFGS-B", callback=on_iteration, options=options)
    except KeyboardInterrupt as error:
        error._archfit_done = (last[0], history[:last[1]], None)
        raise
    theta = np.ascontiguousarray(result.x, dtype=dtype)
    if not np.isfinite(theta).all() or not math.isfinite(result.fun):
        raise _divergence(max(len(history), first_epoch + 1), None, "the loss")
    if result.status != 0 and not asked_to_stop:
        message = result.message.decode() if isinstance(result.message, bytes) else result.message
        warnings.warn(f"L-BFGS stopped before converging after {result.nit} iterations and "
                      f"{result.nfev} evaluations ({message}); raise epochs or "
                      "max_evaluations, or scale the inputs", ConvergenceWarning, stacklevel=3)
    return theta, history, None
