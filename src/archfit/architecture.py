"""The architecture: the shape of a network, with no values in it.

An :class:`Architecture` is the input size, a sequence of layers (the kinds
of :mod:`archfit.layers`: Dense, LayerNorm, Residual) and an output head. It
knows how many parameters a model of this shape has and where each lives in
the flat parameter vector θ (the kernels lay θ out, once), but it holds no
parameter values and no fitting settings.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

from archfit import kernels
from archfit._validation import MAX_DIMENSION, check_int
from archfit.layers import (ACTIVATIONS, LAYERS, BatchEnsemble, Dense, Embedding, LayerNorm,
                            Node, OneHot, Periodic, PiecewiseLinear, Residual, flatten,
                            layer_from_dict)

# The names the kernels understand (declared once, in archfit/kernels.pxd).
OUTPUTS = tuple(kernels.HEADS)
MAX_LAYERS = kernels.MAX_LAYERS

__all__ = ["ACTIVATIONS", "Architecture", "BatchEnsemble", "Dense", "Embedding", "Inputs", "LayerNorm",
           "LayoutEntry", "OneHot", "Periodic", "PiecewiseLinear", "Residual"]


class Inputs(NamedTuple):
    """The columns of a row of X: ``numeric`` numeric ones, then one for each
    categorical input, holding a category's code: 0 .. cardinality - 1, or -1
    for a value unseen in training or missing.

    Parameters
    ----------
    numeric : int
        Numeric columns, first.
    categorical : sequence of int
        The cardinality (number of categories) of each categorical column,
        in order.

    Examples
    --------
    >>> import archfit as af
    >>> arch = af.Architecture(inputs=af.Inputs(numeric=3, categorical=[4, 2]),
    ...                        layers=[af.Embedding(5), af.Dense(8, "relu"), af.Dense(1)])
    >>> arch.n_inputs, arch.nodes[0].n_out
    (5, 13)
    """

    numeric: int
    categorical: tuple = ()

    @classmethod
    def of(cls, numeric, categorical=()) -> "Inputs":
        """Checked inputs (tuples of ints)."""
        numeric = check_int(numeric, "Inputs.numeric", minimum=0, maximum=MAX_DIMENSION)
        if isinstance(categorical, (str, bytes)) or not isinstance(categorical, Sequence):
            raise TypeError("Inputs.categorical must be a sequence of cardinalities, got "
                            f"{type(categorical).__name__}")
        categorical = tuple(check_int(c, f"Inputs.categorical[{j}]", minimum=1,
                                      maximum=2**24 - 1)
                            for j, c in enumerate(categorical))
        if len(categorical) > kernels.MAX_CATEGORICAL:
            raise ValueError(f"at most {kernels.MAX_CATEGORICAL} categorical inputs, got "
                             f"{len(categorical)}")
        if numeric + len(categorical) < 1:
            raise ValueError("Inputs needs at least one column")
        return cls(numeric, categorical)


class LayoutEntry(NamedTuple):
    """Where one weight or bias lives in θ: ``theta[start:stop].reshape(shape)``."""

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int


class Architecture:
    """The shape of a network: its layers, their widths and the output head.

    Parameters
    ----------
    n_inputs : int
        Number of input features, all numeric (or give `inputs`).
    layers : sequence of Dense, LayerNorm, Residual, Periodic, PiecewiseLinear, Embedding or OneHot
        The layers, first to last. The last must be a
        :class:`~archfit.layers.Dense` layer
        with activation ``"identity"``: its ``units`` is the number of outputs.
    output : {"softmax", "sigmoid", "linear", "exponential"}
        The output head. It fixes the loss of a :class:`~archfit.Model`:
        softmax → categorical cross-entropy, sigmoid → binary cross-entropy
        (multi-label), linear → squared error (or Huber), exponential (a mean
        ``exp(z)``, for counts) → Poisson deviance.
    inputs : Inputs, optional
        Numeric and categorical columns (instead of `n_inputs`): the
        categorical ones come last in X and must go through an
        :class:`~archfit.layers.Embedding` or :class:`~archfit.layers.OneHot`
        layer (a Periodic or PiecewiseLinear layer passes them through).
    ensemble : BatchEnsemble, optional
        k members inside the network, sharing every layer's weights but the
        last's (TabM): after the embedding layers each row becomes k rows;
        the prediction is the mean of the members'.

    Examples
    --------
    >>> import archfit as af
    >>> arch = af.Architecture(n_inputs=64,
    ...                        layers=[af.Dense(32, activation="relu"), af.Dense(10)],
    ...                        output="softmax")
    >>> arch.n_parameters
    2410
    >>> arch.layout[0]
    LayoutEntry(name='dense0.weight', shape=(64, 32), start=0, stop=2048)
    """

    __slots__ = ("_n_inputs", "_inputs", "_layers", "_output", "_nodes", "_layout", "_decayed",
                 "_fitted", "_ensemble")

    def __init__(self, n_inputs: int | None = None, layers: Sequence = (),
                 output: str = "linear", *, inputs: Inputs | None = None,
                 ensemble: BatchEnsemble | None = None):
        if inputs is not None:
            if not isinstance(inputs, Inputs):
                raise TypeError(f"inputs must be an Inputs, got {type(inputs).__name__}")
            inputs = Inputs.of(*inputs)
            if n_inputs is not None and n_inputs != inputs.numeric + len(inputs.categorical):
                raise ValueError(f"n_inputs={n_inputs!r} contradicts inputs={inputs!r}; give "
                                 "one of them")
            n_inputs = inputs.numeric + len(inputs.categorical)
        elif n_inputs is None:
            raise TypeError("Architecture needs n_inputs (numeric columns) or inputs=Inputs(...)")
        else:
            n_inputs = check_int(n_inputs, "n_inputs", minimum=1, maximum=MAX_DIMENSION)
            inputs = Inputs(n_inputs)
        if isinstance(layers, LAYERS) or not isinstance(layers, Sequence) \
                or isinstance(layers, str):
            raise TypeError("layers must be a sequence (list or tuple) of layers "
                            "(Dense, LayerNorm, Residual, Periodic, PiecewiseLinear, "
                            "Embedding, OneHot)")
        layers = tuple(layers)
        if not layers:
            raise ValueError("layers must contain at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, LAYERS):
                raise TypeError(f"layers[{i}] must be a layer (Dense, LayerNorm, Residual, "
                                f"Periodic, PiecewiseLinear, Embedding, OneHot), got "
                                f"{type(layer).__name__}")
        if not isinstance(layers[-1], Dense):
            raise ValueError(f"layers[-1] must be a Dense layer (its units are the outputs), "
                             f"got {layers[-1]!r}")
        if layers[-1].dropout is not None:
            raise ValueError(f"layers[-1] has dropout={layers[-1].dropout!r}: the last layer's "
                             "outputs are the network's, which dropout never masks")
        if layers[-1].activation != "identity":
            raise ValueError(
                f"layers[-1].activation must be 'identity', got {layers[-1].activation!r}: "
                f"the output head ({output!r}) applies the output function")
        if not isinstance(output, str) or output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if output == "softmax" and layers[-1].units < 2:
            raise ValueError("output='softmax' needs at least 2 output units; "
                             "use output='sigmoid' with 1 unit for a binary problem")
        if ensemble is not None and not isinstance(ensemble, BatchEnsemble):
            raise TypeError(f"ensemble must be a BatchEnsemble, got {type(ensemble).__name__}")
        nodes = flatten(inputs.numeric, layers, inputs.categorical, ensemble)
        if len(nodes) > MAX_LAYERS:
            raise ValueError(f"layers: at most {MAX_LAYERS} layers are supported (a residual "
                             f"block counts its layers and one more), got {len(nodes)}")
        self._n_inputs = n_inputs
        self._inputs = inputs
        self._layers = layers
        self._output = output
        self._nodes = nodes
        self._ensemble = ensemble
        self._layout, self._decayed, self._fitted = self._make_layout()

    def _make_layout(self):
        # where the kernels put each block (computed there, once); names and shapes here
        placed = kernels.layer_layout(self._inputs.numeric, [node.spec() for node in self._nodes],
                                      self._inputs.categorical)
        entries, decayed, fitted = [], [], []
        for node, where in zip(self._nodes, placed):
            start = where["start"]
            for parameter in node.parameters():
                size = math.prod(parameter.shape)
                entry = LayoutEntry(f"{node.name}.{parameter.suffix}", parameter.shape, start,
                                    start + size)
                start += size
                entries.append(entry)
                if parameter.decays:
                    decayed.append(entry)
                if not parameter.trained:
                    fitted.append(entry)
            if node.parameters():
                # the kernels' offsets: the first block at w_start, the layer ending at stop
                first = entries[-len(node.parameters())]
                assert first.start == where["w_start"] and \
                    entries[-1].stop == where["stop"], "the kernels' layout differs"
        return tuple(entries), tuple(decayed), tuple(fitted)

    # ---- what the architecture is --------------------------------------------------
    @property
    def n_inputs(self) -> int:
        """Number of input columns (numeric, then categorical codes)."""
        return self._n_inputs

    @property
    def inputs(self) -> Inputs:
        """The numeric and categorical input columns."""
        return self._inputs

    @property
    def layers(self) -> tuple:
        """The layers, first to last."""
        return self._layers

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The layers as the kernels run them: a residual block's layers, then
        its addition (``kind == "add"``), each with its name, kind and widths."""
        return self._nodes

    @property
    def output(self) -> str:
        """The output head: ``"softmax"``, ``"sigmoid"``, ``"linear"`` or ``"exponential"``."""
        return self._output

    @property
    def n_outputs(self) -> int:
        """Number of outputs (the last layer's units)."""
        return self._layers[-1].units

    @property
    def sizes(self) -> tuple[int, ...]:
        """Input size followed by the width of every node's output."""
        return (self._n_inputs,) + tuple(node.n_out for node in self._nodes)

    @property
    def activations(self) -> tuple[str, ...]:
        """Activation of each node (``"identity"`` for kinds without one)."""
        return tuple(node.layer.activation if node.kind in ("dense", "adapted_dense")
                     else "identity"
                     for node in self._nodes)

    @property
    def reads_sparse(self) -> bool:
        """Whether the first layer reads sparse inputs as they are (a Dense
        layer whose inputs no residual block adds): other networks are given
        sparse X made dense."""
        return self._nodes[0].kind == "dense" and all(n.link != 0 for n in self._nodes)

    @property
    def is_dense(self) -> bool:
        """Whether every layer is Dense (the multilayer perceptron)."""
        return all(node.kind == "dense" for node in self._nodes)

    @property
    def layout(self) -> tuple[LayoutEntry, ...]:
        """Name, shape, start and stop of every parameter array in θ, in order."""
        return self._layout

    @property
    def decayed(self) -> tuple[LayoutEntry, ...]:
        """The entries of :attr:`layout` that L2 decays (dense weights)."""
        return self._decayed

    @property
    def fitted(self) -> tuple[LayoutEntry, ...]:
        """The entries of :attr:`layout` that training leaves alone: bin edges,
        fitted on the training rows when a fit starts (their gradient is zero)."""
        return self._fitted

    @property
    def ensemble(self) -> BatchEnsemble | None:
        """The ensemble inside the network, or None."""
        return self._ensemble

    @property
    def members(self) -> int:
        """Members of the ensemble inside the network (1 without one)."""
        return 1 if self._ensemble is None else self._ensemble.k

    @property
    def n_parameters(self) -> int:
        """Length of θ: all weights and biases."""
        return self._layout[-1].stop

    @property
    def flops_per_sample(self) -> int:
        """Floating-point operations of one forward pass for one sample.

        Counts a multiply-add as two operations in each matrix product, plus one
        per bias addition (a layer norm as seven per column, a residual
        addition as one); activations and the head are not counted. A
        training step (forward + backward) costs about three times this.
        """
        return sum(node.flops() for node in self._nodes)

    def summary(self) -> str:
        """A readable table: one row per layer with its kind, shape, activation
        (or setting) and parameter count; a residual block's layers indented."""
        rows = [("layer", "kind", "shape", "activation", "parameters")]
        shape = (f"({self._n_inputs},)" if not self._inputs.categorical else
                 f"({self._inputs.numeric} numeric + {len(self._inputs.categorical)} categorical)")
        rows.append(("input", "", shape, "", ""))
        inside = set()
        for node in self._nodes:
            if node.kind == "add":
                inside.update(range(node.link, self._nodes.index(node)))
        for i, node in enumerate(self._nodes):
            count = sum(math.prod(p.shape) for p in node.parameters())
            name = ("  " if i in inside else "") + node.name
            kind = {"add": "residual add", "replicate": "ensemble",
                    "member_dense": "dense per member",
                    "adapted_dense": "dense, adapters"}.get(node.kind, node.kind)
            shape = (f"{node.n_in} -> {self.members} x {node.n_out}" if node.kind == "replicate"
                     else f"{node.n_in} -> {node.n_out}")
            rows.append((name, kind, shape, node.layer.describe(),
                         f"{count:,}" if node.kind != "add" else ""))
        rows.append(("output", "", f"({self.n_outputs},)", self._output
                     + (f", mean of {self.members}" if self.members > 1 else ""), ""))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]

        def fmt(r):
            return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                              r[2].ljust(widths[2]), r[3].ljust(widths[3]),
                              r[4].rjust(widths[4])]).rstrip()

        rule = "-" * len(fmt(rows[0]))
        lines = [fmt(rows[0]), rule] + [fmt(r) for r in rows[1:]] + [rule]
        lines.append(f"{self.n_parameters:,} parameters, "
                     f"{self.flops_per_sample:,} FLOPs per sample (forward)")
        return "\n".join(lines)

    # ---- serialisation and identity -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` rebuilds an equal architecture."""
        d = {"n_inputs": self._n_inputs,
             "layers": [layer.to_dict() for layer in self._layers],
             "output": self._output}
        if self._inputs.categorical:
            d["inputs"] = {"numeric": self._inputs.numeric,
                           "categorical": list(self._inputs.categorical)}
        if self._ensemble is not None:
            d["ensemble"] = self._ensemble.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Architecture":
        """Rebuild from :meth:`to_dict`'s output (a layer without ``"kind"``,
        as format version 1 stored them, is Dense); unknown or missing keys
        raise ``ValueError``."""
        if not isinstance(d, dict):
            raise TypeError(f"Architecture.from_dict needs a dict, got {type(d).__name__}")
        expected = {"n_inputs", "layers", "output"}
        if not expected <= set(d) <= expected | {"inputs", "ensemble"}:
            raise ValueError(f"architecture dict must have exactly the keys {sorted(expected)} "
                             f"(and 'inputs' with categorical inputs, 'ensemble' with one), "
                             f"got {sorted(map(str, d))}")
        layers = d["layers"]
        if not isinstance(layers, list):
            raise ValueError("architecture dict: 'layers' must be a list")
        inputs = d.get("inputs")
        if inputs is not None:
            if not isinstance(inputs, dict) or set(inputs) != {"numeric", "categorical"}:
                raise ValueError("architecture dict: 'inputs' must be {'numeric': int, "
                                 "'categorical': [int, ...]}")
            inputs = Inputs.of(inputs["numeric"], inputs["categorical"])
        ensemble = d.get("ensemble")
        if ensemble is not None:
            ensemble = BatchEnsemble.from_dict(ensemble, "architecture dict: 'ensemble'")
        return cls(d["n_inputs"], [layer_from_dict(layer, f"architecture dict: layers[{i}]")
                                   for i, layer in enumerate(layers)], d["output"],
                   inputs=inputs, ensemble=ensemble)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return (self._inputs, self._layers, self._output, self._ensemble) == (
            other._inputs, other._layers, other._output, other._ensemble)

    def __hash__(self) -> int:
        return hash((self._inputs, self._layers, self._output, self._ensemble))

    def __repr__(self) -> str:
        layers = ", ".join(map(repr, self._layers))
        start = (f"n_inputs={self._n_inputs}" if not self._inputs.categorical else
                 f"inputs=Inputs(numeric={self._inputs.numeric}, "
                 f"categorical={list(self._inputs.categorical)})")
        extra = f", ensemble={self._ensemble!r}" if self._ensemble is not None else ""
        return f"Architecture({start}, layers=[{layers}], output={self._output!r}{extra})"

    def __reduce__(self):
        return (Architecture.from_dict, (self.to_dict(),))
