"""Forward and backward passes over rows [lo, hi) of a batch: a loop over the
network's layers through the layer table (``_layers``).

Design
------
* θ is one C-contiguous buffer, each layer's parameters in its own slice;
  the gradient shares that layout.
* Every intermediate array (each layer's outputs, errors and whatever its
  kind keeps) lives in one scratch buffer laid out by ``_plan.workspace``; a
  pass over rows [lo, hi) touches only those rows of each, so threads can
  run passes over different rows of one batch at once.
* Past an ensemble's REPLICATE (``Network.replicas``), a layer runs on its
  members' rows: rows [lo, hi) of X are its rows [lo k, hi k), member m of
  row i at row i k + m.
* The backward pass runs the layers last to first; after a layer has written
  the error at its input, the error of a residual block's end that adds this
  input (``Network.skip_from``) is added to it.
"""
from archfit.kernels cimport Data
from archfit._kernels._layers cimport Kind, kinds

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs


cdef void forward(const Network* net, const Workspace* ws,
                  const floating* theta,   # IN  parameters
                  const floating* X,       # IN  (ws.rows, sizes[0]); rows [lo, hi) are read
                  Py_ssize_t lo, Py_ssize_t hi,
                  floating* buf,           # INOUT scratch: rows [lo, hi) written; masks read
                  const Packed* pk=NULL,   # IN  packed weights of θ's dtype, or NULL: BLAS
                  floating* work=NULL,     # scratch of the packed GEMM (with pk)
                  const Data* sparse=NULL, # IN  sparse X instead of X: the batch's row i is
                  const Py_ssize_t* order=NULL,   # data row order[start + i] (or start + i)
                  Py_ssize_t start=0
                  ) noexcept nogil:
    """Forward pass of rows [lo, hi); the logits land in buf + ws.z[L-1]."""
    cdef const Kind* table = kinds()
    cdef Pass p = pass_of(net, ws, theta, X, buf, pk, work, sparse, order, start)
    cdef int l
    cdef Py_ssize_t r
    for l in range(net.n_layers):
        r = net.replicas[l]             # past an ensemble's REPLICATE: the members' rows
        if floating is float:
            table[net.kind[l]].forward_f32(&p, l, lo * r, hi * r, buf)
        else:
            table[net.kind[l]].forward_f64(&p, l, lo * r, hi * r, buf)


cdef void deltas(const Network* net, const Workspace* ws,
                 const floating* theta,   # IN  parameters
                 const floating* X,       # IN  the layer-0 input rows forward saw (dense)
                 Py_ssize_t lo, Py_ssize_t hi,
                 floating* buf,           # INOUT dloss/dlogits in delta[L-1] in, every delta out
                 const Packed* pk=NULL,   # IN  packed weights of θ's dtype, or NULL: BLAS
                 floating* work=NULL      # scratch of the packed GEMM (with pk)
                 ) noexcept nogil:
    """Backpropagate the error of rows [lo, hi) through every layer."""
    cdef const Kind* table = kinds()
    cdef Pass p = pass_of(net, ws, theta, X, buf, pk, work, NULL, NULL, 0)
    cdef int l, e
    cdef Py_ssize_t i, n, r
    cdef floating* D
    cdef const floating* S
    for l in range(net.n_layers - 1, -1, -1):
        r = net.replicas[l]
        if floating is float:
            table[net.kind[l]].backward_f32(&p, l, lo * r, hi * r, buf)
        else:
            table[net.kind[l]].backward_f64(&p, l, lo * r, hi * r, buf)
        e = net.skip_from[l]
        if l > 0 and e >= 0:
            # a residual block starts here: its skip's error joins its input's
            n = net.sizes[l]
            D = buf + ws.delta[l - 1]
            S = buf + ws.delta[e]
            for i in range(lo * r * n, hi * r * n):
                D[i] += S[i]


cdef void backward(const Network* net, const Workspace* ws,
                   const floating* theta,   # IN  parameters
                   const floating* X,       # IN  the same rows forward saw
                   Py_ssize_t n_rows,
                   floating* buf,           # IN  scratch from forward; dloss/dlogits in delta[L-1]
                   floating* grad,          # OUT (or += when accumulate) gradient, θ's layout
                   bint accumulate,
                   const Data* sparse=NULL, # IN  sparse X instead of X: rows start ..
                   Py_ssize_t start=0) noexcept nogil:
    """Errors at every layer, then the whole gradient, for rows [0, n_rows)."""
    cdef const Kind* table = kinds()
    cdef Pass p = pass_of(net, ws, theta, X, buf, NULL, NULL, sparse, NULL, start)
    cdef int l
    deltas(net, ws, theta, X, 0, n_rows, buf)
    for l in range(net.n_layers):
        if floating is float:
            table[net.kind[l]].grad_f32(&p, l, n_rows * net.replicas[l], grad, accumulate, buf)
        else:
            table[net.kind[l]].grad_f64(&p, l, n_rows * net.replicas[l], grad, accumulate, buf)
