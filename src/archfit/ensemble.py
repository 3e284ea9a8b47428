"""An ensemble of fit models of one model: their predictions averaged.

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
    """Fit models of one model whose outputs are averaged.

    Parameters
    ----------
    members : sequence of FitModel
        At least one; all of one model (architecture, dtype, loss), with the
        same classes and feature names. Each applies its own standardisation.

    Notes
    -----
    ``predict_proba`` is the mean of the members' probabilities (softmax,
    sigmoid); ``predict`` is its most probable class (softmax), its 0/1
    indicators at 0.5 (sigmoid), or the mean of the members' values (linear,
    exponential).
    """

    def __init__(self, members: Sequence[FitModel]):
        if isinstance(members, FitModel) or not isinstance(members, (list, tuple)):
            raise TypeError("members must be a list of FitModels")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        for k, m in enumerate(members):
            if not isinstance(m, FitModel):
                raise TypeError(f"members[{k}] must be a FitModel, got {type(m).__name__}")
        first = members[0]
        for k, m in enumerate(members[1:], 1):
            if m.model != first.model:
                raise ValueError(f"members[{k}] is a fit of another model ({m.model!r}, "
                                 f"members[0]: {first.model!r}); an ensemble averages fits of "
                                 "one model")
            if (m.classes is None) != (first.classes is None) or (
                    m.classes is not None and not np.array_equal(m.classes, first.classes)):
                raise ValueError(f"members[{k}] has other classes than members[0]")
            if m._target_ndim != first._target_ndim:
                raise ValueError(f"members[{k}] was fit to targets of another shape")
            if m.feature_names != first.feature_names:
                raise ValueError(f"members[{k}] names its features differently from members[0]")
        self._members = tuple(members)

    # ---- what it is -------------------------------------------------------------------
    @property
    def members(self) -> list[FitModel]:
        """The fit models, in order."""
        return list(self._members)

    @property
    def model(self):
        """The model every member is a fit of."""
        return self._members[0].model

    @property
    def classes(self) -> np.ndarray | None:
        """The class labels (softmax), the members' own."""
        return self._members[0].classes

    @property
    def feature_names(self) -> list[str] | None:
        """The features' names, when the members were fit on named columns."""
        return self._members[0].feature_names

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self):
        return iter(self._members)

    def __getitem__(self, k) -> FitModel:
        return self._members[k]

    def __repr__(self) -> str:
        return f"Ensemble({len(self)} x {self.model!r})"

    # ---- prediction -------------------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """The mean of the members' outputs (probabilities or values, in the
        targets' units), accumulated in float64."""
        first = self._members[0]
        X = features(X, first.architecture.n_inputs, first.model.dtype,
                     sparse=first.architecture.reads_sparse,
                     categorical=first.architecture.inputs.categorical) \
            if first.feature_names is None else X
        total = None
        for m in self._members:
            out = np.asarray(m._outputs(X), dtype=np.float64)
            total = out if total is None else total + out
        return total / len(self._members)

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
        """Accuracy (softmax; subset accuracy for sigmoid) or R² of the averaged prediction."""
        out, targets, w = self._targets(X, y, sample_weight)
        return score_outputs(self.model, out, targets, w)

    def loss(self, X, y, sample_weight=None) -> float:
        """The model's loss of the averaged prediction (mean over rows,
        weighted; in the targets' own units): for softmax the log-loss of the
        mean probabilities."""
        out, targets, w = self._targets(X, y, sample_weight)
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
            headers.append(header)
            arrays += [(f"{k}.{name}", a) for name, a in member_arrays]
        return pack({"format": FORMAT, "members": headers}, arrays)

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
            return cls(members)
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
