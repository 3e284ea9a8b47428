"""Hyperparameters: the settings of the fitting algorithm, never weights.

:class:`Hyperparameters` is frozen and validated when it is made, so an
out-of-range value fails at construction, long before a fit starts.
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from archfit import kernels
from archfit._validation import check_float, check_int

# The epoch kernel's optimizers, and L-BFGS (full-batch, through SciPy).
OPTIMIZERS = (*kernels.OPTIMIZERS, "lbfgs")
SCHEDULES = ("constant", "step", "cosine", "plateau", "invscaling")
MONITORS = ("validation_loss", "validation_score")
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class Hyperparameters:
    """Settings that control how :func:`archfit.fit` finds θ̂.

    Every field has a default; ``Hyperparameters()`` is a sensible Adam setup.

    Parameters
    ----------
    optimizer : {"sgd", "momentum", "adam", "adamw", "lbfgs"}, default "adam"
        ``momentum`` is heavy-ball SGD (``nesterov=True`` for Nesterov);
        ``adamw`` applies ``l2`` as decoupled weight decay; ``lbfgs`` runs
        ``scipy.optimize``'s L-BFGS-B on the full-data objective with
        ``epochs`` as the iteration limit (``batch_size``, the schedule,
        ``dropout`` and early stopping do not apply to it).
    max_evaluations : int or None, default None
        L-BFGS only: the most evaluations of the objective and its gradient
        (None: ``20 * epochs + 20``). Reaching it, or ``epochs``, before
        converging emits a :class:`~archfit.ConvergenceWarning`.
    gradient_tolerance : float or None, default None
        L-BFGS only: converged once no component of the projected gradient
        exceeds it (None: SciPy's default, 1e-5).
    learning_rate : float, default 1e-3
        Step size, > 0.
    schedule : {"constant", "step", "cosine", "plateau", "invscaling"}, default "constant"
        How the learning rate changes between epochs. ``step``: multiply by
        ``gamma`` every ``step_size`` epochs; ``cosine``: anneal from
        ``learning_rate`` to ``min_learning_rate`` over the fit's epochs;
        ``plateau``: multiply by ``gamma`` when the monitored loss (validation
        loss if there is a validation set, else training loss) has not improved
        by ``tolerance`` for ``plateau_patience`` epochs, never below
        ``min_learning_rate``; ``invscaling``: ``learning_rate / (1 + t) **
        power_t``, t the training samples seen before the epoch (scikit-learn's
        rule).
    step_size : int, default 10
    gamma : float, default 0.1
        Decay factor of ``step`` and ``plateau``, in (0, 1).
    plateau_patience : int, default 5
    power_t : float, default 0.5
        Exponent of ``invscaling``, >= 0.
    min_learning_rate : float, default 0.0
    momentum : float, default 0.9
        For ``momentum``, in [0, 1).
    nesterov : bool, default False
    beta1, beta2 : float, default 0.9, 0.999
        Adam's moment decay rates, in [0, 1).
    epsilon : float, default 1e-8
        Adam's denominator guard, > 0.
    batch_size : int, default 128
        Samples per update; larger than the data means full-batch.
    epochs : int, default 50
        Passes over the training data (iterations for ``lbfgs``).
    l2 : float, default 0.0
        Penalty ``l2/2 * ||W||^2`` on weights (not biases).
    dropout : float, default 0.0
        Probability of zeroing each hidden unit during fitting, in [0, 1).
        A fitting setting: predictions never drop units.
    shuffle : bool, default True
        Reshuffle the samples every epoch.
    seed : int, default 0
        Seeds initialisation, shuffling, dropout and the validation split.
    n_threads : int or None, default None
        Threads during the fit: a step large enough to be shared runs on
        archfit's threads, a smaller one on one; BLAS runs on one thread
        throughout. None: as many as BLAS is currently allowed (every core by
        default), but no more than the cores the process may use (its CPU
        affinity and its cgroup's CPU quota, as in a container). An epoch
        whose threads did not get their cores is followed by one on a single
        thread, the faster kept. The result does not depend on it
        (docs/guarantees.md, Reproducibility).
    early_stopping : bool, default False
        Stop when the validation loss has not improved by ``tolerance`` for
        ``patience`` epochs. Uses the ``validation`` set given to ``fit``, or
        else holds out ``validation_fraction`` of the training data.
    validation_fraction : float, default 0.1
        In (0, 1); stratified by class for softmax outputs.
    monitor : {"validation_loss", "validation_score"}, default "validation_loss"
        What early stopping (and ``plateau``) watches when there is a
        validation set: its loss (lower is better) or its score, accuracy or
        R² (higher is better; scikit-learn's choice). Without one, the
        training loss.
    patience : int or None, default 10
        None (or ``math.inf``): no limit; the fit runs every epoch and, with
        ``restore_best``, returns the best one.
    tolerance : float, default 1e-4
    restore_best : bool, default True
        With early stopping, return the θ of the best validation loss.
    standardize : bool, default False
        Standardise the features: subtract each one's mean and divide by its
        standard deviation, both found on the training rows (after any
        validation split; a constant feature keeps scale 1). The statistics
        become part of the fit model (``FitModel.standardization``), which
        applies them to everything it predicts, scores, saves and exports.
        Off by default, so that a fit sees the data as given; the command
        line (``archfit train``) turns it on unless ``--no-scale``. Features
        on very different scales (raw measurements, counts next to
        fractions) usually need it: without it, a fit of scikit-learn's raw
        breast-cancer table is several points less accurate.
    standardize_targets : bool, default False
        Linear outputs only: standardise the targets the same way; the fit
        model maps its predictions back to the targets' units. Losses in the
        history are then in standardised units (R² is unchanged).
    precision : {"float32", "bfloat16"}, default "float32"
        The operands of the dense layers' products (forward, backward and
        weight gradient) of a float32 model: ``"bfloat16"`` rounds both to
        bfloat16 (to nearest, ties to even) and accumulates in float32, as
        AMX and AVX512_BF16 CPUs multiply at two or more times the float32
        rate; θ, the gradient, the optimizer's moments and every elementwise
        step stay float32. The fit model predicts in the same precision.
        Other layer kinds, and sparse first layers, keep float32 products.
        On a CPU without bfloat16 arithmetic the products are widened to
        float32 (the same bits as VDPBF16PS, slower than float32; a warning
        says so once). Refused for float64 models.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    step_size: int = 10
    gamma: float = 0.1
    plateau_patience: int = 5
    power_t: float = 0.5
    min_learning_rate: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    batch_size: int = 128
    epochs: int = 50
    l2: float = 0.0
    dropout: float = 0.0
    shuffle: bool = True
    seed: int = 0
    n_threads: int | None = None
    early_stopping: bool = False
    validation_fraction: float = 0.1
    monitor: str = "validation_loss"
    patience: int = 10
    tolerance: float = 1e-4
    restore_best: bool = True
    max_evaluations: int | None = None
    gradient_tolerance: float | None = None
    standardize: bool = False
    standardize_targets: bool = False
    precision: str = "float32"

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        set_("learning_rate", check_float(self.learning_rate, "learning_rate", low=0.0, low_open=True))
        set_("step_size", check_int(self.step_size, "step_size", minimum=1))
        set_("gamma", check_float(self.gamma, "gamma", low=0.0, high=1.0, low_open=True, high_open=True))
        set_("plateau_patience", check_int(self.plateau_patience, "plateau_patience", minimum=1))
        set_("min_learning_rate", check_float(self.min_learning_rate, "min_learning_rate", low=0.0))
        if self.min_learning_rate > self.learning_rate:
            raise ValueError(f"min_learning_rate ({self.min_learning_rate}) must not exceed "
                             f"learning_rate ({self.learning_rate})")
        set_("momentum", check_float(self.momentum, "momentum", low=0.0, high=1.0, high_open=True))
        set_("beta1", check_float(self.beta1, "beta1", low=0.0, high=1.0, high_open=True))
        set_("beta2", check_float(self.beta2, "beta2", low=0.0, high=1.0, high_open=True))
        set_("epsilon", check_float(self.epsilon, "epsilon", low=0.0, low_open=True))
        set_("batch_size", check_int(self.batch_size, "batch_size", minimum=1))
        set_("epochs", check_int(self.epochs, "epochs", minimum=1))
        set_("l2", check_float(self.l2, "l2", low=0.0))
        set_("dropout", check_float(self.dropout, "dropout", low=0.0, high=1.0, high_open=True))
        set_("seed", check_int(self.seed, "seed", minimum=0, maximum=2**63 - 1))
        if self.n_threads is not None:
            set_("n_threads", check_int(self.n_threads, "n_threads", minimum=1))
        set_("validation_fraction", check_float(self.validation_fraction, "validation_fraction",
                                                low=0.0, high=1.0, low_open=True, high_open=True))
        if self.patience is not None:
            if (isinstance(self.patience, numbers.Real) and not isinstance(self.patience, bool)
                    and math.isinf(self.patience) and self.patience > 0):
                set_("patience", None)        # no limit (JSON-able as null)
            else:
                set_("patience", check_int(self.patience, "patience", minimum=1))
        set_("power_t", check_float(self.power_t, "power_t", low=0.0))
        if self.max_evaluations is not None:
            set_("max_evaluations", check_int(self.max_evaluations, "max_evaluations", minimum=1))
        if self.gradient_tolerance is not None:
            set_("gradient_tolerance", check_float(self.gradient_tolerance, "gradient_tolerance",
                                                   low=0.0))
        set_("tolerance", check_float(self.tolerance, "tolerance", low=0.0))
        for name in ("nesterov", "shuffle", "early_stopping", "restore_best", "standardize",
                     "standardize_targets"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        if self.optimizer == "lbfgs":
            if self.dropout > 0:
                raise ValueError("dropout is not supported with optimizer='lbfgs' "
                                 "(L-BFGS needs a deterministic objective)")
            if self.early_stopping:
                raise ValueError("early_stopping is not supported with optimizer='lbfgs'")

    def replace(self, **changes) -> "Hyperparameters":
        """A copy with some fields changed, validated again."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Hyperparameters":
        """Rebuild from :meth:`to_dict`; unknown fields raise ``ValueError``."""
        if not isinstance(d, dict):
            raise TypeError(f"Hyperparameters.from_dict needs a dict, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Hyperparameters":
        """Rebuild from :meth:`to_json`'s output."""
        return cls.from_dict(json.loads(text))
