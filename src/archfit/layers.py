"""Kinds of layer: the pieces an :class:`~archfit.Architecture` is built from.

One frozen class per kind. Each knows what the architecture needs of it and
nothing of any value θ may hold: its output width, its parameters (names,
shapes, whether L2 decays them, how they start), its dictionary form (with a
``"kind"``), how the kernels' layer table runs it, and its translation to
ONNX operators.

====================  ==============================================================
``Dense``             ``activation(x W + b)``
``LayerNorm``         ``(x - mean) / sqrt(var + epsilon) * gain + bias``, per row
``Residual``          ``x + f(x)``, f a stack of layers that keeps the width
``Periodic``          each numeric input x as ``activation([cos 2πcx, sin 2πcx] W + b)``
``PiecewiseLinear``   each numeric input x as ``activation(x u + e(x) W + b)``, e(x) its
                      codes against bins fitted on the training rows
``Embedding``         each categorical input's code as its row of a learned table
``OneHot``            each categorical input's code as an indicator vector
====================  ==============================================================

Categorical inputs (:class:`~archfit.Inputs`) are the last columns of a row,
each a category's code; a Periodic or PiecewiseLinear layer passes them
through, and an Embedding or OneHot layer turns them into numbers before any
other kind.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from archfit import kernels
from archfit._validation import MAX_DIMENSION, check_float, check_int

# The names the kernels understand (declared once, in archfit/kernels.pxd).
ACTIVATIONS = tuple(kernels.ACTIVATIONS)
# Activations whose initial weights follow He (fan-in, variance 2); others Glorot.
_HE = ("relu", "leaky_relu", "gelu")


def _check_activation(name) -> str:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return name


class Parameter(NamedTuple):
    """One array of a layer's parameters: ``suffix`` of its name in the layout
    (``dense0.weight``), its shape, whether L2 decays it, how it starts
    (``"he"``, ``"glorot"``, ``"zeros"``, ``"ones"``, ``"normal"`` and
    ``"uniform"`` with ``scale`` their standard deviation or bound,
    ``"signs"``: -1 or 1 at random, or ``"edges"``: standard normal
    quantiles, each row), and whether training
    moves it: bin edges are fitted on the training rows when a fit starts
    (:func:`archfit.binning.fit_edges`) and never trained (their gradient is
    zero)."""

    suffix: str
    shape: tuple[int, ...]
    decays: bool
    init: str
    scale: float = 0.0
    trained: bool = True


class Node(NamedTuple):
    """One layer of the kernels' table, as an architecture flattens its layers:
    its name in the layout, the layer object that describes it (for an
    ``add``, the :class:`Residual` it ends), its kind, input and output
    widths, for an ``add`` the index of the block's first node, the
    cardinalities of the categorical columns (codes) at the end of its input,
    and the rows its input has per row of X (an ensemble's members, after
    its ``replicate`` node; a ``member_dense`` node is its last layer, a
    Dense whose weights are each member's own)."""

    name: str
    layer: Any
    kind: str
    n_in: int
    n_out: int
    link: int
    categorical: tuple = ()
    members: int = 1

    def spec(self) -> dict:
        """The node as ``kernels.Kernel`` takes it: kernels.pxd's ``LayerSpec``
        fields by name (those left out are zero)."""
        layer = self.layer
        if self.kind == "dense":
            return {"kind": "dense", "units": self.n_out, "activation": layer.activation,
                    "dropout": layer.dropout}
        if self.kind == "layer_norm":
            return {"kind": "layer_norm", "epsilon": layer.epsilon}
        if self.kind == "periodic":
            return {"kind": "periodic", "units": layer.dim, "activation": layer.activation,
                    "frequencies": layer.n_frequencies}
        if self.kind == "piecewise_linear":
            return {"kind": "piecewise_linear", "units": layer.dim,
                    "activation": layer.activation, "bins": layer.n_bins}
        if self.kind == "embedding":
            return {"kind": "embedding", "units": layer.dim}
        if self.kind == "replicate":
            return {"kind": "replicate", "members": layer.k,
                    "adapter": layer.adapters == "first"}
        if self.kind == "member_dense":
            return {"kind": "member_dense", "units": self.n_out}
        if self.kind == "adapted_dense":
            return {"kind": "adapted_dense", "units": self.n_out, "activation": layer.activation,
                    "dropout": layer.dropout}
        if self.kind == "add":
            return {"kind": "add", "link": self.link}
        return {"kind": self.kind}

    @property
    def n_numeric(self) -> int:
        """The numeric columns of the node's input (before its codes)."""
        return self.n_in - len(self.categorical)

    def parameters(self) -> list[Parameter]:
        """The node's parameters, in their order in θ."""
        if self.kind in ("add", "one_hot"):
            return []
        if self.kind == "embedding":
            return self.layer.tables(self.categorical)
        if self.kind == "member_dense":
            return [Parameter("weight", (self.members, self.n_in, self.n_out), True, "glorot"),
                    Parameter("bias", (self.members, self.n_out), False, "zeros")]
        if self.kind == "adapted_dense":
            # TabM: the first layer's input scales random signs, the others' ones
            first = self.name == "adapted_dense0"
            weight = self.layer.parameters(self.n_in)[0]
            return [weight,
                    Parameter("scale_in", (self.members, self.n_in), False,
                              "signs" if first else "ones"),
                    Parameter("scale_out", (self.members, self.n_out), False, "ones"),
                    Parameter("bias", (self.members, self.n_out), False, "zeros")]
        return self.layer.parameters(self.n_numeric)

    def flops(self) -> int:
        """Forward-pass operations per row of X (each member's, with an
        ensemble)."""
        if self.kind == "replicate":
            return self.layer.flops(self.n_in)
        return self.members * self.layer.flops(self.n_in)

    def _onnx(self, graph, x: str, weights, inputs) -> str:
        if self.kind == "member_dense":
            return _member_dense_onnx(graph, x, self, weights)
        if self.kind == "adapted_dense":
            return _adapted_dense_onnx(graph, x, self, weights)
        return self.layer._onnx(graph, x, self, weights, inputs)


@dataclass(frozen=True)
class Dense:
    """A fully connected layer: ``activation(x @ W + b)``.

    Parameters
    ----------
    units : int
        Number of outputs of the layer.
    activation : str, default "identity"
        One of ``"identity"``, ``"relu"``, ``"leaky_relu"`` (slope 0.01),
        ``"tanh"``, ``"sigmoid"``, ``"gelu"`` (exact, with erf). The last layer
        must keep ``"identity"``: the architecture's output head applies the
        output function.
    dropout : float or None, default None
        The rate at which training drops this layer's outputs (each kept one
        scaled by ``1 / (1 - rate)``), in [0, 1); None takes the fit's rate,
        ``Hyperparameters.dropout``. The last layer has none.

    Notes
    -----
    Parameters ``weight`` (n_in, units), decayed by L2 and initialised He
    (normal, sd ``sqrt(2 / n_in)``) before relu, leaky_relu and gelu, else
    Glorot (uniform on ``±sqrt(6 / (n_in + units))``); ``bias`` (units,), zeros.
    """

    units: int
    activation: str = "identity"
    dropout: float | None = None

    kind = "dense"

    def __post_init__(self):
        check_int(self.units, "Dense.units", minimum=1, maximum=MAX_DIMENSION)
        _check_activation(self.activation)
        object.__setattr__(self, "units", int(self.units))
        if self.dropout is not None:
            object.__setattr__(self, "dropout", check_float(
                self.dropout, "Dense.dropout", low=0.0, high=1.0, high_open=True))

    def width(self, n_in: int) -> int:
        """The output width for an input of `n_in` columns."""
        return self.units

    def parameters(self, n_in: int) -> list[Parameter]:
        """``weight`` (n_in, units) and ``bias`` (units,)."""
        return [Parameter("weight", (n_in, self.units), True,
                          "he" if self.activation in _HE else "glorot"),
                Parameter("bias", (self.units,), False, "zeros")]

    def flops(self, n_in: int) -> int:
        """Forward-pass operations per row: a multiply-add is two, a bias one."""
        return 2 * n_in * self.units + self.units

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "dense", "units": ..., "activation": ...}`` (and ``"dropout"``
        when the layer has its own rate)."""
        d = {"kind": self.kind, "units": self.units, "activation": self.activation}
        if self.dropout is not None:
            d["dropout"] = self.dropout
        return d

    def describe(self) -> str:
        """The layer in a few words, for a summary."""
        return self.activation + ("" if self.dropout is None else f", dropout {self.dropout:g}")

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        w = graph.const(f"{graph.prefix}{node.name}.weight",
                        np.array(weights[f"{node.name}.weight"]))
        b = graph.const(f"{graph.prefix}{node.name}.bias", np.array(weights[f"{node.name}.bias"]))
        z = f"{graph.prefix}{node.name}.z"
        graph.node("Gemm", [x, w, b], [z], name=f"{graph.prefix}{node.name}")
        return _onnx_activation(graph, self.activation, z, f"{graph.prefix}{node.name}")

    def __repr__(self) -> str:
        extra = f", activation={self.activation!r}" if self.activation != "identity" else ""
        extra += f", dropout={self.dropout!r}" if self.dropout is not None else ""
        return f"Dense({self.units}{extra})"


@dataclass(frozen=True)
class LayerNorm:
    """Layer normalisation: each row standardised over its columns, then
    scaled and shifted, ``(x - mean) / sqrt(var + epsilon) * gain + bias``.

    Parameters
    ----------
    epsilon : float, default 1e-5
        Added to each row's variance (the population variance, over the
        row's columns).

    Notes
    -----
    Parameters ``gain`` (ones) and ``bias`` (zeros), both of the input's
    width; L2 decays neither. The width is kept.
    """

    epsilon: float = 1e-5

    kind = "layer_norm"

    def __post_init__(self):
        object.__setattr__(self, "epsilon", check_float(
            self.epsilon, "LayerNorm.epsilon", low=0.0, low_open=True, high=1.0))

    def width(self, n_in: int) -> int:
        """The output width: the input's."""
        return n_in

    def parameters(self, n_in: int) -> list[Parameter]:
        """``gain`` and ``bias``, each (n_in,)."""
        return [Parameter("gain", (n_in,), False, "ones"),
                Parameter("bias", (n_in,), False, "zeros")]

    def flops(self, n_in: int) -> int:
        """Forward-pass operations per row, about seven per column."""
        return 7 * n_in

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "layer_norm", "epsilon": ...}``."""
        return {"kind": self.kind, "epsilon": self.epsilon}

    def describe(self) -> str:
        """The layer in a few words, for a summary."""
        return f"epsilon {self.epsilon:g}"

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        # (x - mean) / sqrt(var + eps) * gain + bias, from opset-13 operators
        # (onnxruntime has no float64 LayerNormalization)
        p = f"{graph.prefix}{node.name}"
        gain = graph.const(f"{p}.gain", np.array(weights[f"{node.name}.gain"]))
        bias = graph.const(f"{p}.bias", np.array(weights[f"{node.name}.bias"]))
        eps = graph.const(f"{p}.epsilon", np.array(self.epsilon, dtype=graph.dtype))
        graph.node("ReduceMean", [x], [f"{p}.mean"], axes=[1], keepdims=1)
        graph.node("Sub", [x, f"{p}.mean"], [f"{p}.centred"])
        graph.node("Mul", [f"{p}.centred", f"{p}.centred"], [f"{p}.squares"])
        graph.node("ReduceMean", [f"{p}.squares"], [f"{p}.var"], axes=[1], keepdims=1)
        graph.node("Add", [f"{p}.var", eps], [f"{p}.var_eps"])
        graph.node("Sqrt", [f"{p}.var_eps"], [f"{p}.sd"])
        graph.node("Div", [f"{p}.centred", f"{p}.sd"], [f"{p}.normalised"])
        graph.node("Mul", [f"{p}.normalised", gain], [f"{p}.scaled"])
        graph.node("Add", [f"{p}.scaled", bias], [f"{p}.y"])
        return f"{p}.y"

    def __repr__(self) -> str:
        return "LayerNorm()" if self.epsilon == 1e-5 else f"LayerNorm(epsilon={self.epsilon!r})"


@dataclass(frozen=True)
class Residual:
    """A residual block, ``x + f(x)``: f is a stack of layers that keeps the
    width (the tabular ResNet's block: LayerNorm, Dense, relu, Dense).

    Parameters
    ----------
    layers : sequence of Dense or LayerNorm
        The block's stack, first to last; its output must have the input's
        width. Blocks do not nest.

    Examples
    --------
    >>> import archfit as af
    >>> block = af.Residual([af.LayerNorm(), af.Dense(64, "relu"), af.Dense(32)])
    >>> arch = af.Architecture(32, [block, af.Dense(2)], output="softmax")
    >>> arch.n_parameters
    4322
    """

    layers: tuple

    kind = "residual"

    def __post_init__(self):
        layers = self.layers
        if isinstance(layers, (Dense, LayerNorm, Residual)) or not isinstance(layers, Sequence) \
                or isinstance(layers, str):
            raise TypeError("Residual takes a sequence (list or tuple) of layers")
        layers = tuple(layers)
        if not layers:
            raise ValueError("a Residual block needs at least one layer")
        for i, layer in enumerate(layers):
            if isinstance(layer, Residual):
                raise ValueError(f"Residual layers[{i}]: residual blocks do not nest; put "
                                 "blocks one after another instead")
            if not isinstance(layer, (Dense, LayerNorm)):
                raise TypeError(f"Residual layers[{i}] must be a Dense or LayerNorm layer, "
                                f"got {type(layer).__name__}")
        object.__setattr__(self, "layers", layers)

    def width(self, n_in: int) -> int:
        """The block keeps the width: its stack must end at `n_in` columns."""
        width = n_in
        for layer in self.layers:
            width = layer.width(width)
        if width != n_in:
            raise ValueError(f"a Residual block must keep the width: its input has {n_in} "
                             f"columns and its stack {self.layers!r} ends with {width}; make "
                             f"the last layer Dense({n_in})")
        return n_in

    def flops(self, n_in: int) -> int:
        """Forward-pass operations per row of the addition (the stack's layers
        count their own)."""
        return n_in

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "residual", "layers": [...]}``."""
        return {"kind": self.kind, "layers": [layer.to_dict() for layer in self.layers]}

    def describe(self) -> str:
        """The layer in a few words, for a summary."""
        return "x + f(x)"

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        # the end of the block: its stack's output plus the block's input
        y = f"{graph.prefix}{node.name}.y"
        graph.node("Add", [inputs[node.link], x], [y], name=f"{graph.prefix}{node.name}")
        return y

    def __repr__(self) -> str:
        return f"Residual([{', '.join(map(repr, self.layers))}])"


@dataclass(frozen=True)
class Periodic:
    """Periodic embeddings of numeric features (Gorishniy et al., 2022): each
    input feature x becomes ``activation([cos 2πcx, sin 2πcx] W + b)``, with
    its own learned frequencies c, weights W and bias b.

    Parameters
    ----------
    n_frequencies : int, default 48
        Frequencies per feature (K): each feature first becomes 2K values.
    sigma : float, default 0.01
        Standard deviation of the frequencies' initial normal draws: the
        scale of the periods the embedding starts from (for standardised
        features; tune it with the learning rate).
    dim : int, default 24
        The embedding's width per feature: n input features give n × dim
        outputs.
    activation : str, default "relu"
        Applied to each feature's embedding (``"identity"`` for none).

    Notes
    -----
    Parameters ``frequencies`` (n, K), normal with standard deviation sigma;
    ``weight`` (n, 2K, dim) and ``bias`` (n, dim), uniform on ``±1 / sqrt(2K)``
    (as a linear layer of 2K inputs). L2 decays the weights only.
    """

    n_frequencies: int = 48
    sigma: float = 0.01
    dim: int = 24
    activation: str = "relu"

    kind = "periodic"

    def __post_init__(self):
        object.__setattr__(self, "n_frequencies", check_int(
            self.n_frequencies, "Periodic.n_frequencies", minimum=1, maximum=4096))
        object.__setattr__(self, "sigma", check_float(
            self.sigma, "Periodic.sigma", low=0.0, low_open=True, high=1e3))
        object.__setattr__(self, "dim", check_int(self.dim, "Periodic.dim", minimum=1,
                                                  maximum=MAX_DIMENSION))
        _check_activation(self.activation)

    def width(self, n_in: int) -> int:
        """The output width: dim per input feature."""
        return n_in * self.dim

    def parameters(self, n_in: int) -> list[Parameter]:
        """``frequencies`` (n_in, K), ``weight`` (n_in, 2K, dim), ``bias`` (n_in, dim)."""
        bound = 1.0 / math.sqrt(2 * self.n_frequencies)
        return [Parameter("frequencies", (n_in, self.n_frequencies), False, "normal",
                          self.sigma),
                Parameter("weight", (n_in, 2 * self.n_frequencies, self.dim), True, "uniform",
                          bound),
                Parameter("bias", (n_in, self.dim), False, "uniform", bound)]

    def flops(self, n_in: int) -> int:
        """Forward-pass operations per row: the products, the bias, and the
        cos and sin counted as one each."""
        return n_in * (2 * self.n_frequencies * (2 * self.dim + 1) + self.dim)

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "periodic", "n_frequencies": ..., "sigma": ..., "dim": ..., "activation": ...}``."""
        return {"kind": self.kind, "n_frequencies": self.n_frequencies, "sigma": self.sigma,
                "dim": self.dim, "activation": self.activation}

    def describe(self) -> str:
        """The layer in a few words, for a summary."""
        return f"{self.n_frequencies} frequencies, {self.activation}"

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        # per feature: [cos, sin](2π c x) (batch, n, 2K), times its weights
        # (Einsum over each feature's own matrix), plus the bias, activation;
        # categorical codes after the numeric columns pass through
        p = f"{graph.prefix}{node.name}"
        codes = None
        if node.categorical:
            x, codes = graph.split(x, node.n_numeric, node.n_in, p)
        c = graph.const(f"{p}.frequencies",
                        np.array(weights[f"{node.name}.frequencies"]) * (2 * math.pi))
        w = graph.const(f"{p}.weight", np.array(weights[f"{node.name}.weight"]))
        b = graph.const(f"{p}.bias", np.array(weights[f"{node.name}.bias"]))
        axes = graph.const(f"{p}.axes", np.array([2], dtype=np.int64))
        graph.node("Unsqueeze", [x, axes], [f"{p}.x3"])
        graph.node("Mul", [f"{p}.x3", c], [f"{p}.angles"])
        graph.node("Cos", [f"{p}.angles"], [f"{p}.cos"])
        graph.node("Sin", [f"{p}.angles"], [f"{p}.sin"])
        graph.node("Concat", [f"{p}.cos", f"{p}.sin"], [f"{p}.features"], axis=2)
        graph.node("Einsum", [f"{p}.features", w], [f"{p}.product"], equation="bnk,nkd->bnd")
        graph.node("Add", [f"{p}.product", b], [f"{p}.z3"])
        return _onnx_features_output(graph, f"{p}.z3", node, self.dim, self.activation, codes)

    def __repr__(self) -> str:
        return (f"Periodic(n_frequencies={self.n_frequencies}, sigma={self.sigma!r}, "
                f"dim={self.dim}, activation={self.activation!r})")


@dataclass(frozen=True)
class PiecewiseLinear:
    """Piecewise-linear embeddings of numeric features (Gorishniy et al.,
    2022, version B, as TabM uses them): each input feature x becomes
    ``activation(x u + e(x) W + b)``, where e(x) codes x against the
    feature's bins. The bins' edges are quantiles of the feature on the
    training rows, weighted by the sample weights: fitted, like the
    standardisation statistics, when a fit starts, and never trained.

    Parameters
    ----------
    n_bins : int, default 48
        Bins per feature (T), at least 2. A feature with fewer distinct
        values gets fewer bins; the others code 0.
    dim : int, default 16
        The embedding's width per feature: n input features give n × dim
        outputs.
    activation : str, default "identity"
        Applied to each feature's embedding.

    Notes
    -----
    With edges e_0 < ... < e_T, bin t's code is ``(x - e_t) / (e_t+1 - e_t)``
    clipped to [0, 1], except that the first bin is not clipped below and the
    last not above: a value in bin t codes ones below it, its position in
    it, zeros above. The layer must be the first (it reads the inputs the
    edges were fitted on); categorical codes after the numeric columns pass
    through.

    Parameters ``edges`` (n, T + 1), fitted (:func:`archfit.binning.fit_edges`;
    ``Model.init`` puts standard normal quantiles there, right for
    standardised features); ``linear`` (n, dim) and ``bias`` (n, dim),
    uniform on ``±1 / sqrt(dim)``; ``weight`` (n, T, dim), zeros, so that the
    embedding starts linear. L2 decays ``linear`` and ``weight``.
    """

    n_bins: int = 48
    dim: int = 16
    activation: str = "identity"

    kind = "piecewise_linear"

    def __post_init__(self):
        object.__setattr__(self, "n_bins", check_int(
            self.n_bins, "PiecewiseLinear.n_bins", minimum=2, maximum=4096))
        object.__setattr__(self, "dim", check_int(self.dim, "PiecewiseLinear.dim", minimum=1,
                                                  maximum=MAX_DIMENSION))
        _check_activation(self.activation)

    def width(self, n_in: int) -> int:
        """The output width: dim per input feature."""
        return n_in * self.dim

    def parameters(self, n_in: int) -> list[Parameter]:
        """``edges`` (n_in, T + 1), ``linear`` (n_in, dim), ``weight`` (n_in, T, dim),
        ``bias`` (n_in, dim)."""
        bound = 1.0 / math.sqrt(self.dim)
        return [Parameter("edges", (n_in, self.n_bins + 1), False, "edges", trained=False),
                Parameter("linear", (n_in, self.dim), True, "uniform", bound),
                Parameter("weight", (n_in, self.n_bins, self.dim), True, "zeros"),
                Parameter("bias", (n_in, self.dim), False, "uniform", bound)]

    def flops(self, n_in: int) -> int:
        """Forward-pass operations per row: the products, the linear term and
        the bias, and the codes counted as four each."""
        return n_in * (2 * self.n_bins * self.dim + 3 * self.dim + 4 * self.n_bins)

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "piecewise_linear", "n_bins": ..., "dim": ..., "activation": ...}``."""
        return {"kind": self.kind, "n_bins": self.n_bins, "dim": self.dim,
                "activation": self.activation}

    def describe(self) -> str:
        """The layer in a few words, for a summary."""
        return f"{self.n_bins} bins (fitted edges), {self.activation}"

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        # per feature: the bins' codes (batch, n, T) from constants made of the
        # edges (each bin's start, width - 1 where it has none - and clip
        # bounds), times its weights (Einsum), plus x u and the bias
        p = f"{graph.prefix}{node.name}"
        codes = None
        if node.categorical:
            x, codes = graph.split(x, node.n_numeric, node.n_in, p)
        c = {name: graph.const(f"{p}.{name}", value.astype(graph.dtype))
             for name, value in zip(("start", "width", "lower", "upper", "live"),
                                    bin_bounds(weights[f"{node.name}.edges"]))}
        u = graph.const(f"{p}.linear", np.array(weights[f"{node.name}.linear"]))
        w = graph.const(f"{p}.weight", np.array(weights[f"{node.name}.weight"]))
        b = graph.const(f"{p}.bias", np.array(weights[f"{node.name}.bias"]))
        axes = graph.const(f"{p}.axes", np.array([2], dtype=np.int64))
        graph.node("Unsqueeze", [x, axes], [f"{p}.x3"])
        graph.node("Sub", [f"{p}.x3", c["start"]], [f"{p}.offset"])
        graph.node("Div", [f"{p}.offset", c["width"]], [f"{p}.position"])
        graph.node("Max", [f"{p}.position", c["lower"]], [f"{p}.above"])
        graph.node("Min", [f"{p}.above", c["upper"]], [f"{p}.clipped"])
        graph.node("Mul", [f"{p}.clipped", c["live"]], [f"{p}.bin_codes"])
        graph.node("Einsum", [f"{p}.bin_codes", w], [f"{p}.product"], equation="bnt,ntd->bnd")
        graph.node("Mul", [f"{p}.x3", u], [f"{p}.linear_term"])
        graph.node("Add", [f"{p}.product", f"{p}.linear_term"], [f"{p}.sum"])
        graph.node("Add", [f"{p}.sum", b], [f"{p}.z3"])
        return _onnx_features_output(graph, f"{p}.z3", node, self.dim, self.activation, codes)

    def __repr__(self) -> str:
        return (f"PiecewiseLinear(n_bins={self.n_bins}, dim={self.dim}, "
                f"activation={self.activation!r})")


@dataclass(frozen=True)
class Embedding:
    """Embeddings of the categorical inputs: each input's code becomes its row
    of a learned table, ``dim`` numbers; the numeric inputs pass through
    first. A table has a row per category and one more, for code -1: a value
    unseen in training, or missing.

    Parameters
    ----------
    dim : int
        Numbers per categorical input.

    Notes
    -----
    Parameters ``table0``, ``table1``, ... (cardinality + 1, dim), one per
    categorical input, normal with standard deviation 1 (as PyTorch's
    ``nn.Embedding``); L2 decays none.
    """

    dim: int

    kind = "embedding"

    def __post_init__(self):
        object.__setattr__(self, "dim", check_int(self.dim, "Embedding.dim", minimum=1,
                                                  maximum=MAX_DIMENSION))

    def tables(self, categorical) -> list[Parameter]:
        """``table{j}`` (cardinality + 1, dim) for each categorical input j."""
        return [Parameter(f"table{j}", (c + 1, self.dim), False, "normal", 1.0)
                for j, c in enumerate(categorical)]

    def flops(self, n_in: int) -> int:
        """Operations per row: none (copies)."""
        return 0

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "embedding", "dim": ...}``."""
        return {"kind": self.kind, "dim": self.dim}

    def describe(self) -> str:
        """The layer in a few words, for a summary."""
        return f"dim {self.dim} per category"

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        # the numeric columns, then each code's row (code -1: the last row)
        p = f"{graph.prefix}{node.name}"
        numeric, codes = graph.split(x, node.n_numeric, node.n_in, p)
        parts = [numeric] if numeric is not None else []
        for j, cardinality in enumerate(node.categorical):
            table = graph.const(f"{p}.table{j}", np.array(weights[f"{node.name}.table{j}"]))
            rows = graph.code_rows(codes, j, cardinality, f"{p}.input{j}")
            graph.node("Gather", [table, rows], [f"{p}.input{j}.vectors"], axis=0)
            parts.append(f"{p}.input{j}.vectors")
        graph.node("Concat", parts, [f"{p}.y"], axis=1)
        return f"{p}.y"

    def __repr__(self) -> str:
        return f"Embedding({self.dim})"


@dataclass(frozen=True)
class OneHot:
    """Indicator vectors of the categorical inputs: each input's code becomes
    cardinality + 1 numbers, a one where its category is (the last for code
    -1: unseen in training, or missing), zeros elsewhere; the numeric inputs
    pass through first. No parameters."""

    kind = "one_hot"

    def flops(self, n_in: int) -> int:
        """Operations per row: none (copies)."""
        return 0

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "one_hot"}``."""
        return {"kind": self.kind}

    def describe(self) -> str:
        """The layer in a few words, for a summary."""
        return "indicators"

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        p = f"{graph.prefix}{node.name}"
        numeric, codes = graph.split(x, node.n_numeric, node.n_in, p)
        parts = [numeric] if numeric is not None else []
        for j, cardinality in enumerate(node.categorical):
            rows = graph.code_rows(codes, j, cardinality, f"{p}.input{j}")
            positions = graph.const(f"{p}.input{j}.positions",
                                    np.arange(cardinality + 1, dtype=np.int64))
            axes = graph.const(f"{p}.input{j}.axes", np.array([1], dtype=np.int64))
            graph.node("Unsqueeze", [rows, axes], [f"{p}.input{j}.rows2"])
            graph.node("Equal", [f"{p}.input{j}.rows2", positions], [f"{p}.input{j}.hot"])
            graph.cast(f"{p}.input{j}.hot", f"{p}.input{j}.indicators")
            parts.append(f"{p}.input{j}.indicators")
        graph.node("Concat", parts, [f"{p}.y"], axis=1)
        return f"{p}.y"

    def __repr__(self) -> str:
        return "OneHot()"


@dataclass(frozen=True)
class BatchEnsemble:
    """An ensemble of k networks inside one (BatchEnsemble, Wen et al., 2020;
    TabM, Gorishniy et al., 2025): the members share every layer's weights
    but the last, and training updates all of them at once.

    Given to an architecture (``Architecture(..., ensemble=BatchEnsemble(32))``),
    it turns each row, after the embedding layers, into k rows, one per
    member; every later layer runs on the members' rows with shared weights
    (one matrix product for all of them), each member's dropout masks its own;
    the last layer is each member's own (k output heads, as in TabM). The loss
    is the mean of the members' losses, the prediction the mean of their
    probabilities (or values); :meth:`archfit.FitModel.predict_members` gives
    each member's.

    Parameters
    ----------
    k : int, default 32
        Members, 1 to 1024.
    adapters : {"first", "all", "none"}, default "first"
        ``"first"``: each member scales the shared layers' input by its own
        vector r_m, initialised with random signs (TabM-mini); ``"all"``: every
        Dense layer but the last is ``activation((x ∘ r_m) W ∘ s_m + b_m)``,
        rank-1 adapters r_m, s_m and a bias of each member's (TabM; the first
        layer's r_m random signs, the others' r_m and s_m ones); ``"none"``:
        the members differ by their heads and dropout masks alone.

    Notes
    -----
    Parameters: ``ensemble0.scale`` (k, width) with ``"first"`` (no decay);
    with ``"all"`` each Dense layer's (an ``adapted_dense`` node's) ``weight``
    (n_in, n_out), decayed, ``scale_in`` (k, n_in), ``scale_out`` (k, n_out)
    and ``bias`` (k, n_out); the last layer's ``weight`` (k, n_in, n_out),
    decayed, and ``bias`` (k, n_out).
    """

    k: int = 32
    adapters: str = "first"

    kind = "replicate"

    def __post_init__(self):
        object.__setattr__(self, "k", check_int(self.k, "BatchEnsemble.k", minimum=1,
                                                maximum=kernels.MAX_MEMBERS))
        if not isinstance(self.adapters, str) or self.adapters not in ("all", "first", "none"):
            raise ValueError(f"BatchEnsemble.adapters must be 'all', 'first' or 'none', got "
                             f"{self.adapters!r}")

    def replace(self, **changes) -> "BatchEnsemble":
        """A copy with some fields changed."""
        return BatchEnsemble(**{**self.to_dict(), **changes})

    def parameters(self, n_in: int) -> list[Parameter]:
        """``scale`` (k, n_in) with ``"first"``, random signs; none else."""
        if self.adapters != "first":
            return []
        return [Parameter("scale", (self.k, n_in), False, "signs")]

    def flops(self, n_in: int) -> int:
        """Operations per row: a product per member and column."""
        return self.k * n_in

    def to_dict(self) -> dict[str, Any]:
        """``{"k": ..., "adapters": ...}``."""
        return {"k": self.k, "adapters": self.adapters}

    @classmethod
    def from_dict(cls, d, where: str = "ensemble") -> "BatchEnsemble":
        """The ensemble of :meth:`to_dict`'s form."""
        if not isinstance(d, dict) or not set(d) <= {"k", "adapters"}:
            raise ValueError(f"{where} must be {{'k': int, 'adapters': str}}, got {d!r}")
        return cls(**d)

    def describe(self) -> str:
        """The ensemble in a few words, for a summary."""
        return f"{self.k} members, adapters {self.adapters}"

    def _onnx(self, graph, x: str, node: Node, weights, inputs) -> str:
        # (batch, n) -> (batch, k, n) scaled per member -> (batch k, n): member m
        # of row i at row i k + m, as the kernels lay them out
        p = f"{graph.prefix}{node.name}"
        axes = graph.const(f"{p}.axes", np.array([1], dtype=np.int64))
        graph.node("Unsqueeze", [x, axes], [f"{p}.x3"])
        if self.adapters == "first":
            r = graph.const(f"{p}.scale", np.array(weights[f"{node.name}.scale"]))
        else:
            r = graph.const(f"{p}.ones", np.ones((self.k, node.n_in), dtype=graph.dtype))
        graph.node("Mul", [f"{p}.x3", r], [f"{p}.members"])
        shape = graph.const(f"{p}.shape", np.array([-1, node.n_in], dtype=np.int64))
        graph.node("Reshape", [f"{p}.members", shape], [f"{p}.y"])
        return f"{p}.y"

    def __repr__(self) -> str:
        return f"BatchEnsemble(k={self.k}, adapters={self.adapters!r})"


def _adapted_dense_onnx(graph, x: str, node: Node, weights) -> str:
    """A Dense layer with each member's adapters: (batch k, n_in) as (batch, k,
    n_in), times r; the shared product; times s, plus the bias; activation."""
    p = f"{graph.prefix}{node.name}"
    k = node.members

    def const(suffix):
        return graph.const(f"{p}.{suffix}", np.array(weights[f"{node.name}.{suffix}"]))

    shape_in = graph.const(f"{p}.shape_in", np.array([-1, k, node.n_in], dtype=np.int64))
    shape_out = graph.const(f"{p}.shape_out", np.array([-1, node.n_out], dtype=np.int64))
    graph.node("Reshape", [x, shape_in], [f"{p}.x3"])
    graph.node("Mul", [f"{p}.x3", const("scale_in")], [f"{p}.scaled"])
    graph.node("MatMul", [f"{p}.scaled", const("weight")], [f"{p}.product"])
    graph.node("Mul", [f"{p}.product", const("scale_out")], [f"{p}.rescaled"])
    graph.node("Add", [f"{p}.rescaled", const("bias")], [f"{p}.z3"])
    graph.node("Reshape", [f"{p}.z3", shape_out], [f"{p}.z"])
    return _onnx_activation(graph, node.layer.activation, f"{p}.z", p)


def _member_dense_onnx(graph, x: str, node: Node, weights) -> str:
    """An ensemble's last layer: each member's rows times its own weights, to
    (batch, k, n_out) - the head then averages over the members."""
    p = f"{graph.prefix}{node.name}"
    k = node.members
    shape = graph.const(f"{p}.shape", np.array([-1, k, node.n_in], dtype=np.int64))
    w = graph.const(f"{p}.weight", np.array(weights[f"{node.name}.weight"]))
    b = graph.const(f"{p}.bias", np.array(weights[f"{node.name}.bias"]))
    graph.node("Reshape", [x, shape], [f"{p}.x3"])
    graph.node("Einsum", [f"{p}.x3", w], [f"{p}.product"], equation="bkn,kno->bko")
    graph.node("Add", [f"{p}.product", b], [f"{p}.z"])
    return f"{p}.z"


LAYERS = (Dense, LayerNorm, Residual, Periodic, PiecewiseLinear, Embedding, OneHot)
# the kinds that come before an ensemble's members
_EMBEDDINGS = (Periodic, PiecewiseLinear, Embedding, OneHot)
_BY_KIND = {cls.kind: cls for cls in LAYERS}


def layer_from_dict(d: dict[str, Any], where: str = "layer"):
    """A layer from its ``to_dict()`` form. A dict without ``"kind"`` is a
    Dense layer (files of format version 1 stored them so)."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a dict with a 'kind', got {type(d).__name__}")
    d = dict(d)
    kind = d.pop("kind", "dense")
    cls = _BY_KIND.get(kind)
    if cls is None:
        raise ValueError(f"{where}: unknown kind of layer {kind!r}; archfit knows "
                         f"{sorted(_BY_KIND)}")
    if cls is Residual:
        inner = d.pop("layers", None)
        if d or not isinstance(inner, list):
            raise ValueError(f"{where}: a residual layer is {{'kind': 'residual', "
                             "'layers': [...]}")
        return Residual([layer_from_dict(x, f"{where}.layers[{i}]") for i, x in enumerate(inner)])
    fields = set(cls.__dataclass_fields__)
    if set(d) - fields or (cls is Dense and "units" not in d):
        raise ValueError(f"{where}: a {kind} layer takes {sorted(fields)}, got {sorted(d)}")
    return cls(**d)


def flatten(n_numeric: int, layers: Sequence, categorical: tuple = (),
            ensemble: "BatchEnsemble | None" = None) -> tuple[Node, ...]:
    """The kernels' layers of a stack: a Residual's layers, then an ``add``
    linked to its first; names numbered per kind in order (``dense0``,
    ``layer_norm0``, ``residual0``). Categorical inputs (their cardinalities)
    follow the numeric ones; an Embedding or OneHot layer takes them, a
    Periodic or PiecewiseLinear layer passes them through, and no other kind
    may see them. A PiecewiseLinear layer comes first: its edges are fitted
    on the inputs. With an `ensemble`, a ``replicate`` node comes before the
    first layer that is not an embedding, and the last Dense is a
    ``member_dense`` node."""
    nodes: list[Node] = []
    counts: dict[str, int] = {}
    width = n_numeric + len(categorical)
    codes = tuple(categorical)

    def name(kind):
        counts[kind] = counts.get(kind, 0) + 1
        return f"{kind}{counts[kind] - 1}"

    def numeric_only(layer):
        if codes:
            raise ValueError(
                f"{layer!r} would read the categorical inputs' codes as numbers: put an "
                "Embedding or OneHot layer before it (a Periodic or PiecewiseLinear layer "
                "passes codes through)")

    members, placed = 1, False

    def adapted(layer) -> str:
        # with adapters on every layer, an ensemble's Dense layers have them
        if placed and ensemble.adapters == "all" and isinstance(layer, Dense):
            return "adapted_dense"
        return layer.kind

    for index, layer in enumerate(layers):
        if ensemble is not None and not placed and not isinstance(layer, _EMBEDDINGS):
            numeric_only(ensemble)
            nodes.append(Node(name("ensemble"), ensemble, "replicate", width, width, -1))
            members, placed = ensemble.k, True
        if placed and isinstance(layer, _EMBEDDINGS):
            raise ValueError(f"{layer!r} comes after the first other layer, where the "
                             f"ensemble's members begin: with {ensemble!r}, put the embedding "
                             "layers first")
        if placed and index == len(layers) - 1:
            nodes.append(Node(name("member_dense"), layer, "member_dense", width, layer.units, -1,
                              (), members))
            width = layer.units
        elif isinstance(layer, Residual):
            numeric_only(layer)
            layer.width(width)          # refuses a block that changes the width
            first = len(nodes)
            for inner in layer.layers:
                out = inner.width(width)
                kind = adapted(inner)
                nodes.append(Node(name(kind), inner, kind, width, out, -1, (), members))
                width = out
            nodes.append(Node(name("residual"), layer, "add", width, width, first, (), members))
        elif isinstance(layer, (Embedding, OneHot)):
            if not codes:
                raise ValueError(f"{layer!r} needs categorical inputs (Inputs(categorical=...)) "
                                 "that no earlier layer has taken")
            n_num = width - len(codes)
            out = n_num + (len(codes) * layer.dim if isinstance(layer, Embedding)
                           else sum(c + 1 for c in codes))
            nodes.append(Node(name(layer.kind), layer, layer.kind, width, out, -1, codes))
            width, codes = out, ()
        elif isinstance(layer, (Periodic, PiecewiseLinear)):
            if isinstance(layer, PiecewiseLinear) and nodes:
                raise ValueError(f"{layer!r} must be the first layer: its bins are fitted on "
                                 f"the network's inputs, and here it follows {nodes[-1].layer!r}")
            n_num = width - len(codes)
            if n_num < 1:
                raise ValueError(f"{layer!r} embeds numeric inputs, and there are none")
            out = n_num * layer.dim + len(codes)
            nodes.append(Node(name(layer.kind), layer, layer.kind, width, out, -1, codes))
            width = out
        else:
            numeric_only(layer)
            out = layer.width(width)
            kind = adapted(layer)
            nodes.append(Node(name(kind), layer, kind, width, out, -1, (), members))
            width = out
    return tuple(nodes)


def bin_bounds(edges) -> tuple[np.ndarray, ...]:
    """The piecewise-linear codes of features with these edges (n, T + 1) as
    arrays (n, T), float64: ``min(max((x - start) / width, lower), upper) *
    live`` is bin t's code of x. start is each bin's first edge, width its
    width (1 for a bin of none), lower 0 but -inf for the first bin, upper 1
    but +inf for the last live one, live 1 for a bin of positive width, else
    0. The ONNX graph computes the codes so."""
    edges = np.asarray(edges, dtype=np.float64)
    start, stop = edges[:, :-1], edges[:, 1:]
    T = start.shape[1]
    live = stop > start
    after = np.concatenate([stop[:, 1:], np.full((len(edges), 1), -np.inf)], axis=1)
    lower = np.where(np.arange(T) > 0, 0.0, -np.inf) + np.zeros_like(start)
    upper = np.where((after > stop) & (np.arange(T) < T - 1), 1.0, np.inf)
    return start, np.where(live, stop - start, 1.0), lower, upper, live.astype(np.float64)


def _onnx_features_output(graph, z3: str, node: Node, dim: int, activation: str,
                          codes: str | None) -> str:
    """A per-feature embedding's end (Periodic, PiecewiseLinear): its values
    (batch, n, dim) as (batch, n dim), the activation, then the input's
    categorical codes passed through."""
    p = f"{graph.prefix}{node.name}"
    shape = graph.const(f"{p}.shape", np.array([0, node.n_numeric * dim], dtype=np.int64))
    graph.node("Reshape", [z3, shape], [f"{p}.z"])
    y = _onnx_activation(graph, activation, f"{p}.z", p)
    if codes is None:
        return y
    graph.node("Concat", [y, codes], [f"{p}.y"], axis=1)
    return f"{p}.y"


def _onnx_activation(graph, name: str, x: str, prefix: str) -> str:
    """An activation in ONNX operators (gelu as 0.5 x (1 + erf(x / sqrt 2)))."""
    if name == "identity":
        return x
    out = f"{prefix}.a"
    if name == "relu":
        graph.node("Relu", [x], [out])
    elif name == "leaky_relu":
        graph.node("LeakyRelu", [x], [out], alpha=0.01)
    elif name == "tanh":
        graph.node("Tanh", [x], [out])
    elif name == "sigmoid":
        graph.node("Sigmoid", [x], [out])
    elif name == "gelu":
        half = graph.const(f"{prefix}.half", np.array(0.5, dtype=graph.dtype))
        one = graph.const(f"{prefix}.one", np.array(1.0, dtype=graph.dtype))
        root2 = graph.const(f"{prefix}.sqrt2", np.array(math.sqrt(2.0), dtype=graph.dtype))
        graph.node("Div", [x, root2], [f"{prefix}.scaled"])
        graph.erf(f"{prefix}.scaled", f"{prefix}.erf")
        graph.node("Add", [f"{prefix}.erf", one], [f"{prefix}.cdf2"])
        graph.node("Mul", [x, f"{prefix}.cdf2"], [f"{prefix}.xcdf2"])
        graph.node("Mul", [f"{prefix}.xcdf2", half], [out])
    else:  # pragma: no cover - Dense validates activation names
        raise ValueError(f"no ONNX translation for activation {name!r}")
    return out
