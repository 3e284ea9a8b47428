"""Saving and loading fit models: one safe, versioned, checksummed file.

Layout (all integers little-endian)::

    b"ARCHFIT\\x00"            8 bytes   magic
    header length          8 bytes   unsigned
    header                 JSON, UTF-8: format version, model, hyperparameters,
                           classes, history, training-data fingerprint, and the
                           offset, length and dtype of every array in the payload
    payload                raw array bytes: θ̂, then (optionally) the
                           optimizer's moments
    SHA-256                32 bytes over everything before it

Loading reads JSON and raw numbers only - never a pickle, never code - checks
the magic, the version and the checksum first, then every field, and raises
:class:`FileFormatError` naming what is wrong. Saving writes a temporary file
in the same folder and renames it over the target, so a crash mid-save never
leaves a broken file where a good one was.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from archfit.fit_model import FitModel
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model
from archfit.preprocessing import Preprocessing
from archfit.scaling import Standardization

MAGIC = b"ARCHFIT\x00"
# 2: layers are stored with their "kind" (Dense, LayerNorm, Residual); 1: Dense
# layers without one. Both are read.
FORMAT_VERSION = 2
READS = (1, 2)
_DIGEST = 32
_MAX_HEADER = 64 * 2**20


# What reads each kind of archfit file, for the message when another is given.
_READERS = {"archfit.FitModel": "archfit.load",
            "archfit.Ensemble": "archfit.Ensemble.load",
            "archfit.Checkpoint": "archfit.fit(..., checkpoint=...)"}


class FileFormatError(ValueError):
    """A file is not an archfit file, or is truncated, altered or of an unknown version."""


def _classes_to_json(classes: np.ndarray | None):
    if classes is None:
        return None
    values = classes.tolist()
    try:
        json.dumps(values, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError("these class labels cannot be saved: only strings, integers, "
                         f"finite floats and booleans can (got dtype {classes.dtype})") from None
    return {"dtype": classes.dtype.str if classes.dtype.kind != "O" else "object",
            "values": values}


def _classes_from_json(d) -> np.ndarray | None:
    if d is None:
        return None
    if not isinstance(d, dict) or set(d) != {"dtype", "values"} or not isinstance(d["values"], list):
        raise FileFormatError("header field 'classes' is malformed")
    dtype = np.dtype(object) if d["dtype"] == "object" else np.dtype(d["dtype"])
    if dtype.kind not in "biufUO":
        raise FileFormatError(f"header field 'classes' has unsupported dtype {d['dtype']!r}")
    return np.array(d["values"], dtype=dtype)


def to_bytes(fitted: FitModel, *, optimizer_state: bool = True) -> bytes:
    """The file contents for ``fitted`` (see the module docstring)."""
    if not isinstance(fitted, FitModel):
        raise TypeError(f"expected a FitModel, got {type(fitted).__name__}")
    header, arrays = fit_model_fields(fitted, optimizer_state=optimizer_state)
    header["format"] = "archfit.FitModel"
    return pack(header, arrays)


def fit_model_fields(fitted: FitModel, *, optimizer_state: bool = True):
    """The header fields and named arrays that describe ``fitted``."""
    arrays: list[tuple[str, np.ndarray]] = [("parameters", fitted.parameters)]
    state = fitted._optimizer_state if optimizer_state else None
    if state is not None:
        arrays += [("m", state[0]), ("v", state[1])]
    scaling = fitted.standardization
    if scaling is not None:
        arrays += scaling.arrays()
    header = {
        "model": fitted.model.to_dict(),
        "hyperparameters": fitted.hyperparameters.to_dict(),
        "classes": _classes_to_json(fitted.classes),
        "target_ndim": fitted._target_ndim,
        "history": fitted.history,
        "training_data": fitted.training_data,
        "optimizer_state": None if state is None else {"step": state[2], "optimizer": state[3]},
        "standardization": None if scaling is None else [name for name, _ in scaling.arrays()],
    }
    if fitted.preprocessing is not None:
        header["preprocessing"] = fitted.preprocessing.to_dict()
    return header, arrays


def pack(header: dict[str, Any], arrays) -> bytes:
    """The container: magic, JSON header (with the payload's index, the format
    version and archfit's version added), the arrays' bytes, SHA-256."""
    payload_index, offset, parts = {}, 0, []
    for name, arr in arrays:
        little = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False)
        payload_index[name] = {"offset": offset, "nbytes": little.nbytes,
                               "dtype": little.dtype.str, "length": int(little.shape[0])}
        offset += little.nbytes
        parts.append(little.tobytes())
    from archfit import __version__
    header = dict(header, version=FORMAT_VERSION, payload=payload_index,
                  archfit_version=__version__)
    head = json.dumps(header, allow_nan=False, sort_keys=True).encode("utf-8")
    body = b"".join([MAGIC, struct.pack("<Q", len(head)), head] + parts)
    return body + hashlib.sha256(body).digest()


def from_bytes(data: bytes, source: str = "data") -> FitModel:
    """Rebuild a FitModel from :func:`to_bytes` output, checking everything."""
    header, payload = unpack(data, source, "archfit.FitModel", "an archfit fit-model file")
    return fit_model_of(header, payload, source)


def unpack(data: bytes, source: str, kind: str, what: str):
    """(header, payload) of a container of format `kind`, after checking the
    signature, the checksum, the header and the version."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise FileFormatError(f"{source} is not an archfit file (no archfit signature)")
    if len(data) < len(MAGIC) + 8 + _DIGEST:
        raise FileFormatError(f"{source} is truncated")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise FileFormatError(f"{source} is truncated or altered: its checksum does not match")
    (head_len,) = struct.unpack("<Q", body[len(MAGIC):len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if head_len > min(_MAX_HEADER, len(body) - start):
        raise FileFormatError(f"{source}: header length {head_len} exceeds the file")
    try:
        header = json.loads(body[start:start + head_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{source}: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != kind:
        found = header.get("format") if isinstance(header, dict) else None
        reader = _READERS.get(found) if isinstance(found, str) else None
        raise FileFormatError(f"{source}: not {what}" + (
            f" (it holds {found}: read it with {reader})" if reader else ""))
    version = header.get("version")
    if version not in READS:
        raise FileFormatError(f"{source}: format version {version!r} is not supported by this "
                              f"archfit (it reads versions {', '.join(map(str, READS))})")
    return header, body[start + head_len:]


def fit_model_of(header: dict[str, Any], payload: bytes, source: str) -> FitModel:
    """The FitModel described by a container's fields (fit_model_fields)."""
    try:
        return _rebuild(header, payload)
    except FileFormatError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{source}: invalid contents: {exc}") from None


def array(payload: bytes, index: dict, name: str, dtype: np.dtype, length: int) -> np.ndarray:
    entry = index.get(name)
    if not isinstance(entry, dict):
        raise FileFormatError(f"payload entry {name!r} is missing")
    offset, nbytes = entry.get("offset"), entry.get("nbytes")
    expected = np.dtype(dtype).newbyteorder("<")
    if entry.get("dtype") != expected.str or entry.get("length") != length:
        raise FileFormatError(f"payload entry {name!r} has dtype {entry.get('dtype')!r} and "
                              f"length {entry.get('length')!r}; the model needs "
                              f"{expected.str} x {length}")
    if (not isinstance(offset, int) or not isinstance(nbytes, int) or offset < 0
            or nbytes != length * expected.itemsize or offset + nbytes > len(payload)):
        raise FileFormatError(f"payload entry {name!r} lies outside the file")
    arr = np.frombuffer(payload, dtype=expected, count=length, offset=offset)
    return arr.astype(dtype)   # native byte order, a fresh writable copy


def _rebuild(header: dict[str, Any], payload: bytes) -> FitModel:
    model = Model.from_dict(header["model"])
    hp = Hyperparameters.from_dict(header["hyperparameters"])
    index = header["payload"]
    if not isinstance(index, dict):
        raise FileFormatError("header field 'payload' is malformed")
    P = model.n_parameters
    theta = array(payload, index, "parameters", model.dtype, P)
    state = header.get("optimizer_state")
    optimizer_state = None
    if state is not None:
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise FileFormatError("header field 'optimizer_state' is malformed")
        optimizer_state = (array(payload, index, "m", model.dtype, P),
                           array(payload, index, "v", model.dtype, P),
                           state["step"], str(state["optimizer"]))
    history = header["history"]
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise FileFormatError("header field 'history' is malformed")
    scaling = None
    names = header.get("standardization")
    if names is not None:
        if not isinstance(names, list) or not set(names) <= set(Standardization.__slots__):
            raise FileFormatError("header field 'standardization' is malformed")
        arch = model.architecture
        length = {"feature": arch.n_inputs, "target": arch.n_outputs}
        scaling = Standardization(**{name: array(payload, index, name, np.float64,
                                                 length[name.split("_")[0]])
                                     for name in names})
    preprocessing = header.get("preprocessing")
    if preprocessing is not None:
        preprocessing = Preprocessing.from_dict(preprocessing)
    # The constructor re-validates: finite parameters, classes matching the head.
    return FitModel(model, theta, hp, history, _classes_from_json(header["classes"]),
                    header["target_ndim"], optimizer_state, header.get("training_data"),
                    scaling, preprocessing)


def save(fitted: FitModel, path, *, optimizer_state: bool = True) -> Path:
    """Write ``fitted`` to ``path`` atomically; returns the path.

    ``optimizer_state=False`` leaves out the optimizer's moments (a file a third
    the size; continuing training from it starts the moments afresh).
    """
    return write_atomic(path, to_bytes(fitted, optimizer_state=optimizer_state))


def write_atomic(path, data: bytes) -> Path:
    """Write `data` to `path` so that a crash at any moment leaves either the
    old file or the new one: a temporary file in the same folder, flushed to
    disk, renamed over `path`, and the folder's entry flushed too."""
    path = Path(os.fspath(path))
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes the file private (0600); give it the mode any other
        # new file gets under the caller's umask
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_directory(directory)
    return path


def _umask() -> int:
    """The process's umask: from /proc where Linux shows it, else by setting it
    and setting it back (which another thread could notice)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync_directory(directory: Path) -> None:
    """Flush a folder's entries (the rename) to disk, where the system allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_format(path) -> str | None:
    """The kind of archfit file at ``path`` ("archfit.FitModel", "archfit.Ensemble",
    "archfit.Checkpoint"), read from its header alone; None when the header
    names none. Nothing is checked beyond the signature: the reader checks
    everything.

    Raises
    ------
    FileNotFoundError
    FileFormatError
        Not an archfit file.
    """
    path = Path(os.fspath(path))
    with open(path, "rb") as f:
        start = f.read(len(MAGIC) + 8)
        if len(start) < len(MAGIC) + 8 or start[:len(MAGIC)] != MAGIC:
            raise FileFormatError(f"{path} is not an archfit file (no archfit signature)")
        (head_len,) = struct.unpack("<Q", start[len(MAGIC):])
        head = f.read(min(head_len, _MAX_HEADER))
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None     # truncated or altered: the reader says which
    found = header.get("format") if isinstance(header, dict) else None
    return found if isinstance(found, str) else None


def load(path) -> FitModel:
    """Read a fit model saved by :meth:`FitModel.save`; never executes code.

    Raises
    ------
    FileNotFoundError
    FileFormatError
        Not an archfit file, truncated, altered, or an unsupported version.
    """
    path = Path(os.fspath(path))
    with open(path, "rb") as f:
        data = f.read()
    return from_bytes(data, source=str(path))
