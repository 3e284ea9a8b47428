"""A training loop of another library's own, in C, through ``archfit/kernels.pxd``.

``_fit`` is what a simulation library could run inside its own ``nogil``
code: it describes the network, asks archfit for a plan, allocates the one
block of memory the plan names, and runs epochs - no Python, no GIL, no
callbacks. ``fit_adam``, ``predict_proba`` and ``validation_loss`` are the
Python wrappers this example's tests call; they check their inputs, as any
caller of the API must (the kernels trust theirs). ``fit_adam_resnet`` trains
a network with a layer norm and a residual block, described layer by layer
(``network_init_layers``).

Every ``Network`` lives in memory of ``network_bytes()`` bytes and every
field is read through an accessor (``network_n_parameters``, ...): the
struct grows with archfit, and this module, compiled against one version,
must not depend on its size or layout. The ``TrainingState`` lives in the
training block.
"""
import numpy as np

from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from archfit.kernels cimport (
    Network, LayerSpec, InputSpec, Settings, Data, TrainingPlan, TrainingState, PredictionPlan,
    network_init, network_init_layers, training_plan, training_init, train_epoch,
    prediction_plan, predict, evaluate, api_version, network_bytes, network_n_parameters,
    network_n_inputs, network_n_outputs, network_members, state_step, OK, INVALID_ARGUMENT, FLOAT64, DENSE, LAYER_NORM, ADD,
    RELU, IDENTITY, SOFTMAX, CROSS_ENTROPY, ADAM, MAX_LAYERS, API_VERSION)

# The API version this module was compiled against; the archfit running must
# have been built with the same (its structs and signatures).
COMPILED_API_VERSION = API_VERSION
if api_version() != API_VERSION:
    raise ImportError(f"archfit_embedding_example was built against archfit's C API version "
                      f"{API_VERSION}, and the archfit installed has version {api_version()}: "
                      "rebuild it")


cdef class _Net:
    """A Network in memory of its own (network_bytes() of it), freed with this."""
    cdef Network* ptr

    def __cinit__(self):
        self.ptr = <Network*> malloc(network_bytes())
        if self.ptr == NULL:
            raise MemoryError("no memory for a network")

    def __dealloc__(self):
        free(self.ptr)


cdef int _fit(const Network* net, double* theta, const double* X, const int* labels,
              Py_ssize_t n, Py_ssize_t batch_size, int epochs, double learning_rate,
              uint64_t seed, double* losses) noexcept nogil:
    """Adam with archfit.Hyperparameters' defaults for `epochs` epochs; θ in place."""
    cdef Settings settings
    cdef TrainingState* state
    cdef Data data
    cdef double loss_sum, weight_sum
    cdef int epoch, status
    memset(&settings, 0, sizeof(settings))
    settings.optimizer = ADAM
    settings.beta1 = 0.9
    settings.beta2 = 0.999
    settings.epsilon = 1e-8
    settings.shuffle = True
    settings.seed = seed
    settings.batch_size = batch_size
    cdef TrainingPlan plan = training_plan(net, &settings, FLOAT64, n, 0, 1)
    cdef void* memory = malloc(plan.bytes)       # ours: archfit never allocates
    if memory == NULL:
        return -1
    status = training_init(&state, net, &settings, FLOAT64, n, 0, 1, theta, memory)
    memset(&data, 0, sizeof(data))      # dense X: indptr and indices stay NULL
    data.X = X
    data.n_samples = n
    data.labels = labels
    data.targets = NULL
    data.weights = NULL
    epoch = 0
    while status == OK and epoch < epochs:
        status = train_epoch(state, &data, learning_rate, epoch, 1, &loss_sum, &weight_sum)
        losses[epoch] = loss_sum / weight_sum
        epoch += 1
    if status == OK and state_step(state) != epochs * ((n + batch_size - 1) // batch_size):
        status = -2                     # an update per mini-batch, or the API broke
    free(memory)
    return status


cdef _Net _relu_softmax(sizes):
    """relu hidden layers, a softmax head, cross-entropy."""
    cdef _Net net = _Net()
    cdef Py_ssize_t c_sizes[MAX_LAYERS + 1]
    cdef int codes[MAX_LAYERS]
    cdef int l, L = len(sizes) - 1
    if not 1 <= L <= MAX_LAYERS:
        raise ValueError(f"sizes must name 2 to {MAX_LAYERS + 1} widths")
    for l in range(L + 1):
        c_sizes[l] = sizes[l]
    for l in range(L):
        codes[l] = RELU if l < L - 1 else IDENTITY
    if network_init(net.ptr, L, c_sizes, codes, SOFTMAX, CROSS_ENTROPY, 1.0) != OK:
        raise ValueError(f"sizes {tuple(sizes)} do not describe a network")
    return net


cdef _Net _resnet(Py_ssize_t n_inputs, Py_ssize_t width, Py_ssize_t n_classes):
    """Dense(width, relu), then x + Dense(width, relu)(LayerNorm(x)), then
    Dense(n_classes): five layers of the table, the ADD linked to the
    block's first layer (the norm, layer 1)."""
    cdef _Net net = _Net()
    cdef LayerSpec layers[5]
    cdef InputSpec inputs
    cdef int l
    inputs.numeric = n_inputs           # numeric columns only: no categorical inputs
    inputs.categorical = 0
    inputs.cardinality = NULL
    memset(layers, 0, sizeof(layers))      # every field a kind does not use is zero
    for l in range(5):
        layers[l].kind = DENSE
        layers[l].activation = IDENTITY
        layers[l].link = -1
    layers[0].units = width
    layers[0].activation = RELU
    layers[1].kind = LAYER_NORM
    layers[1].epsilon = 1e-5
    layers[2].units = width
    layers[2].activation = RELU
    layers[3].kind = ADD
    layers[3].link = 1
    layers[4].units = n_classes
    if network_init_layers(net.ptr, &inputs, 5, layers, SOFTMAX, CROSS_ENTROPY, 1.0) != OK:
        raise ValueError(f"({n_inputs}, {width}, {n_classes}) do not describe a network")
    return net


def fit_adam_resnet(Py_ssize_t n_inputs, Py_ssize_t width, Py_ssize_t n_classes, theta, X,
                    labels, *, int epochs, double learning_rate, Py_ssize_t batch_size,
                    uint64_t seed):
    """``fit_adam`` for ``_resnet``'s network; returns each epoch's mean loss."""
    cdef _Net net = _resnet(n_inputs, width, n_classes)
    return _train(net.ptr, theta, X, labels, epochs, learning_rate, batch_size, seed)


def describe(sizes):
    """(parameters, inputs, outputs, members) of the relu network of `sizes`,
    through the API's accessors."""
    cdef _Net net = _relu_softmax(sizes)
    return (network_n_parameters(net.ptr), network_n_inputs(net.ptr),
            network_n_outputs(net.ptr), network_members(net.ptr))


def fit_adam(sizes, theta, X, labels, *, int epochs, double learning_rate,
             Py_ssize_t batch_size, uint64_t seed):
    """Train a relu network with a softmax head from θ (float64, updated in place).

    Returns the mean training loss of every epoch.
    """
    cdef _Net net = _relu_softmax(sizes)
    return _train(net.ptr, theta, X, labels, epochs, learning_rate, batch_size, seed)


cdef object _train(const Network* net, theta, X, labels, int epochs, double learning_rate,
                   Py_ssize_t batch_size, uint64_t seed):
    """_fit on checked inputs: θ (float64, updated in place), X, labels."""
    cdef double[::1] t = theta
    cdef const double[:, ::1] x = np.ascontiguousarray(X, dtype=np.float64)
    cdef const int[::1] y = np.ascontiguousarray(labels, dtype=np.intc)
    cdef double[::1] losses = np.zeros(max(epochs, 1))
    cdef int status
    if t.shape[0] != network_n_parameters(net) or x.shape[1] != network_n_inputs(net) \
            or x.shape[0] != y.shape[0] or x.shape[0] == 0 or epochs < 1 or batch_size < 1:
        raise ValueError("theta, X, labels, epochs or batch_size do not fit the network")
    if np.min(labels) < 0 or np.max(labels) >= network_n_outputs(net):
        raise ValueError("labels must be class indices below the number of outputs")
    with nogil:
        status = _fit(net, &t[0], &x[0, 0], &y[0], x.shape[0], batch_size, epochs,
                      learning_rate, seed, &losses[0])
    if status == -1:
        raise MemoryError("no memory for the training state")
    if status == -2:
        raise RuntimeError("the state's step count is not one update per mini-batch")
    if status != OK:
        raise FloatingPointError(f"training stopped with status {status}")
    return np.asarray(losses)


def predict_proba(sizes, theta, X):
    """Class probabilities of X under θ."""
    cdef _Net net = _relu_softmax(sizes)
    cdef const double[::1] t = np.ascontiguousarray(theta, dtype=np.float64)
    cdef const double[:, ::1] x = np.ascontiguousarray(X, dtype=np.float64)
    cdef double[:, ::1] out = np.empty((x.shape[0], sizes[-1]))
    cdef PredictionPlan plan = prediction_plan(net.ptr, FLOAT64, x.shape[0], 1)
    cdef void* memory
    if t.shape[0] != network_n_parameters(net.ptr) or x.shape[1] != sizes[0] or x.shape[0] == 0:
        raise ValueError("theta or X does not fit the network")
    memory = malloc(plan.bytes)
    if memory == NULL:
        raise MemoryError("no memory for the prediction's scratch")
    with nogil:
        predict(net.ptr, &plan, FLOAT64, &t[0], &x[0, 0], x.shape[0], &out[0, 0], memory)
    free(memory)
    return np.asarray(out)


def validation_loss(sizes, theta, X, labels):
    """Mean cross-entropy of θ on (X, labels): what archfit.fit records as a
    validation loss, through the same evaluation."""
    cdef _Net net = _relu_softmax(sizes)
    cdef const double[::1] t = np.ascontiguousarray(theta, dtype=np.float64)
    cdef const double[:, ::1] x = np.ascontiguousarray(X, dtype=np.float64)
    cdef const int[::1] y = np.ascontiguousarray(labels, dtype=np.intc)
    cdef PredictionPlan plan = prediction_plan(net.ptr, FLOAT64, x.shape[0], 1)
    cdef Data data
    cdef double loss = 0.0
    cdef void* memory
    if t.shape[0] != network_n_parameters(net.ptr) or x.shape[1] != sizes[0] \
            or x.shape[0] != y.shape[0] \
            or x.shape[0] == 0:
        raise ValueError("theta, X or labels do not fit the network")
    if np.min(labels) < 0 or np.max(labels) >= sizes[-1]:
        raise ValueError("labels must be class indices below the number of outputs")
    memset(&data, 0, sizeof(data))
    data.X = &x[0, 0]
    data.n_samples = x.shape[0]
    data.labels = &y[0]
    memory = malloc(plan.bytes)
    if memory == NULL:
        raise MemoryError("no memory for the evaluation's scratch")
    with nogil:
        evaluate(net.ptr, &plan, FLOAT64, &t[0], &data, NULL, memory, &loss)
    free(memory)
    return loss
