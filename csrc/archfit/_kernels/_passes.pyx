"""Forward and backward passes over rows [lo, hi) of a batch.

Design
------
* θ is one C-contiguous buffer: for each layer a row-major (n_in, n_out)
  weight block followed by its bias. The gradient shares that layout.
* Every intermediate array (pre-activations, activations, dropout masks,
  errors) lives in one scratch buffer laid out by ``_plan.workspace``; a pass
  over rows [lo, hi) touches only those rows of each, so threads can run
  passes over different rows of one batch at once.
* A layer's product reads the weights packed once (``Packed``, AVX2 only)
  when the plan packs that layer, else goes to BLAS through ``_blas.gemm``.
"""
from archfit.kernels cimport Data
from archfit._kernels._blas cimport gemm
from archfit._kernels.packgemm cimport pack_rows, packed_gemm
from archfit._kernels._elementwise cimport (bias_activation, activation_backward, add_bias,
                                            column_sums, multiply)

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs


cdef inline void _product(const Packed* pk, int l, bint transposed,
                          Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A,
                          const floating* W, floating* C, floating* work) noexcept nogil:
    """C = A op(W) for layer l: A (m, k), W layer l's weights (n_in, n_out),
    op(W) = W^T when `transposed`; from the packed copy when there is one."""
    if pk != NULL and pk.layer[l]:
        packed_gemm(False, m, n, k, A, k, pk.PT[l] if transposed else pk.P[l], C, n, work)
    elif transposed:
        gemm(False, True, <int> m, <int> n, <int> k, <floating> 1.0, A, <int> k, W, <int> k,
             <floating> 0.0, C, <int> n)
    else:
        gemm(False, False, <int> m, <int> n, <int> k, <floating> 1.0, A, <int> k, W, <int> n,
             <floating> 0.0, C, <int> n)


cdef void repack(const Network* net, const Packed* pk, const floating* theta, int l,
                 Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Refresh rows [r0, r1) of layer l's packed weights (and their transposed
    copy) from θ, when the layer is packed."""
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    if not pk.layer[l]:
        return
    pack_rows(n_in, n_out, theta + net.w_start[l], n_out, r0, r1, pk.P[l])
    if l > 0:
        pack_rows(n_in, n_out, theta + net.w_start[l], n_out, r0, r1, pk.PT[l], True)


cdef inline Py_ssize_t _row(const Py_ssize_t* order, Py_ssize_t start,
                            Py_ssize_t i) noexcept nogil:
    """The data row of the batch's row i: order[start + i], or start + i."""
    return order[start + i] if order != NULL else start + i


cdef void _sparse_product(const Data* sparse, const Py_ssize_t* order, Py_ssize_t start,
                          Py_ssize_t lo, Py_ssize_t hi, const floating* W, Py_ssize_t n_out,
                          floating* Z) noexcept nogil:
    """Z[i - lo] = X[row i] W for the batch's rows [lo, hi), X sparse: each
    stored value scales its column's row of W into Z (no dense X is formed)."""
    cdef const Py_ssize_t* indptr = sparse.indptr
    cdef const int* indices = sparse.indices
    cdef const floating* values = <const floating*> sparse.X
    cdef Py_ssize_t i, j, p, r
    cdef floating v
    cdef floating* z
    cdef const floating* w
    for i in range(lo, hi):
        r = _row(order, start, i)
        z = Z + (i - lo) * n_out
        for j in range(n_out):
            z[j] = 0
        for p in range(indptr[r], indptr[r + 1]):
            v = values[p]
            w = W + <Py_ssize_t> indices[p] * n_out
            for j in range(n_out):
                z[j] += v * w[j]


cdef void sparse_weight_grad(const Network* net, const Data* sparse, const Py_ssize_t* order,
                             Py_ssize_t start, Py_ssize_t rows, const floating* D,
                             floating* grad, bint accumulate) noexcept nogil:
    """The first layer's weight gradient X^T D for the batch's rows [0, rows),
    X sparse: each stored value adds its row's error to its column's row of
    the gradient (in θ's layout; += when `accumulate`)."""
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[1], i, j, p, r
    cdef floating* G = grad + net.w_start[0]
    cdef const floating* values = <const floating*> sparse.X
    cdef floating v
    cdef floating* g
    cdef const floating* d
    if not accumulate:
        for i in range(n_in * n_out):
            G[i] = 0
    for i in range(rows):
        r = _row(order, start, i)
        d = D + i * n_out
        for p in range(sparse.indptr[r], sparse.indptr[r + 1]):
            v = values[p]
            g = G + <Py_ssize_t> sparse.indices[p] * n_out
            for j in range(n_out):
                g[j] += v * d[j]


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
    cdef int l, L = net.n_layers
    cdef Py_ssize_t i, n_in, n_out, n = hi - lo
    cdef const floating* inp = X + lo * net.sizes[0]
    cdef floating* Z
    cdef floating* A
    cdef floating* M
    cdef floating* AM
    for l in range(L):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        Z = buf + ws.z[l] + lo * n_out
        if l == 0 and sparse != NULL:
            _sparse_product(sparse, order, start, lo, hi, theta + net.w_start[0], n_out, Z)
        else:
            _product(pk, l, False, n, n_out, n_in, inp, theta + net.w_start[l], Z, work)
        if l < L - 1:
            A = buf + ws.a[l] + lo * n_out
            bias_activation(Z, theta + net.b_start[l], A, n, n_out, net.activation[l])
            if ws.dropout:
                M = buf + ws.mask[l] + lo * n_out
                AM = buf + ws.dropped[l] + lo * n_out
                for i in range(n * n_out):
                    AM[i] = A[i] * M[i]
                inp = AM
            else:
                inp = A
        else:
            add_bias(Z, theta + net.b_start[l], n, n_out)


cdef void deltas(const Network* net, const Workspace* ws,
                 const floating* theta,   # IN  parameters
                 Py_ssize_t lo, Py_ssize_t hi,
                 floating* buf,           # INOUT dloss/dlogits in delta[L-1] in, every delta out
                 const Packed* pk=NULL,   # IN  packed weights of θ's dtype, or NULL: BLAS
                 floating* work=NULL      # scratch of the packed GEMM (with pk)
                 ) noexcept nogil:
    """Backpropagate the error of rows [lo, hi) to every layer's pre-activation."""
    cdef int l
    cdef Py_ssize_t n_in, n_out, n = hi - lo
    cdef floating* Dprev
    for l in range(net.n_layers - 1, 0, -1):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        # error at the previous layer's output: D W^T, then through mask and activation
        Dprev = buf + ws.delta[l - 1] + lo * n_in
        _product(pk, l, True, n, n_in, n_out, buf + ws.delta[l] + lo * n_out,
                 theta + net.w_start[l], Dprev, work)
        if ws.dropout:
            multiply(Dprev, buf + ws.mask[l - 1] + lo * n_in, n * n_in)
        activation_backward(Dprev, buf + ws.z[l - 1] + lo * n_in, buf + ws.a[l - 1] + lo * n_in,
                            n * n_in, net.activation[l - 1])


cdef const floating* layer_input(const Network* net, const Workspace* ws, const floating* X,
                                 const floating* buf, int l) noexcept nogil:
    """The rows layer l read in the forward pass: X, or the previous layer's
    activation (masked, with dropout)."""
    if l == 0:
        return X
    if ws.dropout:
        return buf + ws.dropped[l - 1]
    return buf + ws.a[l - 1]


cdef void layer_grad(const Network* net, const Workspace* ws,
                     const floating* X,      # IN  the layer-0 input rows forward saw
                     Py_ssize_t rows, const floating* buf,
                     floating* grad,         # OUT (or += when accumulate) θ's layout
                     int l, Py_ssize_t r0, Py_ssize_t r1, bint accumulate) noexcept nogil:
    """Gradient of layer l's weight rows [r0, r1), or of its bias when r0 < 0.

    dW[r0:r1] = inp[:, r0:r1]^T D and db = column sums of D, over all rows.
    """
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef const floating* inp = layer_input(net, ws, X, buf, l)
    cdef const floating* D = buf + ws.delta[l]
    if r0 < 0:
        column_sums(D, grad + net.b_start[l], rows, n_out, accumulate)
        return
    gemm(True, False, <int> (r1 - r0), <int> n_out, <int> rows, <floating> 1.0,
         inp + r0, <int> n_in, D, <int> n_out, <floating> (1.0 if accumulate else 0.0),
         grad + net.w_start[l] + r0 * n_out, <int> n_out)


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
    cdef int l
    deltas(net, ws, theta, 0, n_rows, buf)
    for l in range(net.n_layers):
        if l == 0 and sparse != NULL:
            sparse_weight_grad(net, sparse, NULL, start, n_rows, buf + ws.delta[0], grad,
                               accumulate)
        else:
            layer_grad(net, ws, X, n_rows, buf, grad, l, 0, net.sizes[l], accumulate)
        layer_grad(net, ws, X, n_rows, buf, grad, l, -1, -1, accumulate)
