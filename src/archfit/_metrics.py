"""Scores reported by fit and :meth:`FitModel.score` (higher is better)."""
from __future__ import annotations

import numpy as np


def accuracy(true: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Fraction of rows predicted exactly (all labels of a row, for multi-label)."""
    hit = true == predicted
    if hit.ndim == 2:
        hit = hit.all(axis=1)
    return float(np.average(hit, weights=weights))


def r2(true: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Coefficient of determination, averaged uniformly over outputs.

    An output that is constant in ``true`` scores 1 if predicted exactly and 0
    otherwise, as in scikit-learn.
    """
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    w = np.ones(len(true)) if weights is None else np.asarray(weights, dtype=np.float64)
    mean = np.average(true, axis=0, weights=w)
    ss_res = (w[:, None] * (true - predicted) ** 2).sum(axis=0)
    ss_tot = (w[:, None] * (true - mean) ** 2).sum(axis=0)
    scores = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1),
                      np.where(ss_res == 0, 1.0, 0.0))
    return float(scores.mean())
