"""The command line: ``archfit demo | train | predict | info | plot``.

Every error is one line on standard error and a non-zero exit status
(1 for a failed command, 2 for wrong usage), never a traceback; Ctrl-C ends
the program as it ends any program (:func:`run`). Results go to standard
output; progress and notes go to standard error, progress only when standard
error is a terminal unless ``--progress`` asks for it.
"""
from __future__ import annotations

import argparse
import atexit
import csv
import os
import signal
import sys
import warnings

import numpy as np

# What main returns after Ctrl-C: the status a shell reports for a program
# that SIGINT ended (128 + 2).
INTERRUPTED = 130

# A classification target is refused when more than this share of its classes
# have a single row: such a column (a date, an identifier, a measurement) is
# not a set of labels, and a softmax over it learns nothing.
SINGLETON_SHARE = 0.5


def _check_writable(path: str) -> None:
    """Refuse an output path that cannot be written, before any work."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"-o {path}: is a folder, not a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"-o {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"-o {path}: the folder {folder} is not writable")


def _impute(X: np.ndarray, rows: np.ndarray, strategy: str) -> list[float]:
    """Per-column fill values (mean or median of the training rows' present values)."""
    part = X[rows]
    present = ~np.isnan(part)
    empty = np.flatnonzero(~present.any(axis=0))
    if len(empty):
        raise ValueError(f"column(s) {empty.tolist()} have no value in the training rows to "
                         "impute from")
    with np.errstate(all="ignore"):
        values = np.nanmean(part, axis=0) if strategy == "mean" else np.nanmedian(part, axis=0)
    return [float(v) for v in values]


def _fill(X: np.ndarray, values) -> np.ndarray:
    """X with each missing value (NaN) replaced by its column's fill value."""
    missing = np.isnan(X)
    if missing.any():
        X = X.copy()
        X[missing] = np.take(np.asarray(values, dtype=np.float64), np.nonzero(missing)[1])
    return X


def _note(text: str) -> None:
    """A line for the person at the terminal, on standard error."""
    print(f"archfit: {text}", file=sys.stderr, flush=True)


def _say(*parts) -> None:
    """A line of a command's report, on standard output, flushed: through a
    pipe (``| tee log``) what training is about to do shows before it ends."""
    print(*parts, flush=True)


def _targets(table, output):
    """(y, n_outputs, classes) for the chosen head, or a clear refusal."""
    from archfit.io import shown
    y = table.y
    if output == "softmax":
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise ValueError(f"the target column {table.target!r} holds fractional numbers "
                             f"(e.g. {float(y[y != np.round(y)][0]):g}), not class labels; "
                             "for regression use --output linear")
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"the target column {table.target!r} holds one class only "
                             f"({shown(classes[0])}); a classifier needs at least two")
        singletons = int((counts == 1).sum())
        if len(classes) >= 3 and singletons > SINGLETON_SHARE * len(classes):
            kind = ("numbers" if y.dtype.kind in "biuf" else "values")
            raise ValueError(
                f"the target column {table.target!r} has {len(classes)} distinct {kind} in "
                f"{len(y)} rows, {singletons} of them on one row only: that is not a set of "
                "class labels a classifier can learn. Check that --target names the column to "
                "predict; for a quantity use --output linear")
        return y, len(classes), classes
    if output == "sigmoid":
        if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
            raise ValueError(f"--output sigmoid needs a 0/1 target column; {table.target!r} "
                             f"holds {', '.join(shown(v) for v in np.unique(y)[:5])}")
        return y.astype(np.int8), 1, None
    if y.dtype.kind not in "biuf":
        raise ValueError(f"--output linear needs a numeric target; {table.target!r} holds "
                         f"labels (e.g. {shown(y[0])})")
    return y.astype(np.float64), 1, None


# The options of `archfit train` that set up one network (--network).
NETWORK_OPTIONS = ("hidden", "layers", "ensemble", "adapters", "activation", "epochs",
                   "batch_size", "lr", "optimizer", "l2", "dtype", "no_scale", "impute",
                   "checkpoint")


def _train(args) -> int:
    if not args.network:
        defaults = parser().parse_args(["train", "x", "--target", "y", "-o", "z"])
        given = [o for o in NETWORK_OPTIONS if getattr(args, o) != getattr(defaults, o)]
        if given:
            shown = ", ".join("--" + o.replace("_", "-") for o in given)
            raise ValueError(f"{shown} set up one network: add --network to train one (the "
                             "default is the tabular learner, an ensemble of many)")
        return _train_tabular(args)
    if (args.members is not None or args.time_budget is not None or args.categorical
            or args.log_target):
        raise ValueError("--members, --time-budget, --categorical and --log-target are the "
                         "tabular learner's; leave out --network to use it")
    return _train_network(args)


def _train_tabular(args) -> int:
    import archfit as af
    from archfit.io import looks_categorical, read

    _check_writable(args.output_file)
    fraction = args.validation_fraction
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--validation-fraction must be in (0, 1): the tabular learner stops "
                         f"its members and chooses the ensemble on those rows; got {fraction}")
    table = read(args.data, args.target, sep=args.sep, raw=True)
    for note in table.notes:
        if not args.quiet:
            _note(note)
    output = args.output
    if output == "sigmoid":
        raise ValueError("--output sigmoid is for one network: add --network")
    if output == "auto":
        output = "softmax" if looks_categorical(table.y) else "linear"
    y, _, _ = _targets(table, output)
    categorical = [c.strip() for c in args.categorical.split(",") if c.strip()] \
        if args.categorical else []
    say = (lambda *a: None) if args.quiet else _say  # noqa: E731
    task = "classification" if output == "softmax" else "regression"
    members = args.members
    if members is None:
        import inspect
        members = inspect.signature(af.fit_tabular).parameters["n_members"].default
    if members < 1:
        raise ValueError(f"--members must be at least 1, got {members}")
    if args.time_budget is not None and not args.time_budget > 0:
        raise ValueError(f"--time-budget must be a positive number of seconds, got "
                         f"{args.time_budget}")
    say(f"training the tabular learner ({members} networks) on {len(y)} rows of "
        f"{args.data}, holding out {fraction:.0%} to stop them and choose the ensemble; "
        f"target {table.target!r} ({task}), {len(table.feature_names)} columns\n")
    kind = _progress_kind(args)
    if args.log_target and task != "regression":
        raise ValueError("--log-target is for regression (a numeric target)")
    ensemble = af.fit_tabular(table.X, y, n_members=members, time_budget=args.time_budget,
                              seed=args.seed, categorical=categorical, task=task,
                              validation_fraction=fraction, verbose=kind != "none",
                              target_transform="log" if args.log_target else None,
                              precision=args.precision)
    record = dict(ensemble.record, source=str(args.data), target=table.target)
    ensemble = af.Ensemble(ensemble.members, ensemble.weights, record,
                           ensemble.target_transform)
    ensemble.save(args.output_file)
    metric = ("accuracy" if task == "classification" else
              "RMSE of log(y)" if args.log_target else "RMSE")
    say(ensemble.preprocessing.describe()[0])
    say(f"ensemble of {len(ensemble)} of {record['trained']} networks trained; validation "
        f"{metric}: {record['validation_score']:.4f} in {record['seconds']:.1f} s")
    say(f"saved to {args.output_file}")
    return 0


def _train_network(args) -> int:
    import archfit as af
    from archfit._progress import Progress, metric_name
    from archfit.io import looks_categorical, read

    _check_writable(args.output_file)
    fraction = args.validation_fraction
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--validation-fraction must be in [0, 1) (0: train on every row), "
                         f"got {fraction}")
    table = read(args.data, args.target, missing="keep" if args.impute else "refuse",
                 sep=args.sep)
    for note in table.notes:
        if not args.quiet:
            _note(note)
    output = args.output
    if output == "auto":
        output = "softmax" if looks_categorical(table.y) else "linear"
    y, n_outputs, classes = _targets(table, output)
    hidden = (_layers(args.layers) if args.layers is not None
              else [af.Dense(h, args.activation) for h in args.hidden])
    arch = af.Architecture(table.X.shape[1], hidden + [af.Dense(n_outputs)], output,
                           ensemble=(af.BatchEnsemble(args.ensemble, args.adapters)
                                     if args.ensemble else None))
    model = af.Model(arch, args.dtype)
    scale = not args.no_scale
    hp = af.Hyperparameters(optimizer=args.optimizer, learning_rate=args.lr,
                            batch_size=args.batch_size, epochs=args.epochs, l2=args.l2,
                            seed=args.seed, standardize=scale,
                            standardize_targets=scale and output == "linear",
                            precision=args.precision)
    n = len(table.X)
    if fraction > 0:
        train, val = af.validation_split(n, fraction, args.seed,
                                         y if output == "softmax" else None)
    else:
        train, val = np.arange(n), np.arange(0)
    X = table.X
    provenance = {"source": str(args.data), "target": table.target,
                  "feature_names": table.feature_names,
                  "held_out": {"fraction": fraction, "rows": int(len(val))}}
    if args.impute:
        values = _impute(X, train, args.impute)
        provenance["impute"] = {"strategy": args.impute, "values": values,
                                "missing_cells": int(np.isnan(X).sum())}
        X = _fill(X, values)
    say = (lambda *a: None) if args.quiet else _say  # noqa: E731
    held = f"holding out {len(val)}" if len(val) else "holding out none"
    say(f"training on {len(train)} rows of {args.data}, {held}; target {table.target!r} "
        f"({output}), {len(table.feature_names)} features"
        + ("" if scale else ", not standardised") + "\n")
    say(arch.summary() + "\n")
    kind = _progress_kind(args)
    progress = None if kind == "none" else Progress(hp.epochs, output, kind)
    validation = (X[val], y[val]) if len(val) else None
    watch = _Watch(args, progress)
    try:
        fitted = af.fit(model, X[train], y[train], hp, validation=validation, classes=classes,
                        callback=watch.epoch, checkpoint=args.checkpoint)
    except KeyboardInterrupt as interrupt:
        if progress is not None:
            progress.close()
        _after_interrupt(args, getattr(interrupt, "fit_model", None), provenance)
        raise
    if progress is not None:
        progress.close()
    if watch.seen == 0 and args.checkpoint is not None and fitted.history and not args.quiet:
        _note(f"the checkpoint {args.checkpoint} holds this fit, finished after "
              f"{len(fitted.history)} epochs: it was saved without training again")
    fitted = fitted._with_training_data(dict(fitted.training_data, **provenance))
    fitted.save(args.output_file)
    stale = _partial_path(args.output_file)
    if stale.exists():
        stale.unlink()
        if not args.quiet:
            _note(f"removed {stale}, the partial fit of an interrupted run")
    metric = metric_name(output)
    if len(val):
        say(f"\nhold-out {metric}: {fitted.history[-1]['validation_score']:.4f} on "
            f"{len(val)} rows")
    else:
        say(f"\ntraining {metric}: {fitted.score(X[train], y[train]):.4f} (no rows held out)")
    say(f"saved to {args.output_file}")
    return 0


def _progress_kind(args) -> str:
    """"bar", "plain" or "none": asked for, or (auto) a bar on a terminal only."""
    if args.quiet:
        return "none"
    if args.progress != "auto":
        return args.progress
    return "auto" if sys.stderr.isatty() else "none"


class _Watch:
    """The fit's callback: says once that a fit resumed from its checkpoint,
    and passes every epoch on to the progress report."""

    def __init__(self, args, progress):
        self.args, self.progress, self.seen = args, progress, 0

    def epoch(self, record) -> None:
        if self.seen == 0 and record["epoch"] > 1 and not self.args.quiet:
            _note(f"resuming from the checkpoint {self.args.checkpoint}: epochs 1 to "
                  f"{record['epoch'] - 1} of {self.args.epochs} were done before")
        self.seen += 1
        if self.progress is not None:
            self.progress.epoch(record)


def _partial_path(output_file):
    from pathlib import Path
    out = Path(output_file)
    return out.with_name(f"{out.stem}.partial{out.suffix or '.archfit'}")


def _after_interrupt(args, partial, provenance) -> None:
    """After Ctrl-C: keep the fit's last complete epoch next to the output
    file, and say truthfully what was kept and how to go on."""
    done = len(partial.history) if partial is not None else 0
    if args.checkpoint is not None:
        if os.path.exists(args.checkpoint):
            _note(f"the fit so far is in the checkpoint {args.checkpoint}; run the same "
                  "command again to resume it")
        else:
            _note(f"no epoch had finished, so the checkpoint {args.checkpoint} was not "
                  "written; the same command starts the fit again")
    if done == 0:
        if args.checkpoint is None:
            _note("interrupted before the first epoch finished: nothing was saved")
        return
    path = _partial_path(args.output_file)
    try:
        partial._with_training_data(dict(partial.training_data, **provenance)).save(path)
    except OSError as exc:
        _note(f"could not save the partial fit to {path}: {_os_error(exc)}")
        return
    _note(f"the fit after epoch {done} of {args.epochs} is saved to {path}")


def _load(path):
    """The fit model or ensemble in an archfit file (a checkpoint is refused,
    naming what reads it)."""
    import archfit as af
    from archfit.persistence import file_format
    if file_format(path) == "archfit.Ensemble":
        return af.Ensemble.load(path)
    return af.load(path)


def _predict(args) -> int:
    from archfit.io import read

    if args.output_file != "-":
        _check_writable(args.output_file)
    fitted = _load(args.model)
    first = fitted.members[0] if hasattr(fitted, "members") else fitted
    data = first.training_data or {}
    if first.preprocessing is not None:
        # a table read as it is: the preprocessing encodes it
        target = (getattr(fitted, "record", None) or {}).get("target", data.get("target"))
        table = read(args.data, target, features=first.feature_names,
                     require_target=False, sep=args.sep, raw=True)
        X = table.X
    else:
        names = data.get("feature_names")
        impute = data.get("impute")
        table = read(args.data, data.get("target"), features=names, require_target=False,
                     missing="keep" if impute else "refuse", sep=args.sep)
        X = table.X if not impute else _fill(table.X, impute["values"])
    output = first.architecture.output
    with warnings.catch_warnings():
        # the columns were matched by name when the file was read
        warnings.simplefilter("ignore", UserWarning)
        predictions = fitted.predict(X)
        proba = fitted.predict_proba(X) if output in ("softmax", "sigmoid") else None
    columns = ["prediction"]
    rows = [[p] for p in predictions.tolist()] if predictions.ndim == 1 else predictions.tolist()
    if predictions.ndim == 2:
        columns = [f"prediction_{i}" for i in range(predictions.shape[1])]
    if proba is not None:
        labels = (fitted.classes.tolist() if output == "softmax" else
                  [str(i) for i in range(proba.shape[1])] if proba.shape[1] > 1 else ["1"])
        columns += [f"probability_{c}" for c in labels]
        rows = [r + [f"{p:.6g}" for p in ps] for r, ps in zip(rows, proba.tolist())]
    out = sys.stdout if args.output_file == "-" else open(args.output_file, "w", newline="")
    try:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    finally:
        if out is not sys.stdout:
            out.close()
    if out is not sys.stdout:
        print(f"wrote {len(rows)} predictions to {args.output_file}")
    return 0


def _info(args) -> int:
    from archfit._progress import metric_name

    fitted = _load(args.model)
    members = fitted.members if hasattr(fitted, "members") else None
    first = members[0] if members else fitted
    model = first.model
    metric = metric_name(first.architecture.output)
    record = getattr(fitted, "record", None) or {}
    if record.get("learner") == "fit_tabular":
        return _info_tabular(args, fitted, record)
    if members:
        print(f"{args.model}: archfit ensemble of {len(members)} fit models of one model "
              f"({model.dtype.name}, loss {model.loss}); predictions are the mean of the "
              "members'\n")
    else:
        print(f"{args.model}: archfit fit model ({model.dtype.name}, loss {model.loss})\n")
    print(first.architecture.summary())
    if first.classes is not None:
        print(f"\nclasses ({len(first.classes)}): {_listed(first.classes.tolist(), 20)}")
    scaling = first.standardization
    print(f"\nstandardisation: {'none' if scaling is None else scaling.describe()}"
          + (" (member 0's)" if members and len(members) > 1 else ""))
    data = first.training_data or {}
    if data.get("impute"):
        impute = data["impute"]
        print(f"missing values: {impute['missing_cells']} cell(s) filled with the training "
              f"rows' {impute['strategy']} of their column")
    held = data.get("held_out")
    if held is not None:
        if held["rows"]:
            share = held["rows"] / (held["rows"] + data.get("n_samples", 0) or 1)
            print(f"validation: {held['rows']} {_rows(held['rows'])} ({share:.0%} of the data; "
                  f"{held['fraction']:.0%} asked) held out by the command line and scored "
                  "every epoch")
        else:
            print("validation: none (every row trained on)")
    if members:
        _info_members(members, metric)
    else:
        _info_fit(first, metric)
    if data:
        print("\ntraining data" + (" (member 0's)" if members else "") + ":")
        for key, value in data.items():
            if key in ("impute", "held_out"):
                continue
            if isinstance(value, list):
                value = _listed(value, 8)
            print(f"  {key:20s} {value}")
    return 0


def _info_tabular(args, ensemble, record) -> int:
    """An ensemble of the tabular learner: what it reads, and its members."""
    first = ensemble.members[0]
    task = record["task"]
    metric = "accuracy" if task == "classification" else "RMSE"
    print(f"{args.model}: archfit tabular learner ({task}); an ensemble of "
          f"{len(ensemble)} of the {record['trained']} networks trained, predictions the "
          "weighted mean of theirs")
    if record.get("source"):
        print(f"trained on {record['source']}, target {record.get('target')!r}, in "
              f"{record['seconds']:.1f} s")
    if record.get("target_transform") == "log":
        metric += " of log(y)"
    print(f"validation {metric} of the ensemble: {record['validation_score']:.4f}"
          + ("; predictions are exp of the mean of log(y)'s" if
             record.get("target_transform") == "log" else ""))
    if first.classes is not None:
        print(f"\nclasses ({len(first.classes)}): {_listed(first.classes.tolist(), 20)}")
    print("\npreprocessing (fitted on the training rows):")
    for line in first.preprocessing.describe():
        print(f"  {line}")
    print("\nmembers (weight, architecture, fitting, epochs run / best, validation loss):")
    weights = dict(zip(record["chosen"], ensemble.weights))
    for k, m in enumerate(record["members"]):
        embedding = m["numeric_embedding"]
        categories = (f", categories {m['category_encoding']}"
                      if first.preprocessing.categorical else "")
        shape = f"{embedding}{categories}, {m['depth']} x {m['width']} {m['activation']}"
        share = f"{weights[k]:.3f}" if k in weights else "  -  "
        print(f"  {k:3d}: {share}  {shape}; lr {m['learning_rate']:.2g}, decay "
              f"{m['weight_decay']:.2g}, dropout {m['dropout']:.2f}; {m['epochs']} / "
              f"{m['best_epoch']}; {m['validation_loss']:.5f}")
    return 0


def _rows(n: int) -> str:
    return "row" if n == 1 else "rows"


def _listed(values, most: int) -> str:
    """A list for a person: its first `most` items, then how many in all."""
    shown = ", ".join(map(str, values[:most]))
    return shown + (f", ... ({len(values)} in all)" if len(values) > most else "")


def _info_fit(fitted, metric) -> None:
    hp = fitted.hyperparameters
    print("\nhyperparameters:")
    unused = set()
    if not hp.early_stopping:
        unused |= {"validation_fraction", "monitor", "patience", "restore_best"}
    for key, value in hp.to_dict().items():
        note = "  (not used: no early stopping)" if key in unused else ""
        print(f"  {key:20s} {value}{note}")
    history = fitted.history
    print(f"\nhistory: {len(history)} epochs, {sum(h['seconds'] for h in history):.2f} s")
    last = history[-1]
    line = f"  last epoch: training loss {last['train_loss']:.5f}"
    if "validation_loss" in last:
        best = min(history, key=lambda h: h["validation_loss"])
        line += (f", validation loss {last['validation_loss']:.5f}, validation {metric} "
                 f"{last['validation_score']:.4f} (lowest validation loss at epoch "
                 f"{best['epoch']})")
    print(line)


def _info_members(members, metric) -> None:
    """One line per member, and the hyperparameters in which members differ."""
    settings = [m.hyperparameters.to_dict() for m in members]
    varying = [k for k in settings[0] if any(s[k] != settings[0][k] for s in settings)]
    print("\nhyperparameters (members 0 to "
          f"{len(members) - 1}; differing: {', '.join(varying) or 'none'}):")
    for key, value in settings[0].items():
        if key not in varying:
            print(f"  {key:20s} {value}")
    print("\nmembers:")
    for k, m in enumerate(members):
        last = m.history[-1]
        line = f"  {k:3d}: {len(m.history)} epochs, training loss {last['train_loss']:.5f}"
        if "validation_score" in last:
            line += f", validation {metric} {last['validation_score']:.4f}"
        if varying:
            line += "  (" + ", ".join(f"{key}={settings[k][key]}" for key in varying) + ")"
        print(line)


def _plot(args) -> int:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("archfit plot needs matplotlib: pip install matplotlib") from None
    from archfit._progress import metric_name
    _check_writable(args.output_file)
    fitted = _load(args.model)
    members = fitted.members if hasattr(fitted, "members") else [fitted]
    first = members[0]
    has_val = all("validation_loss" in m.history[-1] for m in members)
    fig = Figure(figsize=(9 if has_val else 5, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2 if has_val else 1, 1)
    ax2 = fig.add_subplot(1, 2, 2) if has_val else None
    many = len(members) > 1
    for k, m in enumerate(members):
        epochs = [h["epoch"] for h in m.history]
        width, alpha = (1.0, 0.6) if many else (1.5, 1.0)
        ax.plot(epochs, [h["train_loss"] for h in m.history], color="C0", lw=width,
                alpha=alpha, label="training" if k == 0 else None)
        if has_val:
            ax.plot(epochs, [h["validation_loss"] for h in m.history], color="C1", lw=width,
                    alpha=alpha, label="validation" if k == 0 else None)
            ax2.plot(epochs, [h["validation_score"] for h in m.history], color="C1", lw=width,
                     alpha=alpha)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({first.model.loss})")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    if has_val:
        ax2.set_xlabel("epoch")
        ax2.set_ylabel(f"validation {metric_name(first.architecture.output)}")
        ax2.grid(alpha=0.3)
    fig.suptitle(str(args.model) + (f" ({len(members)} members)" if many else ""))
    fig.savefig(args.output_file, dpi=100)
    print(f"wrote {args.output_file}")
    return 0


def _demo(args) -> int:
    from archfit.demo import run
    run(seed=args.seed, epochs=args.epochs)
    return 0


def _members(text: str) -> int:
    """--ensemble's value: the members, 1 to kernels.MAX_MEMBERS."""
    from archfit.kernels import MAX_MEMBERS
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= MAX_MEMBERS:
        raise argparse.ArgumentTypeError(f"the members, a whole number from 1 to {MAX_MEMBERS}, "
                                         f"got {text!r}")
    return k


def _layers(text: str) -> list:
    """--layers's value: the hidden layers as JSON (a list of layer dicts, as
    Architecture.to_dict writes them), inline or in a file."""
    import json
    from archfit.layers import layer_from_dict
    source = "--layers"
    if not text.lstrip().startswith("["):
        source = f"--layers {text}"
        try:
            with open(text) as f:
                text = f.read()
        except OSError as exc:
            raise ValueError(f"{source}: {_os_error(exc)} (give a JSON list of layers, or a "
                             "file holding one)") from None
    try:
        layers = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc})") from None
    if not isinstance(layers, list):
        raise ValueError(f"{source} must be a JSON list of layers, e.g. "
                         '[{"kind": "dense", "units": 64, "activation": "relu"}]')
    return [layer_from_dict(d, f"{source}: layer {i}") for i, d in enumerate(layers)]


def _hidden(text: str) -> list[int]:
    """--hidden's value: comma-separated positive widths (a usage error otherwise)."""
    try:
        widths = [int(h) for h in text.split(",") if h.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated whole numbers such as 128,64, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"widths must be at least 1, got {text!r}")
    return widths


def _separator(text: str) -> str:
    """--sep's value: one character; \t and the words comma, semicolon, tab, pipe too."""
    named = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
    value = named.get(text.lower(), text)
    if len(value) != 1 or value in "\r\n\"":
        raise argparse.ArgumentTypeError(f"must be one character (or comma, semicolon, tab, "
                                         f"pipe), got {text!r}")
    return value


class _Help(argparse.HelpFormatter):
    """Shows a default where there is one to show: not on required arguments,
    switches or options whose absence means something else."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" not in text and not action.required and action.option_strings
                and not any(action.default is v for v in (None, False, argparse.SUPPRESS))):
            text += " (default: %(default)s)"
        return text


def parser() -> argparse.ArgumentParser:
    from archfit import __version__
    from archfit.architecture import ACTIVATIONS
    from archfit.hyperparameters import OPTIMIZERS
    p = argparse.ArgumentParser(prog="archfit", description="Fast CPU training of neural "
                                "networks: fit, inspect and use archfit models.")
    p.add_argument("--version", action="version", version=f"archfit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="fit a network to the shipped digits data",
                          formatter_class=_Help)
    demo.add_argument("--seed", type=int, default=0, help="seed of the split and the fit")
    demo.add_argument("--epochs", type=int, default=None,
                      help="override the number of epochs (default: the demo's 40)")
    demo.set_defaults(run=_demo)

    sep_help = ("the CSV's field separator, e.g. ';' or tab (default: detected from the "
                "file's first lines among , ; tab |)")
    train = sub.add_parser("train", help="fit the tabular learner (or, with --network, one "
                           "network) to a CSV, Parquet or NPZ file", formatter_class=_Help)
    train.add_argument("data", help="CSV or Parquet with named columns, or NPZ with arrays X "
                       "and y")
    train.add_argument("--target", required=True, help="the column (or NPZ array) to predict")
    train.add_argument("--members", type=int, default=None,
                       help="the tabular learner's networks (default: fit_tabular's); text, categories, "
                       "dates and empty cells are encoded, the ensemble chosen on the "
                       "held-out rows")
    train.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                       help="the tabular learner stops training after this long, keeping "
                       "what it has")
    train.add_argument("--categorical", default=None, metavar="NAMES",
                       help="comma-separated columns of whole numbers to read as categories "
                       "(text columns always are)")
    train.add_argument("--log-target", action="store_true",
                       help="the tabular learner fits log(target) and predicts exp of its "
                       "mean: for prices and other positive quantities")
    train.add_argument("--network", action="store_true",
                       help="train one network instead of the tabular learner; the options "
                       "below set it up")
    shape = train.add_mutually_exclusive_group()
    shape.add_argument("--hidden", default="64", type=_hidden,
                       help="hidden widths of dense layers, e.g. 128,64")
    shape.add_argument("--layers", default=None, metavar="JSON",
                       help="the hidden layers as a JSON list, inline or in a file, e.g. "
                       '\'[{"kind": "dense", "units": 64, "activation": "relu"}, {"kind": '
                       '"residual", "layers": [{"kind": "layer_norm"}, {"kind": "dense", '
                       '"units": 64, "activation": "relu"}]}]\' (the output layer is added); '
                       "instead of --hidden and --activation")
    train.add_argument("--ensemble", type=_members, default=None, metavar="K",
                       help="K networks inside one, sharing all weights but the last layer's "
                       "(BatchEnsemble, as TabM-mini): the prediction is their mean")
    train.add_argument("--adapters", default="first", choices=["first", "all", "none"],
                       help="with --ensemble: each member's own scales of the first layer's "
                       "input (TabM-mini), rank-1 adapters on every layer (TabM), or none")
    train.add_argument("--activation", default="relu",
                       choices=ACTIVATIONS,
                       help="hidden activation")
    train.add_argument("--output", default="auto",
                       choices=["auto", "softmax", "sigmoid", "linear"],
                       help="head: softmax (classes), sigmoid (a 0/1 target) or linear "
                       "(regression); auto: softmax for labels and few whole numbers")
    train.add_argument("--epochs", type=int, default=50, help="passes over the training rows")
    train.add_argument("--batch-size", type=int, default=64, help="rows per update")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    train.add_argument("--optimizer", default="adam",
                       choices=OPTIMIZERS, help="optimizer")
    train.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights")
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                       help="floating-point type of the weights and the arithmetic")
    train.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                       help="operands of the dense layers' products (every member's, or the "
                       "network's): bfloat16 (float32 accumulation) runs faster on CPUs with "
                       "AMX or AVX512_BF16")
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the fit")
    train.add_argument("--validation-fraction", type=float, default=0.2,
                       help="share of rows held out to score the fit; 0 trains on every row")
    train.add_argument("--no-scale", action="store_true",
                       help="use the features (and a regression's target) as given instead "
                       "of standardising them with the training rows' means and deviations")
    train.add_argument("--impute", choices=["mean", "median"], default=None,
                       help="fill empty feature cells with the training rows' mean or median "
                       "of the column (kept with the model, applied by predict); default: "
                       "refuse missing values")
    train.add_argument("--sep", type=_separator, default=None, help=sep_help)
    train.add_argument("--progress", default="auto", choices=["auto", "bar", "plain", "none"],
                       help="progress on standard error: a tqdm bar, a line per epoch, or "
                       "nothing; auto: a bar when standard error is a terminal (and tqdm is "
                       "installed), else nothing")
    train.add_argument("--checkpoint", default=None, metavar="PATH",  # network only
                       help="keep the fit's state in PATH after every epoch; if PATH exists, "
                       "resume from it (the same command gives the same model as an "
                       "uninterrupted run)")
    train.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    train.add_argument("-o", "--output-file", required=True, help="where to save the fit model")
    train.set_defaults(run=_train)

    predict = sub.add_parser("predict", help="predict with a saved fit model or ensemble",
                             formatter_class=_Help)
    predict.add_argument("model", help="a file written by archfit train, FitModel.save or "
                         "Ensemble.save")
    predict.add_argument("data", help="CSV, Parquet or NPZ with the model's feature columns "
                         "(matched by name)")
    predict.add_argument("--sep", type=_separator, default=None, help=sep_help)
    predict.add_argument("-o", "--output-file", default="-",
                         help="CSV to write: predictions, and probabilities for classifiers "
                         "(default: standard output)")
    predict.set_defaults(run=_predict)

    info = sub.add_parser("info", help="describe a saved fit model or ensemble",
                          formatter_class=_Help)
    info.add_argument("model", help="an archfit file")
    info.set_defaults(run=_info)

    plot = sub.add_parser("plot", help="plot training and validation curves to a PNG",
                          formatter_class=_Help)
    plot.add_argument("model", help="an archfit file (an ensemble: every member's curves)")
    plot.add_argument("-o", "--output-file", required=True, help="the PNG to write")
    plot.set_defaults(run=_plot)
    return p


def _os_error(exc: OSError) -> str:
    """An operating-system error in the command line's words, without errno codes."""
    what = {FileNotFoundError: "no such file", IsADirectoryError: "is a folder, not a file",
            PermissionError: "permission denied", NotADirectoryError: "not a folder"}
    for kind, text in what.items():
        if isinstance(exc, kind) and exc.filename is not None:
            return f"{text}: {exc.filename}"
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror.lower()}: {exc.filename}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status (:data:`INTERRUPTED` after Ctrl-C)."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # the reader went away (`archfit predict ... | head`): end quietly, and
        # keep Python from complaining when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("archfit: interrupted", file=sys.stderr)
        return INTERRUPTED
    except RuntimeError as exc:
        # Python 3.11 wraps what a class body's __set_name__ raises (a Ctrl-C
        # while a lazy import makes a dataclass) in a RuntimeError
        if isinstance(exc.__cause__, KeyboardInterrupt):
            print("archfit: interrupted", file=sys.stderr)
            return INTERRUPTED
        raise
    except OSError as exc:
        print(f"archfit: error: {_os_error(exc)}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, ImportError, FloatingPointError) as exc:
        print(f"archfit: error: {exc}", file=sys.stderr)
        return 1


def run() -> None:
    """The program ``archfit`` (and ``python -m archfit``): :func:`main` on
    the command line's arguments, then its exit status.

    After Ctrl-C the process ends killed by SIGINT, as Python ends a program
    whose KeyboardInterrupt went unhandled, once the exit handlers have run:
    a shell reports status 130 and, unlike for a plain ``exit(130)``, stops
    the script or loop that ran the command. Python itself ends so whenever
    the signal came while an ``exec`` of a string ran (a dataclass being
    made, say), so a plain exit would give one or the other by chance.
    Where there is no such signal (Windows) the status is 130.
    """
    status = main()
    if status == INTERRUPTED and os.name == "posix":
        _end_by_sigint()
    sys.exit(status)


def _end_by_sigint() -> None:
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    # reached only if SIGINT is blocked: the status a shell would show
