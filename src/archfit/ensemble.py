"""An ensemble of fit models: their predictions averaged, with weights.

``fit_many`` with different seeds (or bootstrap rows) and ``Ensemble`` is the
deep-ensemble recipe: the mean of the members' class probabilities is usually
better calibrated, and often more accurate, than any one member's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from archfit._targets import encode
from archfit._validation import as_sample_weight, warn_unnamed
from archfit._streaming import features
from archfit.fit_model import FitModel, predictions, score_outputs

FORMAT = "archfit.Ensemble"


class Ensemble:
    """Fit models whose outputs are averaged, each with a weight.

    Parameters
    ----------
    members : sequence of FitModel
        At least one. They may differ in architecture, but share the head
        (output, number of outputs, loss), the dtype, the inputs and how
        tables reach them (feature names, preprocessing), and the classes.
        Each applies its own standardisation.
    weights : sequence of float, optional
        Non-negative, not all zero: each member's share of the average
        (normalised to sum to 1). Default: equal shares.
    record : dict, optional
        How the ensemble was built (JSON values: the tabular learner's
        settings, every member's hyperparameters and validation scores, the
        selection's steps); saved with it.
    target_transform : {None, "log"}
        ``"log"``: the members were fit to log(y) (linear outputs), and
        predictions are ``exp`` of the weighted mean of theirs - a geometric
        mean, for prices and other positive quantities whose errors are
        relative. ``score`` is R² in y's units, ``loss`` the members' loss in
        log units.

    Notes
    -----
    ``predict_proba`` is the weighted mean of the members' probabilities
    (softmax, sigmoid); ``predict`` is its most probable class (softmax), its
    0/1 indicators at 0.5 (sigmoid), or the weighted mean of the members'
    values (linear, exponential).
    """

    def __init__(self, members: Sequence[FitModel], weights=None, record: dict | None = None,
                 target_transform: str | None = None):
        if isinstance(members, FitModel) or not isinstance(members, (list, tuple)):
            raise TypeError("members must be a list of FitModels")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        for k, m in enumerate(members):
            if not isinstance(m, FitModel):
                raise TypeError(f"members[{k}] must be a FitModel, got {type(m).__name__}")
        first = members[0]
        for k, m in enumerate(members[1:], 1):
            _check_alike(k, m, first)
        self._members = tuple(members)
        self._weights = _shares(weights, len(members))
        if record is not None:
            if not isinstance(record, dict):
                raise TypeError("record must be a dict of JSON values")
            import json
            try:
                record = json.loads(json.dumps(record, allow_nan=False))
            except (TypeError, ValueError) as error:
                raise ValueError(f"record must hold JSON values only ({error})") from None
        self._record = record
        if target_transform not in (None, "log"):
            raise ValueError(f"target_transform must be None or 'log', got {target_transform!r}")
        if target_transform is not None and first.architecture.output != "linear":
            raise ValueError("target_transform is for linear outputs (regression)")
        self._target_transform = target_transform

    # ---- what it is -------------------------------------------------------------------
    @property
    def members(self) -> list[FitModel]:
        """The fit models, in order."""
        return list(self._members)

    @property
    def weights(self) -> np.ndarray:
        """Each member's share of the average (sums to 1)."""
        return self._weights.copy()

    @property
    def record(self) -> dict | None:
        """How the ensemble was built (a fresh copy), or None."""
        import copy
        return copy.deepcopy(self._record)

    @property
    def target_transform(self) -> str | None:
        """``"log"`` when the members were fit to log(y), else None."""
        return self._target_transform

    @property
    def model(self):
        """The first member's model (every member shares its head and dtype)."""
        return self._members[0].model

    @property
    def classes(self) -> np.ndarray | None:
        """The class labels (softmax), the members' own."""
        return self._members[0].classes

    @property
    def feature_names(self) -> list[str] | None:
        """The features' names, when the members were fit on named columns."""
        return self._members[0].feature_names

    @property
    def preprocessing(self):
        """The members' shared preprocessing of tables, or None."""
        return self._members[0].preprocessing

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self):
        return iter(self._members)

    def __getitem__(self, k) -> FitModel:
        return self._members[k]

    def __repr__(self) -> str:
        models = {m.model for m in self._members}
        what = (repr(self.model) if len(models) == 1 else
                f"{len(models)} architectures, {self.model.architecture.output} output")
        log = ", of log(y)" if self._target_transform == "log" else ""
        return f"Ensemble({len(self)} x {what}{log})"

    # ---- prediction -------------------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """The weighted mean of the members' outputs (probabilities or values,
        in the targets' units), accumulated in float64; X is checked and
        encoded once for all of them."""
        first = self._members[0]
        X = first._encoded(X)
        arch = first.architecture
        X = features(X, arch.n_inputs, first.model.dtype,
                     sparse=all(m.architecture.reads_sparse for m in self._members),
                     categorical=arch.inputs.categorical)
        total = None
        for m, share in zip(self._members, self._weights):
            if share == 0:
                continue
            out = np.asarray(m._outputs(X, encoded=True), dtype=np.float64) * share
            total = out if total is None else total + out
        return total

    def predict_proba(self, X) -> np.ndarray:
        """The mean of the members' class (softmax) or label (sigmoid) probabilities."""
        output = self.model.architecture.output
        if output in ("linear", "exponential"):
            raise TypeError("predict_proba is for softmax or sigmoid outputs; "
                            f"this ensemble has a {output} output: use predict")
        warn_unnamed(X, self.feature_names)
        return self._outputs(X).astype(self.model.dtype)

    def predict(self, X) -> np.ndarray:
        """Class labels (softmax), 0/1 indicators (sigmoid) or mean values."""
        warn_unnamed(X, self.feature_names)
        out = self._outputs(X)
        output = self.model.architecture.output
        if self._target_transform == "log":
            out = np.exp(out)
        if output not in ("softmax", "sigmoid"):
            out = out.astype(self.model.dtype)
        return predictions(out, output, self.classes, self._members[0]._target_ndim)

    def _targets(self, X, y, sample_weight):
        warn_unnamed(X, self.feature_names, "X")
        arch = self.model.architecture
        out = self._outputs(X)
        targets = encode(y, arch.output, arch.n_outputs, out.shape[0], np.dtype(np.float64),
                         self.classes)
        return out, targets, as_sample_weight(sample_weight, out.shape[0],
                                              np.dtype(np.float64))

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (softmax; subset accuracy for sigmoid) or R² of the averaged
        prediction (in y's units)."""
        out, targets, w = self._targets(X, y, sample_weight)
        if self._target_transform == "log":
            out = np.exp(out)
        return score_outputs(self.model, out, targets, w)

    def loss(self, X, y, sample_weight=None) -> float:
        """The model's loss of the averaged prediction (mean over rows,
        weighted; in the targets' own units, log(y)'s with a log transform):
        for softmax the log-loss of the mean probabilities."""
        out, targets, w = self._targets(X, y, sample_weight)
        if self._target_transform == "log":
            targets = targets.with_values(log_targets(targets.values))
        rows = _loss_rows(self.model.loss, out, targets, self.model.huber_delta)
        if w is None:
            return float(rows.mean())
        return float((w * rows).sum() / w.sum())

    # ---- files ------------------------------------------------------------------------
    def to_bytes(self, *, optimizer_state: bool = False) -> bytes:
        """The contents :meth:`save` writes: one safe, checksummed file holding
        every member (without their optimizer moments unless asked)."""
        from archfit.persistence import fit_model_fields, pack
        headers, arrays = [], []
        for k, m in enumerate(self._members):
            header, member_arrays = fit_model_fields(m, optimizer_state=optimizer_state)
            header.pop("preprocessing", None)      # the members' shared one, written once
            headers.append(header)
            arrays += [(f"{k}.{name}", a) for name, a in member_arrays]
        top = {"format": FORMAT, "members": headers, "weights": self._weights.tolist(),
               "record": self._record, "target_transform": self._target_transform}
        if self.preprocessing is not None:
            top["preprocessing"] = self.preprocessing.to_dict()
        return pack(top, arrays)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "data") -> "Ensemble":
        """Inverse of :meth:`to_bytes`; validates everything."""
        from archfit.persistence import FileFormatError, fit_model_of, unpack
        header, payload = unpack(data, source, FORMAT, "an archfit ensemble file")
        headers, index = header.get("members"), header.get("payload")
        if not isinstance(headers, list) or not headers or not isinstance(index, dict):
            raise FileFormatError(f"{source}: header field 'members' is malformed")
        members = []
        for k, h in enumerate(headers):
            if not isinstance(h, dict):
                raise FileFormatError(f"{source}: member {k}'s header is malformed")
            prefix = f"{k}."
            own = {name[len(prefix):]: entry for name, entry in index.items()
                   if name.startswith(prefix)}
            members.append(fit_model_of(dict(h, payload=own), payload,
                                        f"{source} (member {k})"))
        try:
            shared = header.get("preprocessing")
            if shared is not None:
                from archfit.preprocessing import Preprocessing
                shared = Preprocessing.from_dict(shared)
                members = [m._with_preprocessing(shared) for m in members]
            return cls(members, header.get("weights"), header.get("record"),
                       header.get("target_transform"))
        except (TypeError, ValueError) as error:
            raise FileFormatError(f"{source}: {error}") from None

    def save(self, path, *, optimizer_state: bool = False) -> Path:
        """Write the ensemble to ``path`` atomically; :meth:`load` reads it."""
        from archfit.persistence import write_atomic
        return write_atomic(path, self.to_bytes(optimizer_state=optimizer_state))

    @classmethod
    def load(cls, path) -> "Ensemble":
        """Read an ensemble saved by :meth:`save`; never executes code."""
        path = Path(os.fspath(path))
        with open(path, "rb") as f:
            data = f.read()
        return cls.from_bytes(data, source=str(path))

    def to_onnx(self, path=None):
        """Export as one ONNX graph: every member, then ``Mean`` of their
        outputs (needs ``onnx``; see :mod:`archfit.onnx_export`)."""
        from archfit.onnx_export import to_onnx
        return to_onnx(self, path)

    def __reduce__(self):
        return (Ensemble.from_bytes, (self.to_bytes(),))


def _loss_rows(loss: str, out: np.ndarray, targets, huber_delta: float) -> np.ndarray:
    """Per-row loss (summed over outputs) of averaged outputs: probabilities
    for the cross-entropies, means for Poisson, values otherwise."""
    tiny = np.finfo(np.float64).tiny
    if loss == "cross_entropy":
        return -np.log(np.maximum(out[np.arange(len(out)), targets.labels], tiny))
    y = targets.values.astype(np.float64)
    if loss == "binary_cross_entropy":
        p = np.clip(out, tiny, 1.0 - np.finfo(np.float64).epsneg)
        return -(y * np.log(p) + (1.0 - y) * np.log1p(-p)).sum(axis=1)
    if loss == "poisson":
        mu = np.maximum(out, tiny)
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
        return (mu - y - y * np.log(mu) + ylogy).sum(axis=1)
    r = out - y
    if loss == "squared_error":
        return 0.5 * (r ** 2).sum(axis=1)
    if loss == "huber":
        small = np.abs(r) <= huber_delta
        return np.where(small, 0.5 * r ** 2,
                        huber_delta * (np.abs(r) - 0.5 * huber_delta)).sum(axis=1)
    raise ValueError(f"no ensemble loss for {loss!r}")  # pragma: no cover - Model checks names


def log_targets(y: np.ndarray) -> np.ndarray:
    """log(y) of positive targets, or a ValueError that says which are not."""
    y = np.asarray(y, dtype=np.float64)
    bad = ~(y > 0)
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), y.shape)[0]
        raise ValueError(f"a log target transform needs y > 0; y holds {y[bad][0]:g} at "
                         f"row {int(where)}")
    return np.log(y)


def _check_alike(k: int, m: FitModel, first: FitModel) -> None:
    """Refuse a member that cannot be averaged with the first, naming why."""
    a, b = m.model, first.model
    if (a.architecture.output, a.architecture.n_outputs, a.loss, a.dtype) != (
            b.architecture.output, b.architecture.n_outputs, b.loss, b.dtype) or (
            a.loss == "huber" and a.huber_delta != b.huber_delta):
        raise ValueError(f"members[{k}] is a fit of a model with another head, loss or dtype "
                         f"({a!r}, members[0]: {b!r}); an ensemble averages fits of one head")
    if a.architecture.inputs != b.architecture.inputs:
        raise ValueError(f"members[{k}] reads other inputs ({a.architecture.inputs}) than "
                         f"members[0] ({b.architecture.inputs})")
    if (m.classes is None) != (first.classes is None) or (
            m.classes is not None and not np.array_equal(m.classes, first.classes)):
        raise ValueError(f"members[{k}] has other classes than members[0]")
    if m._target_ndim != first._target_ndim:
        raise ValueError(f"members[{k}] was fit to targets of another shape")
    if m.feature_names != first.feature_names:
        raise ValueError(f"members[{k}] names its features differently from members[0]")
    if m.preprocessing != first.preprocessing:
        raise ValueError(f"members[{k}] preprocesses tables differently from members[0]")


def _shares(weights, n: int) -> np.ndarray:
    """Weights as shares summing to 1 (equal without weights), or a clear refusal."""
    if weights is None:
        return np.full(n, 1.0 / n)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("weights must be a sequence of numbers") from None
    if w.shape != (n,):
        raise ValueError(f"weights must have one value per member ({n}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return w / w.sum()
