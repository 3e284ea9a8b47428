"""Checkpoints: a fit's whole state, written atomically, from which the same
``fit(...)`` call resumes to the same bits.

What an exact resumption needs is small, because every epoch's sample order
and dropout masks depend only on (seed, epoch): θ after the last complete
epoch, the optimizer's moments and step, the history (the schedule's and
early stopping's state are replayed from it), and early stopping's best θ.
A checkpoint also records what the fit was asked to do - the model, the
hyperparameters, fingerprints of the training and validation data and of the
starting point - and a resumption refuses one that does not match, naming
what differs. The file is the fit-model container (``persistence``) with its
own format name, so it is checked the same way: never a pickle, a checksum
over everything.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archfit import persistence
from archfit._kernels._hashing import Fingerprint
from archfit.fit_model import FitModel
from archfit.persistence import FileFormatError

FORMAT = "archfit.Checkpoint"


@dataclass
class Checkpoint:
    """A fit's state at the end of an epoch.

    Attributes
    ----------
    fit_model : FitModel
        θ, history and optimizer state after the last complete epoch (after
        the whole fit when ``finished``).
    request : dict
        What the fit was asked to do (see :func:`request`).
    first_epoch : int
        Epochs in the history before this fit began (a continued fit's).
    best : ndarray or None
        Early stopping's best θ so far.
    finished : bool
        The fit ended; ``fit_model`` is its result.
    """

    fit_model: FitModel
    request: dict[str, Any]
    first_epoch: int
    best: np.ndarray | None
    finished: bool


def _digest(*arrays) -> str:
    h = Fingerprint()
    for a in arrays:
        if a is not None:
            h.update(np.ascontiguousarray(a))
    return "xxh64x2:" + h.hexdigest()


def request(model, hyperparameters, training_data: dict, validation_data: dict | None,
            theta0: np.ndarray, first_epoch: int, optimizer_state, classes) -> dict[str, Any]:
    """What a fit is asked to do, as a checkpoint records it.

    ``n_threads`` is left out: results do not depend on it, so a fit may
    resume on another machine.
    """
    hp = hyperparameters.to_dict()
    hp.pop("n_threads", None)
    state = None
    if optimizer_state is not None:
        state = {"moments": _digest(optimizer_state[0], optimizer_state[1]),
                 "step": int(optimizer_state[2]), "optimizer": optimizer_state[3]}
    return json.loads(json.dumps({
        "model": model.to_dict(),
        "hyperparameters": hp,
        "training data": training_data,
        "validation data": validation_data,
        "classes": None if classes is None else persistence._classes_to_json(np.asarray(classes)),
        "starting point": {"parameters": _digest(theta0), "epochs before": int(first_epoch),
                           "optimizer state": state},
    }))


def _canonical(key: str, value):
    """A request's entry in the form this archfit writes it: a model as its
    dict now reads (a checkpoint of format version 1 stored layers without
    their kind)."""
    if key == "model" and isinstance(value, dict):
        from archfit.model import Model
        try:
            return Model.from_dict(value).to_dict()
        except (TypeError, ValueError):
            return value
    return value


def difference(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first thing that differs between two requests, in words, or None."""
    for key in current:
        a, b = _canonical(key, saved.get(key)), _canonical(key, current[key])
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for field in list(b) + [f for f in a if f not in b]:
                if a.get(field) != b.get(field):
                    return (f"the {key} differ ({field}: {a.get(field)!r} in the checkpoint, "
                            f"{b.get(field)!r} now)")
        return f"the {key} differ"
    return None


def write(path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (the old one stays until
    the new one is complete on disk)."""
    header, arrays = persistence.fit_model_fields(checkpoint.fit_model)
    header["format"] = FORMAT
    header["checkpoint"] = {"request": checkpoint.request,
                            "first_epoch": checkpoint.first_epoch,
                            "finished": checkpoint.finished}
    if checkpoint.best is not None:
        arrays.append(("best", checkpoint.best))
    persistence.write_atomic(path, persistence.pack(header, arrays))


def read(path) -> Checkpoint | None:
    """The checkpoint at ``path``; None when there is no file.

    Raises
    ------
    FileFormatError
        The file is not a checkpoint, or is truncated or altered: never
        ignored, since resuming from the start instead would silently redo
        (and may differ from) the work it holds.
    """
    path = Path(os.fspath(path))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    source = f"checkpoint {path}"
    header, payload = persistence.unpack(data, source, FORMAT, "an archfit checkpoint")
    fit_model = persistence.fit_model_of(header, payload, source)
    info = header.get("checkpoint")
    if (not isinstance(info, dict) or not isinstance(info.get("request"), dict)
            or not isinstance(info.get("first_epoch"), int)
            or not isinstance(info.get("finished"), bool)):
        raise FileFormatError(f"{source}: header field 'checkpoint' is malformed")
    best = None
    if "best" in header["payload"]:
        best = persistence.array(payload, header["payload"], "best", fit_model.model.dtype,
                                 fit_model.model.n_parameters)
    return Checkpoint(fit_model, info["request"], info["first_epoch"], best, info["finished"])
