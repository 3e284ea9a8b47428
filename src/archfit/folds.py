"""Ways to hold data out: one validation split, or k folds; stratified for classes."""
from __future__ import annotations

import numpy as np

from archfit._validation import check_float, check_int


def validation_split(n_samples: int, fraction: float, seed: int,
                     labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) holding out ``fraction`` of the samples.

    Stratified by ``labels`` when given: each class keeps its share in both
    parts (a class with a single sample stays in training). Both index arrays
    are sorted; the same seed gives the same split.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=0)
    fraction = check_float(fraction, "fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    rng = np.random.default_rng([seed, 0x5EED])
    if n_samples < 2:
        raise ValueError(f"cannot hold out a validation set from {n_samples} sample(s); "
                         "pass validation=(X_val, y_val) or more data")
    if labels is None:
        n_val = min(max(int(round(fraction * n_samples)), 1), n_samples - 1)
        val = np.sort(rng.permutation(n_samples)[:n_val])
    else:
        codes = np.unique(labels, return_inverse=True)[1].ravel()
        parts = []
        for c in range(codes.max() + 1):
            members = np.flatnonzero(codes == c)
            k = min(int(round(fraction * len(members))), len(members) - 1)
            if k > 0:
                parts.append(rng.permutation(members)[:k])
        if not parts:
            largest = np.bincount(codes).argmax()
            parts.append(rng.permutation(np.flatnonzero(codes == largest))[:1])
        val = np.sort(np.concatenate(parts))
    train = np.setdiff1d(np.arange(n_samples), val, assume_unique=True)
    return train, val


def kfold(n_samples: int, n_folds: int, seed: int,
          labels: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` (train, test) index pairs; every sample is tested exactly once.

    The samples are shuffled with ``seed``. With ``labels``, folds are
    stratified: each class is dealt round-robin over the folds, so every fold
    holds each class in proportion, and every class must have at least
    ``n_folds`` members.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=0)
    n_folds = check_int(n_folds, "cv", minimum=2)
    if n_folds > n_samples:
        raise ValueError(f"cv={n_folds} folds need at least {n_folds} samples, got {n_samples}")
    rng = np.random.default_rng([seed, 0xF01D])
    fold_of = np.empty(n_samples, dtype=np.intp)
    if labels is None:
        perm = rng.permutation(n_samples)
        fold_of[perm] = np.arange(n_samples) % n_folds
    else:
        classes, codes = np.unique(labels, return_inverse=True)
        codes = codes.ravel()
        counts = np.bincount(codes)
        if counts.min() < n_folds:
            smallest = classes[counts.argmin()]
            raise ValueError(f"cv={n_folds} is larger than the smallest class "
                             f"({smallest!r} has {counts.min()} samples)")
        offset = 0
        for c in range(len(classes)):
            members = rng.permutation(np.flatnonzero(codes == c))
            # continue the round-robin where the previous class stopped, so fold
            # sizes differ by at most one overall
            fold_of[members] = (offset + np.arange(len(members))) % n_folds
            offset += len(members)
    folds = []
    for f in range(n_folds):
        test = np.flatnonzero(fold_of == f)
        train = np.flatnonzero(fold_of != f)
        folds.append((train, test))
    return folds
