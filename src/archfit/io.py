"""Reading data files: CSV with a header row, Parquet, or NPZ (the command line's input).

CSV is read by pyarrow when it is installed, else by pandas, else by Python's
``csv`` module (slow, but correct): the same table, the same errors. The field
separator is detected from the first lines (comma, semicolon, tab or pipe)
unless given. Feature columns must be numeric; an empty cell is a *missing*
value, reported with its column and line unless the caller imputes it
(``missing="keep"`` leaves NaN for it). An unnamed first column (the index
that ``pandas.DataFrame.to_csv`` writes) is not a feature: it is left out,
with a note.
"""
from __future__ import annotations

import csv
import datetime
import os
import re
from dataclasses import dataclass, field

import numpy as np

ENGINES = ("auto", "pyarrow", "pandas", "python")
# Field separators tried when none is given, the first preferred on a tie.
SEPARATORS = (",", ";", "\t", "|")
_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# What pandas and pyarrow call a column whose header cell is empty.
_UNNAMED = re.compile(r"^(|Unnamed: 0)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


@dataclass
class Table:
    X: np.ndarray | dict          # float64 (n_samples, n_features); raw: {name: cells}
    y: np.ndarray | None          # the target column (numeric or strings), if asked for
    feature_names: list[str]
    target: str | None
    separator: str | None = None  # a CSV's field separator
    notes: list[str] = field(default_factory=list)   # what a reader should be told


def read(path, target: str | None = None, features: list[str] | None = None,
         require_target: bool = True, missing: str = "refuse", engine: str = "auto",
         sep: str | None = None, raw: bool = False) -> Table:
    """Read ``path`` (``.csv``, ``.parquet`` or ``.npz``; other names are read as CSV).

    CSV and Parquet: named columns; every feature column must be numeric; the
    ``target`` column may hold numbers or labels. NPZ: arrays ``X`` (2-D) and
    the target array named ``target`` (``"y"`` by default). ``features``
    selects and orders the feature columns when given. ``missing``: "refuse"
    (an error naming the column and line of the first empty feature cell) or
    "keep" (NaN, for the caller to impute). ``sep``: a CSV's field separator
    (one character); None detects it. ``raw``: X is a dict of the feature
    columns as read (text, dates and empty cells kept) for a
    :class:`~archfit.preprocessing.Preprocessing`, not a matrix of numbers.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory", path)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1):
        raise ValueError(f"sep must be one character, got {sep!r}")
    if path.endswith(".npz"):
        return _read_npz(path, target or "y", require_target, features)
    if path.endswith(".parquet"):
        header, columns = _parquet_columns(path)
    else:
        sep = detect_separator(path) if sep is None else sep
        header, columns = _csv_columns(path, engine, sep)
    return _table(path, header, columns, target, features, require_target, missing, sep, raw)


def detect_separator(path, sample_bytes: int = 65536) -> str:
    """The field separator of a CSV file, from its first lines: the candidate
    (comma, semicolon, tab, pipe) that splits the header into the most fields
    while every following complete line has as many; comma when none splits."""
    with open(path, "rb") as f:
        sample = f.read(sample_bytes)
    text = sample.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if len(sample) == sample_bytes and len(lines) > 1:
        lines = lines[:-1]                      # the last line may be cut
    lines = [line for line in lines[:50] if line.strip()]
    best, best_fields = ",", 1
    for candidate in SEPARATORS:
        try:
            rows = list(csv.reader(lines, delimiter=candidate))
        except csv.Error:
            continue
        if not rows:
            continue
        n = len(rows[0])
        if n > best_fields and all(len(r) == n for r in rows[1:]):
            best, best_fields = candidate, n
    return best


def separator_name(sep: str | None) -> str:
    """A separator as a person names it: "comma", "tab", "';'"."""
    return _SEPARATOR_NAMES.get(sep, repr(sep))


def shown(value) -> str:
    """A cell as a person would write it: dates in ISO form, text quoted,
    numbers as they are (never a Python repr such as datetime.date(...))."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, (str, np.str_)):
        return repr(str(value))
    if isinstance(value, (np.generic,)):
        return str(value.item())
    return str(value)


# ---- the readers: (header, {name: column}) --------------------------------------------------
def _parquet_columns(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install \"archfit[tables]\"") \
            from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Parquet file ({exc})") from None
    return _arrow_columns(table)


def _arrow_columns(table):
    import pyarrow as pa
    header = [str(name).strip() for name in table.column_names]
    columns = {}
    for name, column in zip(header, table.columns):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            # chunk by chunk: ChunkedArray.to_numpy is several times slower
            values = np.concatenate([chunk.to_numpy(zero_copy_only=False)
                                     for chunk in column.chunks]) if column.num_chunks else \
                np.empty(0)
            if column.null_count:
                values = values.astype(np.float64)       # nulls as NaN
            columns[name] = values
        else:
            columns[name] = np.array(column.to_pylist(), dtype=object)
    return header, columns


def _csv_columns(path, engine, sep=","):
    if engine in ("auto", "pyarrow"):
        try:
            import pyarrow.csv as pacsv
        except ImportError:
            if engine == "pyarrow":
                raise ImportError("engine 'pyarrow' needs pyarrow") from None
        else:
            try:
                table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=sep),
                                       convert_options=pacsv.ConvertOptions(
                    strings_can_be_null=True, null_values=[""],
                    quoted_strings_can_be_null=True))
            except Exception as exc:
                raise ValueError(f"{path} is not a readable CSV file ({exc})") from None
            return _arrow_columns(table)
    if engine in ("auto", "pandas"):
        try:
            import pandas as pd
        except ImportError:
            if engine == "pandas":
                raise ImportError("engine 'pandas' needs pandas") from None
        else:
            try:
                frame = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""],
                                    skip_blank_lines=True)
            except Exception as exc:
                raise ValueError(f"{path} is not a readable CSV file ({exc})") from None
            header = [str(c).strip() for c in frame.columns]
            return header, {h: frame[c].to_numpy() for h, c in zip(header, frame.columns)}
    return _python_csv(path, sep)


def _python_csv(path, sep=","):
    with open(path, newline="") as f:
        try:
            rows = [r for r in csv.reader(f, delimiter=sep) if r]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a readable CSV file ({exc})") from None
    if not rows:
        raise ValueError(f"{path} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(header):
            raise ValueError(f"{path}: line {i} has {len(r)} fields, the header has {len(header)}")
    columns = {}
    for j, name in enumerate(header):
        cells = [r[j].strip() for r in rows[1:]]
        try:
            columns[name] = np.array([np.nan if c == "" else float(c) for c in cells])
        except ValueError:
            columns[name] = np.array([None if c == "" else c for c in cells], dtype=object)
    return header, columns


# ---- from columns to a table --------------------------------------------------------------
def _table(path, header, columns, target, features, require_target, missing,
           sep=None, raw=False) -> Table:
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: duplicate column names in the header")
    n = len(next(iter(columns.values()))) if columns else 0
    if n == 0:
        raise ValueError(f"{path} needs a header row and at least one data row")
    read_as = "" if sep is None else (f" (read as {separator_name(sep)}-separated; --sep "
                                      "sets another separator)")
    if target is not None and target not in header:
        if require_target:
            raise ValueError(f"{path}: unknown target column {target!r}; columns are "
                             f"{_names(header)}{read_as}")
        target = None
    notes = []
    if features is None:
        features = [h for h in header if h != target]
        if features and _UNNAMED.match(features[0]) and header[0] == features[0]:
            notes.append(f"{path}: the first column has no name (an index, as "
                         "pandas' to_csv writes); it is not used as a feature")
            features = features[1:]
    absent = [c for c in features if c not in header]
    if absent:
        raise ValueError(f"{path}: missing feature column(s) {_names(absent)}{read_as}")
    if not features:
        raise ValueError(f"{path}: no feature columns besides the target{read_as}")
    if raw:
        X = {name: columns[name] for name in features}
    else:
        X = np.empty((n, len(features)), dtype=np.float64)
        for j, name in enumerate(features):
            X[:, j] = _numeric_column(path, name, columns[name], missing)
    y = None
    if target is not None:
        y = _target_column(path, target, columns[target])
    return Table(X, y, list(features), target, sep, notes)


def _names(names) -> str:
    """Column names for a message: the first twenty, quoted, then how many in all."""
    shown_names = ", ".join(repr(n) for n in names[:20])
    return f"[{shown_names}" + (f", ... ({len(names)} in all)]" if len(names) > 20 else "]")


def _line(index) -> int:
    return int(index) + 2       # the header is line 1


def _numeric_column(path, name, column, missing) -> np.ndarray:
    if column.dtype.kind in "biuf":
        values = column.astype(np.float64)
    else:
        values = np.full(len(column), np.nan)
        for i, cell in enumerate(column):
            if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell == "":
                continue
            try:
                values[i] = float(cell)
            except (TypeError, ValueError):
                raise ValueError(_not_numeric(path, name, i, cell)) from None
            if np.isnan(values[i]):
                raise ValueError(f"{path}: column {name!r} has a NaN at line {_line(i)}")
    nan = np.isnan(values)
    if nan.any() and missing != "keep":
        first = int(np.argmax(nan))
        raise ValueError(f"{path}: column {name!r} has {int(nan.sum())} missing value(s), the "
                         f"first at line {_line(first)}; impute them (archfit train --impute "
                         "mean|median) or remove those rows")
    if np.isinf(values).any():
        first = int(np.argmax(np.isinf(values)))
        raise ValueError(f"{path}: column {name!r} has an infinite value at line {_line(first)}")
    return values


def _not_numeric(path, name, i, cell) -> str:
    """Why a feature cell is refused, and for dates what to do instead."""
    text = f"{path}: column {name!r} is not numeric (line {_line(i)}: {shown(cell)})"
    if isinstance(cell, (datetime.date, np.datetime64)) or (
            isinstance(cell, str) and _DATE.match(cell.strip())):
        text += ("; it holds dates, which archfit does not read as features: convert them "
                 "to numbers first (e.g. days since a fixed date, or year, month and weekday "
                 "columns), or drop the column")
    return text


def _target_column(path, target, column) -> np.ndarray:
    if column.dtype.kind in "biuf":
        y = column.astype(np.float64) if column.dtype.kind == "f" else column
        if y.dtype.kind == "f":
            if np.isnan(y).any():
                raise ValueError(f"{path}: the target column {target!r} has missing values "
                                 f"(the first at line {_line(np.argmax(np.isnan(y)))})")
            if not np.isfinite(y).all():
                raise ValueError(f"{path}: the target column {target!r} has non-finite values")
            if np.all(y == np.round(y)) and np.abs(y).max() < 2**53:
                y = y.astype(np.int64)   # whole numbers: keep them as integer labels
        return y
    cells = [None if c is None or (isinstance(c, float) and np.isnan(c))
             else (c.isoformat() if isinstance(c, (datetime.date, datetime.time))
                   else str(c).strip())
             for c in column]
    empty = [i for i, c in enumerate(cells) if c is None or c == ""]
    if empty:
        raise ValueError(f"{path}: the target column {target!r} has missing values (the first "
                         f"at line {_line(empty[0])})")
    try:
        y = np.array([float(c) for c in cells])
    except ValueError:
        return np.array(cells)        # labels
    if not np.isfinite(y).all():
        raise ValueError(f"{path}: the target column {target!r} has non-finite values")
    if np.all(y == np.round(y)) and np.abs(y).max() < 2**53:
        y = y.astype(np.int64)
    return y


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


def looks_categorical(y: np.ndarray) -> bool:
    """Labels (strings), or integers with few distinct values: classify, not regress."""
    if y.dtype.kind in "USO":
        return True
    values = np.unique(y)
    return bool(np.all(values == np.round(values)) and len(values) <= 20)
