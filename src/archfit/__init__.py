"""archfit: fast CPU training of neural networks, in a statistician's vocabulary.

=================  ======================  =============================================
idea               object                  holds
=================  ======================  =============================================
architecture       :class:`Architecture`   shapes and names; no learned values
model              :class:`Model`          an architecture, a dtype and its loss: f(x; θ)
hyperparameters    :class:`Hyperparameters` settings of the fitting algorithm
fit model          :class:`FitModel`       θ̂ found by :func:`fit` on training data
=================  ======================  =============================================
"""
from archfit.architecture import Architecture, Inputs, LayoutEntry
from archfit.layers import (BatchEnsemble, Dense, Embedding, LayerNorm, OneHot, Periodic,
                            PiecewiseLinear, Residual)
from archfit.fit_model import FitModel
from archfit.fitting import ConvergenceWarning, DivergenceError, fit
from archfit.population import fit_many
from archfit.ensemble import Ensemble
from archfit.folds import kfold, validation_split
from archfit.estimation import HoldoutEstimate, holdout
from archfit.selection import Selection, select
from archfit import distributions
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model
from archfit.persistence import FileFormatError, load
from archfit.preprocessing import Preprocessing
from archfit.tabular import fit_tabular

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "BatchEnsemble",
    "ConvergenceWarning",
    "Dense",
    "DivergenceError",
    "Embedding",
    "Ensemble",
    "FileFormatError",
    "FitModel",
    "HoldoutEstimate",
    "Hyperparameters",
    "Inputs",
    "LayerNorm",
    "LayoutEntry",
    "Model",
    "OneHot",
    "Periodic",
    "PiecewiseLinear",
    "Preprocessing",
    "Residual",
    "Selection",
    "distributions",
    "fit",
    "fit_many",
    "fit_tabular",
    "holdout",
    "kfold",
    "load",
    "select",
    "validation_split",
    "__version__",
]
