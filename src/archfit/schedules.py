"""Learning-rate schedules: the rate used for each epoch of a fit."""
from __future__ import annotations

import math

from archfit.hyperparameters import Hyperparameters


class LearningRateSchedule:
    """Yields the learning rate of each epoch and watches a loss for ``plateau``.

    ``epoch`` counts from 0 across continued fits (so a ``step`` schedule
    continues where it left off); ``cosine`` spans the epochs of this fit;
    ``invscaling`` counts the samples seen as ``epoch * n_samples``.
    """

    def __init__(self, hp: Hyperparameters, first_epoch: int = 0, n_samples: int = 0):
        self.hp = hp
        self.first_epoch = first_epoch
        self.n_samples = n_samples      # per epoch, for invscaling
        self.rate = hp.learning_rate
        self._best = math.inf
        self._wait = 0

    def at(self, epoch: int) -> float:
        hp = self.hp
        if hp.schedule == "step":
            return hp.learning_rate * hp.gamma ** (epoch // hp.step_size)
        if hp.schedule == "invscaling":
            return hp.learning_rate / (1 + epoch * self.n_samples) ** hp.power_t
        if hp.schedule == "cosine":
            progress = (epoch - self.first_epoch) / hp.epochs
            return hp.min_learning_rate + 0.5 * (hp.learning_rate - hp.min_learning_rate) * (
                1 + math.cos(math.pi * progress))
        return self.rate  # constant, or plateau's current rate

    def observe(self, loss: float) -> None:
        """Report the monitored loss at the end of an epoch (used by ``plateau``)."""
        if self.hp.schedule != "plateau":
            return
        if loss < self._best - self.hp.tolerance:
            self._best, self._wait = loss, 0
            return
        self._wait += 1
        if self._wait >= self.hp.plateau_patience:
            self.rate = max(self.rate * self.hp.gamma, self.hp.min_learning_rate)
            self._wait = 0
