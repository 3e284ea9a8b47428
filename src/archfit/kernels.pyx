"""archfit's kernels: the Cython API other compiled code embeds, and its Python handles.

The C-level functions declared in ``kernels.pxd`` (read its design comment,
and docs/embedding.md) are defined here as thin entries into the internal
modules of ``archfit._kernels``: ``_plan`` decides, ``_passes`` runs the
forward and backward passes, ``_training`` runs epochs, ``_prediction``
evaluates. The Python layer (``archfit.model``, ``archfit.fitting``) drives the
same functions through :class:`Kernel` and :class:`Trainer`, so a network
trained from Cython and one trained by ``archfit.fit`` take the same path.
"""
import os
import threading

import numpy as np
cimport numpy as cnp
from libc.string cimport memset
from cython cimport floating
from cpython.exc cimport PyErr_CheckSignals

from archfit._kernels._plan cimport (ALIGN, PREDICT_CHUNK, aligned, network_of,
                                     network_of_layers, plan_training, lay_out_training,
                                     plan_prediction, plan_gradient, packed_operands, any_splits)
from archfit._kernels._training cimport run_epoch, run_population, order_of
from archfit._kernels._prediction cimport predict_rows, predict_small, evaluate_rows, loss_grad
from archfit._kernels._optimizers cimport optimizer_settings
from archfit._kernels._cpu cimport archfit_isa, ARCHFIT_ISA_AVX2, ARCHFIT_ISA_AVX512

from archfit._kernels._cpu import ISA, DETECTED, paths as isa_paths

cdef extern from "interrupt.h":
    int archfit_interrupt_flag
    bint archfit_interrupt_install() nogil
    void archfit_interrupt_restore() nogil

_MAIN = threading.main_thread()

cdef extern from *:
    """
    static int archfit_cancel_flag = 0;     /* fits in other threads: stop */
    static void archfit_set_cancel(int on) { __atomic_store_n(&archfit_cancel_flag, on, __ATOMIC_SEQ_CST); }
    """
    int archfit_cancel_flag
    void archfit_set_cancel(int on) nogil


def cancel_fits(bint cancel=True):
    """Make the epochs of interruptible fits running in threads other than the
    main one stop at their next mini-batch and raise KeyboardInterrupt (True),
    or let them run again (False). archfit's parallel fits use it when the
    main thread is interrupted."""
    archfit_set_cancel(1 if cancel else 0)
from archfit._kernels._elementwise import ACTIVATIONS, HEADS, LOSSES
from archfit._kernels._optimizers import OPTIMIZERS

cnp.import_array()

__all__ = ["ACTIVATIONS", "HEADS", "LOSSES", "OPTIMIZERS", "KINDS", "MAX_LAYERS",
           "MAX_CATEGORICAL", "MAX_MEMBERS", "API_VERSION",
           "ISA", "DETECTED", "isa_paths", "Status", "Kernel", "Trainer", "Population",
           "parameter_layout", "layer_layout", "get_include", "cancel_fits"]

# Layers of a network, at most, and the C API's version: kernels.pxd's
# constants under the same names for Python (a module global cannot be
# declared with a C constant's name).
globals()["MAX_LAYERS"] = MAX_LAYERS
globals()["API_VERSION"] = API_VERSION
# The kinds of layer the kernels' table has (kernels.pxd's LayerKind), by name.
KINDS = {"dense": DENSE, "layer_norm": LAYER_NORM, "add": ADD, "periodic": PERIODIC,
         "embedding": EMBEDDING, "one_hot": ONE_HOT, "piecewise_linear": PIECEWISE_LINEAR,
         "replicate": REPLICATE, "member_dense": MEMBER_DENSE, "adapted_dense": ADAPTED_DENSE}
# The operands of DENSE products (kernels.pxd's Precision), by name.
PRECISIONS = {"native": PRECISION_NATIVE, "bfloat16": PRECISION_BFLOAT16}
# Categorical inputs and ensemble members of a network, at most (kernels.pxd's
# MAX_CATEGORICAL, MAX_MEMBERS).
globals()["MAX_CATEGORICAL"] = MAX_CATEGORICAL
globals()["MAX_MEMBERS"] = MAX_MEMBERS


def get_include():
    """The folder holding ``archfit/kernels.pxd``, for a build's include path."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- the Cython API (kernels.pxd) ---------------------------------------------------------
cdef int network_init(Network* net, int n_layers, const Py_ssize_t* sizes,
                      const int* activations, int head, int loss,
                      double huber_delta) noexcept nogil:
    return network_of(net, n_layers, sizes, activations, head, loss, huber_delta)


cdef int network_init_layers(Network* net, const InputSpec* inputs, int n_layers,
                             const LayerSpec* layers, int head, int loss,
                             double huber_delta) noexcept nogil:
    return network_of_layers(net, inputs, n_layers, layers, head, loss, huber_delta)


cdef TrainingPlan training_plan(const Network* net, const Settings* settings, int dtype,
                                Py_ssize_t n_samples, Py_ssize_t n_targets,
                                int threads) noexcept nogil:
    return plan_training(net, settings, dtype == FLOAT64, n_samples, n_targets, threads)


cdef int training_init(TrainingState** state, const Network* net, const Settings* settings,
                       int dtype, Py_ssize_t n_samples, Py_ssize_t n_targets, int threads,
                       void* theta, void* memory) noexcept nogil:
    return lay_out_training(state, net, settings, dtype, n_samples, n_targets, threads, theta,
                            memory)


cdef int api_version() noexcept nogil:
    return API_VERSION


cdef Py_ssize_t network_bytes() noexcept nogil:
    return sizeof(Network)


cdef Py_ssize_t network_n_parameters(const Network* net) noexcept nogil:
    return net.n_parameters


cdef Py_ssize_t network_n_inputs(const Network* net) noexcept nogil:
    return net.sizes[0]


cdef Py_ssize_t network_n_outputs(const Network* net) noexcept nogil:
    return net.sizes[net.n_layers]


cdef int network_members(const Network* net) noexcept nogil:
    return net.members


cdef int network_set_precision(Network* net, int precision) noexcept nogil:
    if precision != PRECISION_NATIVE and precision != PRECISION_BFLOAT16:
        return INVALID_ARGUMENT
    net.precision = precision
    return OK


cdef long long state_step(const TrainingState* state) noexcept nogil:
    return state.step


cdef void state_set_step(TrainingState* state, long long step) noexcept nogil:
    state.step = step


cdef void* state_theta(const TrainingState* state) noexcept nogil:
    return state.theta


cdef void state_set_theta(TrainingState* state, void* theta) noexcept nogil:
    state.theta = theta


cdef void* state_gradient(const TrainingState* state) noexcept nogil:
    return state.grad


cdef void* state_moment(const TrainingState* state, int which) noexcept nogil:
    return state.m if which == 1 else state.v if which == 2 else NULL


cdef void state_set_interrupt(TrainingState* state, const int* flag) noexcept nogil:
    state.interrupt = flag


cdef int train_epoch(TrainingState* state, const Data* data, double learning_rate,
                     uint64_t epoch, int threads, double* loss_sum,
                     double* weight_sum) noexcept nogil:
    return train_epoch_part(state, data, learning_rate, epoch, -1, threads, loss_sum,
                            weight_sum)


cdef int train_epoch_part(TrainingState* state, const Data* data, double learning_rate,
                          uint64_t epoch, Py_ssize_t first, int threads, double* loss_sum,
                          double* weight_sum) noexcept nogil:
    # first = -1: the whole epoch (train_epoch)
    return run_epoch(state, data, learning_rate, epoch, first, threads, loss_sum, weight_sum)


cdef int train_population(TrainingState** states, const Data* data,
                          const double* learning_rates, const uint64_t* epochs,
                          int n_members, int threads, double* loss_sums, double* weight_sums,
                          int* statuses) noexcept nogil:
    run_population(states, data, learning_rates, epochs, n_members, max(1, threads),
                   loss_sums, weight_sums, statuses)
    return OK


cdef void epoch_order(const Settings* settings, uint64_t epoch, Py_ssize_t n_samples,
                      Py_ssize_t* order) noexcept nogil:
    order_of(settings, epoch, n_samples, order)


cdef PredictionPlan prediction_plan(const Network* net, int dtype, Py_ssize_t n_rows,
                                    int threads) noexcept nogil:
    return plan_prediction(net, dtype == FLOAT64, n_rows, threads)


cdef int predict(const Network* net, const PredictionPlan* plan, int dtype,
                 const void* theta, const void* X, Py_ssize_t n_rows, void* out,
                 void* memory) noexcept nogil:
    if dtype == FLOAT64:
        return predict_rows(net, plan, <const double*> theta, <const double*> X, n_rows,
                            <double*> out, memory)
    return predict_rows(net, plan, <const float*> theta, <const float*> X, n_rows,
                        <float*> out, memory)


cdef int predict_data(const Network* net, const PredictionPlan* plan, int dtype,
                      const void* theta, const Data* data, void* out,
                      void* memory) noexcept nogil:
    return evaluate(net, plan, dtype, theta, data, out, memory, NULL)


cdef int evaluate(const Network* net, const PredictionPlan* plan, int dtype,
                  const void* theta, const Data* data, void* out, void* memory,
                  double* loss) noexcept nogil:
    if dtype == FLOAT64:
        return evaluate_rows(net, plan, <const double*> theta, data, <double*> out, memory,
                             loss)
    return evaluate_rows(net, plan, <const float*> theta, data, <float*> out, memory, loss)


cdef GradientPlan gradient_plan(const Network* net, int dtype, Py_ssize_t n_rows,
                                int threads) noexcept nogil:
    return plan_gradient(net, dtype == FLOAT64, n_rows, threads)


cdef int loss_and_grad(const Network* net, const GradientPlan* plan, int dtype,
                       const void* theta, const Data* data, double l2, void* grad,
                       void* memory, double* loss) noexcept nogil:
    if dtype == FLOAT64:
        return loss_grad(net, plan, <const double*> theta, data, l2, <double*> grad, memory,
                         loss)
    return loss_grad(net, plan, <const float*> theta, data, l2, <float*> grad, memory, loss)


cdef const char* isa() noexcept nogil:
    cdef int level = archfit_isa()
    if level >= ARCHFIT_ISA_AVX512:
        return "avx512"
    if level >= ARCHFIT_ISA_AVX2:
        return "avx2"
    return "portable"


# ---- Python handles ---------------------------------------------------------------------
cdef int _dtype_code(dtype) except -1:
    dt = np.dtype(dtype)
    if dt == np.float32:
        return FLOAT32
    if dt == np.float64:
        return FLOAT64
    raise TypeError(f"dtype must be float32 or float64, got {dt}")


cdef object _block(Py_ssize_t nbytes):
    """A caller-owned memory block for the kernels (bytes; they align inside)."""
    return np.empty(max(nbytes, 1), dtype=np.uint8)


cdef inline void* _address(object block):
    return cnp.PyArray_DATA(<cnp.ndarray> block)


cdef inline const int* _labels_ptr(const int[::1] labels):
    return &labels[0] if labels is not None and labels.shape[0] else NULL


cdef Data _data(const floating[:, ::1] X, const int[::1] labels,
                const floating[:, ::1] targets, const floating[::1] weights):
    """A data set's pointers (X non-empty; labels, targets, weights optional)."""
    cdef Data data
    data.X = &X[0, 0]
    data.n_samples = X.shape[0]
    data.labels = _labels_ptr(labels)
    data.targets = &targets[0, 0] if targets is not None else NULL
    data.weights = &weights[0] if weights is not None else NULL
    data.indptr = NULL
    data.indices = NULL
    data.rows = NULL
    return data


cdef Data _sparse_data(const floating[::1] values, const int[::1] indices,
                       const Py_ssize_t[::1] indptr, const int[::1] labels,
                       const floating[:, ::1] targets, const floating[::1] weights):
    """A data set's pointers, X in compressed sparse rows (values may be empty)."""
    cdef Data data
    data.X = &values[0] if values.shape[0] else NULL
    data.n_samples = indptr.shape[0] - 1
    data.labels = _labels_ptr(labels)
    data.targets = &targets[0, 0] if targets is not None else NULL
    data.weights = &weights[0] if weights is not None else NULL
    data.indptr = &indptr[0]
    data.indices = &indices[0] if indices.shape[0] else NULL
    data.rows = NULL
    return data


cdef Network _network(sizes, activations, str head, str loss, double huber_delta,
                      layers=None, categorical=()) except *:
    """A Network of DENSE layers (sizes, activations), or of `layers`: one dict
    per layer with kernels.pxd's LayerSpec fields (``kind`` by name,
    ``activation`` by name, ``dropout`` a dense layer's own rate or None; a
    field left out is zero), sizes[0] the numeric inputs, `categorical` the
    cardinalities of the categorical ones after them."""
    cdef Network net
    cdef LayerSpec specs[MAX_LAYERS]
    cdef InputSpec inputs
    cdef Py_ssize_t cardinality[MAX_CATEGORICAL]
    cdef int l, L = len(sizes) - 1 if layers is None else len(layers)
    if not 1 <= L <= MAX_LAYERS:
        raise ValueError(f"a network has 1 to {MAX_LAYERS} layers, got {L}")
    if layers is None:
        if len(activations) != L:
            raise ValueError("one activation per layer is required")
        layers = [{"kind": "dense", "units": sizes[l + 1], "activation": activations[l]}
                  for l in range(L)]
    memset(specs, 0, sizeof(specs))
    for l in range(L):
        spec = dict(layers[l])
        kind = spec.pop("kind")
        if kind not in KINDS:
            raise ValueError(f"layer {l}: unknown kind {kind!r}; the kernels run {list(KINDS)}")
        specs[l].kind = KINDS[kind]
        specs[l].units = spec.pop("units", 0)
        specs[l].activation = ACTIVATIONS[spec.pop("activation", "identity")]
        specs[l].link = spec.pop("link", -1)
        specs[l].epsilon = spec.pop("epsilon", 0.0)
        specs[l].frequencies = spec.pop("frequencies", 0)
        specs[l].bins = spec.pop("bins", 0)
        specs[l].members = spec.pop("members", 0)
        specs[l].adapter = spec.pop("adapter", False)
        dropout = spec.pop("dropout", None)
        specs[l].own_dropout = dropout is not None
        specs[l].dropout = 0.0 if dropout is None else dropout
        if spec:
            raise ValueError(f"layer {l}: unknown fields {sorted(spec)}")
    if specs[L - 1].kind not in (DENSE, MEMBER_DENSE) or specs[L - 1].activation != IDENTITY:
        raise ValueError("the last layer must be dense with activation identity; "
                         "the head applies the output function")
    if len(categorical) > MAX_CATEGORICAL:
        raise ValueError(f"at most {MAX_CATEGORICAL} categorical inputs, got {len(categorical)}")
    for l in range(len(categorical)):
        cardinality[l] = categorical[l]
    inputs.numeric = sizes[0]
    inputs.categorical = len(categorical)
    inputs.cardinality = cardinality
    if network_of_layers(&net, &inputs, L, specs, HEADS[head], LOSSES[loss],
                         huber_delta) != OK:
        raise ValueError(f"not a network the kernels can run: inputs {sizes[0]} numeric, "
                         f"categorical {list(categorical)}, layers {list(layers)}, head "
                         f"{head!r}, loss {loss!r}, huber_delta {huber_delta!r}")
    return net


cdef bint _reads_sparse(const Network* net) noexcept nogil:
    """Whether sparse X can feed `net`: its first layer is DENSE and no ADD
    links to it (an ADD would read the inputs densely)."""
    return net.kind[0] == DENSE and net.skip_from[0] < 0


cdef int _check_sparse(const Network* net) except -1:
    if not _reads_sparse(net):
        raise ValueError("sparse X needs a network whose first layer is dense and whose "
                         "inputs no residual block adds; make X dense")
    return 0


def parameter_layout(sizes):
    """Where each layer's weight and bias start in θ, and θ's length, for a
    network of dense layers.

    Returns ``([(w_start, b_start) for each layer], n_parameters)``: the layout
    the kernels use, computed by ``network_init`` (it is not computed
    anywhere else).
    """
    L = len(sizes) - 1
    cdef Network net = _network(sizes, ["identity"] * L, "linear", "squared_error", 1.0)
    return [(net.w_start[l], net.b_start[l]) for l in range(L)], net.n_parameters


def layer_layout(Py_ssize_t n_inputs, layers, categorical=()):
    """θ's layout for any layers, as ``network_init_layers`` computes it.

    Parameters
    ----------
    n_inputs : int
        Numeric inputs.
    layers : sequence of dict
        One per layer, first to last: kernels.pxd's ``LayerSpec`` fields by
        name (``kind`` one of ``KINDS``, ``activation`` one of
        ``ACTIVATIONS``, ``dropout`` a dense layer's own rate or None); a
        field left out is zero.

    Returns
    -------
    list of dict
        One per layer: ``start`` and ``stop`` of its parameters in θ, and for
        the kinds with parameters ``w_start`` and ``b_start`` (a dense layer's
        weight and bias, a layer norm's gain and bias, a periodic embedding's
        frequencies and bias, its weights between them; a piecewise-linear
        embedding's edges and bias, its linear weights and weights between
        them; an embedding's tables from ``w_start``; an ensemble's scales,
        or its last layer's weights and biases), and ``width``, its
        output's.
    categorical : sequence of int
        The cardinalities of the categorical inputs, after the numeric ones.
    """
    cdef Network net = _network([n_inputs], None, "linear", "squared_error", 1.0, layers,
                                categorical)
    return [{"start": net.w_start[l], "stop": net.p_stop[l], "w_start": net.w_start[l],
             "b_start": net.b_start[l], "width": net.sizes[l + 1]}
            for l in range(net.n_layers)]


cdef class Kernel:
    """The compiled description of a network and its head and loss; holds no θ.

    Parameters
    ----------
    sizes : sequence of int
        Input size followed by each layer's width (with `layers`: the input
        size alone).
    activations : sequence of str
        One activation name per layer (the last must be ``"identity"``);
        None with `layers`.
    head, loss : str
        Output head and loss names (``HEADS``, ``LOSSES``).
    huber_delta : float
        Threshold of the Huber loss.
    layers : sequence of dict, optional
        Any layers (``layer_layout``); by default dense ones from `sizes`
        and `activations`.
    categorical : sequence of int
        Cardinalities of categorical inputs after the numeric ones (with
        `layers`; sizes[0] counts the numeric inputs alone).
    precision : {"native", "bfloat16"}
        The operands of the DENSE layers' products of dense rows: θ's dtype,
        or (float32 θ) bfloat16 accumulated in float32 (bf16.h).
    """
    cdef Network net

    def __cinit__(self, sizes, activations, str head, str loss, double huber_delta=1.0,
                  layers=None, categorical=(), str precision="native"):
        self.net = _network(sizes, activations, head, loss, huber_delta, layers, categorical)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        network_set_precision(&self.net, PRECISIONS[precision])

    @property
    def precision(self):
        return {v: k for k, v in PRECISIONS.items()}[self.net.precision]

    @property
    def n_parameters(self):
        return self.net.n_parameters

    def training_plan(self, dtype, Py_ssize_t n_samples, Py_ssize_t batch_size,
                      double dropout=0.0, bint shuffle=True, Py_ssize_t n_targets=0,
                      int threads=1):
        """How a fit runs (``training_plan`` of kernels.pxd), as a dict:
        rows, shards, threads, packed, bytes (of the training state's block)."""
        cdef Settings settings
        memset(&settings, 0, sizeof(settings))
        settings.batch_size = batch_size
        settings.dropout = dropout
        settings.shuffle = shuffle
        return plan_training(&self.net, &settings, _dtype_code(dtype) == FLOAT64,
                             max(1, n_samples), n_targets, threads)

    def prediction_plan(self, dtype, Py_ssize_t n_rows, int threads=1):
        """How predicting `n_rows` rows runs, as a dict: rows (per chunk),
        chunks, threads, packed, bytes (of the scratch block)."""
        return plan_prediction(&self.net, _dtype_code(dtype) == FLOAT64, n_rows, threads)

    def gradient_plan(self, dtype, Py_ssize_t n_rows, int threads=1):
        """How a loss and gradient over `n_rows` rows runs, as a dict: rows
        (per chunk), chunks, threads, bytes (of the scratch block)."""
        return plan_gradient(&self.net, _dtype_code(dtype) == FLOAT64, n_rows, threads)

    def splits_rows(self):
        """Whether one sample's forward pass shares a layer's columns among threads."""
        return any_splits(&self.net)

    def predict(self, const floating[::1] theta, const floating[:, ::1] X, floating[:, ::1] out,
                int threads=1):
        """out = head(f(X; θ)) without the GIL, as ``prediction_plan`` says;
        the result does not depend on `threads` (the caller keeps BLAS to one
        thread when the plan has several chunks)."""
        cdef const int[::1] no_labels = None
        cdef const floating[:, ::1] no_targets = None
        cdef const floating[::1] no_weights = None
        cdef Data data
        if X.shape[0] == 0:
            return
        data = _data(X, no_labels, no_targets, no_weights)
        self._evaluate(&theta[0], &data, &out[0, 0], FLOAT64 if floating is double else FLOAT32,
                       threads, NULL)

    def predict_sparse(self, const floating[::1] theta, const floating[::1] values,
                       const int[::1] indices, const Py_ssize_t[::1] indptr,
                       floating[:, ::1] out, int threads=1):
        """``predict`` for X in compressed sparse rows (checked by the caller)."""
        _check_sparse(&self.net)
        cdef const int[::1] no_labels = None
        cdef const floating[:, ::1] no_targets = None
        cdef const floating[::1] no_weights = None
        cdef Data data = _sparse_data(values, indices, indptr, no_labels, no_targets,
                                      no_weights)
        if data.n_samples == 0:
            return
        self._evaluate(&theta[0], &data, &out[0, 0], FLOAT64 if floating is double else FLOAT32,
                       threads, NULL)

    def evaluate(self, const floating[::1] theta, const floating[:, ::1] X,
                 const int[::1] labels, const floating[:, ::1] targets,
                 const floating[::1] weights, floating[:, ::1] out=None, int threads=1):
        """The weighted mean loss of (X, targets), with the outputs into `out`
        unless None: ``predict``'s chunks, products and threads (the plan for
        X's rows), so the loss does not depend on `threads` either."""
        if X.shape[0] == 0:
            raise ValueError("a loss needs at least one row")
        cdef Data data = _data(X, labels, targets, weights)
        cdef double loss = 0.0
        self._evaluate(&theta[0], &data, &out[0, 0] if out is not None else NULL,
                       FLOAT64 if floating is double else FLOAT32, threads, &loss)
        return loss

    def evaluate_sparse(self, const floating[::1] theta, const floating[::1] values,
                        const int[::1] indices, const Py_ssize_t[::1] indptr,
                        const int[::1] labels, const floating[:, ::1] targets,
                        const floating[::1] weights, floating[:, ::1] out=None,
                        int threads=1):
        """``evaluate`` for X in compressed sparse rows (checked by the caller)."""
        _check_sparse(&self.net)
        if indptr.shape[0] < 2:
            raise ValueError("a loss needs at least one row")
        cdef Data data = _sparse_data(values, indices, indptr, labels, targets, weights)
        cdef double loss = 0.0
        self._evaluate(&theta[0], &data, &out[0, 0] if out is not None else NULL,
                       FLOAT64 if floating is double else FLOAT32, threads, &loss)
        return loss

    cdef void _evaluate(self, const void* theta, const Data* data, void* out, int dtype,
                        int threads, double* loss) except *:
        """evaluate() (a prediction when `loss` is NULL) as ``prediction_plan``
        says, with a block of its own."""
        cdef PredictionPlan plan = plan_prediction(&self.net, dtype == FLOAT64,
                                                   data.n_samples, threads)
        block = _block(plan.bytes)
        cdef void* memory = _address(block)
        with nogil:
            evaluate(&self.net, &plan, dtype, theta, data, out, memory, loss)

    def loss_and_grad_sparse(self, const floating[::1] theta, const floating[::1] values,
                             const int[::1] indices, const Py_ssize_t[::1] indptr,
                             const int[::1] labels, const floating[:, ::1] targets,
                             const floating[::1] weights, floating[::1] grad,
                             double l2=0.0, bint compute_grad=True, int threads=1):
        """``loss_and_grad`` for X in compressed sparse rows."""
        _check_sparse(&self.net)
        cdef Data data = _sparse_data(values, indices, indptr, labels, targets, weights)
        return self._loss(&theta[0], &data, &grad[0] if compute_grad else NULL,
                          FLOAT64 if floating is double else FLOAT32, l2, threads)

    cdef double _loss(self, const void* theta, const Data* data, void* grad, int dtype,
                      double l2, int threads) except? -1:
        """loss_and_grad as ``gradient_plan`` says, with a scratch block of its
        own (`grad` NULL: no gradient)."""
        cdef double loss = 0.0
        cdef GradientPlan plan = plan_gradient(&self.net, dtype == FLOAT64, data.n_samples,
                                               threads)
        block = _block(plan.bytes)
        cdef void* memory = _address(block)
        with nogil:
            loss_and_grad(&self.net, &plan, dtype, theta, data, l2, grad, memory, &loss)
        return loss

    def predict_ready(self, cnp.ndarray theta, X, int threads=1):
        """head(f(X; θ)) for up to 256 rows, validated here in C; or None.

        The fast path for small predictions (one sample: a few microseconds
        of overhead). Returns None, having done nothing, unless X is already a
        C-contiguous (n, n_inputs) array of θ's dtype with 1 <= n <= 256 and
        only finite values: the caller then validates and converts X with its
        full error messages. θ must be valid (the caller's own, already checked).
        """
        cdef cnp.ndarray arr
        cdef Py_ssize_t n, k = self.net.sizes[self.net.n_layers]
        cdef int ok
        if type(X) is not np.ndarray:
            return None
        arr = <cnp.ndarray> X
        if (cnp.PyArray_NDIM(arr) != 2 or cnp.PyArray_DIM(arr, 1) != self.net.sizes[0]
                or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
                or cnp.PyArray_TYPE(arr) != cnp.PyArray_TYPE(theta)
                or cnp.PyArray_SIZE(theta) != self.net.n_parameters):
            return None
        n = cnp.PyArray_DIM(arr, 0)
        if not 1 <= n <= PREDICT_CHUNK:
            return None
        out = np.empty((n, k), dtype=theta.dtype)
        threads = max(1, threads)
        if cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32:
            ok = predict_small(&self.net, <const float*> cnp.PyArray_DATA(theta),
                               <const float*> cnp.PyArray_DATA(arr), n,
                               <float*> cnp.PyArray_DATA(out), threads)
        elif cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT64:
            ok = predict_small(&self.net, <const double*> cnp.PyArray_DATA(theta),
                               <const double*> cnp.PyArray_DATA(arr), n,
                               <double*> cnp.PyArray_DATA(out), threads)
        else:
            return None
        if ok == 0:
            raise MemoryError("no memory for a prediction's scratch buffer")
        return out if ok == 1 else None

    def loss_and_grad(self, const floating[::1] theta, const floating[:, ::1] X,
                      const int[::1] labels, const floating[:, ::1] targets,
                      const floating[::1] weights, floating[::1] grad,
                      double l2=0.0, bint compute_grad=True, int threads=1):
        """Weighted mean loss (+ L2/2 ||W||^2); fills `grad` when `compute_grad`;
        as ``gradient_plan`` says for up to `threads` threads."""
        cdef Data data = _data(X, labels, targets, weights)
        return self._loss(&theta[0], &data, &grad[0] if compute_grad else NULL,
                          FLOAT64 if floating is double else FLOAT32, l2, threads)


cdef struct _Catch:
    const int* flag         # what an interruptible call's epochs read (NULL: nothing)
    bint main               # called from the main thread
    bint catching           # a SIGINT handler is installed for the call


cdef _Catch _catch_interrupts(bint interruptible):
    """Before an interruptible kernel call: in the main thread, a SIGINT
    handler for the call's duration (Ctrl-C raises its flag); in another
    thread, cancel_fits' flag."""
    cdef _Catch catch
    catch.main = threading.current_thread() is _MAIN
    catch.catching = interruptible and catch.main and archfit_interrupt_install()
    catch.flag = NULL
    if catch.catching:
        catch.flag = &archfit_interrupt_flag
    elif interruptible and not catch.main:
        catch.flag = &archfit_cancel_flag
    return catch


cdef void _release_interrupts(_Catch catch, bint interrupted) except *:
    """After the call: the SIGINT handler it replaced back in place; if the
    call stopped on the flag, Python's own SIGINT handling runs as if the
    signal came now (KeyboardInterrupt by default), or in another thread
    KeyboardInterrupt is raised."""
    if catch.catching:
        archfit_interrupt_restore()
    if interrupted:
        if not catch.main:
            raise KeyboardInterrupt("cancelled: the main thread was interrupted")
        PyErr_CheckSignals()


cdef class Trainer:
    """The state of one fit (``TrainingState``) in one memory block.

    Allocated once per fit; ``epoch`` then runs a whole epoch in one call
    without the GIL and without allocating.

    Parameters
    ----------
    kernel : Kernel
    dtype : float32 or float64
    n_samples, batch_size : int
    optimizer : str
        One of ``OPTIMIZERS``.
    momentum, nesterov, beta1, beta2, epsilon, l2, dropout, shuffle, seed
        The fitting settings (``Settings``).
    m, v : array, optional
        The optimizer's moments to continue from (zeros by default), with `step`.
    n_targets : int
        Columns of the targets (0 for class labels).
    threads : int
        The most threads an epoch may use (the plan's budget).
    memory : numpy.ndarray of uint8, optional
        Where to lay out the state (at least the plan's ``bytes``; zeroed
        here): a part of one block holding a whole population's states.
        By default the trainer allocates its own.
    """
    cdef Kernel kernel
    cdef TrainingState* state       # at the start of its block
    cdef readonly object memory     # the block (bytes)
    cdef readonly object dtype
    cdef readonly dict plan

    def __init__(self, Kernel kernel, dtype, Py_ssize_t n_samples, Py_ssize_t batch_size,
                 str optimizer, double momentum=0.9, bint nesterov=False, double beta1=0.9,
                 double beta2=0.999, double epsilon=1e-8, double l2=0.0, double dropout=0.0,
                 bint shuffle=True, uint64_t seed=0, m=None, v=None, long long step=0,
                 Py_ssize_t n_targets=0, int threads=1, memory=None):
        cdef Settings settings = optimizer_settings(optimizer, momentum, nesterov, beta1, beta2,
                                                    epsilon)
        cdef int code = _dtype_code(dtype)
        settings.l2 = l2
        settings.dropout = dropout
        settings.shuffle = shuffle
        settings.seed = seed
        settings.batch_size = batch_size
        self.kernel = kernel
        self.dtype = np.dtype(dtype)
        cdef TrainingPlan plan = plan_training(&kernel.net, &settings, code == FLOAT64,
                                               max(1, n_samples), n_targets, threads)
        self.plan = plan
        if memory is None:
            self.memory = _block(plan.bytes)
        else:
            # a part of a larger block (a population's, planned once)
            if (not isinstance(memory, np.ndarray) or memory.dtype != np.uint8
                    or memory.ndim != 1 or not memory.flags.c_contiguous
                    or not memory.flags.writeable or memory.shape[0] < plan.bytes):
                raise ValueError(f"memory must be a writable contiguous uint8 array of at least "
                                 f"{plan.bytes} bytes")
            self.memory = memory
        # θ is given to every epoch; the block's own start stands in until then
        if training_init(&self.state, &kernel.net, &settings, code, n_samples, n_targets,
                         threads, _address(self.memory), _address(self.memory)) != OK:
            raise ValueError("the kernels refused these training settings")
        if m is not None:
            self._moment(self.state.m)[:] = m
        if v is not None:
            self._moment(self.state.v)[:] = v
        self.state.step = step

    cdef object _view(self, void* p, Py_ssize_t count):
        offset = <char*> p - <char*> _address(self.memory)
        return np.frombuffer(self.memory, dtype=self.dtype, count=count, offset=offset)

    cdef object _moment(self, void* p):
        return self._view(p, self.state.net.n_parameters)

    @property
    def step(self):
        """Number of parameter updates made so far (Adam's t)."""
        return self.state.step

    @property
    def m(self):
        """A copy of the first moment (momentum buffer for momentum SGD)."""
        return self._moment(self.state.m).copy()

    @property
    def v(self):
        """A copy of Adam's second moment."""
        return self._moment(self.state.v).copy()

    @property
    def packed(self):
        """A view of the packed operands (θ's dtype), or None when the plan has none."""
        cdef Py_ssize_t count
        cdef void* start = packed_operands(self.state, &count)
        return None if start == NULL else self._view(start, count)

    def restore(self, m, v, long long step):
        """Set the optimizer's moments and step (a snapshot taken from ``m``,
        ``v`` and ``step``), as between two epochs."""
        self._moment(self.state.m)[:] = m
        self._moment(self.state.v)[:] = v
        self.state.step = step

    def order(self, uint64_t epoch):
        """The sample order of `epoch` (``epoch_order``): what ``epoch`` visits,
        and how ``epoch_part``'s rows must be arranged."""
        order = np.empty(self.state.n_samples, dtype=np.intp)
        cdef Py_ssize_t[::1] out = order
        with nogil:
            epoch_order(&self.state.settings, epoch, self.state.n_samples, &out[0])
        return order

    def epoch(self, floating[::1] theta, const floating[:, ::1] X, const int[::1] labels,
              const floating[:, ::1] targets, const floating[::1] weights,
              double learning_rate, uint64_t epoch, int threads=1, bint interruptible=False):
        """Run one epoch in place on `theta`; returns (loss_sum, weight_sum, status).

        Up to `threads` threads (at most the plan's) share each step that is
        cut into shards; the caller keeps BLAS to one thread then. The result
        is the same for any `threads`. With `interruptible`, in the main
        thread, Ctrl-C stops the epoch between two mini-batches: Python's own
        SIGINT handling then runs (KeyboardInterrupt by default, raised from
        here); if it does not raise, the status is INTERRUPTED. In another
        thread, ``cancel_fits()`` stops it and KeyboardInterrupt is raised.
        Either way θ, the moments and the step hold a partial epoch.
        """
        if X.shape[0] != self.state.n_samples:
            raise ValueError("X does not have the trainer's number of rows")
        return self._run(theta, X, labels, targets, weights, learning_rate, epoch, -1, threads,
                         interruptible)

    def epoch_part(self, floating[::1] theta, const floating[:, ::1] X, const int[::1] labels,
                   const floating[:, ::1] targets, const floating[::1] weights,
                   double learning_rate, uint64_t epoch, Py_ssize_t first, int threads=1,
                   bint interruptible=False):
        """Rows `first` .. `first` + len(X) - 1 of an epoch, given in the epoch's
        order (``order``): ``train_epoch_part``. Parts run in sequence from
        first = 0, each but the last a multiple of the batch size; their sums
        add up to ``epoch``'s, and θ ends bit for bit as after ``epoch``."""
        if first < 0:
            raise ValueError(f"first must be >= 0, got {first}")
        return self._run(theta, X, labels, targets, weights, learning_rate, epoch, first,
                         threads, interruptible)

    def _run(self, floating[::1] theta, const floating[:, ::1] X, const int[::1] labels,
             const floating[:, ::1] targets, const floating[::1] weights,
             double learning_rate, uint64_t epoch, Py_ssize_t first, int threads,
             bint interruptible):
        cdef int code = FLOAT64 if floating is double else FLOAT32
        if code != self.state.dtype:
            raise TypeError(f"theta must be {self.dtype}, like the trainer")
        if theta.shape[0] != self.state.net.n_parameters or X.shape[0] < 1:
            raise ValueError("theta or X does not have the trainer's shape")
        cdef Data data = _data(X, labels, targets, weights)
        return self._go(&theta[0], &data, learning_rate, epoch, first, threads, interruptible)

    def epoch_sparse(self, floating[::1] theta, const floating[::1] values,
                     const int[::1] indices, const Py_ssize_t[::1] indptr,
                     const int[::1] labels, const floating[:, ::1] targets,
                     const floating[::1] weights, double learning_rate, uint64_t epoch,
                     int threads=1, bint interruptible=False):
        """``epoch`` for sparse X in compressed sparse rows (``values``,
        ``indices``, ``indptr``; checked by the caller: sorted row pointers,
        columns in range): the first layer's products and weight gradient are
        sparse x dense."""
        cdef int code = FLOAT64 if floating is double else FLOAT32
        _check_sparse(&self.state.net)
        if code != self.state.dtype:
            raise TypeError(f"theta must be {self.dtype}, like the trainer")
        if theta.shape[0] != self.state.net.n_parameters:
            raise ValueError("theta does not have the trainer's shape")
        if indptr.shape[0] != self.state.n_samples + 1:
            raise ValueError("indptr does not have the trainer's number of rows")
        cdef Data data = _sparse_data(values, indices, indptr, labels, targets, weights)
        return self._go(&theta[0], &data, learning_rate, epoch, -1, threads, interruptible)

    cdef object _go(self, void* theta, Data* data, double learning_rate, uint64_t epoch,
                    Py_ssize_t first, int threads, bint interruptible):
        """One call of the epoch kernel, with Ctrl-C handled as ``epoch`` says."""
        cdef double loss_sum = 0.0, weight_sum = 0.0
        cdef int status
        cdef _Catch catch = _catch_interrupts(interruptible)
        self.state.theta = theta
        self.state.interrupt = catch.flag
        with nogil:
            status = train_epoch_part(self.state, data, learning_rate, epoch, first,
                                      max(1, threads), &loss_sum, &weight_sum)
        self.state.interrupt = NULL
        _release_interrupts(catch, status == INTERRUPTED)
        if status == INVALID_ARGUMENT:
            raise ValueError(f"rows {first} .. {first + data.n_samples - 1} are not a part of "
                             f"an epoch of {self.state.n_samples} rows in batches of "
                             f"{self.state.settings.batch_size}")
        return loss_sum, weight_sum, Status(status)


cdef class Population:
    """Fits of one kernel trained together: one ``train_population`` call runs
    an epoch of every member that is still training.

    Each member is a :class:`Trainer` with its own θ and data; the arrays are
    held here, so their pointers stay valid. Member i's θ after each epoch is
    bit for bit what ``Trainer.epoch`` gives (a member's epoch runs on one
    thread; members share the threads).
    """
    cdef list trainers, held
    cdef object states_block, data_block
    cdef TrainingState** states
    cdef Data* data
    cdef readonly int size

    def __init__(self, list trainers):
        self.size = len(trainers)
        if self.size < 1:
            raise ValueError("a population needs at least one member")
        for t in trainers:
            if not isinstance(t, Trainer):
                raise TypeError("members must be Trainers")
        self.trainers = list(trainers)
        self.held = [None] * self.size
        self.states_block = _block(self.size * sizeof(TrainingState*))
        self.data_block = _block(self.size * sizeof(Data))
        self.states = <TrainingState**> _address(self.states_block)
        self.data = <Data*> _address(self.data_block)
        memset(self.data, 0, self.size * sizeof(Data))

    def bind(self, int i, floating[::1] theta, const floating[:, ::1] X, const int[::1] labels,
             const floating[:, ::1] targets, const floating[::1] weights,
             const Py_ssize_t[::1] rows=None):
        """Member i trains θ (updated in place) on dense X; with `rows`, on
        those rows of X (labels, targets and weights then have one entry per
        row given; the member must shuffle)."""
        cdef Trainer t = self._member(i, FLOAT64 if floating is double else FLOAT32,
                                      theta.shape[0])
        cdef Py_ssize_t n = rows.shape[0] if rows is not None else X.shape[0]
        if n != t.state.n_samples or X.shape[0] < 1:
            raise ValueError(f"member {i}: the data does not have the trainer's rows")
        if rows is not None and not t.state.settings.shuffle:
            raise ValueError(f"member {i}: rows need shuffle=True")
        self.data[i] = _data(X, labels, targets, weights)
        self.data[i].n_samples = n
        if rows is not None:
            if np.any(np.asarray(rows) < 0) or np.any(np.asarray(rows) >= X.shape[0]):
                raise ValueError(f"member {i}: rows out of range")
            self.data[i].rows = &rows[0]
        t.state.theta = &theta[0]
        self.states[i] = t.state
        self.held[i] = (theta, X, labels, targets, weights, rows)

    def bind_sparse(self, int i, floating[::1] theta, const floating[::1] values,
                    const int[::1] indices, const Py_ssize_t[::1] indptr,
                    const int[::1] labels, const floating[:, ::1] targets,
                    const floating[::1] weights):
        """Member i trains θ on sparse X (checked by the caller, as for
        ``Trainer.epoch_sparse``)."""
        cdef Trainer t = self._member(i, FLOAT64 if floating is double else FLOAT32,
                                      theta.shape[0])
        _check_sparse(&t.state.net)
        if indptr.shape[0] != t.state.n_samples + 1:
            raise ValueError(f"member {i}: indptr does not have the trainer's rows")
        self.data[i] = _sparse_data(values, indices, indptr, labels, targets, weights)
        t.state.theta = &theta[0]
        self.states[i] = t.state
        self.held[i] = (theta, values, indices, indptr, labels, targets, weights)

    cdef Trainer _member(self, int i, int code, Py_ssize_t n_parameters):
        if not 0 <= i < self.size:
            raise IndexError(f"member {i} of {self.size}")
        cdef Trainer t = self.trainers[i]
        if code != t.state.dtype:
            raise TypeError(f"member {i}: theta must be {t.dtype}, like its trainer")
        if n_parameters != t.state.net.n_parameters:
            raise ValueError(f"member {i}: theta does not have the trainer's shape")
        return t

    def epoch(self, members, learning_rates, epochs, int threads=1, bint interruptible=False):
        """One epoch of each of `members` (indices, each bound), in one kernel
        call; returns a list of (loss_sum, weight_sum, status), one per member.

        Ctrl-C and ``cancel_fits`` stop every member's epoch as for
        ``Trainer.epoch``.
        """
        cdef Py_ssize_t k = len(members), j
        if k == 0:
            return []
        if len(learning_rates) != k or len(epochs) != k:
            raise ValueError("one learning rate and one epoch per member")
        chosen = np.asarray(members, dtype=np.intp)
        if np.any(chosen < 0) or np.any(chosen >= self.size) or len(np.unique(chosen)) != k:
            raise ValueError("members must be distinct member indices")
        for j in range(k):
            if self.held[chosen[j]] is None:
                raise ValueError(f"member {chosen[j]} has no data: bind it first")
        states = _block(k * sizeof(TrainingState*))
        data = _block(k * sizeof(Data))
        cdef TrainingState** s = <TrainingState**> _address(states)
        cdef Data* d = <Data*> _address(data)
        cdef double[::1] lr = np.ascontiguousarray(learning_rates, dtype=np.float64)
        cdef uint64_t[::1] ep = np.ascontiguousarray(epochs, dtype=np.uint64)
        cdef double[::1] losses = np.zeros(k), weights = np.zeros(k)
        cdef int[::1] statuses = np.zeros(k, dtype=np.intc)
        for j in range(k):
            s[j] = self.states[chosen[j]]
            d[j] = self.data[chosen[j]]
        cdef _Catch catch = _catch_interrupts(interruptible)
        for j in range(k):
            s[j].interrupt = catch.flag
        with nogil:
            train_population(s, d, &lr[0], &ep[0], <int> k, max(1, threads), &losses[0],
                             &weights[0], &statuses[0])
        for j in range(k):
            s[j].interrupt = NULL
        _release_interrupts(catch, any(statuses[j] == INTERRUPTED for j in range(k)))
        return [(losses[j], weights[j], Status(statuses[j])) for j in range(k)]
