"""What a fit model learns about its table before it trains: the feature extraction.

A :class:`Preprocessing` turns a table's columns (:mod:`archfit.tables`) into the
numbers a network reads - the numeric inputs, then one code per categorical
column, as :class:`~archfit.Inputs` describes them:

- a numeric column is transformed (``numeric=``): ``"robust"`` (centred on
  its median, divided by its interquartile range - half its range when that
  is zero - then smoothly clipped, z / sqrt(1 + (z/3)^2), as RealMLP does),
  ``"standard"`` (mean and standard deviation), ``"quantile"`` (its quantile
  mapped to the standard normal's) or ``"none"``;
- a missing number is replaced by the column's centre (mean or median: 0
  after the transform) and, when the training rows had missing values in that
  column, a 0/1 *indicator* input says it was missing;
- a categorical column's values get codes 0 .. K-1 in sorted order (its
  *vocabulary*); a missing value, a value never seen in training, and a value
  rarer than ``min_frequency`` (share of the training weight) get code -1,
  which has an embedding of its own;
- a date becomes numeric parts: the year (with its fraction), the month, the
  weekday, and the hour when the column has times.

Every statistic is found on the training rows counted by their sample
weights: a row of weight 2 and the same row twice give the same
preprocessing. The *schema* - the columns, their kinds, vocabularies and
which have indicators - fixes the network's inputs; :meth:`Preprocessing.refit`
keeps it and finds the statistics again on other rows (each fit's training
rows, in a k-fold estimate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from archfit._validation import check_float
from archfit.binning import weighted_quantiles
from archfit.tables import Column, columns_of, is_table, table_columns, _column

NUMERIC_TRANSFORMS = ("robust", "standard", "quantile", "none")
# Quantile levels a "quantile" transform keeps per column, at most.
QUANTILE_KNOTS = 256
# The bound of the smooth clip after robust scaling.
CLIP = 3.0
DATE_PARTS = ("year", "month", "weekday", "hour")
_TAGS = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class NumericInput:
    """One numeric input: column `source` (a date's `part` of it) transformed.

    ``z = (x - center) / scale`` (smoothly clipped when `clip`), or with
    `knots` the normal score interpolated at x; a missing x is `fill` (the
    centre, or the median). `indicator`: a 0/1 input follows that says x was
    missing.
    """

    source: str
    part: str | None
    center: float
    scale: float
    fill: float
    clip: bool = False
    knots: tuple | None = None        # (x quantiles, normal scores)
    indicator: bool = False

    @property
    def name(self) -> str:
        return self.source if self.part is None else f"{self.source}.{self.part}"


@dataclass(frozen=True)
class CategoricalInput:
    """One categorical input: column `source`'s values in `vocabulary` get
    their positions as codes, but those in `unseen` (absent from, or rare in,
    the training rows) code -1 like any other value."""

    source: str
    vocabulary: tuple
    unseen: tuple = ()

    @property
    def name(self) -> str:
        return self.source


class Preprocessing:
    """The fitted preprocessing of a table: column schema and statistics.

    Made by :meth:`fit` (or :meth:`refit`); immutable. :attr:`inputs` is the
    :class:`~archfit.Inputs` of the network that reads :meth:`transform`'s
    output. Saved with the fit model, shown by ``archfit info``.
    """

    __slots__ = ("_columns", "_numeric", "_categorical", "_settings")

    def __init__(self, columns, numeric, categorical, settings):
        self._columns = tuple((str(n), str(k)) for n, k in columns)
        self._numeric = tuple(numeric)
        self._categorical = tuple(categorical)
        self._settings = dict(settings)

    # ---- fitting ------------------------------------------------------------------------
    @classmethod
    def fit(cls, X, *, sample_weight=None, categorical=(), numeric: str = "robust",
            min_frequency: float = 0.0) -> "Preprocessing":
        """Find the schema and statistics of table `X` (a pandas DataFrame,
        pyarrow Table, dict of columns or 2-D array).

        Parameters
        ----------
        X : table
        sample_weight : array-like (n_samples,), optional
            Each row counts by its weight; rows of weight 0 do not count.
        categorical : sequence of str
            Columns to read as categories whatever their cells (integer
            codes, say); text, pandas categories and booleans always are.
        numeric : {"robust", "standard", "quantile", "none"}
        min_frequency : float in [0, 1)
            A category with at most this share of the training weight codes
            -1 (rare values pooled with unseen ones); 0 keeps every value seen.
        """
        if numeric not in NUMERIC_TRANSFORMS:
            raise ValueError(f"numeric must be one of {NUMERIC_TRANSFORMS}, got {numeric!r}")
        min_frequency = check_float(min_frequency, "min_frequency", low=0.0, high=1.0,
                                    high_open=True)
        if isinstance(categorical, str) or not all(isinstance(c, str) for c in categorical):
            raise TypeError("categorical must be a sequence of column names")
        columns = columns_of(X, "X", categorical)
        weights = _weights(sample_weight, len(columns[0].values))
        settings = {"numeric": numeric, "min_frequency": min_frequency,
                    "categorical": sorted(categorical), "named": _named(X)}
        numeric_inputs, categorical_inputs = [], []
        for column in columns:
            if column.kind == "categorical":
                categorical_inputs.append(_vocabulary(column, weights, min_frequency))
            else:
                numeric_inputs += _numeric_inputs(column, weights, numeric, schema=None)
        return cls([(c.name, c.kind) for c in columns], numeric_inputs, categorical_inputs,
                   settings)

    def refit(self, X, sample_weight=None) -> "Preprocessing":
        """The same schema (columns, kinds, vocabularies, indicators) with its
        statistics found on `X`'s rows: categories rare or absent there code
        -1."""
        columns = self._read(X, "X")
        weights = _weights(sample_weight, len(columns[0].values))
        by_source = {c.name: c for c in columns}
        numeric = []
        for source, group in _groups(self._numeric):
            numeric += _numeric_inputs(by_source[source], weights, self._settings["numeric"],
                                       schema=group)
        categorical = [_vocabulary(by_source[c.source], weights,
                                   self._settings["min_frequency"], c.vocabulary)
                       for c in self._categorical]
        return Preprocessing(self._columns, numeric, categorical, self._settings)

    # ---- what it is ---------------------------------------------------------------------
    @property
    def inputs(self):
        """The :class:`~archfit.Inputs` of the network that reads the output."""
        from archfit.architecture import Inputs
        return Inputs.of(len(self._numeric) + self.n_indicators,
                         [len(c.vocabulary) for c in self._categorical])

    @property
    def feature_names(self) -> list[str] | None:
        """The names of the table's columns it reads, in order; None when it
        was fit on columns without names (an array's), which it then reads by
        position."""
        return [n for n, _ in self._columns] if self._settings.get("named", True) else None

    @property
    def kinds(self) -> dict[str, str]:
        """Each column's kind: "numeric", "categorical" or "date"."""
        return dict(self._columns)

    @property
    def n_indicators(self) -> int:
        """Missing-value indicator inputs (one per numeric column that had
        missing values in the training rows)."""
        return sum(1 for n in self._numeric if n.indicator)

    @property
    def input_names(self) -> list[str]:
        """The network's inputs: numeric inputs, missing-value indicators
        ("<column>:missing"), then the categorical columns."""
        return ([n.name for n in self._numeric]
                + [f"{n.source}:missing" for n in self._numeric if n.indicator]
                + [c.name for c in self._categorical])

    @property
    def numeric(self) -> tuple:
        """The numeric inputs (:class:`NumericInput`), in order."""
        return self._numeric

    @property
    def categorical(self) -> tuple:
        """The categorical inputs (:class:`CategoricalInput`), in order."""
        return self._categorical

    @property
    def settings(self) -> dict:
        """What :meth:`fit` was asked for: ``numeric``, ``min_frequency``,
        ``categorical``."""
        return dict(self._settings)

    # ---- applying it --------------------------------------------------------------------
    def transform(self, X, name: str = "X") -> np.ndarray:
        """The network's inputs for table `X` (float64, C-contiguous):
        columns matched by name (an array's taken in the fit's order)."""
        columns = {c.name: c for c in self._read(X, name)}
        n = len(next(iter(columns.values())).values)
        out = np.empty((n, len(self._numeric) + self.n_indicators + len(self._categorical)))
        at = len(self._numeric)
        for j, spec in enumerate(self._numeric):
            x = _part(columns[spec.source], spec.part)
            missing = np.isnan(x)
            out[:, j] = _transformed(np.where(missing, spec.fill, x), spec)
            if spec.indicator:
                out[:, at] = missing
                at += 1
        for spec in self._categorical:
            out[:, at] = _codes(columns[spec.source].values, spec)
            at += 1
        return out

    def _read(self, X, name) -> list[Column]:
        """X's columns this preprocessing reads, each read as its kind: a
        table's by name (when both have names), anything else's by position."""
        if is_table(X) and self.feature_names is not None and _named(X):
            raw = dict(table_columns(X))
            missing = [n for n, _ in self._columns if n not in raw]
            if missing:
                shown = ", ".join(repr(c) for c in missing[:10])
                raise ValueError(f"{name} lacks column(s) the model was fit on: {shown}")
            pairs = [(n, raw[n]) for n, _ in self._columns]
        elif is_table(X):
            values = [v for _, v in table_columns(X)]
            if len(values) != len(self._columns):
                raise ValueError(f"{name} has {len(values)} columns, the model was fit on "
                                 f"{len(self._columns)}")
            pairs = [(n, v) for (n, _), v in zip(self._columns, values)]
        else:
            arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
            if arr.ndim != 2:
                raise ValueError(f"{name} must be a table or a 2-dimensional array, got shape "
                                 f"{arr.shape}")
            if arr.shape[1] != len(self._columns):
                raise ValueError(f"{name} has {arr.shape[1]} columns, the model was fit on "
                                 f"{len(self._columns)}")
            pairs = [(n, arr[:, j]) for j, (n, _) in enumerate(self._columns)]
        if not len(pairs[0][1]):
            raise ValueError(f"{name} is empty: it has 0 samples")
        out = []
        for (label, values), (_, kind) in zip(pairs, self._columns):
            column = _column(label, values, name, kind == "categorical")
            if column.kind != kind:
                column = _as_kind(column, kind, name)
            out.append(column)
        return out

    # ---- identity -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready description (the file format's)."""
        return {
            "columns": [list(c) for c in self._columns],
            "settings": self.settings,
            "numeric": [{"source": n.source, "part": n.part, "center": n.center,
                         "scale": n.scale, "fill": n.fill, "clip": n.clip,
                         "indicator": n.indicator,
                         "knots": None if n.knots is None else [list(k) for k in n.knots]}
                        for n in self._numeric],
            "categorical": [{"source": c.source,
                             "vocabulary": [[_TAGS[type(v)], v] for v in c.vocabulary],
                             "unseen": list(c.unseen)} for c in self._categorical],
        }

    @classmethod
    def from_dict(cls, d) -> "Preprocessing":
        """Inverse of :meth:`to_dict`; a ValueError names what is malformed."""
        try:
            columns = [(str(n), str(k)) for n, k in d["columns"]]
            numeric = [NumericInput(str(n["source"]), n["part"], float(n["center"]),
                                    float(n["scale"]), float(n["fill"]), bool(n["clip"]),
                                    None if n["knots"] is None else
                                    tuple(tuple(float(v) for v in k) for k in n["knots"]),
                                    bool(n["indicator"])) for n in d["numeric"]]
            types = {t: k for k, t in _TAGS.items()}
            categorical = [CategoricalInput(str(c["source"]),
                                            tuple(types[t](v) for t, v in c["vocabulary"]),
                                            tuple(int(u) for u in c["unseen"]))
                           for c in d["categorical"]]
            settings = dict(d["settings"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed preprocessing ({error!r})") from None
        kinds = dict(columns)
        for spec in numeric:
            if kinds.get(spec.source) not in ("numeric", "date") or not (
                    math.isfinite(spec.center) and math.isfinite(spec.scale) and spec.scale > 0
                    and math.isfinite(spec.fill)) or spec.part not in (None,) + DATE_PARTS:
                raise ValueError(f"malformed preprocessing of column {spec.source!r}")
        for spec in categorical:
            if kinds.get(spec.source) != "categorical" or not spec.vocabulary or any(
                    not 0 <= u < len(spec.vocabulary) for u in spec.unseen):
                raise ValueError(f"malformed preprocessing of column {spec.source!r}")
        return cls(columns, numeric, categorical, settings)

    def describe(self) -> list[str]:
        """A line per column, for ``archfit info``."""
        lines = [f"{len(self._columns)} columns, numeric transform "
                 f"{self._settings['numeric']!r}; {self.inputs.numeric} numeric inputs "
                 f"({self.n_indicators} missing-value indicators), "
                 f"{len(self._categorical)} categorical"]
        for source, group in _groups(self._numeric):
            first = group[0]
            what = (f"date -> {', '.join(g.part for g in group)}" if first.part else
                    "quantile" if first.knots else
                    f"as is, missing -> {first.fill:.6g}" if self._settings["numeric"] == "none"
                    else
                    f"center {first.center:.6g}, scale {first.scale:.6g}"
                    + (", clipped" if first.clip else ""))
            lines.append(f"{source}: numeric, {what}"
                         + (", missing -> indicator" if first.indicator else ""))
        for c in self._categorical:
            shown = ", ".join(repr(v) for v in c.vocabulary[:6])
            more = ", ..." if len(c.vocabulary) > 6 else ""
            lines.append(f"{c.source}: categorical, {len(c.vocabulary)} values [{shown}{more}]"
                         + (f", {len(c.unseen)} unseen in training" if c.unseen else ""))
        return lines

    def __eq__(self, other):
        return other is self or (isinstance(other, Preprocessing)
                                 and self.to_dict() == other.to_dict())

    def __repr__(self):
        return (f"Preprocessing({len(self._columns)} columns -> {len(self.input_names)} "
                f"inputs, numeric={self._settings['numeric']!r})")


# ---- numeric columns ------------------------------------------------------------------------
def _named(X) -> bool:
    """A table whose columns all have names (strings), as scikit-learn counts them."""
    if not is_table(X):
        return False
    names = [n for n, _ in table_columns(X)]
    return bool(names) and all(isinstance(n, str) for n in names)


def _weights(sample_weight, n):
    if sample_weight is None:
        return None
    from archfit._validation import as_sample_weight
    return as_sample_weight(sample_weight, n, np.dtype(np.float64))


def _groups(numeric):
    """The numeric inputs grouped by their source column, in order."""
    groups: dict[str, list] = {}
    for spec in numeric:
        groups.setdefault(spec.source, []).append(spec)
    return list(groups.items())


def _numeric_inputs(column: Column, weights, transform: str, schema) -> list[NumericInput]:
    """The numeric inputs of one numeric or date column; with `schema` (the
    inputs found before), the same parts and indicators, new statistics."""
    if schema is not None:
        parts = [s.part for s in schema]
    elif column.kind == "date":
        parts = list(DATE_PARTS[:3])
        seconds = column.values.astype(np.int64) % 86400
        if (seconds[~np.isnat(column.values)] != 0).any():
            parts.append("hour")
    else:
        parts = [None]
    out = []
    for k, part in enumerate(parts):
        x = _part(column, part)
        counted = np.ones(len(x), dtype=bool) if weights is None else weights > 0
        observed = counted & ~np.isnan(x)
        indicator = (schema[k].indicator if schema is not None
                     else k == 0 and bool((counted & ~observed).any()))
        w = None if weights is None else weights[observed]
        out.append(_statistics(column.name, part, x[observed], w, transform, indicator))
    return out


def _statistics(source, part, x, w, transform, indicator) -> NumericInput:
    """One numeric input's statistics on its observed values `x` (weights `w`)."""
    if len(x) == 0:                                   # never observed: a constant input
        return NumericInput(source, part, 0.0, 1.0, 0.0, indicator=indicator)
    if transform == "standard":
        total = len(x) if w is None else w.sum()
        mean = float((x.sum() if w is None else w @ x) / total)
        var = float(((x - mean) ** 2).sum() / total if w is None
                    else w @ ((x - mean) ** 2) / total)
        std = math.sqrt(var)
        return NumericInput(source, part, mean, std if std > 1e-12 * max(1.0, abs(mean))
                            else 1.0, mean, indicator=indicator)
    q25, median, q75, low, high = weighted_quantiles(x, w, np.array([0.25, 0.5, 0.75, 0, 1]))
    if transform == "none":
        return NumericInput(source, part, 0.0, 1.0, float(median), indicator=indicator)
    if transform == "quantile":
        return NumericInput(source, part, 0.0, 1.0, float(median), knots=_knots(x, w),
                            indicator=indicator)
    scale = q75 - q25 if q75 > q25 else (high - low) / 2 if high > low else 1.0
    return NumericInput(source, part, float(median), float(scale), float(median), clip=True,
                        indicator=indicator)


def _knots(x, w):
    """Distinct quantiles of x and the standard normal quantiles of their
    levels (the mean level where a value covers several)."""
    levels = (np.arange(QUANTILE_KNOTS) + 0.5) / QUANTILE_KNOTS
    values = weighted_quantiles(x, w, levels)
    distinct, first = np.unique(values, return_index=True)
    stops = np.append(first[1:], len(values))
    dist = NormalDist()
    scores = [dist.inv_cdf(float(levels[a:b].mean())) for a, b in zip(first, stops)]
    if len(distinct) == 1:
        scores = [0.0]
    return (tuple(float(v) for v in distinct), tuple(float(s) for s in scores))


def _transformed(x: np.ndarray, spec: NumericInput) -> np.ndarray:
    if spec.knots is not None:
        xs, zs = spec.knots
        return np.interp(x, xs, zs)
    z = (x - spec.center) / spec.scale
    if spec.clip:
        z = z / np.sqrt(1.0 + (z / CLIP) ** 2)
    return z


def _part(column: Column, part) -> np.ndarray:
    """A numeric column's values, or a date column's `part` (float64, NaN where missing)."""
    if part is None:
        return column.values
    t = column.values
    nat = np.isnat(t)
    days = t.astype("datetime64[D]")
    if part == "year":
        years = days.astype("datetime64[Y]")
        start = years.astype("datetime64[D]")
        length = ((years + 1).astype("datetime64[D]") - start).astype(np.float64)
        x = (years.astype(np.float64) + 1970.0
             + (days - start).astype(np.float64) / length)
    elif part == "month":
        x = days.astype("datetime64[M]").astype(np.int64) % 12 + 1.0
    elif part == "weekday":                     # Monday 0 (1970-01-01 was a Thursday)
        x = (days.astype(np.int64) + 3) % 7 + 0.0
    else:
        x = (t - days).astype("timedelta64[s]").astype(np.float64) / 3600.0
    return np.where(nat, np.nan, x.astype(np.float64))


# ---- categorical columns --------------------------------------------------------------------
def _order(value):
    return (type(value).__name__, value)


def _vocabulary(column: Column, weights, min_frequency, vocabulary=None) -> CategoricalInput:
    """A categorical column's vocabulary (values of positive weight, sorted;
    given, with `vocabulary`) and the values too rare in these rows."""
    totals: dict = {}
    cells = column.values
    w = np.ones(len(cells)) if weights is None else weights
    for value, weight in zip(cells, w):
        if value is not None and weight > 0:
            totals[value] = totals.get(value, 0.0) + float(weight)
    total = float(w.sum())
    common = {v for v, t in totals.items() if t > min_frequency * total}
    if vocabulary is None:
        if not common:
            raise ValueError(f"X: column {column.name!r} has no values in the training rows "
                             "(every cell is missing); drop it")
        vocabulary = tuple(sorted(common, key=_order))
    unseen = tuple(k for k, v in enumerate(vocabulary) if v not in common)
    return CategoricalInput(column.name, tuple(vocabulary), unseen)


def _codes(cells: np.ndarray, spec: CategoricalInput) -> np.ndarray:
    lookup = {v: k for k, v in enumerate(spec.vocabulary)}
    for k in spec.unseen:
        lookup[spec.vocabulary[k]] = -1
    return np.fromiter((-1 if v is None else lookup.get(v, -1) for v in cells),
                       dtype=np.float64, count=len(cells))


def _as_kind(column: Column, kind: str, name: str) -> Column:
    """A column read as another kind than in training, converted or refused."""
    where = f"{name}: column {column.name!r}"
    if kind == "numeric" and column.kind == "categorical":
        values = np.full(len(column.values), np.nan)
        for i, v in enumerate(column.values):
            if v is None:
                continue
            try:
                values[i] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{where} was numeric in training and holds {v!r} at row "
                                 f"{i}") from None
        return Column(column.name, "numeric", values)
    if kind == "date" and column.kind == "numeric" and np.isnan(column.values).all():
        return Column(column.name, "date", np.full(len(column.values), np.datetime64("NaT"),
                                                   dtype="datetime64[s]"))
    raise ValueError(f"{where} held {kind} values in training, and here {column.kind} ones")


__all__ = ["Preprocessing", "NumericInput", "CategoricalInput", "NUMERIC_TRANSFORMS"]
