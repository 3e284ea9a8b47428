"""The fit model: fixed weights θ̂ found by fitting a model to training data."""
from __future__ import annotations

from typing import Any

import numpy as np

from archfit._metrics import accuracy, r2
from archfit._targets import encode
from archfit._sparse import SparseRows
from archfit._streaming import FileRows, features
from archfit._validation import (as_features, as_parameters, as_sample_weight, by_name,
                                 warn_unnamed)
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model
from archfit.preprocessing import Preprocessing
from archfit.scaling import Standardization


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, copy=True, order="C")
    out.flags.writeable = False
    return out


def score_outputs(model: Model, out: np.ndarray, targets, weights=None) -> float:
    """Accuracy or R² of the model outputs ``out`` against encoded targets."""
    output = model.architecture.output
    if output == "softmax":
        return accuracy(targets.labels, np.argmax(out, axis=1), weights)
    if output == "sigmoid":
        return accuracy(targets.values >= 0.5, out >= 0.5, weights)
    return r2(targets.values, out, weights)


def predictions(out: np.ndarray, output: str, classes, target_ndim: int) -> np.ndarray:
    """What ``predict`` returns for outputs `out` (probabilities or values):
    the most probable class, 0/1 indicators at 0.5, or the values, shaped
    like the targets were."""
    if output == "softmax":
        return classes[np.argmax(out, axis=1)]
    if output == "sigmoid":
        out = (out >= 0.5).astype(np.int8)
    return out[:, 0] if target_ndim == 1 else out


def _standardized_features(scaling, X):
    """Validated X in the units the network was fit in."""
    if scaling.feature_mean is None:
        return X
    if isinstance(X, FileRows):
        return X.transformed(scaling.features)
    if isinstance(X, SparseRows):
        raise ValueError("this fit model standardises its features, which would make sparse "
                         "X dense: pass X dense (X.toarray())")
    return scaling.features(X)


def _checked_standardization(standardization, model):
    if standardization is None:
        return None
    if not isinstance(standardization, Standardization):
        raise TypeError("standardization must be a Standardization or None")
    arch = model.architecture
    if (standardization.feature_mean is not None
            and len(standardization.feature_mean) != arch.n_inputs):
        raise ValueError(f"standardization has {len(standardization.feature_mean)} feature "
                         f"means; the model has {arch.n_inputs} inputs")
    if standardization.target_mean is not None:
        if arch.output != "linear":
            raise ValueError("only a linear output's targets can be standardised")
        if len(standardization.target_mean) != arch.n_outputs:
            raise ValueError(f"standardization has {len(standardization.target_mean)} target "
                             f"means; the model has {arch.n_outputs} outputs")
    return standardization


def _checked_preprocessing(preprocessing, model):
    if preprocessing is None:
        return None
    if not isinstance(preprocessing, Preprocessing):
        raise TypeError("preprocessing must be a Preprocessing or None")
    if preprocessing.inputs != model.architecture.inputs:
        raise ValueError(f"the preprocessing gives {preprocessing.inputs}; the model reads "
                         f"{model.architecture.inputs}: build the architecture with "
                         "inputs=preprocessing.inputs")
    return preprocessing


class FitModel:
    """A network with fixed weights: the model, θ̂, and how θ̂ was found.

    Made by :func:`archfit.fit`; immutable. Continuing a fit
    (``fit(..., init=fitted)``) returns a new FitModel and leaves this one as
    it was.

    Attributes
    ----------
    model : Model
    parameters : ndarray (read-only)
        θ̂, flat, in the architecture's layout.
    hyperparameters : Hyperparameters
        Those used by the last fit that produced θ̂.
    history : list of dict
        One dict per epoch, over every fit in the chain: ``epoch`` (1-based),
        ``train_loss``, ``learning_rate``, ``seconds`` and, with a validation
        set, ``validation_loss`` and ``validation_score``.
    classes : ndarray or None
        The class labels of a softmax model, in output order.
    standardization : Standardization or None
        The means and scales fitting found on the training rows
        (``hyperparameters.standardize``), applied by every prediction.
    preprocessing : Preprocessing or None
        The table's encoding fitting found on the training rows (``fit(...,
        preprocessing=)``): predictions take tables and apply it first.
    """

    __slots__ = ("_model", "_theta", "_hyperparameters", "_history", "_classes",
                 "_target_ndim", "_optimizer_state", "_training_data", "_standardization",
                 "_preprocessing")

    def __init__(self, model: Model, parameters: np.ndarray, hyperparameters: Hyperparameters,
                 history=(), classes=None, target_ndim: int = 2, optimizer_state=None,
                 training_data: dict | None = None,
                 standardization: Standardization | None = None,
                 preprocessing: Preprocessing | None = None):
        if not isinstance(model, Model):
            raise TypeError(f"model must be a Model, got {type(model).__name__}")
        if not isinstance(hyperparameters, Hyperparameters):
            raise TypeError("hyperparameters must be a Hyperparameters")
        # as_parameters refuses NaN/inf: a FitModel never holds non-finite weights.
        theta = as_parameters(parameters, model.n_parameters, model.dtype, "parameters")
        arch = model.architecture
        if arch.output == "softmax":
            if classes is None or len(classes) != arch.n_outputs:
                raise ValueError(f"a softmax FitModel needs {arch.n_outputs} classes")
            classes = _frozen(np.asarray(classes))
        else:
            classes = None
        if target_ndim not in (1, 2):
            raise ValueError("target_ndim must be 1 or 2")
        self._model = model
        self._theta = _frozen(theta)
        self._hyperparameters = hyperparameters
        self._history = tuple(dict(h) for h in history)
        self._classes = classes
        self._target_ndim = target_ndim
        if optimizer_state is not None:
            m, v, step, name = optimizer_state
            optimizer_state = (_frozen(m), _frozen(v), int(step), str(name))
        self._optimizer_state = optimizer_state
        if training_data is not None and not isinstance(training_data, dict):
            raise TypeError("training_data must be a dict or None")
        self._training_data = None if training_data is None else dict(training_data)
        self._standardization = _checked_standardization(standardization, model)
        self._preprocessing = _checked_preprocessing(preprocessing, model)

    @classmethod
    def _of_fit(cls, model: Model, theta: np.ndarray, hyperparameters: Hyperparameters,
                history, classes, target_ndim: int, optimizer_state,
                training_data: dict, standardization=None,
                preprocessing=None) -> "FitModel":
        """The FitModel ``fit`` returns, from arrays fit made and nobody else holds.

        They are frozen in place instead of validated and copied (``fit`` has
        checked θ is finite; the classes are its own, or an earlier fit
        model's read-only ones): a tenth of the fixed cost of a small fit.
        """
        def freeze(array):
            array.flags.writeable = False
            return array
        self = object.__new__(cls)
        self._model = model
        self._theta = freeze(theta)
        self._hyperparameters = hyperparameters
        self._history = tuple(dict(h) for h in history)
        self._classes = None if classes is None else freeze(classes)
        self._target_ndim = target_ndim
        if optimizer_state is not None:
            m, v, step, name = optimizer_state
            optimizer_state = (freeze(m), freeze(v), int(step), str(name))
        self._optimizer_state = optimizer_state
        self._training_data = dict(training_data)
        self._standardization = standardization
        self._preprocessing = preprocessing
        return self

    # ---- what it is -------------------------------------------------------------------
    @property
    def model(self) -> Model:
        """The model f(x; θ) that was fitted."""
        return self._model

    @property
    def architecture(self):
        """The model's architecture (shortcut for ``model.architecture``)."""
        return self._model.architecture

    @property
    def parameters(self) -> np.ndarray:
        """θ̂ (read-only)."""
        return self._theta

    @property
    def standardization(self) -> Standardization | None:
        """The features' (and a linear output's targets') means and scales
        found when fitting, or None when fitting did not standardise."""
        return self._standardization

    @property
    def preprocessing(self) -> Preprocessing | None:
        """The encoding of the table it was fit on (column kinds,
        vocabularies, numeric transforms, imputation), or None when it
        reads numbers as they are."""
        return self._preprocessing

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """Read-only views of θ̂ per weight matrix and bias vector."""
        return self._model.unflatten(self._theta)

    @property
    def hyperparameters(self) -> Hyperparameters:
        """The hyperparameters of the fit that produced θ̂."""
        return self._hyperparameters

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per-epoch records (a fresh copy)."""
        return [dict(h) for h in self._history]

    @property
    def n_epochs(self) -> int:
        """Epochs run over the whole chain of fits."""
        return len(self._history)

    @property
    def classes(self) -> np.ndarray | None:
        """Class labels in output order (softmax), or None."""
        return self._classes

    @property
    def training_data(self) -> dict | None:
        """Fingerprint of the data of the last fit: ``n_samples``, ``n_features``,
        ``dtype`` and a ``hash`` of X and y as fitted (None if unknown): 128 bits,
        XXH64 with seeds 0 and 1, ``"xxh64x2:<32 hex digits>"`` (files saved by
        earlier versions: ``"sha256:..."`` or ``"blake2b:..."``)."""
        return None if self._training_data is None else dict(self._training_data)

    @property
    def feature_names(self) -> list[str] | None:
        """The names of the columns it was fit on (a data frame's), in order,
        or None. Predicting on a data frame then matches its columns by name."""
        if self._preprocessing is not None:
            return self._preprocessing.feature_names
        names = (self._training_data or {}).get("feature_names")
        return None if names is None else list(names)

    def _with(self, **changes) -> "FitModel":
        """The same fit model with some of the constructor's arguments
        (`hyperparameters`, `training_data`, `preprocessing`) changed."""
        fields = dict(hyperparameters=self._hyperparameters, training_data=self._training_data,
                      preprocessing=self._preprocessing)
        fields.update(changes)
        return FitModel(self._model, self._theta, history=self._history, classes=self._classes,
                        target_ndim=self._target_ndim, optimizer_state=self._optimizer_state,
                        standardization=self._standardization, **fields)

    def _with_training_data(self, training_data: dict) -> "FitModel":
        """The same fit model with richer provenance (the command line adds file and
        column names)."""
        return self._with(training_data=training_data)

    def _with_preprocessing(self, preprocessing: Preprocessing | None) -> "FitModel":
        """The same fit model reading tables through `preprocessing` (a fit
        on its encoded rows; an ensemble file's shared one)."""
        return self._with(preprocessing=preprocessing)

    # ---- files ------------------------------------------------------------------------
    def save(self, path, *, optimizer_state: bool = True):
        """Write to ``path`` atomically in archfit's safe format; see :func:`archfit.load`.

        ``optimizer_state=False`` omits the optimizer's moments (a smaller
        file; continuing training from it restarts the moments).
        """
        from archfit.persistence import save
        return save(self, path, optimizer_state=optimizer_state)

    def to_bytes(self, *, optimizer_state: bool = True) -> bytes:
        """The contents :meth:`save` writes."""
        from archfit.persistence import to_bytes
        return to_bytes(self, optimizer_state=optimizer_state)

    def to_onnx(self, path=None):
        """Export as a standard ONNX graph (needs ``onnx``); see :mod:`archfit.onnx_export`.

        Returns the ``onnx.ModelProto`` and writes it to ``path`` when given.
        """
        from archfit.onnx_export import to_onnx
        return to_onnx(self, path)

    @classmethod
    def from_bytes(cls, data: bytes) -> "FitModel":
        """Inverse of :meth:`to_bytes`; validates everything."""
        from archfit.persistence import from_bytes
        return from_bytes(data)

    # ---- prediction -------------------------------------------------------------------
    def _encoded(self, X):
        """X as the network's inputs are laid out: a table through the
        preprocessing, a data frame's columns in the fit's order."""
        if self._preprocessing is not None:
            return self._preprocessing.transform(X)
        if type(X) is not np.ndarray:      # a plain array has no column names to match
            return by_name(X, self.feature_names)
        return X

    @property
    def precision(self) -> str:
        """The precision of the dense products that trained it and that it
        predicts with (``Hyperparameters.precision``)."""
        return self._hyperparameters.precision

    def with_precision(self, precision: str) -> "FitModel":
        """The same fit model predicting with products in `precision`
        ("float32" or "bfloat16"; float32 models only for "bfloat16")."""
        hp = self._hyperparameters.replace(precision=precision)
        self._model._in_precision(precision)        # refused for a float64 model
        return self._with(hyperparameters=hp)

    @property
    def _computing(self):
        """The model as it computes: its products in the fit's precision."""
        return self._model._in_precision(self._hyperparameters.precision)

    def _outputs(self, X, members: bool = False, encoded: bool = False) -> np.ndarray:
        """The head's outputs in the targets' units; with `members`, each
        member's of the ensemble inside the network, (k, n, n_outputs).
        `encoded`: X is already :meth:`_encoded`'s."""
        if not encoded:
            X = self._encoded(X)
        scaling = self._standardization
        if scaling is None and not members:
            return self._computing._outputs(self._theta, X)
        X = features(X, self._model.architecture.n_inputs, self._model.dtype,
                     sparse=self._model.architecture.reads_sparse,
                     categorical=self._model.architecture.inputs.categorical)
        if scaling is not None:
            X = _standardized_features(scaling, X)
        back = scaling.outputs if scaling is not None else (lambda out: out)
        if not members:
            return back(self._computing._predict(self._theta, X))
        return np.stack([back(model._in_precision(self.precision)._predict(theta, X))
                         for model, theta in (self._model.member(self._theta, m)
                                              for m in range(self._model.architecture.members))])

    def predict_members(self, X) -> np.ndarray:
        """Each member's probabilities (softmax, sigmoid) or values (linear,
        exponential), for a network with an ensemble inside
        (:class:`~archfit.layers.BatchEnsemble`): shape (k, n_samples,
        n_outputs). Their mean over the members is what :meth:`predict_proba`
        (or :meth:`predict`, for values) gives, up to rounding."""
        if self._model.architecture.ensemble is None:
            raise ValueError("predict_members is for a network with an ensemble inside "
                             "(Architecture(ensemble=BatchEnsemble(k)))")
        warn_unnamed(X, self.feature_names)
        return self._outputs(X, members=True)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (softmax) or per-label probabilities (sigmoid).

        A fit on named columns (a data frame) matches a frame's columns by
        name, and warns when given an array, whose columns it takes in the
        fit's order.
        """
        output = self._model.architecture.output
        if output in ("linear", "exponential"):
            raise TypeError("predict_proba is for softmax or sigmoid outputs; "
                            f"this model has a {output} output: use predict")
        warn_unnamed(X, self.feature_names)
        return self._outputs(X)

    def predict(self, X) -> np.ndarray:
        """Predicted class labels (softmax), 0/1 indicators (sigmoid), values
        (linear) or means (exponential)."""
        warn_unnamed(X, self.feature_names)
        return predictions(self._outputs(X), self._model.architecture.output, self._classes,
                           self._target_ndim)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (softmax; subset accuracy for sigmoid) or R² (linear, exponential)."""
        warn_unnamed(X, self.feature_names)
        X, targets, w = self._data(X, y, sample_weight, np.float64)
        return self._score(X, targets, w)

    def loss(self, X, y, sample_weight=None) -> float:
        """Mean loss of θ̂ on (X, y): the model's loss, without any L2 penalty
        (with standardised targets, in their standardised units: the loss
        the fit minimised)."""
        warn_unnamed(X, self.feature_names)
        X, targets, w = self._data(X, y, sample_weight, self._model.dtype)
        return self._computing._loss(self._theta, X, targets, w)

    def _data(self, X, y, sample_weight, weight_dtype):
        """(X, y, sample_weight) validated and encoded against this fit model."""
        arch = self._model.architecture
        X = features(self._encoded(X), arch.n_inputs, self._model.dtype,
                     sparse=arch.reads_sparse, categorical=arch.inputs.categorical)
        targets = encode(y, arch.output, arch.n_outputs, X.shape[0], self._model.dtype,
                         self._classes)
        scaling = self._standardization
        if scaling is not None:
            X = _standardized_features(scaling, X)
            if targets.values is not None and scaling.target_mean is not None:
                targets = targets.with_values(scaling.targets(targets.values))
        return X, targets, as_sample_weight(sample_weight, X.shape[0], weight_dtype)

    def _score(self, X, targets, weights=None) -> float:
        return score_outputs(self._model, self._computing._predict(self._theta, X), targets,
                             weights)

    def __reduce__(self):
        # Pickling (joblib, multiprocessing) delegates to the safe file format.
        return (FitModel.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return (f"FitModel({self._model!r}, epochs={self.n_epochs}, "
                f"optimizer={self._hyperparameters.optimizer!r})")
