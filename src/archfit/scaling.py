"""Standardisation that travels with the fit model.

Whether to standardise is a fitting setting (``Hyperparameters.standardize``,
``standardize_targets``); the statistics it finds on the training rows are
part of what fitting produced, so they belong to the :class:`FitModel`, next
to θ̂: ``predict``, ``predict_proba``, ``score`` and ``loss`` apply them, the
saved file and the ONNX graph contain them. The model - f(x; θ) - and θ̂ stay
in the standardised units the network was trained in.
"""
from __future__ import annotations

import numpy as np


def _standardized(a: np.ndarray, mean, scale) -> np.ndarray:
    """(a - mean) / scale, a new array in a's dtype (a itself without statistics)."""
    if mean is None:
        return a
    out = np.subtract(a, mean.astype(a.dtype))
    np.divide(out, scale.astype(a.dtype), out=out)
    return out


class Standardization:
    """Means and standard deviations found on training rows, each row
    counted by its sample weight.

    ``x' = (x - feature_mean) / feature_scale`` for every feature, and for a
    linear output ``y' = (y - target_mean) / target_scale``; predictions are
    mapped back by ``y = y' * target_scale + target_mean``. A constant column
    has scale 1 (it becomes 0). The arithmetic is in the model's dtype, one
    subtraction and one division per value, which the ONNX graph repeats.

    Parameters
    ----------
    feature_mean, feature_scale : array of shape (n_inputs,) or None
    target_mean, target_scale : array of shape (n_outputs,) or None
    """

    __slots__ = ("feature_mean", "feature_scale", "target_mean", "target_scale")

    def __init__(self, feature_mean=None, feature_scale=None, target_mean=None,
                 target_scale=None):
        for name, mean, scale in (("feature", feature_mean, feature_scale),
                                  ("target", target_mean, target_scale)):
            if (mean is None) != (scale is None):
                raise ValueError(f"{name} mean and scale must be given together")
            if mean is not None:
                mean, scale = (np.array(mean, dtype=np.float64), np.array(scale, dtype=np.float64))
                if mean.ndim != 1 or mean.shape != scale.shape:
                    raise ValueError(f"{name} mean and scale must be vectors of one length")
                if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
                    raise ValueError(f"{name} mean and scale must be finite, scales positive")
                mean.flags.writeable = scale.flags.writeable = False
            setattr(self, f"{name}_mean", mean)
            setattr(self, f"{name}_scale", scale)

    # ---- finding the statistics --------------------------------------------------------
    @staticmethod
    def statistics(parts, weights=None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale (standard deviation; 1 for a constant column) of
        the rows of `parts`, an iterable of 2-D arrays, in float64 and in one
        pass (Chan et al.'s pairwise update of the mean and the sum of
        squares), each row counted by its weight in `weights` (an array over
        the parts' rows in order; None: all ones). A row of weight 2 counts as
        the row twice; rows of weight 0 do not count."""
        total, mean, m2, at = 0.0, None, None, 0
        for part in parts:
            part = np.asarray(part, dtype=np.float64)
            k = len(part)
            if k == 0:
                continue
            if weights is None:
                w, part_total = None, float(k)
                part_mean = part.mean(axis=0)
                part_m2 = ((part - part_mean) ** 2).sum(axis=0)
            else:
                w = np.asarray(weights[at:at + k], dtype=np.float64)
                part_total = float(w.sum())
                if part_total == 0:
                    at += k
                    continue
                part_mean = (w @ part) / part_total
                part_m2 = w @ ((part - part_mean) ** 2)
            at += k
            if mean is None:
                total, mean, m2 = part_total, part_mean, part_m2
                continue
            delta = part_mean - mean
            merged = total + part_total
            mean = mean + delta * (part_total / merged)
            m2 = m2 + part_m2 + delta ** 2 * (total * part_total / merged)
            total = merged
        std = np.sqrt(m2 / total)
        # a column constant up to rounding: leave its scale alone
        std[~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
        return mean, std

    # ---- applying them ------------------------------------------------------------------
    def features(self, X: np.ndarray) -> np.ndarray:
        """A new array: standardised X, in X's dtype."""
        return _standardized(X, self.feature_mean, self.feature_scale)

    def targets(self, values: np.ndarray) -> np.ndarray:
        """A new array: standardised target values, in their dtype."""
        return _standardized(values, self.target_mean, self.target_scale)

    def outputs(self, out: np.ndarray) -> np.ndarray:
        """The network's linear outputs in the targets' units (in place)."""
        if self.target_mean is not None:
            np.multiply(out, self.target_scale.astype(out.dtype), out=out)
            np.add(out, self.target_mean.astype(out.dtype), out=out)
        return out

    # ---- identity ----------------------------------------------------------------------
    def arrays(self) -> list[tuple[str, np.ndarray]]:
        """Named arrays for the file format."""
        return [(name, getattr(self, name)) for name in self.__slots__
                if getattr(self, name) is not None]

    def describe(self) -> str:
        parts = []
        if self.feature_mean is not None:
            constant = int(np.count_nonzero(self.feature_scale == 1.0))
            parts.append(f"{len(self.feature_mean)} features standardised"
                         + (f" ({constant} with scale 1)" if constant else ""))
        if self.target_mean is not None:
            parts.append(f"{len(self.target_mean)} target(s) standardised (mean "
                         + ", ".join(f"{m:.4g}" for m in self.target_mean) + ", scale "
                         + ", ".join(f"{s:.4g}" for s in self.target_scale) + ")")
        return "; ".join(parts) or "none"

    def __eq__(self, other):
        return isinstance(other, Standardization) and all(
            (a is None and b is None) or (a is not None and b is not None
                                          and np.array_equal(a, b))
            for a, b in ((getattr(self, n), getattr(other, n)) for n in self.__slots__))

    def __repr__(self):
        return f"Standardization({self.describe()})"
