"""Tables as input: a data frame's (or a pyarrow Table's, or a dict's) columns,
named, each of one kind.

A *column* here is what a person sees in a table: a name and cells. Its
*kind* decides how :class:`~archfit.preprocessing.Preprocessing` encodes it:

==============  =================================================================
kind            cells
==============  =================================================================
numeric         integers and floats (pandas' nullable ones too); NaN or an empty
                cell is missing
categorical     text, pandas ``category``, booleans, and integer columns named
                in ``categorical=``; None, NaN or NA is missing
date            dates and times: expanded to numeric parts (year, month, weekday)
==============  =================================================================

Durations become numbers of seconds. Anything else (lists, complex numbers) is
refused naming the column.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass

import numpy as np

KINDS = ("numeric", "categorical", "date")
# A cell of text that is an ISO date, with or without a time of day.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")


@dataclass(frozen=True)
class Column:
    """One column of a table as read: its name, kind and cells (numeric:
    float64 with NaN where missing; categorical: an object array of values
    with None where missing; date: datetime64[s] with NaT where missing)."""

    name: str
    kind: str
    values: np.ndarray


def is_table(X) -> bool:
    """A pandas DataFrame, a pyarrow Table or a dict of columns (not an
    array, sparse matrix or memory map)."""
    if isinstance(X, dict):
        return True
    module = type(X).__module__
    return (hasattr(X, "columns") and not isinstance(X, np.ndarray)
            and (module.startswith("pandas") or module.startswith("pyarrow")))


def table_columns(X) -> list[tuple]:
    """(label, values) of each column of table `X` (see :func:`is_table`),
    in order, labels as the table gives them."""
    if isinstance(X, dict):
        return list(X.items())
    if type(X).__module__.startswith("pyarrow"):
        return [(n, X.column(n)) for n in X.column_names]
    return list(X.items())


def n_rows(X) -> int:
    """The number of rows of a table or an array."""
    if is_table(X):
        if isinstance(X, dict):
            return len(next(iter(X.values()))) if X else 0
        return X.num_rows if hasattr(X, "num_rows") else len(X)
    return len(np.asarray(X, dtype=object) if not hasattr(X, "shape") else X)


def take_rows(X, index):
    """Rows `index` of a table or array, of its own kind."""
    if isinstance(X, dict):
        return {k: np.asarray(v)[index] for k, v in X.items()}
    if hasattr(X, "iloc"):
        return X.iloc[index]
    if hasattr(X, "take") and hasattr(X, "column_names"):
        return X.take(index)
    return np.asarray(X)[index]


def columns_of(X, name: str = "X", categorical=()) -> list[Column]:
    """The columns of table `X` (see :func:`is_table`), or of a 2-D array
    (columns named "x0", "x1", ...), each with its kind. `categorical`: names
    of columns to read as categories whatever their cells (integer codes,
    for instance)."""
    categorical = set(categorical)
    if is_table(X):
        pairs = table_columns(X)
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a table or a 2-dimensional array, got shape "
                             f"{arr.shape}")
        pairs = [(f"x{j}", arr[:, j]) for j in range(arr.shape[1])]
    names = [str(n) if not isinstance(n, str) else n for n, _ in pairs]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{name} has more than one column named {twice[0]!r}")
    unknown = categorical - set(names)
    if unknown:
        raise ValueError(f"categorical names column(s) {sorted(unknown)} that {name} does not "
                         f"have; its columns are {names[:20]}")
    if not pairs:
        raise ValueError(f"{name} has no columns")
    out = [_column(n, values, name, n in categorical) for n, (_, values) in zip(names, pairs)]
    lengths = {len(c.values) for c in out}
    if len(lengths) > 1:
        raise ValueError(f"{name}: its columns have different lengths {sorted(lengths)}")
    if not lengths or lengths.pop() == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    return out


def _column(label: str, values, name: str, as_category: bool) -> Column:
    """One column's kind and cells."""
    where = f"{name}: column {label!r}"
    if type(values).__module__.startswith("pyarrow"):
        values = _arrow_values(values, where)
    dtype = getattr(values, "dtype", None)
    text = str(dtype) if dtype is not None else ""
    if text == "category":                       # pandas categorical: categories by code
        categories = np.asarray(values.cat.categories, dtype=object)
        codes = np.asarray(values.cat.codes)
        cells = np.empty(len(codes), dtype=object)
        cells[codes >= 0] = [_plain(v) for v in categories[codes[codes >= 0]]]
        return Column(label, "categorical", cells)
    if text.startswith(("datetime", "period")) or getattr(dtype, "kind", "") == "M":
        return Column(label, "date", _dates(values, where))
    if text.startswith("timedelta") or getattr(dtype, "kind", "") == "m":
        seconds = np.asarray(values, dtype="timedelta64[ns]").astype(np.float64) / 1e9
        seconds[np.isnat(np.asarray(values, dtype="timedelta64[ns]"))] = np.nan
        return Column(label, "numeric", seconds)
    kind = getattr(dtype, "kind", None)
    if text in ("boolean", "bool") or kind == "b":
        return Column(label, "categorical", _cells(values, where))
    if kind in "iuf" or text.lower() in ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                         "uint32", "uint64", "float32", "float64"):
        if as_category:
            return Column(label, "categorical", _cells(values, where))
        return Column(label, "numeric", _numbers(values, where))
    if kind == "c":
        raise TypeError(f"{where} holds complex numbers")
    cells = _cells(values, where)
    present = [c for c in cells if c is not None]
    if present and all(isinstance(c, (np.datetime64,)) or _is_date(c) for c in present):
        return Column(label, "date", _dates(cells, where))
    if (not as_category and present and all(isinstance(c, str) for c in present)
            and all(_ISO_DATE.match(c) for c in present)):
        try:                        # text of ISO dates, as a CSV holds them
            return Column(label, "date", np.array(
                [np.datetime64("NaT") if c is None else np.datetime64(c.replace(" ", "T"), "s")
                 for c in cells], dtype="datetime64[s]"))
        except ValueError:
            pass
    if (not as_category and present
            and all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in present)):
        return Column(label, "numeric", np.array([np.nan if c is None else float(c)
                                                 for c in cells]))
    return Column(label, "categorical", cells)


def _arrow_values(values, where):
    """A pyarrow column as NumPy values or a pandas-like categorical."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    if pa.types.is_dictionary(t):
        values = values.dictionary_decode()
        t = values.type
    if pa.types.is_floating(t) or pa.types.is_integer(t):
        return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)) \
            if values.null_count or pa.types.is_floating(t) else values.to_numpy()
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return np.asarray(pc.cast(values, pa.timestamp("s")).to_numpy(zero_copy_only=False))
    if pa.types.is_duration(t):
        return np.asarray(values.to_numpy(zero_copy_only=False))
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.array(values.to_pylist(), dtype=object)
    raise TypeError(f"{where} holds {t} values, which archfit cannot encode")


def _plain(value):
    """A cell as a plain Python value (NumPy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def _cells(values, where) -> np.ndarray:
    """Cells as an object array, None where missing; lists and the like refused."""
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{where} must be one-dimensional, got shape {arr.shape}")
    out = np.empty(len(arr), dtype=object)
    for i, v in enumerate(arr):
        if _missing(v):
            continue
        v = _plain(v)
        if isinstance(v, str):
            v = v.strip()
            if v == "":
                continue
        elif not isinstance(v, (numbers.Number, bool, np.datetime64)) and not _is_date(v):
            raise TypeError(f"{where} holds a {type(v).__name__} at row {i}: the argument must "
                            "be a string or a number (or a boolean or a date)")
        out[i] = v
    return out


def _numbers(values, where) -> np.ndarray:
    """A numeric column as float64, NaN where missing; infinities refused."""
    try:
        x = np.asarray(values.astype("float64") if hasattr(values, "astype") else values,
                       dtype=np.float64)
    except (TypeError, ValueError):
        x = np.array([np.nan if _missing(v) else float(v) for v in values], dtype=np.float64)
    if np.isinf(x).any():
        raise ValueError(f"{where} holds an infinite value at row {int(np.argmax(np.isinf(x)))}")
    return x


def _is_date(value) -> bool:
    import datetime
    return isinstance(value, (datetime.date, np.datetime64)) or type(value).__name__ == "Timestamp"


def _dates(values, where) -> np.ndarray:
    """Dates as datetime64[s], NaT where missing (time zones dropped after
    conversion to UTC)."""
    tz = getattr(getattr(values, "dt", None), "tz", None)
    if tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if hasattr(values, "dt") and str(getattr(values, "dtype", "")).startswith("period"):
        values = values.dt.to_timestamp()
    try:
        return np.asarray([np.datetime64("NaT") if _missing(v) else np.datetime64(
            getattr(v, "to_datetime64", lambda: v)(), "s")
            for v in np.asarray(values, dtype=object)], dtype="datetime64[s]") \
            if np.asarray(values).dtype.kind == "O" else np.asarray(values).astype("datetime64[s]")
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where}: its dates could not be read ({error})") from None
