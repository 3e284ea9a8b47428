import numpy as np
import pytest

import archfit as af


@pytest.fixture
def model(dtype):
    arch = af.Architecture(4, [af.Dense(8, "relu"), af.Dense(6, "tanh"), af.Dense(3)], "softmax")
    return af.Model(arch, dtype=dtype)


def test_init_shape_dtype_and_determinism(model, dtype):
    theta = model.init(seed=0)
    assert theta.dtype == np.dtype(dtype) and theta.shape == (model.n_parameters,)
    assert theta.flags.c_contiguous
    assert np.array_equal(theta, model.init(seed=0))
    assert not np.array_equal(theta, model.init(seed=1))
    params = model.unflatten(theta)
    assert not params["dense0.bias"].any()


def test_init_scales_follow_activation():
    arch = af.Architecture(400, [af.Dense(300, "relu"), af.Dense(300, "tanh"), af.Dense(2)], "softmax")
    params = af.Model(arch, "float64").unflatten(af.Model(arch, "float64").init(0))
    assert params["dense0.weight"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)   # He
    assert params["dense1.weight"].std() == pytest.approx(np.sqrt(2 / 600), rel=0.02)   # Glorot


def test_float32_and_float64_init_agree():
    arch = af.Architecture(4, [af.Dense(3)], "linear")
    t32 = af.Model(arch, "float32").init(5)
    t64 = af.Model(arch, "float64").init(5)
    np.testing.assert_array_equal(t32, t64.astype(np.float32))


def test_unflatten_returns_views(model):
    theta = model.init(0)
    params = model.unflatten(theta)
    for name, view in params.items():
        assert np.shares_memory(view, theta), name
    params["dense1.bias"][:] = 7
    entry = model.architecture.layout[3]
    assert (theta[entry.start:entry.stop] == 7).all()


def test_flatten_inverts_unflatten(model):
    theta = model.init(3)
    assert np.array_equal(model.flatten(model.unflatten(theta)), theta)
    with pytest.raises(ValueError, match="missing"):
        model.flatten({})


def test_predict_softmax_rows_sum_to_one(model, dtype):
    X = np.random.default_rng(0).normal(size=(5, 4))
    P = model.predict(model.init(0), X)
    assert P.shape == (5, 3) and P.dtype == np.dtype(dtype)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)


def test_loss_implied_by_head():
    lin = af.Architecture(2, [af.Dense(1)], "linear")
    sig = af.Architecture(2, [af.Dense(3)], "sigmoid")
    soft = af.Architecture(2, [af.Dense(3)], "softmax")
    assert af.Model(lin).loss == "squared_error"
    assert af.Model(lin, loss="huber").loss == "huber"
    assert af.Model(sig).loss == "binary_cross_entropy"
    assert af.Model(soft).loss == "cross_entropy"
    with pytest.raises(ValueError, match="does not fit"):
        af.Model(soft, loss="huber")


def test_model_identity_and_dict_round_trip():
    arch = af.Architecture(2, [af.Dense(1)], "linear")
    a = af.Model(arch, "float64", loss="huber", huber_delta=2.0)
    b = af.Model.from_dict(a.to_dict())
    assert a == b and hash(a) == hash(b)
    assert a != af.Model(arch, "float32", loss="huber", huber_delta=2.0)


def test_invalid_model_arguments():
    arch = af.Architecture(2, [af.Dense(1)], "linear")
    with pytest.raises(ValueError, match="dtype"):
        af.Model(arch, dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        af.Model(arch, dtype="banana")
    with pytest.raises(TypeError, match="Architecture"):
        af.Model({"n_inputs": 2})
    with pytest.raises(ValueError, match="huber_delta"):
        af.Model(arch, loss="huber", huber_delta=0)


def test_loss_and_grad_of_softmax_takes_class_indices(model):
    X = np.zeros((2, 4))
    with pytest.raises(ValueError, match="not among the classes"):
        model.loss_and_grad(model.init(0), X, [0, 5])
