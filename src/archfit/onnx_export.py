"""Export a fit model as a standard ONNX graph (``pip install "archfit[onnx]"``).

The graph is what the fit model computes, written in ONNX operators: its
standardisation of the features (``Sub``, ``Div``) when it has one, one
``Gemm`` per layer, the activation (``Relu``, ``LeakyRelu``, ``Tanh``,
``Sigmoid``; gelu as ``0.5 x (1 + Erf(x / sqrt 2))``), then the head
(``Softmax``, ``Sigmoid`` or ``Exp``; nothing for linear, or ``Mul``, ``Add``
back to the targets' units when they were standardised). Input ``X`` has shape
(batch, n_inputs) in the model's dtype. Outputs: ``probabilities`` (softmax,
sigmoid) or ``values`` (linear), and for softmax also ``label``, the predicted
class label. Opset 17, which onnxruntime and most other runtimes execute.

An :class:`~archfit.ensemble.Ensemble` exports as every member's graph
(names prefixed ``member0.``, ...) and ``Mean`` of their outputs.

One approximation: onnxruntime has no float64 ``Erf``, so a float64 model's
gelu evaluates its erf in float32 (a relative error near 1e-7 in that
activation); everything else keeps the model's dtype.
"""
from __future__ import annotations

import math
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
    for i, layer in enumerate(arch.layers):
        name = f"{prefix}dense{i}"
        w = const(f"{name}.weight", np.array(weights[f"dense{i}.weight"]))
        b = const(f"{name}.bias", np.array(weights[f"dense{i}.bias"]))
        nodes.append(helper.make_node("Gemm", [current, w, b], [f"{name}.z"], name=name))
        current = _activation(helper, nodes, const, layer.activation, f"{name}.z", name, dtype)
    if arch.output == "softmax":
        nodes.append(helper.make_node("Softmax", [current], [out], axis=1))
    elif arch.output == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", [current], [out]))
    elif arch.output == "exponential":
        nodes.append(helper.make_node("Exp", [current], [out]))
    elif scaling is not None and scaling.target_mean is not None:
        scale = const(f"{prefix}standardize.target_scale", scaling.target_scale.astype(dtype))
        mean = const(f"{prefix}standardize.target_mean", scaling.target_mean.astype(dtype))
        nodes.append(helper.make_node("Mul", [current, scale], [f"{prefix}standardize.scaled"]))
        nodes.append(helper.make_node("Add", [f"{prefix}standardize.scaled", mean], [out]))
    else:
        nodes.append(helper.make_node("Identity", [current], [out]))
    return out


def _activation(helper, nodes, const, name, x, prefix, dtype):
    if name == "identity":
        return x
    out = f"{prefix}.a"
    if name == "relu":
        nodes.append(helper.make_node("Relu", [x], [out]))
    elif name == "leaky_relu":
        nodes.append(helper.make_node("LeakyRelu", [x], [out], alpha=0.01))
    elif name == "tanh":
        nodes.append(helper.make_node("Tanh", [x], [out]))
    elif name == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", [x], [out]))
    elif name == "gelu":
        # 0.5 * x * (1 + erf(x / sqrt(2))), from opset-9 operators
        half = const(f"{prefix}.half", np.array(0.5, dtype=dtype))
        one = const(f"{prefix}.one", np.array(1.0, dtype=dtype))
        root2 = const(f"{prefix}.sqrt2", np.array(math.sqrt(2.0), dtype=dtype))
        nodes.append(helper.make_node("Div", [x, root2], [f"{prefix}.scaled"]))
        if dtype == np.float64:   # no float64 Erf in onnxruntime: evaluate it in float32
            from onnx import TensorProto
            nodes += [
                helper.make_node("Cast", [f"{prefix}.scaled"], [f"{prefix}.scaled32"],
                                 to=TensorProto.FLOAT),
                helper.make_node("Erf", [f"{prefix}.scaled32"], [f"{prefix}.erf32"]),
                helper.make_node("Cast", [f"{prefix}.erf32"], [f"{prefix}.erf"],
                                 to=TensorProto.DOUBLE),
            ]
        else:
            nodes.append(helper.make_node("Erf", [f"{prefix}.scaled"], [f"{prefix}.erf"]))
        nodes += [
            helper.make_node("Add", [f"{prefix}.erf", one], [f"{prefix}.cdf2"]),
            helper.make_node("Mul", [x, f"{prefix}.cdf2"], [f"{prefix}.xcdf2"]),
            helper.make_node("Mul", [f"{prefix}.xcdf2", half], [out]),
        ]
    else:  # pragma: no cover - the architecture validates activation names
        raise ValueError(f"no ONNX translation for activation {name!r}")
    return out
