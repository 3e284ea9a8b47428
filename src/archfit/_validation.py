"""Checks at the boundary: every array is validated here before a kernel sees it.

Kernels trust their input, so each function below either returns an array a
kernel can take as is (C-contiguous, the model's dtype, finite) or raises a
``TypeError``/``ValueError`` that names the argument and the problem.
"""
from __future__ import annotations

import numbers

import numpy as np

from archfit import _threads
from archfit._kernels._elementwise import finite

# Largest dimension BLAS's 32-bit ``int`` arguments can address.
MAX_DIMENSION = 2**31 - 1


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name``; bools are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(value, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite float inside the given interval, or raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def _frame_values(frame, name: str) -> np.ndarray | None:
    """A data frame whose columns are not all of one numeric dtype as a float
    array, column by column: pandas categorical columns as their category
    positions (-1 where missing), booleans as 0 and 1, nullable numbers with
    NaN where missing; a column of text or dates is refused in words. None
    for anything else (arrays, frames of plain numbers)."""
    dtypes = getattr(frame, "dtypes", None)
    if dtypes is None or not hasattr(frame, "columns") or isinstance(frame, np.ndarray):
        return None
    try:
        kinds = [(str(t), getattr(t, "kind", "O")) for t in dtypes]
    except TypeError:
        return None
    if len(set(dtypes)) <= 1 and all(isinstance(t, np.dtype) and t.kind in "iuf"
                                     for t in dtypes):
        return None                     # one NumPy numeric dtype: np.asarray keeps it
    columns = []
    for (label, column), (dtype, kind) in zip(frame.items(), kinds):
        if dtype == "category":
            columns.append(np.asarray(column.cat.codes, dtype=np.float64))
        elif kind in "biuf":
            # numbers (pandas' nullable ones too, with NaN where missing) and
            # booleans as 0 and 1
            columns.append(np.asarray(column.astype("float64"), dtype=np.float64))
        elif kind in "mM" or dtype.startswith(("datetime", "timedelta", "period")):
            raise TypeError(
                f"{name}: column {label!r} holds dates or times ({dtype}); turn them into "
                f"numbers first, e.g. df[{label!r}].dt.year and .dt.dayofyear, days since a "
                "date, or .dt.total_seconds() for durations")
        else:
            raise TypeError(
                f"{name}: column {label!r} holds {dtype} values, not numbers; a table of "
                "text, categories, dates or missing cells is read through a Preprocessing: "
                "p = archfit.Preprocessing.fit(X), an architecture with inputs=p.inputs and "
                "an Embedding or OneHot layer, then fit(..., preprocessing=p)")
    return np.column_stack(columns) if columns else None


def check_codes(arr: np.ndarray, categorical, name: str = "X", first_row: int = 0) -> None:
    """Refuse codes that are not those of the categorical inputs (the last
    len(categorical) columns): whole numbers 0 .. cardinality - 1, or -1 for
    a value unseen in training or missing."""
    if not len(categorical):
        return
    first = arr.shape[1] - len(categorical)
    for j, cardinality in enumerate(categorical):
        codes = arr[:, first + j]
        bad = (codes != np.round(codes)) | (codes < -1) | (codes > cardinality - 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"{name}: categorical input {j} (column {first + j}) holds {codes[row]:g} at row "
                f"{row + first_row}; its codes are whole numbers 0 .. {cardinality - 1}, or -1 "
                "for a value unseen in training or missing")


def _numeric(array, name: str) -> np.ndarray:
    """``array`` as an ndarray of a real numeric or bool dtype (a data frame's
    pandas categorical columns as their codes, its other columns as numbers)."""
    values = _frame_values(array, name)
    if values is not None:
        array = values
    try:
        arr = np.asarray(array)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex dtype {arr.dtype}")
    if kind not in "biuf":
        raise TypeError(f"{name} must be numeric (bool, integer or float), got dtype {arr.dtype}")
    return arr


def _all_finite(arr: np.ndarray) -> bool:
    if arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous:
        # one pass in C, no temporary: np.isfinite would allocate a bool array
        # as large as the data (45 MiB for 60,000 x 784) just to check it
        # a large array is shared by as many threads as BLAS may use now (one
        # inside parallel fits), like the kernels that will read it
        return finite(arr.reshape(-1), _threads.budget(None))
    if arr.ndim == 0:
        return bool(np.isfinite(arr))
    rows = max(1, 2**16 // max(1, arr.size // len(arr)))    # ~64K elements at a time
    return all(np.isfinite(arr[i:i + rows]).all() for i in range(0, len(arr), rows))


def check_finite(arr: np.ndarray, name: str, first_row: int = 0, index: str = "row") -> None:
    """Refuse NaN and infinities, naming how many there are and where the
    first is (its `index` - row, counted from `first_row` - and for a matrix
    its column)."""
    if arr.dtype.kind == "f" and arr.size and not _all_finite(arr):
        bad = ~np.isfinite(arr)
        n_bad = int(np.count_nonzero(bad))
        where = np.unravel_index(int(np.argmax(bad)), arr.shape)
        value = arr[where]
        kind = "NaN" if np.isnan(value) else "an infinite value"
        at = f"{index} {int(where[0]) + first_row}" + (
            f", column {int(where[1])}" if arr.ndim == 2 else "")
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s); the first is "
                         f"{kind} at {at}")


def as_features(X, n_features: int, dtype: np.dtype, name: str = "X") -> np.ndarray:
    """Validate a design matrix of shape (n_samples, n_features); return it C-contiguous."""
    arr = _numeric(X, name)
    if arr.ndim != 2:
        hint = " (for a single sample use X.reshape(1, -1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-dimensional (n_samples, n_features), "
                         f"got shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, the architecture expects {n_features}")
    if arr.shape[0] > MAX_DIMENSION:
        raise ValueError(f"{name} has more than {MAX_DIMENSION} samples")
    check_finite(arr, name)
    with np.errstate(over="ignore"):  # reported below, with the argument's name
        out = np.ascontiguousarray(arr, dtype=dtype)
    # float64 -> float32 can overflow to inf for values beyond float32's range.
    if out.dtype != arr.dtype and out.dtype.kind == "f" and arr.dtype.kind == "f":
        check_finite(out, f"{name} (converted to {dtype})")
    return out


def as_parameters(theta, n_parameters: int, dtype: np.dtype, name: str = "theta") -> np.ndarray:
    """Validate a flat parameter vector: exact dtype, right length, finite."""
    if not isinstance(theta, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(theta).__name__}")
    if theta.dtype != dtype:
        raise TypeError(f"{name} has dtype {theta.dtype}, the model's dtype is {dtype}")
    if theta.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {theta.shape}")
    if theta.shape[0] != n_parameters:
        raise ValueError(f"{name} has length {theta.shape[0]}, the model has {n_parameters} parameters")
    check_finite(theta, name, index="position")
    return np.ascontiguousarray(theta)


def as_sample_weight(sample_weight, n_samples: int, dtype: np.dtype) -> np.ndarray | None:
    """Validate sample weights: shape (n_samples,), finite, >= 0, positive sum."""
    if sample_weight is None:
        return None
    w = _numeric(sample_weight, "sample_weight")
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
    check_finite(w, "sample_weight")
    with np.errstate(over="ignore"):
        w = np.ascontiguousarray(w, dtype=dtype)
    check_finite(w, f"sample_weight (converted to {np.dtype(dtype)})")
    if (w < 0).any():
        raise ValueError("sample_weight must be non-negative")
    if not w.sum() > 0:
        raise ValueError("sample_weight must have a positive sum")
    return w


def feature_names(X) -> list[str] | None:
    """The column names of a data frame (anything with ``columns``) whose
    names are all strings; None for arrays and unnamed columns."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = list(columns)
    if not names or not all(isinstance(c, str) for c in names):
        return None
    return names


def warn_unnamed(X, names: list[str] | None, name: str = "X") -> None:
    """Warn, as scikit-learn does, when a fit on named columns is given
    columns without names: they are taken in the order of the fit's."""
    if names is None or feature_names(X) is not None:
        return
    if hasattr(X, "columns") and not isinstance(X, np.ndarray):
        return      # a frame with unnamed columns: by_name leaves it as it is
    import warnings
    shown = ", ".join(repr(c) for c in names[:5]) + (", ..." if len(names) > 5 else "")
    warnings.warn(f"{name} has no column names, but this was fit on named columns; its "
                  f"columns are taken to be {shown} in that order", UserWarning, stacklevel=3)


def by_name(X, names: list[str] | None, name: str = "X"):
    """X's columns in the order `names` gives, when X is a data frame with
    named columns and the fit recorded names; X itself otherwise."""
    if names is None:
        return X
    given = feature_names(X)
    if given is None:
        return X
    if given == names:
        return X
    present = set(given)
    missing = [c for c in names if c not in present]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(f"{name} lacks column(s) the model was fit on: {shown}{more}")
    return X[names]
