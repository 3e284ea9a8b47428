"""Reading data files for the command line: CSV with a header row, or NPZ."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class Table:
    X: np.ndarray                 # float64 (n_samples, n_features)
    y: np.ndarray | None          # the target column (numeric or strings), if asked for
    feature_names: list[str]
    target: str | None


def _number(text: str, column: str, row: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"column {column!r} is not numeric (row {row}: {text!r})") from None
    if not np.isfinite(value):
        raise ValueError(f"column {column!r} has a missing or non-finite value at row {row}")
    return value


def read(path, target: str | None = None, features: list[str] | None = None,
         require_target: bool = True) -> Table:
    """Read ``path`` (``.csv`` or ``.npz``).

    CSV: a header row names the columns; every feature column must be numeric;
    the ``target`` column may hold numbers or labels. NPZ: arrays ``X`` (2-D)
    and the target array named ``target`` (``"y"`` by default).
    ``features`` selects and orders the feature columns (CSV) when given.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if path.endswith(".npz"):
        return _read_npz(path, target or "y", require_target, features)
    return _read_csv(path, target, features, require_target)


def _read_npz(path, target, require_target, features):
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:
        raise ValueError(f"{path}: cannot read NPZ without unpickling objects ({exc})") from None
    except Exception as exc:
        raise ValueError(f"{path} is not a readable NPZ file ({exc})") from None
    if "X" not in arrays:
        raise ValueError(f"{path} has no array named 'X' (it has {sorted(arrays)})")
    X = arrays["X"]
    if X.ndim != 2:
        raise ValueError(f"{path}: X must be 2-dimensional, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path}: X must be numeric, got dtype {X.dtype}")
    y = arrays.get(target)
    if y is None and require_target:
        raise ValueError(f"{path} has no target array named {target!r} (it has {sorted(arrays)})")
    names = [f"x{i}" for i in range(X.shape[1])]
    if features is not None and len(features) != X.shape[1]:
        raise ValueError(f"{path}: X has {X.shape[1]} columns, the model expects {len(features)}")
    return Table(X.astype(np.float64), y, names if features is None else list(features),
                 target if y is not None else None)


def _read_csv(path, target, features, require_target):
    with open(path, newline="") as f:
        try:
            rows = list(csv.reader(f))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a readable CSV file ({exc})") from None
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise ValueError(f"{path} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: duplicate column names in the header")
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(header):
            raise ValueError(f"{path}: row {i} has {len(r)} fields, the header has {len(header)}")
    if target is not None and target not in header:
        if require_target:
            raise ValueError(f"{path}: unknown target column {target!r}; columns are {header}")
        target = None
    if features is None:
        features = [h for h in header if h != target]
    missing = [c for c in features if c not in header]
    if missing:
        raise ValueError(f"{path}: missing feature column(s) {missing}")
    if not features:
        raise ValueError(f"{path}: no feature columns besides the target")
    index = {h: i for i, h in enumerate(header)}
    X = np.array([[_number(r[index[c]].strip(), c, i) for c in features]
                  for i, r in enumerate(rows[1:], 2)], dtype=np.float64)
    y = None
    if target is not None:
        raw = [r[index[target]].strip() for r in rows[1:]]
        if any(v == "" for v in raw):
            raise ValueError(f"{path}: the target column {target!r} has missing values")
        try:
            y = np.array([float(v) for v in raw])
            if not np.isfinite(y).all():
                raise ValueError(f"{path}: the target column {target!r} has non-finite values")
            if np.all(y == np.round(y)) and np.abs(y).max() < 2**53:
                y = y.astype(np.int64)   # whole numbers: keep them as integer labels
        except ValueError as exc:
            if "non-finite" in str(exc):
                raise
            y = np.array(raw)        # labels
    return Table(X, y, list(features), target)


def looks_categorical(y: np.ndarray) -> bool:
    """Labels (strings), or integers with few distinct values: classify, not regress."""
    if y.dtype.kind in "USO":
        return True
    values = np.unique(y)
    return bool(np.all(values == np.round(values)) and len(values) <= 20)
