import json

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
    ("min_learning_rate", 1.0), ("step_size", 0),
])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        af.Hyperparameters(**{field: value})


def test_lbfgs_refuses_settings_it_cannot_honour():
    with pytest.raises(ValueError, match="dropout"):
        af.Hyperparameters(optimizer="lbfgs", dropout=0.5)
    with pytest.raises(ValueError, match="early_stopping"):
        af.Hyperparameters(optimizer="lbfgs", early_stopping=True)
