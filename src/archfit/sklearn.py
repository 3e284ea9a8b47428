"""scikit-learn estimators built on archfit: ``MLPClassifier`` and ``MLPRegressor``.

Thin translation, no second training loop: each ``fit`` builds an
:class:`~archfit.Architecture`, a :class:`~archfit.Model` and
:class:`~archfit.Hyperparameters` from scikit-learn-style arguments and calls
:func:`archfit.fit`; the result is kept as ``fit_model_``. Arguments keep
scikit-learn's names where the meaning is the same. Needs scikit-learn
(``pip install "archfit[sklearn]"``).

Translation of the arguments (docs/sklearn.md has the decisions behind each
difference that remains):

=======================  ==========================================================
scikit-learn             archfit
=======================  ==========================================================
hidden_layer_sizes       ``Dense`` layers of the architecture
activation               hidden activation (``"logistic"`` is ``"sigmoid"``; archfit
                         also offers ``"leaky_relu"`` and ``"gelu"``)
loss (regressor)         ``"squared_error"``: a linear output; ``"poisson"``: an
                         exponential output and the Poisson deviance
solver                   ``"adam"``; ``"sgd"`` → ``momentum`` (Nesterov when
                         ``nesterovs_momentum``) or plain ``sgd`` when momentum is 0;
                         ``"lbfgs"``
alpha                    ``l2 = alpha / W``, W a batch's total sample weight
                         (``batch_size`` times the mean weight; with ``"lbfgs"``
                         the whole data's): scikit-learn adds ``alpha/2 ||W||^2``
                         to each batch's loss *summed* over its weighted rows;
                         archfit's ``l2`` penalises the weighted *mean* loss
batch_size               ``batch_size`` (``"auto"`` = min(200, n_samples))
learning_rate, power_t   with ``solver="sgd"`` only, as in scikit-learn:
                         ``"constant"``; ``"invscaling"`` → the ``invscaling``
                         schedule; ``"adaptive"`` → ``plateau`` (÷5 after more than
                         ``n_iter_no_change`` flat epochs; training stops once the
                         rate is at most 1e-6)
max_iter, shuffle,       ``epochs``, ``shuffle``, ``learning_rate``, ``momentum``,
learning_rate_init,      ``beta1``, ``beta2``, ``epsilon``
momentum, beta_1,
beta_2, epsilon
early_stopping,          ``early_stopping``, ``validation_fraction``,
validation_fraction,     ``monitor="validation_score"``, ``patience`` =
n_iter_no_change, tol    ``n_iter_no_change + 1`` (scikit-learn stops after *more
                         than* n flat epochs; ``np.inf``: never), ``tolerance``;
                         without early stopping, training stops when the training
                         loss has not improved by ``tol`` for more than
                         ``n_iter_no_change`` epochs, as in scikit-learn
max_fun, tol (lbfgs)     ``max_evaluations``, ``gradient_tolerance``
random_state             ``seed``
=======================  ==========================================================

``dtype=None`` fits in float32 when X is float32 and in float64 otherwise, as
scikit-learn does; ``n_threads`` bounds archfit's and BLAS's threads together.
Sparse X stays sparse: archfit's kernels compute the first layer as sparse x dense.
``preprocessing="auto"`` (or an :class:`~archfit.preprocessing.Preprocessing`)
reads tables with text, category and missing cells: the fit model learns the
encoding on its training rows, weighted, and predictions apply it.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import (_check_sample_weight, _check_y, check_is_fitted,
                                          validate_data)
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("archfit.sklearn needs scikit-learn: pip install scikit-learn") from exc

from archfit import fitting
from archfit.architecture import Architecture, Dense, Inputs
from archfit.layers import OneHot
from archfit.fitting import DivergenceError, fit
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model

__all__ = ["MLPClassifier", "MLPRegressor", "TabularClassifier", "TabularRegressor"]

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu", "gelu": "gelu"}
# scikit-learn's names for archfit's output heads (out_activation_)
_OUT_ACTIVATIONS = {"softmax": "softmax", "sigmoid": "logistic", "linear": "identity",
                    "exponential": "exp"}
_X_CHECKS = {"accept_sparse": ("csr", "csc", "coo"), "dtype": (np.float64, np.float32)}
_NONFINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
              "values and need to be preprocessed.")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _table(estimator, X, reset: bool):
    """X as a preprocessing reads it: a table as it is (its names and width
    recorded as scikit-learn records them), anything else through
    scikit-learn's checks, missing values allowed."""
    from archfit.tables import is_table
    if is_table(X) and not isinstance(X, dict):
        from archfit._validation import feature_names
        names = feature_names(X)
        n = len(X.columns) if hasattr(X, "columns") else X.num_columns
        if reset:
            estimator.n_features_in_ = n
            if names is not None:
                estimator.feature_names_in_ = np.asarray(names, dtype=object)
            elif hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
        elif n != estimator.n_features_in_:
            raise ValueError(f"X has {n} features, but {type(estimator).__name__} is "
                             f"expecting {estimator.n_features_in_} features as input")
        return X
    return validate_data(estimator, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")


class _Converged:
    """scikit-learn's stopping rule on the training loss (stop once the loss has
    not improved by ``tol`` for *more than* ``n_iter_no_change`` epochs), and
    its verbose lines, as an archfit callback. With ``print_only`` (early
    stopping, L-BFGS, partial_fit: archfit or the caller decides when to
    stop) it prints and never stops."""

    def __init__(self, tol, n_iter_no_change, verbose, print_only, adaptive):
        self.tol, self.limit, self.verbose = tol, n_iter_no_change, verbose
        self.print_only, self.adaptive = print_only, adaptive
        self.best, self.count, self.converged = np.inf, 0, False

    def __call__(self, record):
        loss = record["train_loss"]
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (record["epoch"], loss))
            if "validation_score" in record:
                print("Validation score: %f" % record["validation_score"])
        if self.print_only:
            return False
        if loss > self.best - self.tol:
            self.count += 1
        else:
            self.count = 0
        self.best = min(self.best, loss)
        if self.count > self.limit and self.adaptive and record["learning_rate"] > 1e-6:
            self.count = 0              # the plateau schedule divides the rate by 5
            return False
        if self.count > self.limit:
            if self.verbose:
                print("Training loss did not improve more than tol=%f for %s consecutive "
                      "epochs. Stopping." % (self.tol, self.limit))
            self.converged = True
            return True
        return False


class _BaseMLP(BaseEstimator):
    _output: str = "linear"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, n_threads=None, preprocessing=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
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
        self.max_fun = max_fun
        self.dtype = dtype
        self.n_threads = n_threads
        self.preprocessing = preprocessing

    # ---- translation --------------------------------------------------------------------
    def _architecture(self, n_features, n_outputs: int, output: str) -> Architecture:
        """The network: `n_features` numbers, or a preprocessing's inputs
        (its categories one-hot, as a ColumnTransformer would give them)."""
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
        if isinstance(n_features, Inputs):
            first = [OneHot()] if n_features.categorical else []
            return Architecture(inputs=n_features, layers=first + layers, output=output)
        return Architecture(n_features, layers, output)

    def _hyperparameters(self, n_samples: int, epochs: int,
                         weight_total: float | None = None) -> Hyperparameters:
        """The fit's settings; `weight_total`: the sample weights' sum (None:
        one per row)."""
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
        if self.learning_rate not in ("constant", "adaptive", "invscaling"):
            raise ValueError("learning_rate must be 'constant', 'adaptive' or 'invscaling', "
                             f"got {self.learning_rate!r}")
        if not (_is_real(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}")
        patience = self.n_iter_no_change
        if not (_is_real(patience) and patience >= 1
                and (math.isinf(patience) or float(patience).is_integer())):
            raise ValueError("n_iter_no_change must be a positive integer or np.inf, "
                             f"got {patience!r}")
        if not (isinstance(self.max_fun, numbers.Integral) and self.max_fun >= 1):
            raise ValueError(f"max_fun must be a positive integer, got {self.max_fun!r}")
        if self.solver == "sgd":
            optimizer = "momentum" if self.momentum > 0 else "sgd"
        else:
            optimizer = self.solver
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        # as in scikit-learn, the schedule applies to solver='sgd' only; 'adaptive'
        # divides the rate by 5 after more than n_iter_no_change flat epochs
        schedule = {"constant": "constant", "adaptive": "plateau",
                    "invscaling": "invscaling"}[self.learning_rate] if self.solver == "sgd" \
            else "constant"
        if schedule == "plateau" and math.isinf(patience):
            schedule = "constant"       # never flat for long enough
        early = bool(self.early_stopping) and optimizer != "lbfgs"
        # scikit-learn divides alpha by the batch's total weight (L-BFGS: the data's)
        mean_weight = weight_total / n_samples if weight_total else 1.0
        rows = n_samples if optimizer == "lbfgs" else batch
        return Hyperparameters(
            optimizer=optimizer, learning_rate=self.learning_rate_init,
            schedule=schedule, gamma=0.2,
            plateau_patience=1 if math.isinf(patience) else int(patience) + 1,
            power_t=self.power_t,
            momentum=self.momentum, nesterov=bool(self.nesterovs_momentum) and optimizer == "momentum",
            beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon, batch_size=batch,
            epochs=epochs, l2=float(self.alpha) / (rows * mean_weight),
            shuffle=bool(self.shuffle),
            seed=int(seed), n_threads=self.n_threads, early_stopping=early,
            validation_fraction=self.validation_fraction, monitor="validation_score",
            # scikit-learn stops after *more than* n_iter_no_change flat epochs
            patience=None if math.isinf(patience) else int(patience) + 1,
            tolerance=self.tol, max_evaluations=int(self.max_fun),
            gradient_tolerance=float(self.tol) if optimizer == "lbfgs" else None)

    def _dtype(self, X) -> str:
        if self.dtype is None and X is not None:
            return "float32" if X.dtype == np.float32 else "float64"
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
            raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        return np.dtype(self.dtype).name

    def _validate_X(self, X, reset=True):
        """scikit-learn's checks of X for prediction."""
        return self._rows(validate_data(self, X, reset=reset, **_X_CHECKS))

    def _validate_Xy(self, X, y, reset=True):
        """scikit-learn's checks of X and y (y=None refused as scikit-learn words it)."""
        from archfit.tables import is_table
        try:
            X, y = validate_data(self, X, y, reset=reset, multi_output=True,
                                 y_numeric=self._output == "linear", **_X_CHECKS)
        except ValueError as error:
            if is_table(X) and "convert" in str(error):
                raise ValueError(f"{error}: X has text or category columns; pass "
                                 "preprocessing='auto' (or an archfit.Preprocessing) to encode "
                                 "them, or use TabularClassifier/TabularRegressor") from None
            raise
        return self._rows(X), y

    @staticmethod
    def _rows(X):
        """Sparse X as compressed sparse rows, which archfit's kernels take as
        they are (the first layer's products are sparse x dense)."""
        return X.tocsr() if hasattr(X, "tocsr") else X

    def _encoding(self, X, y, sample_weight, reset):
        """With ``preprocessing``: X read as a table, y checked as
        scikit-learn checks it, and the preprocessing whose schema the fit
        refits (on the rows it trains on)."""
        from archfit.preprocessing import Preprocessing
        if not (self.preprocessing == "auto" or isinstance(self.preprocessing, Preprocessing)):
            raise ValueError(f"preprocessing must be None, 'auto' or an archfit.Preprocessing, "
                             f"got {self.preprocessing!r}")
        if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError("preprocessing reads tables and dense arrays, not sparse X")
        X = _table(self, X, reset)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None")
        y = _check_y(y, multi_output=True, y_numeric=self._output == "linear")
        if not reset and self.fit_model_.preprocessing is not None:
            # continuing (partial_fit, warm_start): the fitted schema, not one
            # found again on these rows, which may lack some categories
            return X, y, self.fit_model_.preprocessing
        if self.preprocessing == "auto":
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, np.empty((len(y), 0)))
            return X, y, Preprocessing.fit(X, sample_weight=sample_weight)
        return X, y, self.preprocessing

    # ---- fitting --------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        reset = not ((incremental or self.warm_start) and hasattr(self, "fit_model_"))
        preprocessing = None
        if self.preprocessing is None:
            X, y = self._validate_Xy(X, y, reset=reset)
            n_inputs, dtype = X.shape[1], self._dtype(X)
        else:
            X, y, preprocessing = self._encoding(X, y, sample_weight, reset)
            n_inputs = preprocessing.inputs
            dtype = "float64" if self.dtype is None else self._dtype(None)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.empty((len(y), 0)),
                                                 dtype=np.dtype(dtype))
        y, output, n_outputs, classes = self._targets(y, classes, reset, incremental)
        epochs = 1 if incremental else self.max_iter
        if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        hp = self._hyperparameters(len(y), int(epochs),
                                   None if sample_weight is None else float(sample_weight.sum()))
        model = Model(self._architecture(n_inputs, n_outputs, output), dtype)
        init = start = None
        if reset:
            start = self._initial_parameters(model)
        else:
            if self.fit_model_.model != model:
                raise ValueError("the network built from the current parameters differs from "
                                 "the fitted one; warm start and partial_fit need the same "
                                 "hidden_layer_sizes, activation, outputs and dtype")
            init = self.fit_model_
        watch = _Converged(self.tol, self.n_iter_no_change, bool(self.verbose),
                           hp.early_stopping or hp.optimizer == "lbfgs" or incremental,
                           hp.schedule == "plateau")
        diverged = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", fitting.ConvergenceWarning)
            try:
                fitted = fit(model, X, y, hp, init=init if start is None else start,
                             sample_weight=sample_weight, classes=classes, callback=watch,
                             preprocessing=preprocessing if init is None else None)
            except DivergenceError as error:
                # scikit-learn keeps the best weights under early stopping, with
                # a NaN score for the epoch that diverged; otherwise a ValueError
                if error.fit_model is None:
                    raise ValueError(_NONFINITE) from error
                fitted, diverged = error.fit_model, True
        for w in caught:
            category = ConvergenceWarning if issubclass(w.category, fitting.ConvergenceWarning) \
                else w.category
            warnings.warn(str(w.message), category, stacklevel=3)
        self.fit_model_ = fitted
        self._set_attributes(fitted, init, n_outputs, output, hp, diverged)
        self._no_improvement_count = watch.count
        if (not incremental and hp.optimizer != "lbfgs" and not watch.converged
                and self.n_iter_ == hp.epochs):
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({hp.epochs}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=2)
        return self

    def _initial_parameters(self, model):
        """θ drawn as scikit-learn draws it: each layer's weights, then its
        biases, uniform on ±sqrt(f / (fan_in + fan_out)) (f = 2 for a logistic
        hidden activation, 6 otherwise), from ``check_random_state(random_state)``,
        so an integer ``random_state`` starts where scikit-learn's would."""
        rng = check_random_state(self.random_state)
        factor = 2.0 if self.activation == "logistic" else 6.0
        theta = np.empty(model.n_parameters, dtype=model.dtype)
        layout = model.architecture.layout
        for weight, bias in zip(layout[0::2], layout[1::2]):
            fan_in, fan_out = weight.shape
            bound = math.sqrt(factor / (fan_in + fan_out))
            theta[weight.start:weight.stop] = rng.uniform(-bound, bound, weight.shape).ravel()
            theta[bias.start:bias.stop] = rng.uniform(-bound, bound, fan_out)
        return theta

    def _set_attributes(self, fitted, init, n_outputs, output, hp, diverged):
        history = fitted.history
        new = history[len(init.history) if init is not None else 0:]
        self.n_iter_ = len(new) + diverged
        self.loss_curve_ = [h["train_loss"] for h in history]
        self.loss_ = self.loss_curve_[-1]
        if hp.early_stopping:
            self.best_loss_ = None
            self.validation_scores_ = ([h["validation_score"] for h in history]
                                       + [float("nan")] * diverged)
            self.best_validation_score_ = float(np.nanmax(self.validation_scores_))
        else:
            self.best_loss_ = min(self.loss_curve_)
            self.validation_scores_ = None
            self.best_validation_score_ = None
        weights = fitted.weights
        n_layers = sum(isinstance(layer, Dense) for layer in fitted.architecture.layers)
        self.coefs_ = [weights[f"dense{i}.weight"] for i in range(n_layers)]
        self.intercepts_ = [weights[f"dense{i}.bias"] for i in range(n_layers)]
        self.n_layers_ = n_layers + 1
        self.n_outputs_ = n_outputs
        self.out_activation_ = _OUT_ACTIVATIONS[output]

    def fit(self, X, y, sample_weight=None):
        """Fit to (X, y); with ``warm_start``, continue from the previous fit."""
        return self._fit(X, y, sample_weight)

    def _predict_outputs(self, X, method):
        check_is_fitted(self, "fit_model_")
        if self.fit_model_.preprocessing is not None:
            return getattr(self.fit_model_, method)(_table(self, X, reset=False))
        return getattr(self.fit_model_, method)(self._validate_X(X, reset=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # a preprocessing reads tables and dense arrays with missing cells
        tags.input_tags.sparse = self.preprocessing is None
        tags.input_tags.allow_nan = self.preprocessing is not None
        return tags

    def _check_solver(self):
        if self.solver == "lbfgs":
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver!r} is not stochastic.")
        return True


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, trained by archfit.

    Parameters are scikit-learn's ``MLPRegressor``'s (see the module docstring
    for how each translates), plus ``dtype`` and ``n_threads``.
    ``loss="squared_error"`` gives a linear output; ``loss="poisson"`` an
    exponential one (the mean ``exp(z)``) fitted by the Poisson deviance, for
    counts and other non-negative targets.

    Attributes
    ----------
    fit_model_ : archfit.FitModel
        The fit model: architecture, θ̂, hyperparameters and history.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_,
    n_iter_, coefs_, intercepts_, n_layers_, n_outputs_, out_activation_,
    n_features_in_ : as in scikit-learn
    """

    _output = "linear"

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, n_threads=None, preprocessing=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
            n_threads=n_threads, preprocessing=preprocessing)
        self.loss = loss

    def _targets(self, y, classes, reset, incremental):
        if self.loss not in ("squared_error", "poisson"):
            raise ValueError(f"loss must be 'squared_error' or 'poisson', got {self.loss!r}")
        y = np.asarray(y)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if not reset and n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} outputs, the fitted model has {self.n_outputs_}")
        return y, "exponential" if self.loss == "poisson" else "linear", n_outputs, None

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current fit."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values (means, with ``loss="poisson"``), shaped like the y given to ``fit``."""
        return self._predict_outputs(X, "predict")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained by archfit.

    Multi-class problems (binary included) get a softmax output and
    cross-entropy; a 0/1 indicator matrix ``y`` is multi-label and gets a
    sigmoid output and binary cross-entropy. Parameters are scikit-learn's
    ``MLPClassifier``'s (see the module docstring), plus ``dtype`` and
    ``n_threads``.

    Attributes
    ----------
    fit_model_ : archfit.FitModel
    classes_ : ndarray
        Class labels (for multi-label, the column indices).
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_,
    n_iter_, coefs_, intercepts_, n_layers_, n_outputs_, out_activation_,
    n_features_in_ : as in scikit-learn
    """

    _output = "softmax"

    def _targets(self, y, classes, reset, incremental):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. "
                          "Please change the shape of y to (n_samples,), for example "
                          "using ravel().", DataConversionWarning, stacklevel=4)
            y = y.ravel()
        check_classification_targets(y)
        if type_of_target(y) == "multilabel-indicator":
            if not reset and (self.out_activation_ != "logistic" or self._single_class):
                raise ValueError("y is multi-label but the fitted model is multi-class")
            self.classes_ = np.arange(y.shape[1])
            self._label_dtype = y.dtype   # predictions come back in the labels' dtype
            self._single_class = False
            return y, "sigmoid", y.shape[1], None
        if not reset and self._single_class:
            present = np.unique(y if classes is None else np.asarray(classes))
            if not np.array_equal(present, self.classes_):
                raise ValueError(f"the fitted model knows one class, {self.classes_!r}; "
                                 f"y has {present!r}")
            return np.ones((len(y), 1)), "sigmoid", 1, None
        if not reset:
            if self.out_activation_ != "softmax":
                raise ValueError("y is multi-class but the fitted model is multi-label")
            if classes is not None and not np.array_equal(np.unique(np.asarray(classes)),
                                                          self.classes_):
                raise ValueError(f"`classes={np.unique(np.asarray(classes))!r}` is not the "
                                 f"same as on the first call to partial_fit, which was "
                                 f"{self.classes_!r}")
            present = np.unique(y)
            if not incremental and not np.array_equal(present, self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {present}")
            unseen = np.setdiff1d(present, self.classes_)
            if unseen.size:
                raise ValueError(f"y contains labels not seen before: {unseen.tolist()!r}; "
                                 f"expected a subset of {self.classes_.tolist()!r}")
            return y, "softmax", len(self.classes_), self.classes_
        labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        if classes is not None:
            unseen = np.setdiff1d(np.unique(y), labels)
            if unseen.size:
                raise ValueError(f"y contains labels not in classes: {unseen.tolist()!r}")
        self.classes_ = labels
        # One class (a fold of rare events, say): as in scikit-learn, a fitted
        # model that predicts it, with probability 1 (one sigmoid unit fit to it).
        self._single_class = len(labels) == 1
        if self._single_class:
            return np.ones((len(y), 1)), "sigmoid", 1, None
        return y, "softmax", len(labels), labels

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current fit.

        ``classes`` (all labels that will ever appear) is required on the first
        call for multi-class problems, as in scikit-learn; a later call may
        repeat it but not change it.
        """
        first = not hasattr(self, "fit_model_")
        if first and classes is None and type_of_target(np.asarray(y)) != "multilabel-indicator":
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict(self, X):
        """Predicted class labels (a 0/1 matrix for multi-label)."""
        out = self._predict_outputs(X, "predict")
        if self._single_class:
            return np.full(len(out), self.classes_[0])
        if self.out_activation_ == "logistic":
            out = out.astype(self._label_dtype, copy=False)
        return out

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        out = self._predict_outputs(X, "predict_proba")
        return np.ones_like(out) if self._single_class else out

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# ---- the tabular learner ------------------------------------------------------------------------
class _BaseTabular(BaseEstimator):
    """scikit-learn's face of :func:`archfit.fit_tabular`."""

    _task = "regression"

    def __init__(self, *, n_members=12, time_budget=None, categorical=(), random_state=0,
                 n_threads=None, verbose=False, precision="float32"):
        self.precision = precision
        self.n_members = n_members
        self.time_budget = time_budget
        self.categorical = categorical
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def _table(self, X, reset: bool):
        if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError("the tabular learner does not take sparse X; pass it dense "
                            "(X.toarray()) or use MLPClassifier/MLPRegressor, which do")
        return _table(self, X, reset)

    def fit(self, X, y, sample_weight=None):
        """Fit the tabular learner's ensemble to (X, y); see :func:`archfit.fit_tabular`."""
        from archfit.tabular import fit_tabular
        X = self._table(X, reset=True)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None")
        y = self._targets(np.asarray(y))
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.empty((len(y), 0)))
        seed = (self.random_state if isinstance(self.random_state, numbers.Integral)
                and not isinstance(self.random_state, bool)
                else int(check_random_state(self.random_state).randint(2**31 - 1)))
        self.ensemble_ = fit_tabular(
            X, y, n_members=self.n_members, time_budget=self.time_budget,
            categorical=tuple(self.categorical), seed=int(seed), sample_weight=sample_weight,
            task=self._task, n_threads=self.n_threads, verbose=self.verbose,
            precision=self.precision)
        return self

    def _predict(self, X, method):
        check_is_fitted(self, "ensemble_")
        return getattr(self.ensemble_, method)(self._table(X, reset=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags


class TabularRegressor(RegressorMixin, _BaseTabular):
    """The tabular learner (:func:`archfit.fit_tabular`) as a scikit-learn regressor.

    Takes data frames with text, categorical, date and missing cells, or
    arrays (NaN where missing). Parameters are :func:`~archfit.fit_tabular`'s
    (``random_state`` is its ``seed``). A sample weight of 2 weighs a row
    twice in the preprocessing, the losses and the selection, but is not the
    row repeated: the held-out rows are drawn from the rows.

    Attributes
    ----------
    ensemble_ : archfit.Ensemble
        The members selection chose, their weights, the preprocessing and
        the record.
    n_features_in_, feature_names_in_ : as in scikit-learn
    """

    def _targets(self, y):
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError("TabularRegressor needs numeric y") from None
        self._y_ndim = y.ndim
        return y

    def predict(self, X):
        """Predicted values, the weighted mean of the members' (float64)."""
        return np.asarray(self._predict(X, "predict"), dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class TabularClassifier(ClassifierMixin, _BaseTabular):
    """The tabular learner (:func:`archfit.fit_tabular`) as a scikit-learn classifier.

    Attributes
    ----------
    ensemble_ : archfit.Ensemble
    classes_ : ndarray
    n_features_in_, feature_names_in_ : as in scikit-learn
    """

    _task = "classification"

    def _targets(self, y):
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. "
                          "Please change the shape of y to (n_samples,), for example "
                          "using ravel().", DataConversionWarning, stacklevel=3)
            y = y.ravel()
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity: class labels must be finite")
        check_classification_targets(y)
        if y.ndim != 1:
            raise ValueError("TabularClassifier takes one label per row (multi-label y is "
                             "not supported)")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds one class only ({self.classes_[0]!r}); a classifier "
                             "needs two or more")
        return y

    def predict(self, X):
        """Predicted class labels."""
        return self._predict(X, "predict")

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        return self._predict(X, "predict_proba")

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))
