"""Export a fit model as a standard ONNX graph (``pip install "archfit[onnx]"``).

The graph is what the fit model computes, written in ONNX operators: its
standardisation of the features (``Sub``, ``Div``) when it has one, one
``Gemm`` per layer, the activation (``Relu``, ``LeakyRelu``, ``Tanh``,
``Sigmoid``; gelu as ``0.5 x (1 + Erf(x / sqrt 2))``), a layer norm in
``ReduceMean``, ``Sub``, ``Mul``, ``Sqrt``, ``Div``, ``Add`` (each layer
kind writes its own, :mod:`archfit.layers`), a residual block's end as
``Add``, then the head
(``Softmax``, ``Sigmoid`` or ``Exp``; nothing for linear, or ``Mul``, ``Add``
back to the targets' units when they were standardised). Input ``X`` has shape
(batch, n_inputs) in the model's dtype. Outputs: ``probabilities`` (softmax,
sigmoid) or ``values`` (linear), and for softmax also ``label``, the predicted
class label. Opset 17, which onnxruntime and most other runtimes execute.

A network with an ensemble inside (:class:`~archfit.layers.BatchEnsemble`)
turns each row into its members' rows (``Unsqueeze``, ``Mul``, ``Reshape``),
runs the shared layers on them, each member's last layer as an ``Einsum``,
and averages the members' outputs (``ReduceMean``).

An :class:`~archfit.ensemble.Ensemble` exports as every member's graph
(names prefixed ``member0.``, ...) and ``Mean`` of their outputs.

One approximation: onnxruntime has no float64 ``Erf``, so a float64 model's
gelu evaluates its erf in float32 (a relative error near 1e-7 in that
activation); everything else keeps the model's dtype.
"""
from __future__ import annotations

import os

import numpy as np

from archfit.fit_model import FitModel

OPSET = 17
ML_OPSET = 2          # LabelEncoder with string, integer and float keys
IR_VERSION = 8


def _onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install onnx") from None
    return onnx, TensorProto, helper, numpy_helper


def to_onnx(fitted, path=None):
    """The ONNX ``ModelProto`` of ``fitted`` (a FitModel, or an
    :class:`~archfit.ensemble.Ensemble`: every member's graph, then ``Mean``
    of their probabilities or values); written to ``path`` when given."""
    from archfit.ensemble import Ensemble
    if isinstance(fitted, Ensemble):
        members = fitted.members
    elif isinstance(fitted, FitModel):
        members = [fitted]
    else:
        raise TypeError(f"expected a FitModel or an Ensemble, got {type(fitted).__name__}")
    onnx, TensorProto, helper, numpy_helper = _onnx()
    first = members[0]
    arch = first.architecture
    dtype = first.model.dtype
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    result = "probabilities" if arch.output in ("softmax", "sigmoid") else "values"
    log = getattr(fitted, "target_transform", None) == "log"
    final, result = result, ("log_values" if log else result)
    if first.preprocessing is not None:
        graph_inputs = _preprocessing(helper, nodes, const, first.preprocessing, elem)
    else:
        graph_inputs = [helper.make_tensor_value_info("X", elem, ["batch", arch.n_inputs])]
    if len(members) == 1:
        _member(helper, nodes, const, first, "", result, dtype)
    else:
        outs = [_member(helper, nodes, const, m, f"member{k}.", f"member{k}.{result}", dtype)
                for k, m in enumerate(members)]
        shares = fitted.weights
        if np.all(shares == shares[0]):
            nodes.append(helper.make_node("Mean", outs, [result], name="mean"))
        else:
            weighted = []
            for k, (o, share) in enumerate(zip(outs, shares)):
                weighted.append(f"member{k}.weighted")
                nodes.append(helper.make_node(
                    "Mul", [o, const(f"member{k}.share", np.array(share, dtype=dtype))],
                    [weighted[-1]]))
            nodes.append(helper.make_node("Sum", weighted, [result], name="weighted_mean"))
    if log:            # the members were fit to log(y): exp of their weighted mean
        nodes.append(helper.make_node("Exp", [result], [final], name="exp"))
        result = final
    outputs = [helper.make_tensor_value_info(result, elem, ["batch", arch.n_outputs])]
    if arch.output == "softmax":
        classes = first.classes
        if classes.dtype.kind in "US" or classes.dtype.kind == "O":
            table = np.array([str(c) for c in classes.tolist()], dtype=object)
            label_type = TensorProto.STRING
        elif classes.dtype.kind == "f":
            table, label_type = classes.astype(np.float64), TensorProto.DOUBLE
        else:
            table, label_type = classes.astype(np.int64), TensorProto.INT64
        inits.append(numpy_helper.from_array(table, "classes"))
        nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label_index"], axis=1,
                                      keepdims=0))
        nodes.append(helper.make_node("Gather", ["classes", "label_index"], ["label"], axis=0))
        outputs.append(helper.make_tensor_value_info("label", label_type, ["batch"]))
    graph = helper.make_graph(nodes, "archfit", graph_inputs, outputs, initializer=inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if any(n.domain == "ai.onnx.ml" for n in nodes):
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="archfit",
                              ir_version=IR_VERSION)
    model.doc_string = (repr(first.model) if len(members) == 1
                        else f"Ensemble of {len(members)} x {first.model!r}")
    # the graph computes in float32 (or float64) whatever precision trained the members
    precisions = sorted({m.precision for m in members})
    helper.set_model_props(model, {"archfit.trained_precision": ",".join(precisions)})
    if precisions != ["float32"]:
        model.doc_string += (f"; trained with {'/'.join(precisions)} products, exported with "
                             "float32 ones")
    onnx.checker.check_model(model)
    if path is not None:
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, path)
    return model


def _member(helper, nodes, const, fitted: FitModel, prefix: str, out: str, dtype) -> str:
    """Nodes computing one fit model's probabilities or values (in the targets'
    units) from ``X`` into `out`; names start with `prefix`."""
    arch = fitted.architecture
    weights = fitted.weights
    current = "X"
    scaling = fitted.standardization
    if scaling is not None and scaling.feature_mean is not None:
        # the fit model's standardisation, as FitModel.predict does it
        mean = const(f"{prefix}standardize.mean", scaling.feature_mean.astype(dtype))
        scale = const(f"{prefix}standardize.scale", scaling.feature_scale.astype(dtype))
        nodes.append(helper.make_node("Sub", ["X", mean], [f"{prefix}standardize.centred"]))
        nodes.append(helper.make_node("Div", [f"{prefix}standardize.centred", scale],
                                      [f"{prefix}standardize.x"]))
        current = f"{prefix}standardize.x"
    graph = _Graph(helper, nodes, const, dtype, prefix)
    inputs = []
    for node in arch.nodes:
        inputs.append(current)
        current = node._onnx(graph, current, weights, inputs)
    members = arch.members > 1
    # with an ensemble inside: each member's outputs (batch, k, n), then their mean
    if arch.output != "linear":
        op = {"softmax": "Softmax", "sigmoid": "Sigmoid", "exponential": "Exp"}[arch.output]
        each = f"{prefix}members.outputs" if members else out
        nodes.append(helper.make_node(op, [current], [each],
                                      **({"axis": -1} if op == "Softmax" else {})))
        if members:
            nodes.append(helper.make_node("ReduceMean", [each], [out], axes=[1], keepdims=0))
        return out
    if members:
        nodes.append(helper.make_node("ReduceMean", [current], [f"{prefix}members.mean"],
                                      axes=[1], keepdims=0))
        current = f"{prefix}members.mean"
    if scaling is not None and scaling.target_mean is not None:
        scale = const(f"{prefix}standardize.target_scale", scaling.target_scale.astype(dtype))
        mean = const(f"{prefix}standardize.target_mean", scaling.target_mean.astype(dtype))
        nodes.append(helper.make_node("Mul", [current, scale], [f"{prefix}standardize.scaled"]))
        nodes.append(helper.make_node("Add", [f"{prefix}standardize.scaled", mean], [out]))
    else:
        nodes.append(helper.make_node("Identity", [current], [out]))
    return out


def _preprocessing(helper, nodes, const, prep, elem) -> list:
    """Nodes computing the network's inputs ``X`` from one graph input per
    table column (shape (batch, 1)): numbers as double, NaN where missing;
    categories as the vocabulary's type (string, int64, double; booleans as
    bool), each value outside the vocabulary coding -1. Returns the graph's
    inputs."""
    from onnx import TensorProto
    kinds = prep.kinds
    dates = [n for n, k in kinds.items() if k == "date"]
    if dates:
        raise ValueError(f"a fit model whose preprocessing reads dates ({dates[0]!r}) cannot "
                         "be exported to ONNX: turn the dates into numbers before fitting "
                         "(days since a date, year, month)")
    graph_inputs, numbers, indicators, codes = [], [], [], []
    types = {}
    for spec in prep.categorical:
        kind = {type(v) for v in spec.vocabulary}
        types[spec.source] = ("str" if kind == {str} else "bool" if kind == {bool} else
                              "int" if kind <= {int, bool} else "float")
    for name, kind in kinds.items():
        t = (TensorProto.DOUBLE if kind == "numeric" else
             {"str": TensorProto.STRING, "int": TensorProto.INT64, "bool": TensorProto.BOOL,
              "float": TensorProto.DOUBLE}[types[name]])
        graph_inputs.append(helper.make_tensor_value_info(name, t, ["batch", 1]))
    for j, spec in enumerate(prep.numeric):
        p = f"prep.{j}"
        nodes.append(helper.make_node("IsNaN", [spec.source], [f"{p}.missing"]))
        nodes.append(helper.make_node("Where", [f"{p}.missing", const(
            f"{p}.fill", np.array(spec.fill)), spec.source], [f"{p}.x"]))
        numbers.append(_numeric_onnx(helper, nodes, const, spec, f"{p}.x", p))
        if spec.indicator:
            indicators.append(f"{p}.indicator")
            nodes.append(helper.make_node("Cast", [f"{p}.missing"], [indicators[-1]],
                                          to=TensorProto.DOUBLE))
    for j, spec in enumerate(prep.categorical):
        p, x = f"prep.c{j}", spec.source
        values = np.arange(len(spec.vocabulary), dtype=np.int64)
        values[list(spec.unseen)] = -1
        kind = types[spec.source]
        if kind == "bool":
            nodes.append(helper.make_node("Cast", [x], [f"{p}.int"], to=TensorProto.INT64))
            x, kind = f"{p}.int", "int"
        keys = {"str": "keys_strings", "int": "keys_int64s", "float": "keys_floats"}[kind]
        vocabulary = ([str(v) for v in spec.vocabulary] if kind == "str" else
                      [int(v) for v in spec.vocabulary] if kind == "int" else
                      [float(v) for v in spec.vocabulary])
        if kind == "float":
            nodes.append(helper.make_node("Cast", [x], [f"{p}.float"], to=TensorProto.FLOAT))
            x = f"{p}.float"
        nodes.append(helper.make_node("LabelEncoder", [x], [f"{p}.code"], domain="ai.onnx.ml",
                                      default_int64=-1, values_int64s=values.tolist(),
                                      **{keys: vocabulary}))
        codes.append(f"{p}.code.double")
        nodes.append(helper.make_node("Cast", [f"{p}.code"], [codes[-1]], to=TensorProto.DOUBLE))
    nodes.append(helper.make_node("Concat", numbers + indicators + codes, ["prep.X"], axis=1))
    nodes.append(helper.make_node("Cast", ["prep.X"], ["X"], to=elem))
    return graph_inputs


def _numeric_onnx(helper, nodes, const, spec, x: str, p: str) -> str:
    """One numeric input's transform, in double, as Preprocessing does it."""
    if spec.knots is not None:
        # np.interp with the ends held: z0 + sum of slope_i * clip(x - x_i, 0, width_i)
        xs, zs = (np.array(k) for k in spec.knots)
        if len(xs) == 1:
            nodes.append(helper.make_node("Mul", [x, const(f"{p}.zero", np.array(0.0))],
                                          [f"{p}.z"]))
            return f"{p}.z"
        widths = np.diff(xs)
        nodes.append(helper.make_node("Sub", [x, const(f"{p}.knots", xs[:-1][None, :])],
                                      [f"{p}.above"]))
        nodes.append(helper.make_node("Clip", [f"{p}.above", const(f"{p}.low", np.array(0.0))],
                                      [f"{p}.floor"]))
        nodes.append(helper.make_node("Min", [f"{p}.floor", const(f"{p}.widths",
                                                                 widths[None, :])],
                                      [f"{p}.ramps"]))
        nodes.append(helper.make_node("MatMul", [f"{p}.ramps", const(
            f"{p}.slopes", (np.diff(zs) / widths)[:, None])], [f"{p}.rise"]))
        nodes.append(helper.make_node("Add", [f"{p}.rise", const(f"{p}.start",
                                                                np.array(zs[0]))], [f"{p}.z"]))
        return f"{p}.z"
    nodes.append(helper.make_node("Sub", [x, const(f"{p}.center", np.array(spec.center))],
                                  [f"{p}.centred"]))
    nodes.append(helper.make_node("Div", [f"{p}.centred", const(f"{p}.scale",
                                                               np.array(spec.scale))],
                                  [f"{p}.z"]))
    if not spec.clip:
        return f"{p}.z"
    # z / sqrt(1 + (z / CLIP)^2)
    from archfit.preprocessing import CLIP
    nodes.append(helper.make_node("Div", [f"{p}.z", const(f"{p}.bound", np.array(CLIP))],
                                  [f"{p}.ratio"]))
    nodes.append(helper.make_node("Mul", [f"{p}.ratio", f"{p}.ratio"], [f"{p}.square"]))
    nodes.append(helper.make_node("Add", [f"{p}.square", const(f"{p}.one", np.array(1.0))],
                                  [f"{p}.sum"]))
    nodes.append(helper.make_node("Sqrt", [f"{p}.sum"], [f"{p}.root"]))
    nodes.append(helper.make_node("Div", [f"{p}.z", f"{p}.root"], [f"{p}.clipped"]))
    return f"{p}.clipped"


class _Graph:
    """What a layer's translation writes into (``_onnx`` of the classes in
    archfit.layers): nodes, constants, the model's dtype, the names' prefix."""

    def __init__(self, helper, nodes, const, dtype, prefix: str):
        self.helper, self.nodes, self.const, self.dtype, self.prefix = (
            helper, nodes, const, np.dtype(dtype), prefix)

    def node(self, op: str, inputs, outputs, **attributes) -> None:
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs), **attributes))

    def split(self, x: str, n_numeric: int, n_in: int, prefix: str):
        """(numeric columns or None when there are none, the codes after them) of x."""
        def columns(lo, hi, out):
            starts = self.const(f"{out}.starts", np.array([lo], dtype=np.int64))
            ends = self.const(f"{out}.ends", np.array([hi], dtype=np.int64))
            axes = self.const(f"{out}.axes", np.array([1], dtype=np.int64))
            self.node("Slice", [x, starts, ends, axes], [out])
            return out
        numeric = columns(0, n_numeric, f"{prefix}.numeric") if n_numeric else None
        return numeric, columns(n_numeric, n_in, f"{prefix}.codes")

    def code_rows(self, codes: str, j: int, cardinality: int, prefix: str) -> str:
        """The table rows (int64, (batch,)) of categorical input j's codes:
        the code, or the last row (cardinality) for -1."""
        from onnx import TensorProto
        index = self.const(f"{prefix}.column", np.array(j, dtype=np.int64))
        size = self.const(f"{prefix}.rows", np.array(cardinality + 1, dtype=np.int64))
        self.node("Gather", [codes, index], [f"{prefix}.code"], axis=1)
        self.node("Cast", [f"{prefix}.code"], [f"{prefix}.code64"], to=TensorProto.INT64)
        self.node("Add", [f"{prefix}.code64", size], [f"{prefix}.shifted"])
        self.node("Mod", [f"{prefix}.shifted", size], [f"{prefix}.row"])
        return f"{prefix}.row"

    def cast(self, x: str, out: str) -> None:
        """out = x in the model's dtype."""
        from onnx import TensorProto
        self.node("Cast", [x], [out], to=TensorProto.DOUBLE if self.dtype == np.float64
                  else TensorProto.FLOAT)

    def erf(self, x: str, out: str) -> None:
        """out = erf(x); onnxruntime has no float64 Erf: evaluated in float32 then."""
        if self.dtype == np.float64:
            from onnx import TensorProto
            self.node("Cast", [x], [f"{x}32"], to=TensorProto.FLOAT)
            self.node("Erf", [f"{x}32"], [f"{out}32"])
            self.node("Cast", [f"{out}32"], [out], to=TensorProto.DOUBLE)
        else:
            self.node("Erf", [x], [out])
