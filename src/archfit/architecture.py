"""The architecture: the shape of a network, with no values in it.

An :class:`Architecture` is input size, a sequence of :class:`Dense` layers and
an output head. It knows how many parameters a model of this shape has and
where each weight and bias lives in the flat parameter vector θ, but it holds
no parameter values and no fitting settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

from archfit import kernels
from archfit._validation import MAX_DIMENSION, check_int

# The names the kernels understand (declared once, in archfit/kernels.pxd).
ACTIVATIONS = tuple(kernels.ACTIVATIONS)
OUTPUTS = tuple(kernels.HEADS)
MAX_LAYERS = kernels.MAX_LAYERS


def _check_activation(name) -> str:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return name


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
    """

    units: int
    activation: str = "identity"

    def __post_init__(self):
        check_int(self.units, "Dense.units", minimum=1, maximum=MAX_DIMENSION)
        _check_activation(self.activation)
        object.__setattr__(self, "units", int(self.units))

    def to_dict(self) -> dict[str, Any]:
        """``{"units": ..., "activation": ...}``; ``Dense(**d)`` rebuilds the layer."""
        return {"units": self.units, "activation": self.activation}


class LayoutEntry(NamedTuple):
    """Where one weight or bias lives in θ: ``theta[start:stop].reshape(shape)``."""

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int


class Architecture:
    """The shape of a network: depth, widths, activations and output head.

    Parameters
    ----------
    n_inputs : int
        Number of input features.
    layers : sequence of Dense
        The layers, first to last. The last layer's ``units`` is the number of
        outputs and its activation must be ``"identity"``.
    output : {"softmax", "sigmoid", "linear", "exponential"}
        The output head. It fixes the loss of a :class:`~archfit.Model`:
        softmax → categorical cross-entropy, sigmoid → binary cross-entropy
        (multi-label), linear → squared error (or Huber), exponential (a mean
        ``exp(z)``, for counts) → Poisson deviance.

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

    __slots__ = ("_n_inputs", "_layers", "_output", "_layout")

    def __init__(self, n_inputs: int, layers: Sequence[Dense], output: str = "linear"):
        n_inputs = check_int(n_inputs, "n_inputs", minimum=1, maximum=MAX_DIMENSION)
        if isinstance(layers, Dense) or not isinstance(layers, Sequence):
            raise TypeError("layers must be a sequence (list or tuple) of Dense layers")
        layers = tuple(layers)
        if not layers:
            raise ValueError("layers must contain at least one Dense layer")
        if len(layers) > MAX_LAYERS:
            raise ValueError(f"layers: at most {MAX_LAYERS} layers are supported, got {len(layers)}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{i}] must be a Dense layer, got {type(layer).__name__}")
        if layers[-1].activation != "identity":
            raise ValueError(
                f"layers[-1].activation must be 'identity', got {layers[-1].activation!r}: "
                f"the output head ({output!r}) applies the output function")
        if not isinstance(output, str) or output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if output == "softmax" and layers[-1].units < 2:
            raise ValueError("output='softmax' needs at least 2 output units; "
                             "use output='sigmoid' with 1 unit for a binary problem")
        self._n_inputs = n_inputs
        self._layers = layers
        self._output = output
        self._layout = self._make_layout()

    def _make_layout(self) -> tuple[LayoutEntry, ...]:
        # where the kernels put each block (computed there, once); names and shapes here
        starts, _ = kernels.parameter_layout(self.sizes)
        entries = []
        for i, ((n_in, n_out), (w, b)) in enumerate(zip(zip(self.sizes[:-1], self.sizes[1:]),
                                                        starts)):
            entries.append(LayoutEntry(f"dense{i}.weight", (n_in, n_out), w, w + n_in * n_out))
            entries.append(LayoutEntry(f"dense{i}.bias", (n_out,), b, b + n_out))
        return tuple(entries)

    # ---- what the architecture is --------------------------------------------------
    @property
    def n_inputs(self) -> int:
        """Number of input features."""
        return self._n_inputs

    @property
    def layers(self) -> tuple[Dense, ...]:
        """The layers, first to last."""
        return self._layers

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
        """Input size followed by every layer's width."""
        return (self._n_inputs,) + tuple(layer.units for layer in self._layers)

    @property
    def activations(self) -> tuple[str, ...]:
        """Activation of each layer."""
        return tuple(layer.activation for layer in self._layers)

    @property
    def layout(self) -> tuple[LayoutEntry, ...]:
        """Name, shape, start and stop of every weight and bias in θ, in order."""
        return self._layout

    @property
    def n_parameters(self) -> int:
        """Length of θ: all weights and biases."""
        return self._layout[-1].stop

    @property
    def flops_per_sample(self) -> int:
        """Floating-point operations of one forward pass for one sample.

        Counts a multiply-add as two operations in each matrix product, plus one
        per bias addition; activations and the head are not counted. A training
        step (forward + backward) costs about three times this.
        """
        return sum(2 * a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def summary(self) -> str:
        """A readable table: one row per layer with its shape and parameter count."""
        rows = [("layer", "shape", "activation", "parameters")]
        rows.append(("input", f"({self._n_inputs},)", "", ""))
        for i, layer in enumerate(self._layers):
            n_in = self.sizes[i]
            rows.append((f"dense{i}", f"{n_in} -> {layer.units}", layer.activation,
                         f"{n_in * layer.units + layer.units:,}"))
        rows.append(("output", f"({self.n_outputs},)", self._output, ""))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]

        def fmt(r):
            return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                              r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()

        rule = "-" * len(fmt(rows[0]))
        lines = [fmt(rows[0]), rule] + [fmt(r) for r in rows[1:]] + [rule]
        lines.append(f"{self.n_parameters:,} parameters, "
                     f"{self.flops_per_sample:,} FLOPs per sample (forward)")
        return "\n".join(lines)

    # ---- serialisation and identity -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` rebuilds an equal architecture."""
        return {"n_inputs": self._n_inputs,
                "layers": [layer.to_dict() for layer in self._layers],
                "output": self._output}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Architecture":
        """Rebuild from :meth:`to_dict`'s output; unknown or missing keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise TypeError(f"Architecture.from_dict needs a dict, got {type(d).__name__}")
        expected = {"n_inputs", "layers", "output"}
        if set(d) != expected:
            raise ValueError(f"architecture dict must have exactly the keys {sorted(expected)}, "
                             f"got {sorted(map(str, d))}")
        layers = d["layers"]
        if not isinstance(layers, list):
            raise ValueError("architecture dict: 'layers' must be a list")
        dense = []
        for i, layer in enumerate(layers):
            if not isinstance(layer, dict) or set(layer) - {"units", "activation"} or "units" not in layer:
                raise ValueError(f"architecture dict: layers[{i}] must be "
                                 "{'units': int, 'activation': str}")
            dense.append(Dense(**layer))
        return cls(d["n_inputs"], dense, d["output"])

    def __eq__(self, other) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return (self._n_inputs, self._layers, self._output) == (
            other._n_inputs, other._layers, other._output)

    def __hash__(self) -> int:
        return hash((self._n_inputs, self._layers, self._output))

    def __repr__(self) -> str:
        layers = ", ".join(
            f"Dense({l.units}" + (f", activation={l.activation!r})" if l.activation != "identity" else ")")
            for l in self._layers)
        return f"Architecture(n_inputs={self._n_inputs}, layers=[{layers}], output={self._output!r})"

    def __reduce__(self):
        return (Architecture.from_dict, (self.to_dict(),))
