"""The layer table: each kind of layer as one row of C functions.

Design
------
* A kind owns a slice of θ (``Network.w_start[l]`` .. ``p_stop[l]``) and the
  arrays it lays out in the workspace (``scratch``); nothing outside this
  module reads them, except a layer's output (``Workspace.out``), which the
  next layer reads, and its error (``Workspace.delta``), which the next layer
  writes.
* forward and backward act on rows [lo, hi) only, so a mini-batch's shards
  run them on different threads; every reduction across rows (a gradient's
  sum over the batch) runs in the parameter blocks a kind makes (``blocks``),
  in a fixed order, so the result does not depend on the thread count.
* DENSE keeps its fast paths as its own: products through the packed GEMM,
  smallgemm or BLAS (``_blas``), the one-row vector-matrix kernel with its
  columns shared among threads, and a sparse first layer.
* LAYER_NORM and ADD are plain loops over contiguous rows: the compiler's
  code is the same on every instruction-set path, and their results too.
* A residual block ``x + f(x)`` is its layers followed by an ADD that links to
  the block's first layer: its forward adds that layer's input; the error at
  that input gets the ADD's error added (``_passes.deltas``, through
  ``Network.skip_from``).
"""
from libc.math cimport sqrt
from libc.string cimport memcpy
from cython cimport floating

from archfit.kernels cimport (Network, Settings, Data, DENSE, LAYER_NORM, ADD, N_KINDS)
from archfit._kernels._plan cimport Workspace, Packed, UPDATE_BLOCK, BLOCK_MIN_ROWS
from archfit._kernels._blas cimport gemm
from archfit._kernels.packgemm cimport pack_rows, packed_gemm
from archfit._kernels._elementwise cimport activation_backward, column_sums, multiply
from archfit._kernels._optimizers cimport update

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs


# The table, filled at the end of this module.
cdef Kind _TABLE[N_KINDS]


# ---- what every kind uses ------------------------------------------------------------------
cdef inline bint _dropout(const Network* net, const Workspace* ws, int l) noexcept nogil:
    """Whether layer l's output is masked by dropout: a DENSE layer before the
    last, in a fit with dropout."""
    return ws.dropout and net.kind[l] == DENSE and l < net.n_layers - 1


cdef inline const floating* _input(const Pass* p, int l, floating* buf) noexcept nogil:
    """The rows layer l reads (row 0 of them): the batch's inputs, or the
    previous layer's output."""
    if l == 0:
        return <const floating*> p.X
    return buf + p.ws.out[l - 1]


cdef Py_ssize_t _no_blocks(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil:
    return 0


cdef void _no_decay(const Network* net, int l, Py_ssize_t* first, Py_ssize_t* stop) noexcept nogil:
    first[0] = stop[0] = net.w_start[l]


cdef Py_ssize_t _one_block(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil:
    """The whole of layer l's parameters in one block (l, -1, -1)."""
    if blocks != NULL:
        blocks[0] = l
        blocks[1] = -1
        blocks[2] = -1
    return 1


cdef void _whole_row(const Pass* p, int l, int part, int parts, floating* buf) noexcept nogil:
    """One sample's forward pass of a layer that is not shared: in part 0."""
    if part == 0:
        _forward(p, l, 0, 1, buf)


cdef inline void _forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                          floating* buf) noexcept nogil:
    if floating is float:
        _TABLE[p.net.kind[l]].forward_f32(p, l, lo, hi, buf)
    else:
        _TABLE[p.net.kind[l]].forward_f64(p, l, lo, hi, buf)


# ---- DENSE: activation(x W + b) --------------------------------------------------------------
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


cdef void _repack(const Network* net, const Packed* pk, const floating* theta, int l,
                  Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Refresh rows [r0, r1) of layer l's packed weights (and their transposed
    copy) from θ, when the layer is packed."""
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    if not pk.layer[l]:
        return
    pack_rows(n_in, n_out, theta + net.w_start[l], n_out, r0, r1, pk.P[l])
    if l > 0:
        pack_rows(n_in, n_out, theta + net.w_start[l], n_out, r0, r1, pk.PT[l], True)


cdef void dense_repack_all(const Network* net, const Packed* pk, const void* theta,
                           bint f64) noexcept nogil:
    """Pack every packed layer's weights from θ (a fit's start of an epoch)."""
    cdef int l
    for l in range(net.n_layers):
        if f64:
            _repack(net, pk, <const double*> theta, l, 0, net.sizes[l])
        else:
            _repack(net, pk, <const float*> theta, l, 0, net.sizes[l])


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


cdef void _sparse_weight_grad(const Network* net, const Data* sparse, const Py_ssize_t* order,
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


cdef void dense_sparse_grad(const Network* net, const Data* sparse, const Py_ssize_t* order,
                            Py_ssize_t start, Py_ssize_t rows, const void* D, void* grad,
                            bint f64) noexcept nogil:
    """A mini-batch's first-layer weight gradient for sparse X, in one pass
    over its stored values (before the blocks phase, which then only updates)."""
    if f64:
        _sparse_weight_grad(net, sparse, order, start, rows, <const double*> D,
                            <double*> grad, False)
    else:
        _sparse_weight_grad(net, sparse, order, start, rows, <const float*> D,
                            <float*> grad, False)


cdef Py_ssize_t _dense_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                               Py_ssize_t off) noexcept nogil:
    """Pre-activation and error; a hidden layer's activation, and with
    dropout its mask and masked activation."""
    cdef Py_ssize_t width = net.sizes[l + 1]
    ws.z[l] = off
    off += rows * width
    ws.delta[l] = off
    off += rows * width
    ws.out[l] = ws.z[l]
    if l < net.n_layers - 1:
        ws.a[l] = off
        off += rows * width
        ws.out[l] = ws.a[l]
        if _dropout(net, ws, l):
            ws.mask[l] = off
            off += rows * width
            ws.dropped[l] = off
            off += rows * width
            ws.out[l] = ws.dropped[l]
    return off


cdef void _dense_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                         floating* buf) noexcept nogil:
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef const floating* theta = <const floating*> p.theta
    cdef Py_ssize_t i, n_in = net.sizes[l], n_out = net.sizes[l + 1], n = hi - lo
    cdef floating* Z = buf + ws.z[l] + lo * n_out
    cdef floating* A
    cdef floating* M
    cdef floating* AM
    if l == 0 and p.sparse != NULL:
        _sparse_product(p.sparse, p.order, p.start, lo, hi, theta + net.w_start[0], n_out, Z)
    else:
        _product(p.pk, l, False, n, n_out, n_in, _input(p, l, buf) + lo * n_in,
                 theta + net.w_start[l], Z, <floating*> p.work)
    if l < net.n_layers - 1:
        A = buf + ws.a[l] + lo * n_out
        bias_activation(Z, theta + net.b_start[l], A, n, n_out, net.activation[l])
        if _dropout(net, ws, l):
            M = buf + ws.mask[l] + lo * n_out
            AM = buf + ws.dropped[l] + lo * n_out
            for i in range(n * n_out):
                AM[i] = A[i] * M[i]
    else:
        add_bias(Z, theta + net.b_start[l], n, n_out)


cdef void _dense_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                          floating* buf) noexcept nogil:
    """The error at the output, through mask and activation, becomes the error
    at the pre-activation (in place); times W^T, the error at the input."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1], n = hi - lo
    cdef floating* D = buf + ws.delta[l] + lo * n_out
    if l < net.n_layers - 1:
        if _dropout(net, ws, l):
            multiply(D, buf + ws.mask[l] + lo * n_out, n * n_out)
        activation_backward(D, buf + ws.z[l] + lo * n_out, buf + ws.a[l] + lo * n_out,
                            n * n_out, net.activation[l])
    if l > 0:
        _product(p.pk, l, True, n, n_in, n_out, D,
                 <const floating*> p.theta + net.w_start[l], buf + ws.delta[l - 1] + lo * n_in,
                 <floating*> p.work)


cdef void _dense_rows_grad(const Pass* p, int l, Py_ssize_t rows, floating* buf,
                           floating* grad, Py_ssize_t r0, Py_ssize_t r1,
                           bint accumulate) noexcept nogil:
    """Gradient of layer l's weight rows [r0, r1), or of its bias when r0 < 0.

    dW[r0:r1] = inp[:, r0:r1]^T D and db = column sums of D, over all rows.
    """
    cdef const Network* net = p.net
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef const floating* D = buf + p.ws.delta[l]
    if r0 < 0:
        column_sums(D, grad + net.b_start[l], rows, n_out, accumulate)
        return
    gemm(True, False, <int> (r1 - r0), <int> n_out, <int> rows, <floating> 1.0,
         _input(p, l, buf) + r0, <int> n_in, D, <int> n_out,
         <floating> (1.0 if accumulate else 0.0), grad + net.w_start[l] + r0 * n_out,
         <int> n_out)


cdef void _dense_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad, bint accumulate,
                      floating* buf) noexcept nogil:
    if l == 0 and p.sparse != NULL:
        _sparse_weight_grad(p.net, p.sparse, p.order, p.start, rows, buf + p.ws.delta[0], grad,
                            accumulate)
    else:
        _dense_rows_grad(p, l, rows, buf, grad, 0, p.net.sizes[l], accumulate)
    _dense_rows_grad(p, l, rows, buf, grad, -1, -1, accumulate)


cdef void _dense_block(const Pass* p, const Update* u, int l, Py_ssize_t r0, Py_ssize_t r1,
                       floating* buf) noexcept nogil:
    """Weight rows [r0, r1) (with the L2 terms), or the bias (r0 < 0): the
    gradient - from the packed errors when the layer is packed; with sparse X
    layer 0's weight gradient is already there - then the update, then the
    packed copies of the rows updated."""
    cdef const Network* net = p.net
    cdef const Packed* pk = p.pk
    cdef floating* theta = <floating*> u.theta
    cdef floating* grad = <floating*> u.grad
    cdef Py_ssize_t first, stop, n_out = net.sizes[l + 1]
    if u.sparse_first and l == 0 and r0 >= 0:
        pass
    elif pk != NULL and r0 >= 0 and pk.layer[l]:
        packed_gemm(True, r1 - r0, n_out, u.rows, _input(p, l, buf) + r0, net.sizes[l],
                    <const floating*> pk.D[l], grad + net.w_start[l] + r0 * n_out, n_out,
                    <floating*> p.work)
    else:
        _dense_rows_grad(p, l, u.rows, buf, grad, r0, r1, False)
    if r0 < 0:
        first = net.b_start[l]
        stop = first + n_out
        update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m,
               <floating*> u.v, first, stop, 0.0, 0.0)
    else:
        first = net.w_start[l] + r0 * n_out
        stop = net.w_start[l] + r1 * n_out
        update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m,
               <floating*> u.v, first, stop, u.penalty, u.decay)
        if pk != NULL:
            _repack(net, pk, theta, l, r0, r1)


cdef Py_ssize_t _dense_blocks(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil:
    """Blocks of weight rows, UPDATE_BLOCK parameters or BLOCK_MIN_ROWS rows
    each (every block's GEMM packs the layer's whole error matrix again),
    then the bias."""
    cdef Py_ssize_t n = 0, r0 = 0
    cdef Py_ssize_t step = max(<Py_ssize_t> BLOCK_MIN_ROWS, UPDATE_BLOCK // net.sizes[l + 1])
    while r0 < net.sizes[l]:
        if blocks != NULL:
            blocks[3 * n] = l
            blocks[3 * n + 1] = r0
            blocks[3 * n + 2] = min(net.sizes[l], r0 + step)
        n += 1
        r0 += step
    if blocks != NULL:
        blocks[3 * n] = l
        blocks[3 * n + 1] = -1
        blocks[3 * n + 2] = -1
    return n + 1


cdef void _dense_decays(const Network* net, int l, Py_ssize_t* first,
                        Py_ssize_t* stop) noexcept nogil:
    """The weights decay; the bias does not."""
    first[0] = net.w_start[l]
    stop[0] = net.b_start[l]


# ---- LAYER_NORM: (x - mean) / sqrt(var + eps) * gain + bias, per row --------------------------
cdef Py_ssize_t _norm_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                              Py_ssize_t off) noexcept nogil:
    """The normalised rows, the output, the error and each row's 1/sd."""
    cdef Py_ssize_t width = net.sizes[l]
    ws.z[l] = off
    off += rows * width
    ws.out[l] = off
    off += rows * width
    ws.delta[l] = off
    off += rows * width
    ws.aux[l] = off
    return off + rows


cdef void _norm_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                        floating* buf) noexcept nogil:
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef Py_ssize_t i, j, n = net.sizes[l]
    cdef const floating* gain = <const floating*> p.theta + net.w_start[l]
    cdef const floating* bias = <const floating*> p.theta + net.b_start[l]
    cdef const floating* x
    cdef floating* xh
    cdef floating* y
    cdef double mean, var, d, rstd
    for i in range(lo, hi):
        x = _input(p, l, buf) + i * n
        xh = buf + ws.z[l] + i * n
        y = buf + ws.out[l] + i * n
        # mean and variance in double, in column order: the same bits on any path
        mean = 0.0
        for j in range(n):
            mean += x[j]
        mean /= n
        var = 0.0
        for j in range(n):
            d = x[j] - mean
            var += d * d
        rstd = 1.0 / sqrt(var / n + net.epsilon[l])
        buf[ws.aux[l] + i] = <floating> rstd
        for j in range(n):
            xh[j] = <floating> ((x[j] - mean) * rstd)
            y[j] = xh[j] * gain[j] + bias[j]


cdef void _norm_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                         floating* buf) noexcept nogil:
    """dx = rstd (g - mean(g) - xh mean(g xh)), g = dy * gain, per row."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef Py_ssize_t i, j, n = net.sizes[l]
    cdef const floating* gain = <const floating*> p.theta + net.w_start[l]
    cdef const floating* dy
    cdef const floating* xh
    cdef floating* dx
    cdef double mean_g, mean_gx, g, rstd
    if l == 0:
        return
    for i in range(lo, hi):
        dy = buf + ws.delta[l] + i * n
        xh = buf + ws.z[l] + i * n
        dx = buf + ws.delta[l - 1] + i * n
        rstd = buf[ws.aux[l] + i]
        mean_g = 0.0
        mean_gx = 0.0
        for j in range(n):
            g = <double> dy[j] * gain[j]
            mean_g += g
            mean_gx += g * xh[j]
        mean_g /= n
        mean_gx /= n
        for j in range(n):
            dx[j] = <floating> (rstd * (<double> dy[j] * gain[j] - mean_g - xh[j] * mean_gx))


cdef void _norm_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad, bint accumulate,
                     floating* buf) noexcept nogil:
    """d gain = sum over rows of dy xh, d bias = sum of dy, rows in order."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, n = net.sizes[l]
    cdef floating* dg = grad + net.w_start[l]
    cdef floating* db = grad + net.b_start[l]
    cdef const floating* dy
    cdef const floating* xh
    if not accumulate:
        for j in range(n):
            dg[j] = 0
            db[j] = 0
    for i in range(rows):
        dy = buf + p.ws.delta[l] + i * n
        xh = buf + p.ws.z[l] + i * n
        for j in range(n):
            dg[j] += dy[j] * xh[j]
            db[j] += dy[j]


cdef void _norm_block(const Pass* p, const Update* u, int l, Py_ssize_t r0, Py_ssize_t r1,
                      floating* buf) noexcept nogil:
    """Gain and bias: their gradient, then their update (neither decays)."""
    _norm_grad(p, l, u.rows, <floating*> u.grad, False, buf)
    update(u.settings, u.learning_rate, u.step, <floating*> u.theta, <const floating*> u.grad,
           <floating*> u.m, <floating*> u.v, p.net.w_start[l], p.net.p_stop[l], 0.0, 0.0)


# ---- ADD: x + the input of layer `link` (a residual block's end) ------------------------------
cdef Py_ssize_t _add_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                             Py_ssize_t off) noexcept nogil:
    cdef Py_ssize_t width = net.sizes[l]
    ws.out[l] = off
    off += rows * width
    ws.delta[l] = off
    return off + rows * width


cdef void _add_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                       floating* buf) noexcept nogil:
    cdef Py_ssize_t i, n = p.net.sizes[l]
    cdef const floating* x = _input(p, l, buf)
    cdef const floating* skip = _input(p, p.net.link[l], buf)
    cdef floating* y = buf + p.ws.out[l]
    for i in range(lo * n, hi * n):
        y[i] = x[i] + skip[i]


cdef void _add_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                        floating* buf) noexcept nogil:
    """The error at the input is the error at the output (the skip's share is
    added where the block starts)."""
    cdef Py_ssize_t n = p.net.sizes[l]
    memcpy(buf + p.ws.delta[l - 1] + lo * n, buf + p.ws.delta[l] + lo * n,
           (hi - lo) * n * sizeof(floating))


cdef void _no_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad, bint accumulate,
                   floating* buf) noexcept nogil:
    pass


cdef void _no_block(const Pass* p, const Update* u, int l, Py_ssize_t r0, Py_ssize_t r1,
                    floating* buf) noexcept nogil:
    pass


# ---- the table ---------------------------------------------------------------------------------
_TABLE[<int> DENSE].forward_f32 = _dense_forward[float]
_TABLE[<int> DENSE].forward_f64 = _dense_forward[double]
_TABLE[<int> DENSE].backward_f32 = _dense_backward[float]
_TABLE[<int> DENSE].backward_f64 = _dense_backward[double]
_TABLE[<int> DENSE].grad_f32 = _dense_grad[float]
_TABLE[<int> DENSE].grad_f64 = _dense_grad[double]
_TABLE[<int> DENSE].block_f32 = _dense_block[float]
_TABLE[<int> DENSE].block_f64 = _dense_block[double]
_TABLE[<int> DENSE].part_f32 = dense_part[float]
_TABLE[<int> DENSE].part_f64 = dense_part[double]
_TABLE[<int> DENSE].scratch = _dense_scratch
_TABLE[<int> DENSE].blocks = _dense_blocks
_TABLE[<int> DENSE].decays = _dense_decays

_TABLE[<int> LAYER_NORM].forward_f32 = _norm_forward[float]
_TABLE[<int> LAYER_NORM].forward_f64 = _norm_forward[double]
_TABLE[<int> LAYER_NORM].backward_f32 = _norm_backward[float]
_TABLE[<int> LAYER_NORM].backward_f64 = _norm_backward[double]
_TABLE[<int> LAYER_NORM].grad_f32 = _norm_grad[float]
_TABLE[<int> LAYER_NORM].grad_f64 = _norm_grad[double]
_TABLE[<int> LAYER_NORM].block_f32 = _norm_block[float]
_TABLE[<int> LAYER_NORM].block_f64 = _norm_block[double]
_TABLE[<int> LAYER_NORM].part_f32 = _whole_row[float]
_TABLE[<int> LAYER_NORM].part_f64 = _whole_row[double]
_TABLE[<int> LAYER_NORM].scratch = _norm_scratch
_TABLE[<int> LAYER_NORM].blocks = _one_block
_TABLE[<int> LAYER_NORM].decays = _no_decay

_TABLE[<int> ADD].forward_f32 = _add_forward[float]
_TABLE[<int> ADD].forward_f64 = _add_forward[double]
_TABLE[<int> ADD].backward_f32 = _add_backward[float]
_TABLE[<int> ADD].backward_f64 = _add_backward[double]
_TABLE[<int> ADD].grad_f32 = _no_grad[float]
_TABLE[<int> ADD].grad_f64 = _no_grad[double]
_TABLE[<int> ADD].block_f32 = _no_block[float]
_TABLE[<int> ADD].block_f64 = _no_block[double]
_TABLE[<int> ADD].part_f32 = _whole_row[float]
_TABLE[<int> ADD].part_f64 = _whole_row[double]
_TABLE[<int> ADD].scratch = _add_scratch
_TABLE[<int> ADD].blocks = _no_blocks
_TABLE[<int> ADD].decays = _no_decay


cdef const Kind* kinds() noexcept nogil:
    """The table, indexed by LayerKind."""
    return _TABLE
