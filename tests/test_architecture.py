import json

import numpy as np
import pytest

import archfit as af


def arch(**kw):
    d = dict(n_inputs=64, layers=[af.Dense(128, activation="relu"), af.Dense(10)], output="softmax")
    d.update(kw)
    return af.Architecture(**d)


def test_counts_and_layout():
    a = arch()
    assert a.n_parameters == 64 * 128 + 128 + 128 * 10 + 10
    names = [e.name for e in a.layout]
    assert names == ["dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias"]
    assert a.layout[0] == af.LayoutEntry("dense0.weight", (64, 128), 0, 8192)
    assert a.layout[1] == af.LayoutEntry("dense0.bias", (128,), 8192, 8320)
    # contiguous, in order, covering [0, n_parameters)
    stops = [0] + [e.stop for e in a.layout]
    assert all(e.start == s for e, s in zip(a.layout, stops))
    assert a.layout[-1].stop == a.n_parameters
    assert a.sizes == (64, 128, 10) and a.n_outputs == 10


def test_flops_per_sample():
    a = af.Architecture(3, [af.Dense(2)], "linear")
    assert a.flops_per_sample == 2 * 3 * 2 + 2


def test_summary_lists_layers():
    text = arch().summary()
    assert "dense0" in text and "64 -> 128" in text and "relu" in text
    assert "9,610 parameters" in text


def test_dict_round_trip_is_exact_and_json_able():
    a = af.Architecture(5, [af.Dense(7, "gelu"), af.Dense(3, "tanh"), af.Dense(2)], "sigmoid")
    d = json.loads(json.dumps(a.to_dict()))
    b = af.Architecture.from_dict(d)
    assert a == b and hash(a) == hash(b) and b.to_dict() == a.to_dict()


def test_equality_and_hash():
    assert arch() == arch()
    assert arch() != arch(output="linear")
    assert len({arch(), arch(), arch(n_inputs=3)}) == 2


def test_architecture_holds_no_values():
    a = arch()
    assert not any(isinstance(v, np.ndarray) for v in vars(type(a)).values())
    with pytest.raises(AttributeError):
        a.weights = 1


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_inputs=0), "n_inputs"),
    (dict(n_inputs=2.5), "n_inputs"),
    (dict(n_inputs=True), "n_inputs"),
    (dict(layers=[]), "at least one"),
    (dict(output="softmaxx"), "output"),
    (dict(layers=[af.Dense(10, activation="relu")]), "identity"),
    (dict(layers=[af.Dense(1)]), "at least 2"),
    (dict(layers=[af.Dense(65)] * 65), "at most"),
])
def test_invalid_architectures(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        arch(**kwargs)


def test_invalid_layers():
    with pytest.raises(TypeError, match="layers\\[0\\]"):
        af.Architecture(3, [(4, "relu"), af.Dense(2)], "linear")
    with pytest.raises(TypeError, match="sequence"):
        af.Architecture(3, af.Dense(2), "linear")
    with pytest.raises(ValueError, match="activation"):
        af.Dense(3, activation="swish")
    with pytest.raises(ValueError, match="Dense.units"):
        af.Dense(0)


@pytest.mark.parametrize("bad", [
    {"n_inputs": 3, "layers": [{"units": 2}]},
    {"n_inputs": 3, "layers": [{"units": 2, "colour": "red"}], "output": "linear"},
    {"n_inputs": 3, "layers": "dense", "output": "linear"},
    {"n_inputs": 3, "layers": [{"units": 2}], "output": "linear", "extra": 1},
])
def test_from_dict_rejects_malformed(bad):
    with pytest.raises(ValueError):
        af.Architecture.from_dict(bad)
