"""Targets as the kernels need them, from labels as users have them.

softmax → integer class codes (``int32``) plus the sorted ``classes``;
sigmoid → an (n, k) matrix of 0/1 (or soft labels in [0, 1]);
linear → an (n, k) matrix of floats.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from archfit._kernels._labels import integer_codes
from archfit._validation import _numeric, check_finite


class Targets(NamedTuple):
    labels: np.ndarray | None   # int32 (n,) class codes for softmax, else None
    values: np.ndarray | None   # (n, k) model dtype for sigmoid/linear, else None
    classes: np.ndarray | None  # sorted class labels for softmax
    ndim: int                   # 1 or 2: the shape the user's y had

    def take(self, index: np.ndarray) -> "Targets":
        """The rows ``index`` (for splits), C-contiguous."""
        return Targets(None if self.labels is None else np.ascontiguousarray(self.labels[index]),
                       None if self.values is None else np.ascontiguousarray(self.values[index]),
                       self.classes, self.ndim)

    def with_values(self, values: np.ndarray) -> "Targets":
        """The same targets with other values (standardised ones)."""
        return Targets(self.labels, values, self.classes, self.ndim)


def _as_label_array(y, name: str) -> np.ndarray:
    try:
        arr = np.asarray(y)
    except Exception as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional class labels for a softmax output, "
                         f"got shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex class labels are not supported")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite labels")
    if arr.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in arr):
            raise ValueError(f"{name} contains missing (None or NaN) labels")
    return arr


def class_labels(y, name: str = "y", declared: bool = False) -> np.ndarray:
    """The sorted distinct labels of ``y``. Float labels read off data must be
    whole numbers (others are continuous values); ``declared`` ones (a
    ``classes=`` argument) may be anything."""
    arr = _as_label_array(y, name)
    if arr.dtype.kind == "f" and arr.size and not declared:
        fractional = arr[arr != np.round(arr)]
        if fractional.size:
            raise ValueError(
                f"{name} holds continuous values ({float(fractional[0])!r} is not a whole "
                "number), not class labels: a softmax output classifies; for regression "
                "use output='linear' in the Architecture")
    try:
        return np.unique(arr)
    except TypeError as exc:
        raise TypeError(f"{name} mixes label types that cannot be sorted: {exc}") from None


def _integer_labels(arr: np.ndarray):
    """Sorted classes and codes of integer labels in one counting pass, or None.

    The same result as ``np.unique`` + ``np.searchsorted`` without sorting the
    labels (``_kernels._labels``): a small fit's Python time is a visible share
    of many parallel fits. None when the labels span too wide a range for a
    table, or are unsigned 64-bit (beyond int64).
    """
    if arr.dtype == np.uint64:
        return None
    found = integer_codes(np.ascontiguousarray(arr, dtype=np.int64), 4 * arr.size + 1024)
    if found is None:
        return None
    classes, codes = found
    return classes.astype(arr.dtype, copy=False), codes


def encode(y, output: str, n_outputs: int, n_samples: int, dtype: np.dtype,
           classes: np.ndarray | None = None, name: str = "y") -> Targets:
    """Validate ``y`` for an output head and encode it for the kernels.

    ``classes`` fixes the label set (a continued fit, a validation set, or a
    declared set); otherwise, for softmax, it is read off ``y`` and must have as
    many labels as the architecture has outputs.
    """
    if output == "softmax":
        arr = _as_label_array(y, name)
        if arr.shape[0] != n_samples:
            raise ValueError(f"{name} has {arr.shape[0]} labels, X has {n_samples} samples")
        if classes is None and arr.dtype.kind in "iu" and arr.size:
            found = _integer_labels(arr)
            if found is not None:
                classes, codes = found
                if len(classes) != n_outputs:
                    raise ValueError(
                        f"{name} has {len(classes)} distinct classes but the architecture has "
                        f"{n_outputs} softmax outputs; pass classes=[...] to fit if some "
                        f"classes are absent from this data")
                return Targets(codes, None, classes, 1)
        if classes is None:
            classes = class_labels(arr, name)
            if len(classes) != n_outputs:
                raise ValueError(
                    f"{name} has {len(classes)} distinct classes but the architecture has "
                    f"{n_outputs} softmax outputs; pass classes=[...] to fit if some classes "
                    f"are absent from this data")
        try:
            codes = np.searchsorted(classes, arr)
        except TypeError:
            raise ValueError(f"{name}'s labels are not comparable with the classes "
                             f"{classes.tolist()!r}") from None
        codes = np.minimum(codes, len(classes) - 1)
        unseen = classes[codes] != arr
        if unseen.any():
            bad = np.unique(arr[unseen])[:10].tolist()
            raise ValueError(f"{name} contains labels not among the classes "
                             f"{classes.tolist()!r}: {bad!r}")
        return Targets(np.ascontiguousarray(codes, dtype=np.intc), None, classes, 1)

    arr = _numeric(y, name)
    ndim = arr.ndim
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(f"{name} must have shape ({n_samples}, {n_outputs})"
                         + (f" or ({n_samples},)" if n_outputs == 1 else "")
                         + f" for a {output} output with {n_outputs} unit(s), got {np.shape(y)}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} rows, X has {n_samples} samples")
    check_finite(arr, name)
    with np.errstate(over="ignore"):  # reported below, with the argument's name
        values = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(values, f"{name} (converted to {np.dtype(dtype)})")
    if output == "sigmoid" and ((values < 0).any() or (values > 1).any()):
        raise ValueError(f"{name} must hold 0/1 indicators (or probabilities in [0, 1]) "
                         "for a sigmoid output")
    if output == "exponential" and (values < 0).any():
        raise ValueError(f"{name} must be non-negative (counts or rates) for an exponential "
                         "output; its Poisson loss is not defined for negative values")
    return Targets(None, values, None, ndim)
