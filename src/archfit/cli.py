"""The command line: ``archfit demo | train | predict | info | plot``.

Every error is one line on standard error and a non-zero exit status
(1 for a failed command, 2 for wrong usage), never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np


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


def _targets(table, output):
    """(y, n_outputs, classes) for the chosen head, or a clear refusal."""
    y = table.y
    if output == "softmax":
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"the target column {table.target!r} holds one class only "
                             f"({classes[0]!r}); a classifier needs at least two")
        return y, len(classes), classes
    if output == "sigmoid":
        if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
            raise ValueError(f"--output sigmoid needs a 0/1 target column; {table.target!r} "
                             f"holds {np.unique(y)[:5].tolist()}")
        return y.astype(np.int8), 1, None
    if y.dtype.kind not in "biuf":
        raise ValueError(f"--output linear needs a numeric target; {table.target!r} holds "
                         "labels")
    return y.astype(np.float64), 1, None


def _train(args) -> int:
    import archfit as af
    from archfit._progress import Progress, metric_name
    from archfit.tabular import looks_categorical, read

    _check_writable(args.output_file)
    fraction = args.validation_fraction
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--validation-fraction must be in [0, 1) (0: train on every row), "
                         f"got {fraction}")
    table = read(args.data, args.target, missing="keep" if args.impute else "refuse")
    output = args.output
    if output == "auto":
        output = "softmax" if looks_categorical(table.y) else "linear"
    y, n_outputs, classes = _targets(table, output)
    try:
        hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers, got {args.hidden!r}") from None
    arch = af.Architecture(table.X.shape[1],
                           [af.Dense(h, args.activation) for h in hidden] + [af.Dense(n_outputs)],
                           output)
    model = af.Model(arch, args.dtype)
    scale = not args.no_scale
    hp = af.Hyperparameters(optimizer=args.optimizer, learning_rate=args.lr,
                            batch_size=args.batch_size, epochs=args.epochs, l2=args.l2,
                            seed=args.seed, standardize=scale,
                            standardize_targets=scale and output == "linear")
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
    say = (lambda *a: None) if args.quiet else print  # noqa: E731
    held = f"holding out {len(val)}" if len(val) else "holding out none"
    say(f"training on {len(train)} rows of {args.data}, {held}; target {table.target!r} "
        f"({output}), {len(table.feature_names)} features"
        + ("" if scale else ", not standardised") + "\n")
    say(arch.summary() + "\n")
    progress = None if args.quiet or args.progress == "none" else \
        Progress(hp.epochs, output, args.progress)
    validation = (X[val], y[val]) if len(val) else None
    try:
        fitted = af.fit(model, X[train], y[train], hp, validation=validation, classes=classes,
                        callback=None if progress is None else progress.epoch,
                        checkpoint=args.checkpoint)
    except KeyboardInterrupt as interrupt:
        if progress is not None:
            progress.close()
        _save_partial(args, getattr(interrupt, "fit_model", None), provenance)
        raise
    if progress is not None:
        progress.close()
    fitted = fitted._with_training_data(dict(fitted.training_data, **provenance))
    fitted.save(args.output_file)
    metric = metric_name(output)
    if len(val):
        say(f"\nhold-out {metric}: {fitted.history[-1]['validation_score']:.4f} on "
            f"{len(val)} rows")
    else:
        say(f"\ntraining {metric}: {fitted.score(X[train], y[train]):.4f} (no rows held out)")
    say(f"saved to {args.output_file}")
    return 0


def _save_partial(args, partial, provenance) -> None:
    """After Ctrl-C: keep the fit's last complete epoch next to the output
    file, and say where it is and how to go on."""
    from pathlib import Path
    if args.checkpoint is not None:
        print(f"archfit: the fit so far is in the checkpoint {args.checkpoint}; run the same "
              "command again to resume it", file=sys.stderr)
    if partial is None or not partial.history:
        return
    out = Path(args.output_file)
    path = out.with_name(f"{out.stem}.partial{out.suffix or '.archfit'}")
    try:
        partial._with_training_data(dict(partial.training_data, **provenance)).save(path)
    except OSError as exc:
        print(f"archfit: could not save the partial fit to {path}: {exc}", file=sys.stderr)
        return
    print(f"archfit: the fit after epoch {len(partial.history)} of {args.epochs} is saved to "
          f"{path}", file=sys.stderr)


def _predict(args) -> int:
    import archfit as af
    from archfit.tabular import read

    if args.output_file != "-":
        _check_writable(args.output_file)
    fitted = af.load(args.model)
    data = fitted.training_data or {}
    names = data.get("feature_names")
    impute = data.get("impute")
    table = read(args.data, data.get("target"), features=names, require_target=False,
                 missing="keep" if impute else "refuse")
    X = table.X if not impute else _fill(table.X, impute["values"])
    predictions = fitted.predict(X)
    columns = ["prediction"]
    rows = [[p] for p in predictions.tolist()] if predictions.ndim == 1 else predictions.tolist()
    if predictions.ndim == 2:
        columns = [f"prediction_{i}" for i in range(predictions.shape[1])]
    if fitted.architecture.output == "softmax":
        proba = fitted.predict_proba(X)
        columns += [f"probability_{c}" for c in fitted.classes.tolist()]
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
    import archfit as af
    from archfit._progress import metric_name

    fitted = af.load(args.model)
    model = fitted.model
    hp = fitted.hyperparameters
    metric = metric_name(fitted.architecture.output)
    print(f"{args.model}: archfit fit model ({model.dtype.name}, loss {model.loss})\n")
    print(fitted.architecture.summary())
    if fitted.classes is not None:
        print(f"\nclasses: {fitted.classes.tolist()}")
    scaling = fitted.standardization
    print(f"\nstandardisation: {'none' if scaling is None else scaling.describe()}")
    data = fitted.training_data or {}
    if data.get("impute"):
        impute = data["impute"]
        print(f"missing values: {impute['missing_cells']} cell(s) filled with the training "
              f"rows' {impute['strategy']} of their column")
    held = data.get("held_out")
    if held is not None:
        print(f"validation: {held['rows']} rows ({held['fraction']:.0%}) held out by the "
              "command line and scored every epoch" if held["rows"] else
              "validation: none (every row trained on)")
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
    if data:
        print("\ntraining data:")
        for key, value in data.items():
            if key in ("impute", "held_out"):
                continue
            if isinstance(value, list) and len(value) > 8:
                value = ", ".join(map(str, value[:8])) + f", ... ({len(value)} in all)"
            print(f"  {key:20s} {value}")
    return 0


def _plot(args) -> int:
    import archfit as af
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("archfit plot needs matplotlib: pip install matplotlib") from None
    fitted = af.load(args.model)
    history = fitted.history
    epochs = [h["epoch"] for h in history]
    has_val = "validation_loss" in history[-1]
    fig = Figure(figsize=(9 if has_val else 5, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2 if has_val else 1, 1)
    ax.plot(epochs, [h["train_loss"] for h in history], label="training")
    if has_val:
        ax.plot(epochs, [h["validation_loss"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({fitted.model.loss})")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    if has_val:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot(epochs, [h["validation_score"] for h in history], color="C1")
        ax2.set_xlabel("epoch")
        from archfit._progress import metric_name
        ax2.set_ylabel(f"validation {metric_name(fitted.architecture.output)}")
        ax2.grid(alpha=0.3)
    fig.suptitle(str(args.model))
    fig.savefig(args.output_file, dpi=100)
    print(f"wrote {args.output_file}")
    return 0


def _demo(args) -> int:
    from archfit.demo import run
    run(seed=args.seed, epochs=args.epochs)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archfit", description="Fast CPU training of neural "
                                "networks: fit, inspect and use archfit models.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="fit a network to the shipped digits data")
    demo.add_argument("--seed", type=int, default=0, help="seed of the split and the fit")
    demo.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    demo.set_defaults(run=_demo)

    defaults = argparse.ArgumentDefaultsHelpFormatter
    train = sub.add_parser("train", help="fit a network to a CSV, Parquet or NPZ file",
                           formatter_class=defaults)
    train.add_argument("data", help="CSV or Parquet with named columns, or NPZ with arrays X "
                       "and y")
    train.add_argument("--target", required=True, help="the column (or NPZ array) to predict")
    train.add_argument("--hidden", default="64", help="hidden widths, e.g. 128,64")
    train.add_argument("--activation", default="relu", help="hidden activation")
    train.add_argument("--output", default="auto",
                       choices=["auto", "softmax", "sigmoid", "linear"],
                       help="head: softmax (classes), sigmoid (a 0/1 target) or linear "
                       "(regression); auto: softmax for labels and few whole numbers")
    train.add_argument("--epochs", type=int, default=50, help="passes over the training rows")
    train.add_argument("--batch-size", type=int, default=64, help="rows per update")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    train.add_argument("--optimizer", default="adam", help="sgd, momentum, adam, adamw, lbfgs")
    train.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights")
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
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
    train.add_argument("--progress", default="auto", choices=["auto", "bar", "plain", "none"],
                       help="tqdm bar when installed (auto), a line per epoch, or nothing")
    train.add_argument("--checkpoint", default=None, metavar="PATH",
                       help="keep the fit's state in PATH after every epoch; if PATH exists, "
                       "resume from it (the same command gives the same model as an "
                       "uninterrupted run)")
    train.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    train.add_argument("-o", "--output-file", required=True, help="where to save the fit model")
    train.set_defaults(run=_train)

    predict = sub.add_parser("predict", help="predict with a saved fit model",
                             formatter_class=defaults)
    predict.add_argument("model", help="a file written by archfit train or FitModel.save")
    predict.add_argument("data", help="CSV or NPZ with the same feature columns")
    predict.add_argument("-o", "--output-file", default="-", help="CSV to write (default stdout)")
    predict.set_defaults(run=_predict)

    info = sub.add_parser("info", help="describe a saved fit model")
    info.add_argument("model")
    info.set_defaults(run=_info)

    plot = sub.add_parser("plot", help="plot training and validation curves to a PNG")
    plot.add_argument("model")
    plot.add_argument("-o", "--output-file", required=True)
    plot.set_defaults(run=_plot)
    return p


def main(argv: list[str] | None = None) -> int:
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
        return 130
    except (ValueError, TypeError, OSError, ImportError, FloatingPointError) as exc:
        print(f"archfit: error: {exc}", file=sys.stderr)
        return 1
