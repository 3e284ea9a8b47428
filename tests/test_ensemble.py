"""Ensemble: averaged predictions, scores, losses, one safe file, ONNX."""
import numpy as np
import pytest

import archfit as af
from archfit.persistence import FileFormatError


def _data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    y = (X[:, :3] @ rng.normal(size=(3, 3)) + 0.7 * rng.normal(size=(n, 3))).argmax(axis=1)
    return X, np.array(["a", "b", "c"])[y]


SOFTMAX = af.Model(af.Architecture(8, [af.Dense(16, activation="relu"), af.Dense(3)],
                                   output="softmax"))


@pytest.fixture(scope="module")
def members():
    X, y = _data()
    return af.fit_many(SOFTMAX, X, y, [af.Hyperparameters(epochs=8, batch_size=32, seed=k,
                                                          learning_rate=5e-3)
                                       for k in range(4)])


def test_averages_the_members(members):
    X, y = _data(200, seed=1)
    ens = af.Ensemble(members)
    mean = np.mean([m.predict_proba(X).astype(np.float64) for m in members], axis=0)
    assert np.allclose(ens.predict_proba(X), mean, rtol=1e-6)
    assert np.array_equal(ens.predict(X), np.array(["a", "b", "c"])[mean.argmax(axis=1)])
    assert ens.score(X, y) == pytest.approx(np.mean(ens.predict(X) == y))
    logp = np.log(mean[np.arange(len(y)), np.searchsorted(ens.classes, y)])
    assert ens.loss(X, y) == pytest.approx(-logp.mean(), rel=1e-9)
    # the deep-ensemble effect: the mean's log-loss is below the members' average
    assert ens.loss(X, y) < np.mean([m.loss(X, y) for m in members])
    assert len(ens) == 4 and ens[1] is members[1] and list(ens) == members


@pytest.mark.parametrize("output, loss", [("linear", "squared_error"), ("linear", "huber"),
                                          ("sigmoid", None), ("exponential", None)])
def test_one_member_is_that_member(output, loss):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5))
    if output == "sigmoid":
        Y = (X[:, :2] > 0).astype(float)
    elif output == "exponential":
        Y = rng.poisson(np.exp(0.3 * X[:, :2]))
    else:
        Y = X[:, :2] @ [[1.0, 0.5], [-0.3, 2.0]]
    model = af.Model(af.Architecture(5, [af.Dense(8, activation="tanh"), af.Dense(2)],
                                     output=output), dtype="float64", loss=loss)
    member = af.fit(model, X, Y, af.Hyperparameters(epochs=5, batch_size=32))
    ens = af.Ensemble([member])
    assert np.allclose(ens.predict(X), member.predict(X))
    assert ens.score(X, Y) == pytest.approx(member.score(X, Y))
    assert ens.loss(X, Y) == pytest.approx(member.loss(X, Y), rel=1e-6)


def test_mixed_members_are_refused(members):
    X, y = _data()
    other = af.fit(af.Model(af.Architecture(8, [af.Dense(4), af.Dense(3)], output="softmax")),
                   X, y, af.Hyperparameters(epochs=1))
    mixed = af.Ensemble([members[0], other])        # architectures may differ, heads not
    assert np.allclose(mixed.predict_proba(X), (members[0].predict_proba(X)
                                                + other.predict_proba(X)) / 2, atol=1e-6)
    assert "2 architectures" in repr(mixed)
    other = af.fit(af.Model(af.Architecture(8, [af.Dense(4), af.Dense(3)], output="softmax"),
                            "float64"), X, y, af.Hyperparameters(epochs=1))
    with pytest.raises(ValueError, match=r"members\[1\] is a fit of a model with another "
                                         r"head, loss or dtype"):
        af.Ensemble([members[0], other])
    with pytest.raises(ValueError, match="other classes"):
        af.Ensemble([members[0], af.fit(SOFTMAX, X, np.where(y == "c", "z", y),
                                        af.Hyperparameters(epochs=1))])
    with pytest.raises(ValueError, match="at least one"):
        af.Ensemble([])
    with pytest.raises(TypeError, match="list of FitModels"):
        af.Ensemble(members[0])
    with pytest.raises(TypeError, match=r"members\[1\]"):
        af.Ensemble([members[0], "model"])
    with pytest.raises(ValueError):
        af.Ensemble(members).predict(np.zeros((3, 7)))


def test_save_load_and_a_damaged_file(members, tmp_path):
    X, _ = _data(50, seed=3)
    ens = af.Ensemble(members)
    path = ens.save(tmp_path / "e.archfit")
    back = af.Ensemble.load(path)
    assert np.array_equal(back.predict_proba(X), ens.predict_proba(X))
    assert all(np.array_equal(a.parameters, b.parameters) for a, b in zip(back, ens))
    assert back[0].history == members[0].history
    with pytest.raises(FileFormatError, match="read it with archfit.Ensemble.load"):
        af.load(path)
    with pytest.raises(FileFormatError, match="read it with archfit.load"):
        af.Ensemble.load(members[0].save(tmp_path / "one.archfit"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    bad = tmp_path / "bad.archfit"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="checksum"):
        af.Ensemble.load(bad)
    import pickle
    assert np.array_equal(pickle.loads(pickle.dumps(ens)).predict_proba(X), ens.predict_proba(X))


def test_onnx_matches(members, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, _ = _data(64, seed=4)
    ens = af.Ensemble(members)
    ens.to_onnx(tmp_path / "e.onnx")
    session = ort.InferenceSession(str(tmp_path / "e.onnx"))
    proba, label = session.run(None, {"X": X.astype(np.float32)})
    assert np.allclose(proba, ens.predict_proba(X), atol=1e-5)
    assert np.array_equal(label, ens.predict(X))
