"""Bin edges for piecewise-linear embeddings: what a fit learns of each
numeric feature's distribution before it trains.

A :class:`~archfit.layers.PiecewiseLinear` layer codes each feature against
T bins whose edges are the feature's quantiles at levels 0, 1/T, ..., 1 on
the training rows, weighted by the sample weights. They are part of the fit
model like the standardisation statistics, and live in θ (the layout's
``.edges`` entries, :attr:`archfit.Architecture.fitted`) so that the kernels, saved
files, checkpoints and ONNX graphs carry them with the weights; training never
moves them (their gradient is zero).

The quantile is the weighted inverse of the empirical distribution function:
the smallest value whose cumulative weight reaches the level. A row of weight
2 and the same row twice give the same edges, bit for bit.
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

from archfit._streaming import FileRows

# Rows of a file-backed X that edges are found on, at most (evenly spaced).
FILE_ROWS = 1 << 18


def normal_edges(n_bins: int) -> np.ndarray:
    """T + 1 standard normal quantiles at levels (t + 1) / (T + 2): edges for
    a standardised feature before a fit has seen data."""
    dist = NormalDist()
    return np.array([dist.inv_cdf((t + 1) / (n_bins + 2)) for t in range(n_bins + 1)])


def quantile_edges(x: np.ndarray, weights: np.ndarray | None, n_bins: int,
                   dtype) -> np.ndarray:
    """The edges (n_bins + 1,) of one feature's values `x`, weighted.

    Rows of weight zero do not count. Distinct edges are kept once, in the
    model's dtype (two values that round to one float32 would make a bin of
    no width in the middle), and the last is repeated to fill n_bins + 1: a
    feature with fewer distinct values than bins gets fewer bins, the others
    code 0.
    """
    levels = np.arange(n_bins + 1) / n_bins
    distinct = np.unique(weighted_quantiles(x, weights, levels).astype(dtype))
    return np.concatenate([distinct, np.repeat(distinct[-1], n_bins + 1 - len(distinct))])


def weighted_quantiles(x: np.ndarray, weights: np.ndarray | None,
                       levels: np.ndarray) -> np.ndarray:
    """The weighted inverse empirical distribution function of `x` at
    `levels` (in [0, 1]): for each, the smallest value whose cumulative
    weight reaches that share of the total. Rows of weight zero do not
    count; x must have a row of positive weight."""
    x = np.asarray(x, dtype=np.float64)
    if weights is not None:
        keep = weights > 0
        x, weights = x[keep], np.asarray(weights, dtype=np.float64)[keep]
    order = np.argsort(x, kind="stable")
    x = x[order]
    if weights is None:
        cumulative = np.arange(1, len(x) + 1, dtype=np.float64)
    else:
        cumulative = np.cumsum(weights[order])
    positions = np.minimum(np.searchsorted(cumulative, np.asarray(levels) * cumulative[-1],
                                           side="left"), len(x) - 1)
    return x[positions]


def fit_edges(architecture, theta: np.ndarray, X, weights=None, rows=None) -> None:
    """Put the edges of every piecewise-linear layer of `architecture` into θ,
    found on the training rows (in place).

    Parameters
    ----------
    architecture : Architecture
    theta : ndarray
        θ of the model's dtype; its ``.edges`` entries are overwritten.
    X : ndarray or file-backed rows
        The training rows as the network reads them (standardised when the
        fit standardises). Of a file, at most ``FILE_ROWS`` evenly spaced rows
        are read.
    weights : ndarray (n,), optional
        Sample weights of those rows.
    rows : ndarray of int, optional
        The rows of X a fit trains on (a population member's); weights are
        per row of `rows`.
    """
    columns, positions = _training_columns(X, rows)
    w = weights if weights is None or positions is None else weights[positions]
    for entry in architecture.fitted:
        n_features, n_edges = entry.shape
        edges = np.stack([quantile_edges(columns[:, j], w, n_edges - 1, theta.dtype)
                          for j in range(n_features)])
        theta[entry.start:entry.stop] = edges.ravel()


def _training_columns(X, rows):
    """The training rows of X as an array (a file's: at most FILE_ROWS of
    them, evenly spaced), and those rows' positions among the training rows
    (None: all of them)."""
    if isinstance(X, FileRows):
        n = len(X) if rows is None else len(rows)
        positions = np.unique(np.linspace(0, n - 1, min(n, FILE_ROWS)).astype(np.int64))
        taken = positions if rows is None else np.asarray(rows)[positions]
        return np.asarray(X.take(taken)), positions
    return (np.asarray(X) if rows is None else np.asarray(X)[np.asarray(rows)]), None
