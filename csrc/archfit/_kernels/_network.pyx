"""The network kernel: forward, backward, loss_and_grad and the one-call epoch.

Design
------
* θ is one C-contiguous buffer: for each layer a row-major (n_in, n_out)
  weight block followed by its bias. The gradient and the optimizer's moments
  share that layout.
* All scratch memory (pre-activations, activations, dropout masks, the two
  ping-pong error buffers, the gathered mini-batch) lives in ONE buffer whose
  offsets ``plan`` computes once; nothing is allocated inside a step.
* ``run_epoch`` does a whole epoch - shuffle, gather, forward, loss, backward,
  L2, dropout, update - without the GIL. A non-finite loss or parameter makes
  it return a status code; the caller raises, and since it trained a copy,
  nothing half-updated escapes.
* Kernels trust their input: shapes, dtypes, contiguity, finiteness and label
  ranges are checked by the Python layer before any call here.
"""
import numpy as np

from libc.math cimport isfinite
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from archfit._kernels._blas cimport gemm
from archfit._kernels._elementwise cimport (
    bias_activation, activation_backward, add_bias, column_sums, multiply,
    head_output, head_loss_grad, all_finite, IDENTITY)
from archfit._kernels._optimizers cimport OptimizerConfig, update
from archfit._kernels._random cimport stream_seed, shuffle as shuffle_index, dropout_mask
from archfit._kernels._elementwise import ACTIVATIONS, HEADS, LOSSES
from archfit._kernels._optimizers import OPTIMIZERS

# Status codes returned by run_epoch.
cpdef enum Status:
    OK = 0
    NONFINITE_LOSS = 1
    NONFINITE_PARAMETERS = 2

# Rows per chunk when predicting or computing a full-data gradient: large
# enough for efficient GEMM, small enough to keep scratch memory bounded.
CHUNK_ROWS = 1024

MAX_DEPTH = MAX_LAYERS


cdef Py_ssize_t plan(const Network* net, Workspace* ws, Py_ssize_t rows, bint dropout,
                     bint gather, Py_ssize_t n_targets) noexcept nogil:
    """Lay out the scratch buffer for `rows` rows; returns its length."""
    cdef Py_ssize_t off = 0, widest = 0, l, width
    cdef int L = net.n_layers
    ws.rows = rows
    ws.dropout = dropout
    for l in range(L):
        width = net.sizes[l + 1]
        if width > widest:
            widest = width
        ws.z[l] = off
        off += rows * width
        if l < L - 1:
            ws.a[l] = off
            off += rows * width
            if dropout:
                ws.mask[l] = off
                off += rows * width
                ws.dropped[l] = off
                off += rows * width
    ws.delta[0] = off
    off += rows * widest
    ws.delta[1] = off
    off += rows * widest
    ws.x = ws.t = ws.w = off
    if gather:
        off += rows * net.sizes[0]
        ws.t = off
        off += rows * n_targets
        ws.w = off
        off += rows
    ws.size = off
    return off


cdef void forward(const Network* net, const Workspace* ws,
                  const floating* theta,   # IN  parameters
                  const floating* X,       # IN  (n_rows, sizes[0])
                  Py_ssize_t n_rows,
                  floating* buf,           # OUT scratch; logits at buf + ws.z[L-1]
                  double dropout, uint64_t* rng) noexcept nogil:
    cdef int l, L = net.n_layers
    cdef Py_ssize_t i, n_in, n_out
    cdef const floating* inp = X
    cdef floating* Z
    cdef floating* A
    cdef floating* M
    cdef floating* AM
    for l in range(L):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        Z = buf + ws.z[l]
        gemm(False, False, <int> n_rows, <int> n_out, <int> n_in, <floating> 1.0,
             inp, <int> n_in, theta + net.w_start[l], <int> n_out,
             <floating> 0.0, Z, <int> n_out)
        if l < L - 1:
            A = buf + ws.a[l]
            bias_activation(Z, theta + net.b_start[l], A, n_rows, n_out, net.activation[l])
            if ws.dropout:
                M = buf + ws.mask[l]
                AM = buf + ws.dropped[l]
                dropout_mask(M, n_rows * n_out, dropout, rng)
                for i in range(n_rows * n_out):
                    AM[i] = A[i] * M[i]
                inp = AM
            else:
                inp = A
        else:
            add_bias(Z, theta + net.b_start[l], n_rows, n_out)


cdef void backward(const Network* net, const Workspace* ws,
                   const floating* theta,   # IN  parameters
                   const floating* X,       # IN  the same rows forward saw
                   Py_ssize_t n_rows,
                   floating* buf,           # IN  scratch from forward; dloss/dlogits at delta[0]
                   floating* grad,          # OUT (or += when accumulate) gradient, θ's layout
                   bint accumulate) noexcept nogil:
    cdef int l, L = net.n_layers, cur = 0
    cdef Py_ssize_t n_in, n_out
    cdef floating beta = 1.0 if accumulate else 0.0
    cdef floating* D = buf + ws.delta[0]
    cdef floating* Dprev
    cdef const floating* inp
    for l in range(L - 1, -1, -1):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        if l == 0:
            inp = X
        elif ws.dropout:
            inp = buf + ws.dropped[l - 1]
        else:
            inp = buf + ws.a[l - 1]
        # dW = inp^T D ; db = column sums of D
        gemm(True, False, <int> n_in, <int> n_out, <int> n_rows, <floating> 1.0,
             inp, <int> n_in, D, <int> n_out, beta, grad + net.w_start[l], <int> n_out)
        column_sums(D, grad + net.b_start[l], n_rows, n_out, accumulate)
        if l > 0:
            # error at the previous layer's output: D W^T, then through mask and activation
            cur = 1 - cur
            Dprev = buf + ws.delta[cur]
            gemm(False, True, <int> n_rows, <int> n_in, <int> n_out, <floating> 1.0,
                 D, <int> n_out, theta + net.w_start[l], <int> n_out,
                 <floating> 0.0, Dprev, <int> n_in)
            if ws.dropout:
                multiply(Dprev, buf + ws.mask[l - 1], n_rows * n_in)
            activation_backward(Dprev, buf + ws.z[l - 1], buf + ws.a[l - 1],
                                n_rows * n_in, net.activation[l - 1])
            D = Dprev


cdef int run_epoch(const Network* net, const Workspace* ws, OptimizerConfig* config,
                   floating* theta, floating* grad, floating* m, floating* v,
                   const floating* X, Py_ssize_t n_samples,
                   const int* labels, const floating* targets, const floating* weights,
                   Py_ssize_t* index, int* batch_labels, floating* buf,
                   Py_ssize_t batch_size, bint shuffle, double l2, bint decoupled,
                   double dropout, uint64_t seed, uint64_t epoch,
                   double* loss_sum, double* weight_sum) noexcept nogil:
    """One epoch of mini-batch training; returns OK or a NONFINITE_* code."""
    cdef int l, L = net.n_layers
    cdef Py_ssize_t start, b, i, r, n_features = net.sizes[0], k = net.sizes[L]
    cdef Py_ssize_t row_bytes = n_features * sizeof(floating), target_bytes = k * sizeof(floating)
    cdef uint64_t shuffle_state, dropout_state
    cdef const floating* Xb
    cdef const int* lb
    cdef const floating* tb
    cdef const floating* wb
    cdef floating* gathered_x = buf + ws.x
    cdef floating* gathered_t = buf + ws.t
    cdef floating* gathered_w = buf + ws.w
    cdef double wsum, batch_loss
    cdef double penalty = 0.0 if decoupled else l2
    cdef double decay = l2 if decoupled else 0.0

    loss_sum[0] = 0.0
    weight_sum[0] = 0.0
    if shuffle:
        # Each epoch's order depends only on (seed, epoch): continuing a fit
        # replays exactly the epochs a longer fit would have run.
        for i in range(n_samples):
            index[i] = i
        shuffle_state = stream_seed(seed, epoch, 0)
        shuffle_index(index, n_samples, &shuffle_state)
    dropout_state = stream_seed(seed, epoch, 1)

    start = -batch_size
    while start + batch_size < n_samples:
        start += batch_size
        b = batch_size if start + batch_size <= n_samples else n_samples - start
        if shuffle:
            for i in range(b):
                r = index[start + i]
                memcpy(gathered_x + i * n_features, X + r * n_features, row_bytes)
                if labels != NULL:
                    batch_labels[i] = labels[r]
                if targets != NULL:
                    memcpy(gathered_t + i * k, targets + r * k, target_bytes)
                if weights != NULL:
                    gathered_w[i] = weights[r]
            Xb = gathered_x
            lb = batch_labels if labels != NULL else NULL
            tb = gathered_t if targets != NULL else NULL
            wb = gathered_w if weights != NULL else NULL
        else:
            Xb = X + start * n_features
            lb = labels + start if labels != NULL else NULL
            tb = targets + start * k if targets != NULL else NULL
            wb = weights + start if weights != NULL else NULL

        if wb != NULL:
            wsum = 0.0
            for i in range(b):
                wsum += wb[i]
            if wsum <= 0.0:
                continue        # a batch of zero weight carries no information
        else:
            wsum = <double> b

        forward(net, ws, theta, Xb, b, buf, dropout, &dropout_state)
        batch_loss = head_loss_grad(buf + ws.z[L - 1], b, k, net.loss, lb, tb, wb,
                                    buf + ws.delta[0], 1.0 / wsum, net.huber_delta)
        if not isfinite(batch_loss):
            return NONFINITE_LOSS
        loss_sum[0] += batch_loss
        weight_sum[0] += wsum
        backward(net, ws, theta, Xb, b, buf, grad, False)

        config.step += 1
        for l in range(L):
            update(config, theta, grad, m, v, net.w_start[l], net.b_start[l], penalty, decay)
            update(config, theta, grad, m, v, net.b_start[l],
                   net.b_start[l] + net.sizes[l + 1], 0.0, 0.0)

    if not all_finite(theta, net.n_parameters):
        return NONFINITE_PARAMETERS
    return OK


cdef inline const int* _labels_ptr(const int[::1] labels):
    return &labels[0] if labels is not None and labels.shape[0] else NULL


cdef class Kernel:
    """Compiled view of an architecture and its head/loss; holds no parameters.

    Parameters
    ----------
    sizes : sequence of int
        Input size followed by each layer's width.
    activations : sequence of str
        One activation name per layer (the last must be ``"identity"``).
    head, loss : str
        Output head and loss names.
    huber_delta : float
        Threshold of the Huber loss.
    """
    cdef Network net

    def __cinit__(self, sizes, activations, str head, str loss, double huber_delta=1.0):
        cdef Py_ssize_t l, start = 0
        cdef int L = len(sizes) - 1
        if not 1 <= L <= MAX_LAYERS:
            raise ValueError(f"a network has 1 to {MAX_LAYERS} layers, got {L}")
        if len(activations) != L:
            raise ValueError("one activation per layer is required")
        self.net.n_layers = L
        for l in range(L + 1):
            self.net.sizes[l] = sizes[l]
        for l in range(L):
            self.net.activation[l] = ACTIVATIONS[activations[l]]
            self.net.w_start[l] = start
            start += self.net.sizes[l] * self.net.sizes[l + 1]
            self.net.b_start[l] = start
            start += self.net.sizes[l + 1]
        if self.net.activation[L - 1] != IDENTITY:
            raise ValueError("the last layer's activation must be identity; the head applies the output function")
        self.net.n_parameters = start
        self.net.head = HEADS[head]
        self.net.loss = LOSSES[loss]
        self.net.huber_delta = huber_delta

    @property
    def n_parameters(self):
        return self.net.n_parameters

    def scratch_size(self, Py_ssize_t rows, bint dropout=False, bint gather=False,
                     Py_ssize_t n_targets=0):
        """Elements of scratch memory a computation over `rows` rows needs."""
        cdef Workspace ws
        return plan(&self.net, &ws, rows, dropout, gather, n_targets)

    def predict(self, const floating[::1] theta, const floating[:, ::1] X, floating[:, ::1] out):
        """out = head(f(X; θ)), in chunks, without the GIL."""
        cdef Workspace ws
        cdef Py_ssize_t n = X.shape[0], rows = min(n, CHUNK_ROWS), start, b
        cdef int L = self.net.n_layers
        if n == 0:
            return
        plan(&self.net, &ws, rows, False, False, 0)
        scratch = np.empty(ws.size, dtype=np.float32 if floating is float else np.float64)
        cdef floating[::1] buf = scratch
        with nogil:
            start = -rows
            while start + rows < n:
                start += rows
                b = min(rows, n - start)
                forward(&self.net, &ws, &theta[0], &X[start, 0], b, &buf[0], 0.0, NULL)
                head_output(&buf[ws.z[L - 1]], &out[start, 0], b, self.net.sizes[L],
                            self.net.head)

    def loss_and_grad(self, const floating[::1] theta, const floating[:, ::1] X,
                      const int[::1] labels, const floating[:, ::1] targets,
                      const floating[::1] weights, floating[::1] grad,
                      double l2=0.0, bint compute_grad=True):
        """Weighted mean loss (+ L2/2 ||W||^2); fills `grad` when `compute_grad`.

        Works through the data in chunks, accumulating the weight gradients in
        place (GEMM with beta = 1), so memory stays bounded for any n.
        """
        cdef Workspace ws
        cdef Py_ssize_t n = X.shape[0], rows = min(n, CHUNK_ROWS), start, b, i, l
        cdef int L = self.net.n_layers
        cdef Py_ssize_t k = self.net.sizes[L]
        cdef double total_w = 0.0, loss_sum = 0.0, penalty = 0.0
        cdef const int* lab = _labels_ptr(labels)
        cdef const floating* tgt = &targets[0, 0] if targets is not None else NULL
        cdef const floating* wts = &weights[0] if weights is not None else NULL
        cdef floating* D
        plan(&self.net, &ws, rows, False, False, 0)
        scratch = np.empty(ws.size, dtype=np.float32 if floating is float else np.float64)
        cdef floating[::1] buf = scratch
        with nogil:
            if wts != NULL:
                for i in range(n):
                    total_w += wts[i]
            else:
                total_w = <double> n
            start = -rows
            while start + rows < n:
                start += rows
                b = min(rows, n - start)
                forward(&self.net, &ws, &theta[0], &X[start, 0], b, &buf[0], 0.0, NULL)
                D = &buf[ws.delta[0]] if compute_grad else NULL
                loss_sum += head_loss_grad(
                    &buf[ws.z[L - 1]], b, k, self.net.loss,
                    lab + start if lab != NULL else NULL,
                    tgt + start * k if tgt != NULL else NULL,
                    wts + start if wts != NULL else NULL,
                    D, 1.0 / total_w, self.net.huber_delta)
                if compute_grad:
                    backward(&self.net, &ws, &theta[0], &X[start, 0], b, &buf[0],
                             &grad[0], start > 0)
            if l2 != 0.0:
                for l in range(L):
                    for i in range(self.net.w_start[l], self.net.b_start[l]):
                        penalty += theta[i] * theta[i]
                        if compute_grad:
                            grad[i] += <floating> l2 * theta[i]
        return loss_sum / total_w + 0.5 * l2 * penalty


cdef class Trainer:
    """State of one fit: scratch memory, sample order and optimizer moments.

    Allocated once per fit; ``epoch`` then runs a whole epoch in one call
    without the GIL and without allocating.
    """
    cdef Kernel kernel
    cdef Workspace ws
    cdef OptimizerConfig config
    cdef readonly object buffer, index, batch_labels, grad, m, v
    cdef readonly Py_ssize_t batch_size
    cdef double l2, dropout
    cdef bint decoupled, shuffle
    cdef uint64_t seed

    def __init__(self, Kernel kernel, dtype, Py_ssize_t n_samples, Py_ssize_t batch_size,
                 str optimizer, double momentum=0.9, bint nesterov=False, double beta1=0.9,
                 double beta2=0.999, double epsilon=1e-8, double l2=0.0, double dropout=0.0,
                 bint shuffle=True, uint64_t seed=0, m=None, v=None, long long step=0,
                 Py_ssize_t n_targets=0):
        cdef Py_ssize_t rows = min(batch_size, n_samples)
        self.kernel = kernel
        self.batch_size = rows
        self.config.kind = OPTIMIZERS[optimizer]
        self.config.momentum = momentum
        self.config.nesterov = nesterov
        self.config.beta1 = beta1
        self.config.beta2 = beta2
        self.config.epsilon = epsilon
        self.config.step = step
        self.config.learning_rate = 0.0
        self.l2 = l2
        self.decoupled = optimizer == "adamw"
        self.dropout = dropout
        self.shuffle = shuffle
        self.seed = seed
        size = plan(&kernel.net, &self.ws, rows, dropout > 0.0, shuffle, n_targets)
        self.buffer = np.zeros(size, dtype=dtype)
        self.index = np.arange(n_samples, dtype=np.intp)
        self.batch_labels = np.zeros(rows, dtype=np.intc)
        P = kernel.net.n_parameters
        self.grad = np.zeros(P, dtype=dtype)
        self.m = np.zeros(P, dtype=dtype) if m is None else np.array(m, dtype=dtype, copy=True)
        self.v = np.zeros(P, dtype=dtype) if v is None else np.array(v, dtype=dtype, copy=True)

    @property
    def step(self):
        """Number of parameter updates made so far (Adam's t)."""
        return self.config.step

    def epoch(self, floating[::1] theta, const floating[:, ::1] X, const int[::1] labels,
              const floating[:, ::1] targets, const floating[::1] weights,
              double learning_rate, uint64_t epoch):
        """Run one epoch in place on `theta`; returns (loss_sum, weight_sum, status)."""
        cdef floating[::1] buf = self.buffer
        cdef floating[::1] grad = self.grad
        cdef floating[::1] m = self.m
        cdef floating[::1] v = self.v
        cdef Py_ssize_t[::1] index = self.index
        cdef int[::1] batch_labels = self.batch_labels
        cdef const int* lab = _labels_ptr(labels)
        cdef const floating* tgt = &targets[0, 0] if targets is not None else NULL
        cdef const floating* wts = &weights[0] if weights is not None else NULL
        cdef double loss_sum = 0.0, weight_sum = 0.0
        cdef int status
        self.config.learning_rate = learning_rate
        with nogil:
            status = run_epoch(&self.kernel.net, &self.ws, &self.config,
                               &theta[0], &grad[0], &m[0], &v[0],
                               &X[0, 0], X.shape[0], lab, tgt, wts,
                               &index[0], &batch_labels[0], &buf[0],
                               self.batch_size, self.shuffle, self.l2, self.decoupled,
                               self.dropout, self.seed, epoch, &loss_sum, &weight_sum)
        return loss_sum, weight_sum, status
