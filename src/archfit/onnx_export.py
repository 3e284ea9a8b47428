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
    if len(members) == 1:
        _member(helper, nodes, const, first, "", result, dtype)
    else:
        outs = [_member(helper, nodes, const, m, f"member{k}.", f"member{k}.{result}", dtype)
                for k, m in enumerate(members)]
        nodes.append(helper.make_node("Mean", outs, [result], name="mean"))
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
    graph = helper.make_graph(
        nodes, "archfit", [helper.make_tensor_value_info("X", elem, ["batch", arch.n_inputs])],
        outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="archfit", ir_version=IR_VERSION)
    model.doc_string = (repr(first.model) if len(members) == 1
                        else f"Ensemble of {len(members)} x {first.model!r}")
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
