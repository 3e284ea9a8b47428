"""Distributions to draw hyperparameter values from in a random search."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from archfit._validation import check_float, check_int


class Distribution:
    """Something a random search can draw a value from."""

    def sample(self, rng: np.random.Generator) -> Any:
        """One draw, using the generator ``rng``."""
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Uniform(Distribution):
    """Uniform on [low, high]."""

    def __init__(self, low: float, high: float):
        self.low = check_float(low, "low")
        self.high = check_float(high, "high")
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high, got {low} and {high}")

    def sample(self, rng):
        """One draw, using the generator ``rng``."""
        return float(rng.uniform(self.low, self.high))


class LogUniform(Distribution):
    """Log-uniform on [low, high], 0 < low < high: every decade equally likely."""

    def __init__(self, low: float, high: float):
        self.low = check_float(low, "low", low=0.0, low_open=True)
        self.high = check_float(high, "high", low=0.0, low_open=True)
        if not self.low < self.high:
            raise ValueError(f"LogUniform needs low < high, got {low} and {high}")

    def sample(self, rng):
        """One draw, using the generator ``rng``."""
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


class IntUniform(Distribution):
    """Uniform on the integers low, low + 1, ..., high (inclusive)."""

    def __init__(self, low: int, high: int):
        self.low = check_int(low, "low")
        self.high = check_int(high, "high")
        if not self.low <= self.high:
            raise ValueError(f"IntUniform needs low <= high, got {low} and {high}")

    def sample(self, rng):
        """One draw, using the generator ``rng``."""
        return int(rng.integers(self.low, self.high + 1))


class Choice(Distribution):
    """One of ``values``, each equally likely."""

    def __init__(self, values: Sequence[Any]):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError("Choice needs a non-empty list of values")
        self.values = list(values)

    def sample(self, rng):
        """One draw, using the generator ``rng``."""
        value = self.values[int(rng.integers(len(self.values)))]
        return value.item() if isinstance(value, np.generic) else value
