import json

import numpy as np
import pytest

import archfit as af


def test_defaults_and_frozen():
    hp = af.Hyperparameters()
    assert hp.optimizer == "adam" and hp.learning_rate == 1e-3 and hp.batch_size == 128
    with pytest.raises(Exception):
        hp.learning_rate = 0.1


def test_replace_validates_again():
    hp = af.Hyperparameters()
    assert hp.replace(epochs=3).epochs == 3
    assert hp.epochs == 50
    with pytest.raises(ValueError, match="learning_rate"):
        hp.replace(learning_rate=-1)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        hp.replace(learning_rat=0.1)


def test_json_round_trip():
    hp = af.Hyperparameters(optimizer="momentum", nesterov=True, schedule="cosine",
                            n_threads=2, dropout=0.2, early_stopping=True)
    again = af.Hyperparameters.from_json(json.dumps(json.loads(hp.to_json())))
    assert again == hp
    assert af.Hyperparameters.from_dict(hp.to_dict()) == hp
    with pytest.raises(ValueError, match="unknown"):
        af.Hyperparameters.from_dict({"colour": "red"})


@pytest.mark.parametrize("field,value", [
    ("optimizer", "rmsprop"), ("learning_rate", 0), ("learning_rate", float("nan")),
    ("batch_size", 0), ("batch_size", -5), ("batch_size", 2.5), ("epochs", 0),
    ("l2", -1e-3), ("dropout", 1.0), ("dropout", -0.1), ("momentum", 1.0), ("beta1", 1.0),
    ("beta2", -0.1), ("epsilon", 0), ("schedule", "linear"), ("gamma", 1.0),
    ("validation_fraction", 0.0), ("validation_fraction", 1.0), ("patience", 0),
    ("seed", -1), ("n_threads", 0), ("shuffle", "yes"), ("tolerance", -1),
    ("min_learning_rate", 1.0), ("step_size", 0), ("patience", -np.inf), ("patience", 2.5),
    ("power_t", -0.5), ("max_evaluations", 0), ("gradient_tolerance", -1.0),
])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        af.Hyperparameters(**{field: value})


def test_numpy_scalars_and_an_unlimited_patience_are_accepted():
    # values from np.arange grids and scikit-learn's n_iter_no_change=np.inf
    hp = af.Hyperparameters(l2=np.int64(0), batch_size=np.int64(32), learning_rate=np.float32(0.01),
                            patience=np.inf, power_t=np.float64(0.25), max_evaluations=np.int32(50))
    assert hp.l2 == 0.0 and hp.batch_size == 32 and hp.patience is None
    assert af.Hyperparameters(patience=float("inf")).patience is None
    assert af.Hyperparameters.from_json(hp.to_json()) == hp      # None travels as null


def test_lbfgs_refuses_settings_it_cannot_honour():
    with pytest.raises(ValueError, match="dropout"):
        af.Hyperparameters(optimizer="lbfgs", dropout=0.5)
    with pytest.raises(ValueError, match="early_stopping"):
        af.Hyperparameters(optimizer="lbfgs", early_stopping=True)
