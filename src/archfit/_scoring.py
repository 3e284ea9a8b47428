"""Named scores for hold-out estimates (higher is better)."""
from __future__ import annotations

from typing import Callable

from archfit._sparse import SparseRows
from archfit._streaming import FileRows


def _as_given(X):
    """A hold-out part as a user's function expects it: an array, or the
    scipy.sparse matrix for sparse X."""
    if isinstance(X, FileRows):
        return X.take()
    if isinstance(X, SparseRows):
        return X.matrix
    return X

SCORINGS = ("accuracy", "r2", "neg_loss")


def resolve(scoring, output: str) -> tuple[str, Callable]:
    """``(name, scorer)`` where ``scorer(fitted, X, y, sample_weight) -> float``.

    ``None`` means the fit model's own score: accuracy for softmax and sigmoid
    outputs, R² for linear ones. ``"neg_loss"`` is minus the model's mean loss.
    A callable ``scoring(fitted, X, y) -> float`` is used as given.
    """
    if scoring is None:
        scoring = "r2" if output == "linear" else "accuracy"
    if callable(scoring):
        name = getattr(scoring, "__name__", "custom")
        # a file-backed test part reaches a callable as an ordinary array
        return name, lambda fitted, X, y, w: float(scoring(fitted, _as_given(X), y))
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, None or a callable; got {scoring!r}")
    if scoring == "accuracy" and output == "linear":
        raise ValueError("scoring='accuracy' needs a softmax or sigmoid output")
    if scoring == "r2" and output != "linear":
        raise ValueError("scoring='r2' needs a linear output")
    if scoring == "neg_loss":
        return scoring, lambda fitted, X, y, w: -fitted.loss(X, y, sample_weight=w)
    return scoring, lambda fitted, X, y, w: fitted.score(X, y, sample_weight=w)
