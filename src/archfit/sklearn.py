"""scikit-learn estimators built on archfit: ``MLPClassifier`` and ``MLPRegressor``.

Thin translation, no second training loop: each ``fit`` builds an
:class:`~archfit.Architecture`, a :class:`~archfit.Model` and
:class:`~archfit.Hyperparameters` from scikit-learn-style arguments and calls
:func:`archfit.fit`; the result is kept as ``fit_model_``. Arguments keep
scikit-learn's names where the meaning is the same. Needs scikit-learn
(``pip install "archfit[sklearn]"``).

Translation of the arguments:

=======================  ==========================================================
scikit-learn             archfit
=======================  ==========================================================
hidden_layer_sizes       ``Dense`` layers of the architecture
activation               hidden activation (``"logistic"`` is ``"sigmoid"``; archfit
                         also offers ``"leaky_relu"`` and ``"gelu"``)
solver                   ``"adam"``; ``"sgd"`` → ``momentum`` (Nesterov when
                         ``nesterovs_momentum``) or plain ``sgd`` when momentum is 0;
                         ``"lbfgs"``
alpha                    ``l2 = alpha / batch_size``: scikit-learn adds
                         ``alpha/2 ||W||^2`` to each batch's *summed* loss; archfit's
                         ``l2`` penalises the *mean* loss
batch_size               ``batch_size`` (``"auto"`` = min(200, n_samples))
learning_rate            ``"constant"`` → constant; ``"adaptive"`` → plateau schedule
                         (÷5 after 2 epochs without improvement); ``"invscaling"`` is
                         not supported
max_iter, shuffle,       ``epochs``, ``shuffle``, ``learning_rate``, ``momentum``,
learning_rate_init,      ``beta1``, ``beta2``, ``epsilon``
momentum, beta_1,
beta_2, epsilon
early_stopping,          ``early_stopping``, ``validation_fraction``, ``patience``,
validation_fraction,     ``tolerance``; without early stopping, training stops when
n_iter_no_change, tol    the training loss has not improved by ``tol`` for
                         ``n_iter_no_change`` epochs, as in scikit-learn
random_state             ``seed``
=======================  ==========================================================

``dtype=None`` fits in float32 when X is float32 and in float64 otherwise, as
scikit-learn does; ``n_threads`` bounds archfit's and BLAS's threads together.
"""
from __future__ import annotations

import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("archfit.sklearn needs scikit-learn: pip install scikit-learn") from exc

from archfit.architecture import Architecture, Dense
from archfit.fitting import fit
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu", "gelu": "gelu"}


class _Converged:
    """scikit-learn's stopping rule on the training loss, as an archfit callback."""

    def __init__(self, tol, patience):
        self.tol, self.patience, self.best, self.wait = tol, patience, np.inf, 0
        self.converged = False

    def __call__(self, record):
        loss = record["train_loss"]
        if loss > self.best - self.tol:
            self.wait += 1
        else:
            self.wait = 0
        self.best = min(self.best, loss)
        if self.wait >= self.patience:
            self.converged = True
            return True
        return False


class _BaseMLP(BaseEstimator):
    _output: str = "linear"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dtype=None,
                 n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.n_threads = n_threads

    # ---- translation --------------------------------------------------------------------
    def _architecture(self, n_features: int, n_outputs: int, output: str) -> Architecture:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(sizes)
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        for s in sizes:
            if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 1:
                raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes!r}")
        act = _ACTIVATIONS[self.activation]
        layers = [Dense(int(s), act) for s in sizes] + [Dense(n_outputs)]
        return Architecture(n_features, layers, output)

    def _hyperparameters(self, n_samples: int, epochs: int) -> Hyperparameters:
        if self.solver not in ("adam", "sgd", "lbfgs"):
            raise ValueError(f"solver must be 'adam', 'sgd' or 'lbfgs', got {self.solver!r}")
        if self.batch_size == "auto":
            batch = min(200, n_samples)
        elif isinstance(self.batch_size, (int, np.integer)) and not isinstance(self.batch_size, bool):
            if self.batch_size < 1:
                raise ValueError(f"batch_size must be >= 1 or 'auto', got {self.batch_size}")
            batch = min(int(self.batch_size), n_samples)
        else:
            raise ValueError(f"batch_size must be an integer or 'auto', got {self.batch_size!r}")
        if self.learning_rate not in ("constant", "adaptive"):
            raise ValueError("learning_rate must be 'constant' or 'adaptive' "
                             f"('invscaling' is not supported), got {self.learning_rate!r}")
        if not (isinstance(self.alpha, (int, float, np.floating)) and self.alpha >= 0):
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}")
        if self.solver == "sgd":
            optimizer = "momentum" if self.momentum > 0 else "sgd"
        else:
            optimizer = self.solver
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        adaptive = self.learning_rate == "adaptive" and optimizer != "lbfgs"
        return Hyperparameters(
            optimizer=optimizer, learning_rate=self.learning_rate_init,
            schedule="plateau" if adaptive else "constant", gamma=0.2, plateau_patience=2,
            momentum=self.momentum, nesterov=bool(self.nesterovs_momentum) and optimizer == "momentum",
            beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon, batch_size=batch,
            epochs=epochs, l2=float(self.alpha) / batch, shuffle=bool(self.shuffle),
            seed=int(seed), n_threads=self.n_threads,
            early_stopping=bool(self.early_stopping) and optimizer != "lbfgs",
            validation_fraction=self.validation_fraction, patience=self.n_iter_no_change,
            tolerance=self.tol)

    def _dtype(self, X) -> str:
        if self.dtype is None:
            return "float32" if X.dtype == np.float32 else "float64"
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        return np.dtype(self.dtype).name

    # ---- fitting --------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        reset = not ((incremental or self.warm_start) and hasattr(self, "fit_model_"))
        X, y = validate_data(self, X, y, reset=reset, multi_output=True,
                             dtype=(np.float64, np.float32), y_numeric=self._output == "linear")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        y, output, n_outputs, classes = self._targets(y, classes, reset)
        epochs = 1 if incremental else self.max_iter
        if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        hp = self._hyperparameters(X.shape[0], int(epochs))
        model = Model(self._architecture(X.shape[1], n_outputs, output), self._dtype(X))
        init = None
        if not reset:
            if self.fit_model_.model != model:
                raise ValueError("the network built from the current parameters differs from "
                                 "the fitted one; warm start and partial_fit need the same "
                                 "hidden_layer_sizes, activation, outputs and dtype")
            init = self.fit_model_
        stop = None
        if not hp.early_stopping and hp.optimizer != "lbfgs" and not incremental:
            stop = _Converged(self.tol, self.n_iter_no_change)
        fitted = fit(model, X, y, hp, init=init, sample_weight=sample_weight, classes=classes,
                     callback=stop, verbose=bool(self.verbose))
        self.fit_model_ = fitted
        new = fitted.history[len(init.history) if init is not None else 0:]
        self.n_iter_ = len(new)
        self.loss_curve_ = [h["train_loss"] for h in fitted.history]
        self.loss_ = self.loss_curve_[-1]
        self.best_loss_ = min(self.loss_curve_)
        if "validation_score" in fitted.history[-1]:
            self.validation_scores_ = [h["validation_score"] for h in fitted.history]
            self.best_validation_score_ = max(self.validation_scores_)
        weights = fitted.weights
        n_layers = len(fitted.architecture.layers)
        self.coefs_ = [weights[f"dense{i}.weight"] for i in range(n_layers)]
        self.intercepts_ = [weights[f"dense{i}.bias"] for i in range(n_layers)]
        self.n_layers_ = n_layers + 1
        self.n_outputs_ = n_outputs
        self.out_activation_ = output
        if (not incremental and stop is not None and not stop.converged
                and self.n_iter_ == hp.epochs):
            warnings.warn(f"{type(self).__name__}: maximum iterations ({hp.epochs}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)
        return self

    def fit(self, X, y, sample_weight=None):
        """Fit to (X, y); with ``warm_start``, continue from the previous fit."""
        return self._fit(X, y, sample_weight)

    def _predict_outputs(self, X, method):
        check_is_fitted(self, "fit_model_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return getattr(self.fit_model_, method)(X)

    @property
    def _n_features_for_partial_fit(self):
        return getattr(self, "n_features_in_", None)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (squared error), trained by archfit.

    Parameters are scikit-learn's ``MLPRegressor``'s (see the module docstring
    for how each translates), plus ``dtype`` and ``n_threads``.

    Attributes
    ----------
    fit_model_ : archfit.FitModel
        The fit model: architecture, θ̂, hyperparameters and history.
    loss_, best_loss_, loss_curve_, n_iter_, coefs_, intercepts_, n_layers_,
    n_outputs_, out_activation_, n_features_in_ : as in scikit-learn
    """

    _output = "linear"

    def _targets(self, y, classes, reset):
        y = np.asarray(y)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if not reset and n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} outputs, the fitted model has {self.n_outputs_}")
        return y, "linear", n_outputs, None

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current fit."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, shaped like the y given to ``fit``."""
        return self._predict_outputs(X, "predict")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained by archfit.

    Multi-class problems (including binary) get a softmax output and
    cross-entropy; a 0/1 indicator matrix ``y`` is multi-label and gets a
    sigmoid output and binary cross-entropy. Parameters are scikit-learn's
    ``MLPClassifier``'s (see the module docstring), plus ``dtype`` and
    ``n_threads``.

    Attributes
    ----------
    fit_model_ : archfit.FitModel
    classes_ : ndarray
        Class labels (for multi-label, the column indices).
    loss_, best_loss_, loss_curve_, n_iter_, coefs_, intercepts_, n_layers_,
    n_outputs_, out_activation_, n_features_in_ : as in scikit-learn
    """

    _output = "softmax"

    def _targets(self, y, classes, reset):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. "
                          "Please change the shape of y to (n_samples,), for example "
                          "using ravel().", DataConversionWarning, stacklevel=4)
            y = y.ravel()
        check_classification_targets(y)
        if type_of_target(y) == "multilabel-indicator":
            if not reset and self.out_activation_ != "sigmoid":
                raise ValueError("y is multi-label but the fitted model is multi-class")
            self.classes_ = np.arange(y.shape[1])
            self._label_dtype = y.dtype   # predictions come back in the labels' dtype
            return y, "sigmoid", y.shape[1], None
        if not reset:
            if self.out_activation_ != "softmax":
                raise ValueError("y is multi-class but the fitted model is multi-label")
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if unseen.size:
                raise ValueError(f"y contains labels not seen before: {unseen.tolist()!r}; "
                                 f"expected a subset of {self.classes_.tolist()!r}")
            return y, "softmax", len(self.classes_), self.classes_
        labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        if classes is not None:
            unseen = np.setdiff1d(np.unique(y), labels)
            if unseen.size:
                raise ValueError(f"y contains labels not in classes: {unseen.tolist()!r}")
        if len(labels) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"got 1 class ({labels.tolist()!r})")
        self.classes_ = labels
        return y, "softmax", len(labels), labels

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current fit.

        ``classes`` (all labels that will ever appear) is required on the first
        call for multi-class problems, as in scikit-learn.
        """
        first = not hasattr(self, "fit_model_")
        if first and classes is None and type_of_target(np.asarray(y)) != "multilabel-indicator":
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, incremental=True,
                         classes=classes if first else None)

    def predict(self, X):
        """Predicted class labels (a 0/1 matrix for multi-label)."""
        out = self._predict_outputs(X, "predict")
        if self.out_activation_ == "sigmoid":
            out = out.astype(self._label_dtype, copy=False)
        return out

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        return self._predict_outputs(X, "predict_proba")

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
