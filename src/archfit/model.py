"""The model: an architecture with every weight a free parameter, f(x; θ).

A :class:`Model` is the family of functions an architecture can represent,
with a dtype and the loss its output head implies. It evaluates f(X; θ) and
the loss and gradient for any θ you give it, and never stores a θ itself.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from archfit import _threads
from archfit.kernels import Kernel
from archfit._memory import reserve
from archfit.binning import normal_edges
from archfit._targets import encode
from archfit._sparse import SparseRows, is_sparse
from archfit._streaming import FileRows, features, file_backed, in_memory
from archfit._validation import (as_features, as_parameters, as_sample_weight, check_float,
                                 check_int)
from archfit.architecture import Architecture

DTYPES = ("float32", "float64")
# Loss implied by each head, and the alternatives a head accepts.
DEFAULT_LOSS = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy",
                "linear": "squared_error", "exponential": "poisson"}
ALLOWED_LOSSES = {"softmax": ("cross_entropy",), "sigmoid": ("binary_cross_entropy",),
                  "linear": ("squared_error", "huber"), "exponential": ("poisson",)}


_warned_without_bfloat16 = False


def _warn_without_bfloat16() -> None:
    """Once per process: bfloat16 products on a CPU that has no bfloat16
    arithmetic are widened to float32 (correct, slower than float32)."""
    global _warned_without_bfloat16
    from archfit._kernels import _blas
    if _blas.BF16_BODY in ("vdpbf16ps", "amx") or _warned_without_bfloat16:
        return
    _warned_without_bfloat16 = True
    import warnings
    warnings.warn("precision='bfloat16': this CPU has no bfloat16 arithmetic (AVX512_BF16 "
                  "or AMX), so the products are widened to float32 - the same results, more "
                  "slowly than precision='float32'", RuntimeWarning, stacklevel=5)


class Model:
    """The family f(x; θ): an architecture, a dtype and the loss of its head.

    Parameters
    ----------
    architecture : Architecture
        The shape of the network.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of θ and of every computation.
    loss : str, optional
        Defaults to what the head implies: ``"cross_entropy"`` for softmax,
        ``"binary_cross_entropy"`` for sigmoid, ``"squared_error"`` for linear,
        ``"poisson"`` (half the Poisson deviance) for exponential. A linear head
        also accepts ``"huber"``.
    huber_delta : float, default 1.0
        Where the Huber loss turns from quadratic to linear.

    Notes
    -----
    The loss of one sample sums over outputs; the loss of a data set is the
    (weighted) mean over samples. Squared error is ``0.5 * sum((f - y)**2)``;
    Huber is ``0.5 r**2`` for ``|r| <= delta`` and ``delta (|r| - delta/2)``
    beyond. With ``l2``, the objective adds ``l2/2`` times the squared norm of
    every weight matrix (biases are not penalised).
    """

    __slots__ = ("_architecture", "_dtype", "_loss_name", "_huber_delta", "_kernel",
                 "_categorical", "_splits_rows", "_precisions")

    def __init__(self, architecture: Architecture, dtype: str = "float32", loss: str | None = None,
                 huber_delta: float = 1.0):
        if not isinstance(architecture, Architecture):
            raise TypeError(f"architecture must be an Architecture, got {type(architecture).__name__}")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}") from None
        if dt.name not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        output = architecture.output
        loss = DEFAULT_LOSS[output] if loss is None else loss
        if loss not in ALLOWED_LOSSES[output]:
            raise ValueError(f"loss {loss!r} does not fit a {output!r} output; "
                             f"choose one of {ALLOWED_LOSSES[output]}")
        self._architecture = architecture
        self._dtype = dt
        self._loss_name = loss
        self._huber_delta = check_float(huber_delta, "huber_delta", low=0.0, low_open=True)
        inputs = architecture.inputs
        self._categorical = inputs.categorical
        self._kernel = self._kernel_of("native")
        # whether one sample's forward pass shares a layer among threads
        self._splits_rows = self._kernel.splits_rows()
        self._precisions = {}

    def _kernel_of(self, precision: str) -> Kernel:
        inputs = self._architecture.inputs
        return Kernel([inputs.numeric], None, self._architecture.output, self._loss_name,
                      self._huber_delta, layers=[node.spec() for node in self._architecture.nodes],
                      categorical=inputs.categorical, precision=precision)

    def _in_precision(self, precision: str) -> "Model":
        """This model computing its dense products in `precision`
        (Hyperparameters.precision): itself for "float32", else a twin equal to
        it whose kernel rounds the products' operands (float32 models only)."""
        twin = self._precisions.get(precision)
        if twin is not None:
            return twin
        if precision == "float32":
            return self
        if self._dtype != np.float32:
            raise ValueError(f"precision={precision!r} is for float32 models; this model is "
                             f"{self._dtype.name} (its products stay {self._dtype.name})")
        _warn_without_bfloat16()
        twin = Model.__new__(Model)
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        twin._kernel = self._kernel_of(precision)
        twin._precisions = {precision: twin, "float32": self}
        self._precisions[precision] = twin
        return twin

    @property
    def architecture(self) -> Architecture:
        """The shape of the network."""
        return self._architecture

    @property
    def dtype(self) -> np.dtype:
        """Dtype of θ and of every computation."""
        return self._dtype

    @property
    def loss(self) -> str:
        """Name of the loss the output head implies (or the chosen alternative)."""
        return self._loss_name

    @property
    def huber_delta(self) -> float:
        """Threshold of the Huber loss (used only when ``loss == "huber"``)."""
        return self._huber_delta

    @property
    def n_parameters(self) -> int:
        """Length of θ."""
        return self._architecture.n_parameters

    # ---- parameters -------------------------------------------------------------------
    def init(self, seed: int = 0) -> np.ndarray:
        """A new θ: weights scaled to each layer's activation, biases zero.

        Dense layers followed by relu, leaky_relu or gelu get He
        initialisation (normal, standard deviation ``sqrt(2 / fan_in)``); the
        others Glorot (uniform on ``±sqrt(6 / (fan_in + fan_out))``); a layer
        norm's gain starts at one; a periodic embedding's frequencies and
        weights as :class:`~archfit.layers.Periodic` says, a piecewise-linear
        one's as :class:`~archfit.layers.PiecewiseLinear` says (its edges are
        standard normal quantiles until a fit puts the training rows' there). Draws are made in float64 with NumPy's
        PCG64, layer by layer, and rounded, so float32 and float64 models
        start from the same point.

        Parameters
        ----------
        seed : int
            Seed of the generator; the same seed gives the same θ.

        Returns
        -------
        numpy.ndarray
            C-contiguous, of the model's dtype, length ``n_parameters``.
        """
        rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
        arch = self._architecture
        largest = max(e.stop - e.start for e in arch.layout)
        reserve(self.n_parameters * self._dtype.itemsize + 8 * largest,
                f"the parameters of this model ({self.n_parameters:,})")
        theta = np.zeros(self.n_parameters, dtype=self._dtype)
        entries = iter(arch.layout)
        for node in arch.nodes:
            for parameter in node.parameters():
                entry = next(entries)
                # a weight's fans are its last two dimensions (an ensemble's head
                # has one matrix per member)
                if parameter.init == "he":
                    w = rng.normal(0.0, np.sqrt(2.0 / entry.shape[-2]), size=entry.shape)
                elif parameter.init == "glorot":
                    limit = np.sqrt(6.0 / (entry.shape[-2] + entry.shape[-1]))
                    w = rng.uniform(-limit, limit, size=entry.shape)
                elif parameter.init == "ones":
                    w = np.ones(entry.shape)
                elif parameter.init == "normal":
                    w = rng.normal(0.0, parameter.scale, size=entry.shape)
                elif parameter.init == "uniform":
                    w = rng.uniform(-parameter.scale, parameter.scale, size=entry.shape)
                elif parameter.init == "signs":
                    w = 2.0 * rng.integers(0, 2, size=entry.shape) - 1.0
                elif parameter.init == "edges":
                    w = np.broadcast_to(normal_edges(entry.shape[1] - 1), entry.shape)
                else:
                    continue                            # zeros
                theta[entry.start:entry.stop] = w.ravel()   # drawn in float64, then rounded
        return theta

    def member(self, theta: np.ndarray, m: int) -> tuple["Model", np.ndarray]:
        """Member m of the ensemble inside the network, as a network of its own.

        Returns a model whose :class:`~archfit.layers.BatchEnsemble` has one
        member, and its θ: member m's scales and last layer, the shared
        weights. Its outputs are member m's in the whole network (which
        averages them), up to the order of a matrix product's sums.
        """
        arch = self._architecture
        if arch.ensemble is None:
            raise ValueError("this model has no ensemble inside (Architecture(ensemble=...))")
        m = check_int(m, "m", minimum=0, maximum=arch.members - 1)
        single = Model(Architecture(layers=arch.layers, output=arch.output, inputs=arch.inputs,
                                    ensemble=arch.ensemble.replace(k=1)),
                       self._dtype.name, self._loss_name, self._huber_delta)
        # the arrays with a row per member: all of an ensemble's own nodes', and
        # an adapted layer's but its shared weight
        own = {f"{node.name}.{p.suffix}" for node in arch.nodes for p in node.parameters()
               if node.kind in ("replicate", "member_dense")
               or (node.kind == "adapted_dense" and p.suffix != "weight")}
        return single, single.flatten({
            name: (value[m:m + 1] if name in own else value)
            for name, value in self.unflatten(theta).items()})

    def unflatten(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Views of θ per weight and bias, keyed by layout name; no copies."""
        theta = self._check_theta(theta)
        return {e.name: theta[e.start:e.stop].reshape(e.shape) for e in self._architecture.layout}

    def flatten(self, parameters: dict[str, np.ndarray]) -> np.ndarray:
        """The inverse of :meth:`unflatten`: a new θ from per-layer arrays."""
        layout = self._architecture.layout
        names = {e.name for e in layout}
        if set(parameters) != names:
            missing, extra = names - set(parameters), set(parameters) - names
            raise ValueError(f"parameters: missing {sorted(missing)}, unexpected {sorted(extra)}")
        theta = np.empty(self.n_parameters, dtype=self._dtype)
        for e in layout:
            value = np.asarray(parameters[e.name])
            if value.shape != e.shape:
                raise ValueError(f"parameters[{e.name!r}] has shape {value.shape}, expected {e.shape}")
            theta[e.start:e.stop] = value.ravel()
        return as_parameters(theta, self.n_parameters, self._dtype)

    # ---- evaluation -------------------------------------------------------------------
    def predict(self, theta: np.ndarray, X) -> np.ndarray:
        """f(X; θ): class probabilities (softmax, sigmoid) or values (linear).

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_outputs) and the model's dtype.
        """
        theta = self._check_theta(theta)
        return self._outputs(theta, X)

    def _outputs(self, theta: np.ndarray, X) -> np.ndarray:
        """f(X; θ) for a valid θ: small ready arrays straight to the kernel
        (unless codes of categorical inputs need checking first)."""
        if type(X) is np.ndarray and not self._categorical:     # plain: no memmap, sparse, frame
            # (the kernel checks the rest, or returns None having done nothing)
            out = self._kernel.predict_ready(
                theta, X, _threads.budget(None) if self._splits_rows or len(X) > 1 else 1)
            if out is not None:
                return out
        if isinstance(X, (FileRows, SparseRows)) or file_backed(X) or is_sparse(X):
            return self._predict(theta, features(X, self._architecture.n_inputs, self._dtype,
                                                 sparse=self._architecture.reads_sparse,
                                                 categorical=self._categorical))
        return self._predict(theta, in_memory(X, self._architecture.n_inputs, self._dtype,
                                              categorical=self._categorical))

    def _predict(self, theta: np.ndarray, X, n_threads: int | None = None) -> np.ndarray:
        if isinstance(X, FileRows):
            # a part at a time: read, convert, predict, hand the pages back
            out = np.empty((len(X), self._architecture.n_outputs), dtype=self._dtype)
            for lo, hi in X.parts():
                out[lo:hi] = self._predict(theta, X.take(lo=lo, hi=hi), n_threads)
                X.release()
            return out
        if isinstance(X, SparseRows):
            return self._planned(len(X), n_threads, True, lambda out, threads: (
                self._kernel.predict_sparse(theta, X.values, X.indices, X.indptr, out,
                                            threads)))[1]
        return self._planned(X.shape[0], n_threads, True, lambda out, threads: (
            self._kernel.predict(theta, X, out, threads)))[1]

    def _planned(self, n: int, n_threads: int | None, outputs: bool, run,
                 gradient: bool = False):
        """(run(out, threads), out) for n rows as the kernel's prediction plan
        (its gradient plan with `gradient`) says (chunks, threads, packed
        weights, scratch): its memory reserved, `out` allocated for the
        outputs when asked (else None), BLAS held to one thread (its threads
        would change the products' bits)."""
        plan_of = self._kernel.gradient_plan if gradient else self._kernel.prediction_plan
        plan = plan_of(self._dtype, n, _threads.budget(n_threads))
        out_bytes = n * self._architecture.n_outputs * self._dtype.itemsize if outputs else 0
        reserve(plan["bytes"] + out_bytes, "the scratch memory of this computation")
        out = np.empty((n, self._architecture.n_outputs), dtype=self._dtype) if outputs else None
        with _threads.blas_limit(1):
            return run(out, plan["threads"]), out

    def loss_and_grad(self, theta: np.ndarray, X, y, *, sample_weight=None,
                      l2: float = 0.0, n_threads: int | None = None
                      ) -> tuple[float, np.ndarray]:
        """Mean loss of θ on (X, y) and its gradient, in θ's layout.

        Parameters
        ----------
        theta : ndarray of the model's dtype, shape (n_parameters,)
        X : array-like or scipy.sparse matrix of shape (n_samples, n_inputs)
        y : array-like
            softmax: class indices in ``range(n_outputs)``; sigmoid: a 0/1
            matrix (n_samples, n_outputs); linear: floats (n_samples,) or
            (n_samples, n_outputs).
        sample_weight : array-like of shape (n_samples,), optional
            The loss is the weighted mean ``sum(w_i l_i) / sum(w_i)``.
        l2 : float, default 0
            Adds ``l2/2 * sum(W**2)`` over weight matrices to the loss.
        n_threads : int, optional
            Threads sharing the rows (default: BLAS's current limit). The
            result does not depend on it, bit for bit.

        Returns
        -------
        loss : float
        grad : ndarray, same dtype and layout as θ
        """
        theta = self._check_theta(theta)
        arch = self._architecture
        X = in_memory(X, arch.n_inputs, self._dtype, sparse=arch.reads_sparse,
                      categorical=self._categorical)
        classes = np.arange(arch.n_outputs) if arch.output == "softmax" else None
        targets = encode(y, arch.output, arch.n_outputs, X.shape[0], self._dtype, classes)
        w = as_sample_weight(sample_weight, X.shape[0], self._dtype)
        l2 = check_float(l2, "l2", low=0.0)
        if n_threads is not None:
            n_threads = check_int(n_threads, "n_threads", minimum=1)
        reserve(self.n_parameters * self._dtype.itemsize, "the gradient")
        grad = np.empty_like(theta)
        return self._loss_grad(theta, X, targets, w, grad, l2, n_threads), grad

    def _loss_grad(self, theta, X, targets, weights, grad, l2: float = 0.0,
                   n_threads: int | None = None) -> float:
        """The kernel's loss (+ L2) of validated in-memory inputs, dense or
        sparse, and its gradient into `grad` (a loss alone: ``_evaluate``), as
        the kernel's gradient plan says."""
        if isinstance(X, SparseRows):
            loss = self._planned(len(X), n_threads, False, lambda _, threads: (
                self._kernel.loss_and_grad_sparse(
                    theta, X.values, X.indices, X.indptr, targets.labels, targets.values,
                    weights, grad, l2, True, threads)), gradient=True)[0]
        else:
            loss = self._planned(X.shape[0], n_threads, False, lambda _, threads: (
                self._kernel.loss_and_grad(theta, X, targets.labels, targets.values, weights,
                                           grad, l2, True, threads)), gradient=True)[0]
        return float(loss)

    def _loss(self, theta, X, targets, weights, n_threads: int | None = None) -> float:
        """Mean loss of validated inputs, without a gradient."""
        return self._evaluate(theta, X, targets, weights, n_threads, outputs=False)[0]

    def _evaluate(self, theta, X, targets, weights, n_threads: int | None = None,
                  outputs: bool = True) -> tuple[float, np.ndarray | None]:
        """(mean loss, head outputs or None) of validated inputs in one pass:
        the prediction's chunks, products and threads, so the loss is as
        reproducible as the outputs (it does not depend on BLAS's threads
        when the plan packs the weights, nor on `n_threads`)."""
        if isinstance(X, FileRows):
            # the weighted mean of the parts' weighted means
            total = weight = 0.0
            out = (np.empty((len(X), self._architecture.n_outputs), dtype=self._dtype)
                   if outputs else None)
            for lo, hi in X.parts():
                w = 1.0 * (hi - lo) if weights is None else float(weights[lo:hi].sum(dtype=float))
                loss, part = self._evaluate(
                    theta, X.take(lo=lo, hi=hi), targets.take(np.arange(lo, hi)),
                    None if weights is None else weights[lo:hi], n_threads, outputs)
                if outputs:
                    out[lo:hi] = part
                if w > 0:
                    total += w * loss
                    weight += w
                X.release()
            return total / weight, out
        if isinstance(X, SparseRows):
            loss, out = self._planned(len(X), n_threads, outputs, lambda out, threads: (
                self._kernel.evaluate_sparse(theta, X.values, X.indices, X.indptr,
                                             targets.labels, targets.values, weights, out,
                                             threads)))
        else:
            loss, out = self._planned(X.shape[0], n_threads, outputs, lambda out, threads: (
                self._kernel.evaluate(theta, X, targets.labels, targets.values, weights, out,
                                      threads)))
        return float(loss), out

    def _check_theta(self, theta) -> np.ndarray:
        return as_parameters(theta, self.n_parameters, self._dtype)

    # ---- identity -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: architecture, dtype, loss (and Huber threshold)."""
        d = {"architecture": self._architecture.to_dict(), "dtype": self._dtype.name,
             "loss": self._loss_name}
        if self._loss_name == "huber":
            d["huber_delta"] = self._huber_delta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Model":
        """Rebuild from :meth:`to_dict`'s output."""
        if not isinstance(d, dict) or not {"architecture", "dtype", "loss"} <= set(d):
            raise ValueError("model dict must have the keys 'architecture', 'dtype' and 'loss'")
        return cls(Architecture.from_dict(d["architecture"]), d["dtype"], d["loss"],
                   d.get("huber_delta", 1.0))

    def _key(self):
        return (self._architecture, self._dtype.name, self._loss_name, self._huber_delta)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = f", loss={self._loss_name!r}" if self._loss_name != DEFAULT_LOSS[self._architecture.output] else ""
        return f"Model({self._architecture!r}, dtype={self._dtype.name!r}{extra})"

    def __reduce__(self):
        return (Model.from_dict, (self.to_dict(),))
