"""Files: exact round trips, provenance, every corruption case, atomic writes, pickling."""
import json
import pickle
import struct

import numpy as np
import pytest

import archfit as af
from archfit import persistence


@pytest.fixture(scope="module", params=["float32", "float64"])
def fitted(request):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.array(["ant", "bee", "cat"])[np.arange(60) % 3]
    arch = af.Architecture(4, [af.Dense(5, "gelu"), af.Dense(3)], "softmax")
    return af.fit(af.Model(arch, request.param), X, y,
                  af.Hyperparameters(epochs=3, batch_size=16, schedule="step")), X


def test_round_trip_is_exact(fitted, tmp_path):
    fitted, X = fitted
    path = fitted.save(tmp_path / "model.archfit")
    loaded = af.load(path)
    assert loaded.parameters.tobytes() == fitted.parameters.tobytes()
    assert loaded.parameters.dtype == fitted.parameters.dtype
    assert not loaded.parameters.flags.writeable
    assert loaded.model == fitted.model and loaded.hyperparameters == fitted.hyperparameters
    assert loaded.history == fitted.history
    assert loaded.classes.tolist() == ["ant", "bee", "cat"]
    assert np.array_equal(loaded.predict(X), fitted.predict(X))
    assert np.array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_provenance_is_kept(fitted, tmp_path):
    fitted, X = fitted
    loaded = af.load(fitted.save(tmp_path / "m"))
    data = loaded.training_data
    assert data["n_samples"] == 60 and data["n_features"] == 4
    assert data["dtype"] == fitted.model.dtype.name and data["hash"].startswith("xxh64x2:")
    assert data == fitted.training_data


def test_fingerprint_tracks_the_data():
    arch = af.Architecture(2, [af.Dense(1)], "linear")
    X = np.arange(20.0).reshape(10, 2)
    a = af.fit(af.Model(arch), X, np.ones(10), af.Hyperparameters(epochs=1))
    b = af.fit(af.Model(arch), X, np.ones(10), af.Hyperparameters(epochs=1))
    c = af.fit(af.Model(arch), X, np.zeros(10), af.Hyperparameters(epochs=1))
    assert a.training_data == b.training_data
    assert a.training_data["hash"] != c.training_data["hash"]


def test_continuing_from_a_loaded_file_equals_continuing_in_memory(fitted, tmp_path):
    fitted, X = fitted
    y = fitted.predict(X)
    hp = fitted.hyperparameters.replace(epochs=2)
    loaded = af.load(fitted.save(tmp_path / "m"))
    a = af.fit(fitted.model, X, y, hp, init=fitted)
    b = af.fit(loaded.model, X, y, hp, init=loaded)
    assert a.parameters.tobytes() == b.parameters.tobytes()


def test_without_optimizer_state_is_smaller(fitted, tmp_path):
    fitted, _ = fitted
    full = fitted.save(tmp_path / "full")
    small = fitted.save(tmp_path / "small", optimizer_state=False)
    assert small.stat().st_size < full.stat().st_size
    assert af.load(small).parameters.tobytes() == fitted.parameters.tobytes()


@pytest.mark.parametrize("output,y", [
    ("linear", np.linspace(0, 1, 12)),
    ("sigmoid", (np.arange(24).reshape(12, 2) % 3 == 0).astype(int)),
    ("softmax", np.arange(12) % 2 == 0),          # bool labels
    ("softmax", np.arange(12) % 2 * 2.0),         # float labels (whole numbers)
])
def test_every_head_and_label_type_round_trips(tmp_path, output, y):
    X = np.random.default_rng(1).normal(size=(12, 3))
    k = 2 if output != "linear" else 1
    fitted = af.fit(af.Model(af.Architecture(3, [af.Dense(k)], output)), X, y,
                    af.Hyperparameters(epochs=1))
    loaded = af.load(fitted.save(tmp_path / "m"))
    assert np.array_equal(loaded.predict(X), fitted.predict(X))
    assert loaded.predict(X).shape == fitted.predict(X).shape
    if fitted.classes is not None:
        assert loaded.classes.dtype == fitted.classes.dtype


def test_lbfgs_history_with_null_learning_rate_round_trips(tmp_path):
    X = np.random.default_rng(2).normal(size=(20, 2))
    with pytest.warns(af.ConvergenceWarning):
        fitted = af.fit(af.Model(af.Architecture(2, [af.Dense(1)], "linear")), X, X[:, 0],
                        af.Hyperparameters(optimizer="lbfgs", epochs=5))
    assert af.load(fitted.save(tmp_path / "m")).history == fitted.history


# ---- corruption ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blob():
    X = np.random.default_rng(3).normal(size=(10, 2))
    fitted = af.fit(af.Model(af.Architecture(2, [af.Dense(3, "tanh"), af.Dense(2)], "softmax")),
                    X, np.arange(10) % 2, af.Hyperparameters(epochs=1))
    return fitted.to_bytes()


def test_truncated_at_every_offset(blob):
    for cut in range(len(blob)):
        with pytest.raises(af.FileFormatError):
            persistence.from_bytes(blob[:cut])


def test_any_flipped_byte_is_detected(blob):
    rng = np.random.default_rng(0)
    positions = rng.choice(len(blob), size=min(400, len(blob)), replace=False)
    for pos in positions:
        altered = bytearray(blob)
        altered[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(af.FileFormatError):
            persistence.from_bytes(bytes(altered))


def _reseal(body: bytes) -> bytes:
    import hashlib
    return body + hashlib.sha256(body).digest()


def _header(blob):
    (n,) = struct.unpack("<Q", blob[8:16])
    return json.loads(blob[16:16 + n]), blob[16 + n:-32]


def _rebuild(header, payload):
    head = json.dumps(header).encode()
    return _reseal(persistence.MAGIC + struct.pack("<Q", len(head)) + head + payload)


def test_wrong_version_is_refused(blob):
    header, payload = _header(blob)
    header["version"] = 99
    with pytest.raises(af.FileFormatError, match="version 99"):
        persistence.from_bytes(_rebuild(header, payload))


@pytest.mark.parametrize("edit,match", [
    (lambda h: h.update(format="something-else"), "not an archfit"),
    (lambda h: h["payload"]["parameters"].update(length=3), "length"),
    (lambda h: h["payload"]["parameters"].update(offset=10**9), "outside"),
    (lambda h: h["payload"].pop("parameters"), "missing"),
    (lambda h: h["model"]["architecture"]["layers"][0].update(units=-1), "units"),
    (lambda h: h["hyperparameters"].update(learning_rate=-1), "learning_rate"),
    (lambda h: h.update(classes={"dtype": "<i8", "values": [0, 1, 2]}), "classes"),
    (lambda h: h.update(history="long"), "history"),
])
def test_consistent_checksum_but_invalid_contents(blob, edit, match):
    header, payload = _header(blob)
    edit(header)
    with pytest.raises(af.FileFormatError, match=match):
        persistence.from_bytes(_rebuild(header, payload))


def test_non_finite_parameters_in_a_file_are_refused(blob):
    header, payload = _header(blob)
    arr = bytearray(payload)
    arr[0:8] = struct.pack("<d", float("nan"))
    with pytest.raises(af.FileFormatError, match="NaN"):
        persistence.from_bytes(_rebuild(header, bytes(arr)))


def test_non_archfit_files(tmp_path):
    for name, content in [("empty", b""), ("text", b"hello world" * 10),
                          ("pickle", pickle.dumps({"a": 1})), ("npz", b"PK\x03\x04" + bytes(50))]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(af.FileFormatError, match="not an archfit file"):
            af.load(path)
    with pytest.raises(FileNotFoundError):
        af.load(tmp_path / "missing")


def test_loading_never_unpickles(blob, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    assert persistence.from_bytes(blob).parameters.size > 0


# ---- atomic writes, pickling -----------------------------------------------------------------
def test_failed_save_leaves_the_old_file(fitted, tmp_path, monkeypatch):
    fitted, _ = fitted
    path = fitted.save(tmp_path / "m")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(persistence.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(path, optimizer_state=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]   # no temporary file left


def test_unsaveable_classes_raise_before_writing(tmp_path):
    model = af.Model(af.Architecture(1, [af.Dense(2)], "softmax"))
    fitted = af.FitModel(model, model.init(0), af.Hyperparameters(),
                         classes=np.array([1 + 2j, 3 + 0j], dtype=object))
    with pytest.raises(ValueError, match="cannot be saved"):
        fitted.save(tmp_path / "m")
    assert not list(tmp_path.iterdir())


def test_pickle_delegates_to_the_file_format(fitted):
    fitted, X = fitted
    again = pickle.loads(pickle.dumps(fitted))
    assert again.parameters.tobytes() == fitted.parameters.tobytes()
    assert not again.parameters.flags.writeable
    assert np.array_equal(again.predict(X), fitted.predict(X))
    assert b"ARCHFIT" in pickle.dumps(fitted)
