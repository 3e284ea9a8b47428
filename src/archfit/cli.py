"""The command line: ``archfit demo | train | predict | info | plot``.

Every error is one line on standard error and a non-zero exit status
(1 for a failed command, 2 for wrong usage), never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import sys

import numpy as np


def _progress(kind: str, epochs: int):
    """A per-epoch callback: a tqdm bar, a plain line, or nothing."""
    if kind == "none":
        return None, lambda: None
    if kind in ("auto", "bar"):
        try:
            from tqdm import tqdm
        except ImportError:
            if kind == "bar":
                raise ImportError("--progress bar needs tqdm: pip install tqdm") from None
            kind = "plain"
        else:
            bar = tqdm(total=epochs, unit="epoch", file=sys.stdout, dynamic_ncols=True)

            def update(record):
                post = {"loss": f"{record['train_loss']:.4f}"}
                if "validation_score" in record:
                    post["val_loss"] = f"{record['validation_loss']:.4f}"
                    post["val_score"] = f"{record['validation_score']:.4f}"
                bar.set_postfix(post, refresh=False)
                bar.update(1)
            return update, bar.close

    def line(record):
        text = f"epoch {record['epoch']:4d}/{epochs}  loss {record['train_loss']:.4f}"
        if "validation_score" in record:
            text += (f"  validation loss {record['validation_loss']:.4f}"
                     f"  score {record['validation_score']:.4f}")
        print(text, flush=True)
    return line, lambda: None


def _train(args) -> int:
    import archfit as af
    from archfit.tabular import looks_categorical, read

    table = read(args.data, args.target)
    y = table.y
    output = args.output
    if output == "auto":
        output = "softmax" if looks_categorical(y) else "linear"
    if output == "softmax":
        n_outputs = len(np.unique(y))
    elif y.ndim == 1:
        n_outputs = 1
    else:
        n_outputs = y.shape[1]
    try:
        hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers, got {args.hidden!r}") from None
    arch = af.Architecture(table.X.shape[1],
                           [af.Dense(h, args.activation) for h in hidden] + [af.Dense(n_outputs)],
                           output)
    model = af.Model(arch, args.dtype)
    hp = af.Hyperparameters(optimizer=args.optimizer, learning_rate=args.lr,
                            batch_size=args.batch_size, epochs=args.epochs, l2=args.l2,
                            seed=args.seed)
    train, val = af.validation_split(len(table.X), args.validation_fraction, args.seed,
                                     y if output == "softmax" else None)
    say = (lambda *a: None) if args.quiet else print  # noqa: E731
    say(f"training on {len(train)} rows of {args.data}, holding out {len(val)}; "
        f"target {table.target!r} ({output}), {len(table.feature_names)} features\n")
    say(arch.summary() + "\n")
    callback, close = _progress("none" if args.quiet else args.progress, hp.epochs)
    classes = np.unique(y) if output == "softmax" else None
    try:
        fitted = af.fit(model, table.X[train], y[train], hp, validation=(table.X[val], y[val]),
                        classes=classes, callback=callback, checkpoint=args.checkpoint)
    except KeyboardInterrupt as interrupt:
        close()
        _save_partial(args, getattr(interrupt, "fit_model", None))
        raise
    finally:
        close()
    score = fitted.history[-1]["validation_score"]
    provenance = dict(fitted.training_data, source=str(args.data), target=table.target,
                      feature_names=table.feature_names)
    fitted = fitted._with_training_data(provenance)
    fitted.save(args.output_file)
    metric = "accuracy" if output == "softmax" else "R²"
    say(f"\nhold-out {metric}: {score:.4f} on {len(val)} rows")
    say(f"saved to {args.output_file}")
    return 0


def _save_partial(args, partial) -> None:
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
        partial.save(path)
    except OSError as exc:
        print(f"archfit: could not save the partial fit to {path}: {exc}", file=sys.stderr)
        return
    print(f"archfit: the fit after epoch {len(partial.history)} of {args.epochs} is saved to "
          f"{path}", file=sys.stderr)


def _predict(args) -> int:
    import archfit as af
    from archfit.tabular import read

    fitted = af.load(args.model)
    data = fitted.training_data or {}
    names = data.get("feature_names")
    table = read(args.data, data.get("target"), features=names, require_target=False)
    predictions = fitted.predict(table.X)
    columns = ["prediction"]
    rows = [[p] for p in predictions.tolist()] if predictions.ndim == 1 else predictions.tolist()
    if predictions.ndim == 2:
        columns = [f"prediction_{i}" for i in range(predictions.shape[1])]
    if fitted.architecture.output == "softmax":
        proba = fitted.predict_proba(table.X)
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

    fitted = af.load(args.model)
    model = fitted.model
    print(f"{args.model}: archfit fit model ({model.dtype.name}, loss {model.loss})\n")
    print(fitted.architecture.summary())
    if fitted.classes is not None:
        print(f"\nclasses: {fitted.classes.tolist()}")
    print("\nhyperparameters:")
    for key, value in fitted.hyperparameters.to_dict().items():
        print(f"  {key:20s} {value}")
    history = fitted.history
    print(f"\nhistory: {len(history)} epochs, {sum(h['seconds'] for h in history):.2f} s")
    last = history[-1]
    line = f"  last epoch: train loss {last['train_loss']:.5f}"
    if "validation_loss" in last:
        best = min(history, key=lambda h: h["validation_loss"])
        line += (f", validation loss {last['validation_loss']:.5f}, score "
                 f"{last['validation_score']:.4f} (best loss at epoch {best['epoch']})")
    print(line)
    data = fitted.training_data
    if data:
        print("\ntraining data:")
        for key, value in data.items():
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
        ax2.set_ylabel("validation score")
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

    train = sub.add_parser("train", help="fit a network to a CSV or NPZ file")
    train.add_argument("data", help="CSV with a header row, or NPZ with arrays X and y")
    train.add_argument("--target", required=True, help="the column (CSV) or array (NPZ) to predict")
    train.add_argument("--hidden", default="64", help="hidden widths, e.g. 128,64 (default 64)")
    train.add_argument("--activation", default="relu", help="hidden activation (default relu)")
    train.add_argument("--output", default="auto", choices=["auto", "softmax", "linear"],
                       help="head: softmax (classify) or linear (regress); auto guesses")
    train.add_argument("--epochs", type=int, default=50)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    train.add_argument("--optimizer", default="adam")
    train.add_argument("--l2", type=float, default=0.0)
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--validation-fraction", type=float, default=0.2,
                       help="share of rows held out to score the fit (default 0.2)")
    train.add_argument("--progress", default="auto", choices=["auto", "bar", "plain", "none"],
                       help="tqdm bar when installed (auto), a line per epoch, or nothing")
    train.add_argument("--checkpoint", default=None, metavar="PATH",
                       help="keep the fit's state in PATH after every epoch; if PATH exists, "
                       "resume from it (the same command gives the same model as an "
                       "uninterrupted run)")
    train.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    train.add_argument("-o", "--output-file", required=True, help="where to save the fit model")
    train.set_defaults(run=_train)

    predict = sub.add_parser("predict", help="predict with a saved fit model")
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
    except KeyboardInterrupt:
        print("archfit: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, FloatingPointError) as exc:
        print(f"archfit: error: {exc}", file=sys.stderr)
        return 1
