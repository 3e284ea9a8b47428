"""Data sets shipped with archfit, so the demo and the tests run offline.

``load_digits``: the 8×8 handwritten digits (see ``DIGITS.md`` beside this
file for the source and licence).
"""
from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

__all__ = ["load_digits"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The optical-recognition handwritten digits: 1,797 images of 8×8 pixels.

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        Pixel counts in 0..16, row by row.
    y : ndarray of shape (1797,), int64
        The digit, 0..9.
    """
    with resources.files(__package__).joinpath("digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as text:
            data = np.loadtxt(text, delimiter=",", dtype=np.float64)
    return np.ascontiguousarray(data[:, :-1]), data[:, -1].astype(np.int64)
