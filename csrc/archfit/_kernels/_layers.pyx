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
  PERIODIC's products (each feature's cos and sin features times its own
  weights) go through ``_blas.gemm`` as DENSE's do, one feature at a time;
  so do PIECEWISE_LINEAR's (each feature's bin codes times its weights).
* An ensemble inside the network (BatchEnsemble, TabM) is a REPLICATE, which
  turns each row into its members' rows (member m of row i at row i k + m),
  the shared layers after it - DENSE, LAYER_NORM, ADD, which run on those
  rows as on any others (one GEMM for all members) - and a last
  MEMBER_DENSE, each member's own weights: strided GEMMs, one per member.
  With adapters on every layer, the shared DENSE layers are ADAPTED_DENSE:
  each member's rows scaled before and after the one GEMM of all members.
* A residual block ``x + f(x)`` is its layers followed by an ADD that links to
  the block's first layer: its forward adds that layer's input; the error at
  that input gets the ADD's error added (``_passes.deltas``, through
  ``Network.skip_from``).
"""
from libc.math cimport sqrt, cos, sin, M_PI
from libc.string cimport memcpy
from cython cimport floating

from archfit.kernels cimport (Network, Settings, Data, DENSE, LAYER_NORM, ADD, PERIODIC,
                              EMBEDDING, ONE_HOT, PIECEWISE_LINEAR, REPLICATE, MEMBER_DENSE,
                              ADAPTED_DENSE, N_KINDS, PRECISION_BFLOAT16)
from archfit._kernels._plan cimport Workspace, Packed, UPDATE_BLOCK, BLOCK_MIN_ROWS
from archfit._kernels._blas cimport (gemm, row_gemm, bf16_gemm, bf16_pack,
                                    bf16_gemm_prepacked)
from archfit._kernels.packgemm cimport pack_rows, packed_gemm
from archfit._kernels._elementwise cimport activation_backward, column_sums, multiply
from archfit._kernels._optimizers cimport update

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs


# The table, filled at the end of this module.
cdef Kind _TABLE[N_KINDS]


# ---- what every kind uses ------------------------------------------------------------------
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
cdef inline void _product(const Network* net, const Packed* pk, int l, bint transposed,
                          Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A,
                          const floating* W, floating* C, floating* work) noexcept nogil:
    """C = A op(W) for layer l: A (m, k), W layer l's weights (n_in, n_out),
    op(W) = W^T when `transposed`; from the packed copy when there is one, in
    bfloat16 when the network's precision says so."""
    if floating is float and net.precision == PRECISION_BFLOAT16:
        if pk != NULL and pk.layer[l]:
            bf16_gemm_prepacked(False, m, n, k, A, k,
                                <const unsigned int*> (pk.PT[l] if transposed else pk.P[l]),
                                C, n, False)
        else:
            bf16_gemm(False, transposed, m, n, k, A, k, W, k if transposed else n, C, n, False)
    elif pk != NULL and pk.layer[l]:
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
    if floating is float and net.precision == PRECISION_BFLOAT16:
        # W's rows [r0, r1) are pairs of k in P (r0 even: _dense_blocks) and
        # columns of W^T in PT
        bf16_pack(False, theta + net.w_start[l], n_out, n_in, n_out, r0, r1, 0, n_out,
                  <unsigned int*> pk.P[l])
        if l > 0:
            bf16_pack(True, theta + net.w_start[l], n_out, n_out, n_in, 0, n_out, r0, r1,
                      <unsigned int*> pk.PT[l])
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
        if has_dropout(net, ws, l):
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
        _product(p.net, p.pk, l, False, n, n_out, n_in, _input(p, l, buf) + lo * n_in,
                 theta + net.w_start[l], Z, <floating*> p.work)
    if l < net.n_layers - 1:
        A = buf + ws.a[l] + lo * n_out
        bias_activation(Z, theta + net.b_start[l], A, n, n_out, net.activation[l])
        if has_dropout(net, ws, l):
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
        if has_dropout(net, ws, l):
            multiply(D, buf + ws.mask[l] + lo * n_out, n * n_out)
        activation_backward(D, buf + ws.z[l] + lo * n_out, buf + ws.a[l] + lo * n_out,
                            n * n_out, net.activation[l])
    if l > 0:
        _product(p.net, p.pk, l, True, n, n_in, n_out, D,
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
    if floating is float and net.precision == PRECISION_BFLOAT16:
        bf16_gemm(True, False, r1 - r0, n_out, rows, _input(p, l, buf) + r0, n_in, D, n_out,
                  grad + net.w_start[l] + r0 * n_out, n_out, accumulate)
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
    elif (floating is float and net.precision == PRECISION_BFLOAT16 and pk != NULL and r0 >= 0
          and pk.layer[l]):
        bf16_gemm_prepacked(True, r1 - r0, n_out, u.rows, <const float*> _input(p, l, buf) + r0,
                            net.sizes[l], <const unsigned int*> pk.D[l],
                            grad + net.w_start[l] + r0 * n_out, n_out, False)
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
    if net.precision == PRECISION_BFLOAT16:
        step += step % 2        # bfloat16 packs W's rows in pairs: a pair in one block
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


# ---- what the per-feature embeddings (PERIODIC, PIECEWISE_LINEAR) share --------------------------
cdef void _features_output(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t n,
                           Py_ssize_t width, floating* buf) noexcept nogil:
    """Rows [lo, hi) of a per-feature embedding's output: its values (the
    first width - codes columns of Z) plus the bias, through the activation,
    into A; then the input's categorical codes (after its n numeric columns),
    passed through."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef Py_ssize_t i, j, codes = net.codes[l], n_in = net.sizes[l], m = width - codes
    cdef const floating* bias = <const floating*> p.theta + net.b_start[l]
    cdef const floating* X = _input(p, l, buf)
    cdef floating* Z = buf + ws.z[l]
    cdef floating* A = buf + ws.a[l]
    if codes == 0:
        bias_activation(Z + lo * width, bias, A + lo * width, hi - lo, m, net.activation[l])
        return
    for i in range(lo, hi):
        bias_activation(Z + i * width, bias, A + i * width, 1, m, net.activation[l])
        for j in range(codes):
            A[i * width + m + j] = X[i * n_in + n + j]      # the codes, passed through


cdef void _features_delta(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t width,
                          floating* buf) noexcept nogil:
    """Rows [lo, hi) of a per-feature embedding's error at its output
    become the error at its values before the activation, in place (the
    codes' columns have none)."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef Py_ssize_t i, m = width - net.codes[l]
    cdef floating* D = buf + ws.delta[l]
    if net.codes[l] == 0:
        activation_backward(D + lo * width, buf + ws.z[l] + lo * width,
                            buf + ws.a[l] + lo * width, (hi - lo) * width, net.activation[l])
        return
    for i in range(lo, hi):
        activation_backward(D + i * width, buf + ws.z[l] + i * width, buf + ws.a[l] + i * width,
                            m, net.activation[l])


# ---- PERIODIC: activation([cos 2π c x, sin 2π c x] W + b) for each numeric feature x -----------
cdef struct _Shape:
    # A PERIODIC layer's sizes: numeric features n (then `codes` categorical
    # columns, passed through), K frequencies, `units` outputs per feature, the
    # input's and output's row widths.
    Py_ssize_t n
    Py_ssize_t codes
    Py_ssize_t K
    Py_ssize_t units
    Py_ssize_t n_in
    Py_ssize_t width
    Py_ssize_t weights          # where its weights (n, 2K, units) start in θ


cdef inline _Shape _shape(const Network* net, int l) noexcept nogil:
    cdef _Shape s
    s.codes = net.codes[l]
    s.n_in = net.sizes[l]
    s.n = s.n_in - s.codes
    s.K = net.frequencies[l]
    s.width = net.sizes[l + 1]
    s.units = (s.width - s.codes) // s.n
    s.weights = net.w_start[l] + s.n * s.K
    return s


cdef Py_ssize_t _periodic_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                                  Py_ssize_t off) noexcept nogil:
    """Pre-activation, output and error (the output's width each), the cos and
    sin features (n 2K), and for the backward pass their error (n 2K) and the
    frequencies' gradient terms (n K), per row."""
    cdef _Shape s = _shape(net, l)
    ws.z[l] = off
    off += rows * s.width
    ws.out[l] = ws.a[l] = off
    off += rows * s.width
    ws.delta[l] = off
    off += rows * s.width
    ws.aux[l] = off
    off += rows * s.n * 2 * s.K
    ws.extra[l] = off
    return off + rows * s.n * 3 * s.K


cdef void _periodic_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                            floating* buf) noexcept nogil:
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef _Shape s = _shape(net, l)
    cdef const floating* theta = <const floating*> p.theta
    cdef Py_ssize_t i, j, t, K = s.K, n = s.n
    cdef const floating* X = _input(p, l, buf)
    cdef const floating* c = theta + net.w_start[l]
    cdef floating* V = buf + ws.aux[l]
    cdef floating* Z = buf + ws.z[l]
    cdef floating* v
    cdef double a
    for i in range(lo, hi):
        for j in range(n):
            v = V + (i * n + j) * 2 * K
            for t in range(K):
                a = 2.0 * M_PI * c[j * K + t] * X[i * s.n_in + j]
                v[t] = <floating> cos(a)
                v[K + t] = <floating> sin(a)
    for j in range(n):
        # rows [lo, hi) of feature j's features times its weights
        row_gemm(hi - lo, s.units, 2 * K, V + lo * n * 2 * K + j * 2 * K, n * 2 * K,
                 theta + s.weights + j * 2 * K * s.units, s.units,
                 Z + lo * s.width + j * s.units, s.width)
    _features_output(p, l, lo, hi, n, s.width, buf)


cdef void _periodic_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                             floating* buf) noexcept nogil:
    """The error at the output becomes the error at the pre-activation (in
    place), then at the cos and sin features; from those, each row's terms of
    the frequencies' gradient and (past layer 0) the error at the input."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef _Shape s = _shape(net, l)
    cdef const floating* theta = <const floating*> p.theta
    cdef Py_ssize_t i, j, t, K = s.K, n = s.n
    cdef const floating* X = _input(p, l, buf)
    cdef const floating* c = theta + net.w_start[l]
    cdef floating* D = buf + ws.delta[l]
    cdef const floating* v
    cdef floating* dv
    cdef floating* gc
    cdef double g, dx
    _features_delta(p, l, lo, hi, s.width, buf)
    for j in range(n):
        gemm(False, True, <int> (hi - lo), <int> (2 * K), <int> s.units, <floating> 1.0,
             D + lo * s.width + j * s.units, <int> s.width, theta + s.weights + j * 2 * K * s.units,
             <int> s.units, <floating> 0.0, buf + ws.extra[l] + lo * n * 3 * K + j * 2 * K,
             <int> (n * 3 * K))
    for i in range(lo, hi):
        for j in range(n):
            v = buf + ws.aux[l] + (i * n + j) * 2 * K
            dv = buf + ws.extra[l] + i * n * 3 * K + j * 2 * K
            gc = buf + ws.extra[l] + i * n * 3 * K + n * 2 * K + j * K
            dx = 0.0
            for t in range(K):
                # d/da of [cos a, sin a] . [dv_cos, dv_sin], a = 2π c x
                g = 2.0 * M_PI * (<double> v[K + t] * -dv[t] + <double> v[t] * dv[K + t])
                gc[t] = <floating> (g * X[i * s.n_in + j])
                dx += g * c[j * K + t]
            if l > 0:
                buf[ws.delta[l - 1] + i * s.n_in + j] = <floating> dx
        if l > 0:
            for j in range(s.codes):
                buf[ws.delta[l - 1] + i * s.n_in + n + j] = 0      # codes have no gradient


cdef void _periodic_features_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                                  Py_ssize_t j0, Py_ssize_t j1, bint accumulate,
                                  floating* buf) noexcept nogil:
    """The gradient of features [j0, j1)'s frequencies, weights and bias over
    rows [0, rows), rows in order."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef _Shape s = _shape(net, l)
    cdef Py_ssize_t i, j, t, K = s.K, n = s.n, units = s.units
    cdef floating* gfreq = grad + net.w_start[l]
    cdef floating* gbias = grad + net.b_start[l]
    cdef const floating* D = buf + ws.delta[l]
    cdef const floating* gc
    for j in range(j0, j1):
        gemm(True, False, <int> (2 * K), <int> units, <int> rows, <floating> 1.0,
             buf + ws.aux[l] + j * 2 * K, <int> (n * 2 * K), D + j * units, <int> s.width,
             <floating> (1.0 if accumulate else 0.0), grad + s.weights + j * 2 * K * units,
             <int> units)
    if not accumulate:
        for t in range(j0 * K, j1 * K):
            gfreq[t] = 0
        for t in range(j0 * units, j1 * units):
            gbias[t] = 0
    for i in range(rows):
        gc = buf + ws.extra[l] + i * n * 3 * K + n * 2 * K
        for t in range(j0 * K, j1 * K):
            gfreq[t] += gc[t]
        for t in range(j0 * units, j1 * units):
            gbias[t] += D[i * s.width + t]


cdef void _periodic_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                         bint accumulate, floating* buf) noexcept nogil:
    _periodic_features_grad(p, l, rows, grad, 0, _shape(p.net, l).n, accumulate, buf)


cdef Py_ssize_t _periodic_blocks(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil:
    """Blocks of whole features, about UPDATE_BLOCK parameters each."""
    cdef Py_ssize_t n = _shape(net, l).n, per_feature = (net.p_stop[l] - net.w_start[l]) // n
    cdef Py_ssize_t step = max(<Py_ssize_t> 1, UPDATE_BLOCK // per_feature), j0 = 0, count = 0
    while j0 < n:
        if blocks != NULL:
            blocks[3 * count] = l
            blocks[3 * count + 1] = j0
            blocks[3 * count + 2] = min(n, j0 + step)
        count += 1
        j0 += step
    return count


cdef void _periodic_block(const Pass* p, const Update* u, int l, Py_ssize_t j0, Py_ssize_t j1,
                          floating* buf) noexcept nogil:
    """Features [j0, j1): their gradient, then the update of their
    frequencies and bias (no decay) and weights (with the L2 terms)."""
    cdef const Network* net = p.net
    cdef _Shape s = _shape(net, l)
    cdef floating* theta = <floating*> u.theta
    cdef floating* grad = <floating*> u.grad
    _periodic_features_grad(p, l, u.rows, grad, j0, j1, False, buf)
    update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m, <floating*> u.v,
           net.w_start[l] + j0 * s.K, net.w_start[l] + j1 * s.K, 0.0, 0.0)
    update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m, <floating*> u.v,
           s.weights + j0 * 2 * s.K * s.units, s.weights + j1 * 2 * s.K * s.units, u.penalty,
           u.decay)
    update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m, <floating*> u.v,
           net.b_start[l] + j0 * s.units, net.b_start[l] + j1 * s.units, 0.0, 0.0)


cdef void _periodic_decays(const Network* net, int l, Py_ssize_t* first,
                           Py_ssize_t* stop) noexcept nogil:
    """The weights decay; the frequencies and the bias do not."""
    first[0] = _shape(net, l).weights
    stop[0] = net.b_start[l]


# ---- PIECEWISE_LINEAR: activation(x u + e(x) W + b) for each numeric feature x -----------------
# e(x) codes x against the feature's edges e_0 .. e_T (fixed: fitted on the
# training rows, never trained): bin t's code is (x - e_t) / (e_t+1 - e_t),
# clipped to [0, 1], except that the first bin's is not clipped below and the
# last's not above; a bin of no width (e_t+1 <= e_t: a feature with fewer
# distinct values than bins repeats its last edge) codes 0, and the bin before
# it is the last. This is the piecewise-linear encoding of Gorishniy et al.
# (2022), with their version B's linear term x u beside it.
cdef struct _Bins:
    # A PIECEWISE_LINEAR layer's sizes: numeric features n (then `codes`
    # categorical columns, passed through), T bins, `units` outputs per
    # feature, the input's and output's row widths, where its linear weights
    # (n, units) and weights (n, T, units) start in θ.
    Py_ssize_t n
    Py_ssize_t codes
    Py_ssize_t T
    Py_ssize_t units
    Py_ssize_t n_in
    Py_ssize_t width
    Py_ssize_t linear
    Py_ssize_t weights


cdef inline _Bins _bins(const Network* net, int l) noexcept nogil:
    cdef _Bins s
    s.codes = net.codes[l]
    s.n_in = net.sizes[l]
    s.n = s.n_in - s.codes
    s.T = net.bins[l]
    s.width = net.sizes[l + 1]
    s.units = (s.width - s.codes) // s.n
    s.linear = net.w_start[l] + s.n * (s.T + 1)
    s.weights = s.linear + s.n * s.units
    return s


cdef inline double bin_code(const floating* e, Py_ssize_t T, Py_ssize_t t,
                            double x) noexcept nogil:
    """Bin t's code of x against edges e (T + 1 of them). A value below a
    clipped bin or above it codes 0 or 1 without the division (rounding is
    monotonic: the division would give less than 0 or at least 1; x = lo
    divides, for the sign of its zero)."""
    cdef double lo = e[t], hi = e[t + 1], v
    if not hi > lo:
        return 0.0
    if t > 0 and x < lo:
        return 0.0
    if t < T - 1 and x >= hi and e[t + 2] > hi:
        return 1.0
    v = (x - lo) / (hi - lo)
    if t > 0 and v < 0.0:
        v = 0.0
    if t < T - 1 and e[t + 2] > hi and v > 1.0:
        v = 1.0
    return v


cdef Py_ssize_t _piecewise_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                                   Py_ssize_t off) noexcept nogil:
    """Pre-activation, output and error (the output's width each), and each
    row's bin codes (n T)."""
    cdef _Bins s = _bins(net, l)
    ws.z[l] = off
    off += rows * s.width
    ws.out[l] = ws.a[l] = off
    off += rows * s.width
    ws.delta[l] = off
    off += rows * s.width
    ws.aux[l] = off
    return off + rows * s.n * s.T


cdef void _piecewise_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                             floating* buf) noexcept nogil:
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef _Bins s = _bins(net, l)
    cdef const floating* theta = <const floating*> p.theta
    cdef Py_ssize_t i, j, t, T = s.T, n = s.n
    cdef const floating* X = _input(p, l, buf)
    cdef const floating* edges = theta + net.w_start[l]
    cdef const floating* u
    cdef floating* E = buf + ws.aux[l]
    cdef floating* Z = buf + ws.z[l]
    cdef floating* z
    cdef floating x
    for i in range(lo, hi):
        for j in range(n):
            x = X[i * s.n_in + j]
            for t in range(T):
                E[(i * n + j) * T + t] = <floating> bin_code(edges + j * (T + 1), T, t, x)
    for j in range(n):
        # rows [lo, hi) of feature j's codes times its weights
        row_gemm(hi - lo, s.units, T, E + (lo * n + j) * T, n * T,
                 theta + s.weights + j * T * s.units, s.units, Z + lo * s.width + j * s.units,
                 s.width)
    for i in range(lo, hi):
        for j in range(n):
            # plus the linear term x u
            x = X[i * s.n_in + j]
            u = theta + s.linear + j * s.units
            z = Z + i * s.width + j * s.units
            for t in range(s.units):
                z[t] += x * u[t]
    _features_output(p, l, lo, hi, n, s.width, buf)


cdef void _piecewise_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                              floating* buf) noexcept nogil:
    """The error at the output becomes the error at the pre-activation, in
    place. The layer is the first: no error at its input."""
    _features_delta(p, l, lo, hi, p.net.sizes[l + 1], buf)


cdef void _piecewise_features_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                                   Py_ssize_t j0, Py_ssize_t j1, bint accumulate,
                                   floating* buf) noexcept nogil:
    """The gradient of features [j0, j1)'s linear weights, weights and bias
    over rows [0, rows), rows in order; their edges' is zero."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef _Bins s = _bins(net, l)
    cdef Py_ssize_t i, j, t, T = s.T, n = s.n, units = s.units
    cdef floating* glin = grad + s.linear
    cdef floating* gbias = grad + net.b_start[l]
    cdef const floating* D = buf + ws.delta[l]
    cdef const floating* X = _input(p, l, buf)
    cdef const floating* d
    cdef floating x
    for j in range(j0, j1):
        gemm(True, False, <int> T, <int> units, <int> rows, <floating> 1.0,
             buf + ws.aux[l] + j * T, <int> (n * T), D + j * units, <int> s.width,
             <floating> (1.0 if accumulate else 0.0), grad + s.weights + j * T * units,
             <int> units)
    if not accumulate:
        for t in range(net.w_start[l] + j0 * (T + 1), net.w_start[l] + j1 * (T + 1)):
            grad[t] = 0
        for t in range(j0 * units, j1 * units):
            glin[t] = 0
            gbias[t] = 0
    for i in range(rows):
        for j in range(j0, j1):
            x = X[i * s.n_in + j]
            d = D + i * s.width + j * units
            for t in range(units):
                glin[j * units + t] += x * d[t]
                gbias[j * units + t] += d[t]


cdef void _piecewise_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                          bint accumulate, floating* buf) noexcept nogil:
    _piecewise_features_grad(p, l, rows, grad, 0, _bins(p.net, l).n, accumulate, buf)


cdef Py_ssize_t _piecewise_blocks(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil:
    """Blocks of whole features, about UPDATE_BLOCK parameters each."""
    cdef _Bins s = _bins(net, l)
    cdef Py_ssize_t per_feature = (s.T + 2) * s.units + s.T + 1
    cdef Py_ssize_t step = max(<Py_ssize_t> 1, UPDATE_BLOCK // per_feature), j0 = 0, count = 0
    while j0 < s.n:
        if blocks != NULL:
            blocks[3 * count] = l
            blocks[3 * count + 1] = j0
            blocks[3 * count + 2] = min(s.n, j0 + step)
        count += 1
        j0 += step
    return count


cdef void _piecewise_block(const Pass* p, const Update* u, int l, Py_ssize_t j0, Py_ssize_t j1,
                           floating* buf) noexcept nogil:
    """Features [j0, j1): their gradient, then the update of their linear
    weights and weights (with the L2 terms) and bias (no decay); the edges
    stay as they are."""
    cdef const Network* net = p.net
    cdef _Bins s = _bins(net, l)
    cdef floating* theta = <floating*> u.theta
    cdef floating* grad = <floating*> u.grad
    _piecewise_features_grad(p, l, u.rows, grad, j0, j1, False, buf)
    update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m, <floating*> u.v,
           s.linear + j0 * s.units, s.linear + j1 * s.units, u.penalty, u.decay)
    update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m, <floating*> u.v,
           s.weights + j0 * s.T * s.units, s.weights + j1 * s.T * s.units, u.penalty, u.decay)
    update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m, <floating*> u.v,
           net.b_start[l] + j0 * s.units, net.b_start[l] + j1 * s.units, 0.0, 0.0)


cdef void _piecewise_decays(const Network* net, int l, Py_ssize_t* first,
                            Py_ssize_t* stop) noexcept nogil:
    """The linear weights and the weights decay; the edges and the bias do not."""
    first[0] = _bins(net, l).linear
    stop[0] = net.b_start[l]


# ---- REPLICATE: each row as an ensemble's members' rows, each times its scale r_m ------------
cdef Py_ssize_t _replicate_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                                   Py_ssize_t off) noexcept nogil:
    """The output and its error: `members` rows per input row."""
    cdef Py_ssize_t size = rows * net.members * net.sizes[l]
    ws.out[l] = off
    off += size
    ws.delta[l] = off
    return off + size


cdef void _replicate_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                             floating* buf) noexcept nogil:
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, m, M = net.members, n = net.sizes[l]
    cdef const floating* x = _input(p, l, buf)
    cdef const floating* r = <const floating*> p.theta + net.w_start[l]
    cdef floating* y
    for i in range(lo, hi):
        for m in range(M):
            y = buf + p.ws.out[l] + (i * M + m) * n
            if net.adapter[l]:
                for j in range(n):
                    y[j] = x[i * n + j] * r[m * n + j]
            else:
                for j in range(n):
                    y[j] = x[i * n + j]


cdef void _replicate_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                              floating* buf) noexcept nogil:
    """The error at an input row: its members' errors (times their scales)
    summed in member order."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, m, M = net.members, n = net.sizes[l]
    cdef const floating* r = <const floating*> p.theta + net.w_start[l]
    cdef const floating* dy
    cdef floating* dx
    if l == 0:
        return
    for i in range(lo, hi):
        dx = buf + p.ws.delta[l - 1] + i * n
        for j in range(n):
            dx[j] = 0
        for m in range(M):
            dy = buf + p.ws.delta[l] + (i * M + m) * n
            if net.adapter[l]:
                for j in range(n):
                    dx[j] += dy[j] * r[m * n + j]
            else:
                for j in range(n):
                    dx[j] += dy[j]


cdef void _replicate_members_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                                  Py_ssize_t m0, Py_ssize_t m1, bint accumulate,
                                  floating* buf) noexcept nogil:
    """The gradient of members [m0, m1)'s scales over input rows [0, rows),
    rows in order."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, m, M = net.members, n = net.sizes[l]
    cdef const floating* x = _input(p, l, buf)
    cdef const floating* dy
    cdef floating* g
    if not net.adapter[l]:
        return
    if not accumulate:
        for j in range(m0 * n, m1 * n):
            grad[net.w_start[l] + j] = 0
    for i in range(rows):
        for m in range(m0, m1):
            dy = buf + p.ws.delta[l] + (i * M + m) * n
            g = grad + net.w_start[l] + m * n
            for j in range(n):
                g[j] += dy[j] * x[i * n + j]


cdef void _replicate_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                          bint accumulate, floating* buf) noexcept nogil:
    _replicate_members_grad(p, l, rows, grad, 0, p.net.members, accumulate, buf)


cdef Py_ssize_t _members_blocks(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil:
    """A block per member: its scales (REPLICATE with adapters), or its
    weights and bias (MEMBER_DENSE)."""
    cdef Py_ssize_t m
    if net.kind[l] == REPLICATE and not net.adapter[l]:
        return 0
    if blocks != NULL:
        for m in range(net.members):
            blocks[3 * m] = l
            blocks[3 * m + 1] = m
            blocks[3 * m + 2] = m + 1
    return net.members


cdef void _replicate_block(const Pass* p, const Update* u, int l, Py_ssize_t m0, Py_ssize_t m1,
                           floating* buf) noexcept nogil:
    """Members [m0, m1)'s scales: their gradient, then their update (no decay)."""
    cdef Py_ssize_t n = p.net.sizes[l]
    _replicate_members_grad(p, l, u.rows, <floating*> u.grad, m0, m1, False, buf)
    update(u.settings, u.learning_rate, u.step, <floating*> u.theta, <const floating*> u.grad,
           <floating*> u.m, <floating*> u.v, p.net.w_start[l] + m0 * n,
           p.net.w_start[l] + m1 * n, 0.0, 0.0)


# ---- MEMBER_DENSE: x W_m + b_m, each member's own weights (an ensemble's last layer) ------------
cdef Py_ssize_t _member_dense_scratch(const Network* net, int l, Workspace* ws,
                                      Py_ssize_t rows, Py_ssize_t off) noexcept nogil:
    """The values (the head's logits) and their error, for the members' rows."""
    cdef Py_ssize_t width = net.sizes[l + 1]
    ws.z[l] = ws.out[l] = off
    off += rows * width
    ws.delta[l] = off
    return off + rows * width


cdef void _member_dense_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                                floating* buf) noexcept nogil:
    """Rows [lo, hi) of the members' rows (whole input rows: lo and hi are
    multiples of the members): per member, a GEMM over its rows, which lie
    `members` rows apart."""
    cdef const Network* net = p.net
    cdef const floating* theta = <const floating*> p.theta
    cdef Py_ssize_t i, j, m, M = net.members, n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef Py_ssize_t rows = (hi - lo) // M
    cdef const floating* x = _input(p, l, buf)
    cdef floating* Z = buf + p.ws.z[l]
    cdef const floating* b
    if rows == 0:
        return
    for m in range(M):
        gemm(False, False, <int> rows, <int> n_out, <int> n_in, <floating> 1.0,
             x + (lo + m) * n_in, <int> (M * n_in), theta + net.w_start[l] + m * n_in * n_out,
             <int> n_out, <floating> 0.0, Z + (lo + m) * n_out, <int> (M * n_out))
    for i in range(lo, hi):
        b = theta + net.b_start[l] + (i % M) * n_out
        for j in range(n_out):
            Z[i * n_out + j] += b[j]


cdef void _member_dense_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                                 floating* buf) noexcept nogil:
    """The error at the input: per member, its rows' errors times W_m^T."""
    cdef const Network* net = p.net
    cdef Py_ssize_t m, M = net.members, n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef Py_ssize_t rows = (hi - lo) // M
    if l == 0 or rows == 0:
        return
    for m in range(M):
        gemm(False, True, <int> rows, <int> n_in, <int> n_out, <floating> 1.0,
             buf + p.ws.delta[l] + (lo + m) * n_out, <int> (M * n_out),
             <const floating*> p.theta + net.w_start[l] + m * n_in * n_out, <int> n_out,
             <floating> 0.0, buf + p.ws.delta[l - 1] + (lo + m) * n_in, <int> (M * n_in))


cdef void _member_dense_members_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                                     Py_ssize_t m0, Py_ssize_t m1, bint accumulate,
                                     floating* buf) noexcept nogil:
    """The gradient of members [m0, m1)'s weights and biases over the
    members' rows [0, rows), rows in order."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, m, M = net.members, n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef Py_ssize_t per = rows // M
    cdef const floating* D = buf + p.ws.delta[l]
    cdef floating* gb
    for m in range(m0, m1):
        gemm(True, False, <int> n_in, <int> n_out, <int> per, <floating> 1.0,
             _input(p, l, buf) + m * n_in, <int> (M * n_in), D + m * n_out, <int> (M * n_out),
             <floating> (1.0 if accumulate else 0.0), grad + net.w_start[l] + m * n_in * n_out,
             <int> n_out)
        gb = grad + net.b_start[l] + m * n_out
        if not accumulate:
            for j in range(n_out):
                gb[j] = 0
        for i in range(per):
            for j in range(n_out):
                gb[j] += D[(i * M + m) * n_out + j]


cdef void _member_dense_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                             bint accumulate, floating* buf) noexcept nogil:
    _member_dense_members_grad(p, l, rows, grad, 0, p.net.members, accumulate, buf)


cdef void _member_dense_block(const Pass* p, const Update* u, int l, Py_ssize_t m0,
                              Py_ssize_t m1, floating* buf) noexcept nogil:
    """Members [m0, m1): their gradient, then the update of their weights
    (with the L2 terms) and biases (no decay)."""
    cdef const Network* net = p.net
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    _member_dense_members_grad(p, l, u.rows, <floating*> u.grad, m0, m1, False, buf)
    update(u.settings, u.learning_rate, u.step, <floating*> u.theta, <const floating*> u.grad,
           <floating*> u.m, <floating*> u.v, net.w_start[l] + m0 * n_in * n_out,
           net.w_start[l] + m1 * n_in * n_out, u.penalty, u.decay)
    update(u.settings, u.learning_rate, u.step, <floating*> u.theta, <const floating*> u.grad,
           <floating*> u.m, <floating*> u.v, net.b_start[l] + m0 * n_out,
           net.b_start[l] + m1 * n_out, 0.0, 0.0)


# ---- ADAPTED_DENSE: activation((x ∘ r_m) W ∘ s_m + b_m) on an ensemble's members' rows ----------
cdef struct _Adapted:
    # An ADAPTED_DENSE layer's sizes and where its parts are: in θ (W, r, s,
    # bias) and in the workspace (x ∘ r and the error at it; (x ∘ r) W and the
    # error at the pre-activation times s), for `rows` members' rows.
    Py_ssize_t M
    Py_ssize_t n_in
    Py_ssize_t n_out
    Py_ssize_t r
    Py_ssize_t s
    Py_ssize_t rows
    Py_ssize_t xr
    Py_ssize_t e
    Py_ssize_t prod
    Py_ssize_t ds


cdef inline _Adapted _adapted(const Network* net, const Workspace* ws, int l) noexcept nogil:
    cdef _Adapted a
    a.M = net.members
    a.n_in = net.sizes[l]
    a.n_out = net.sizes[l + 1]
    a.r = net.w_start[l] + a.n_in * a.n_out
    a.s = a.r + a.M * a.n_in
    a.rows = ws.rows * net.replicas[l]
    a.xr = ws.extra[l]
    a.e = ws.extra[l] + a.rows * a.n_in
    a.prod = ws.aux[l]
    a.ds = ws.aux[l] + a.rows * a.n_out
    return a


cdef Py_ssize_t _adapted_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                                 Py_ssize_t off) noexcept nogil:
    """DENSE's arrays, and x ∘ r and its error (n_in each), (x ∘ r) W and the
    scaled error (n_out each)."""
    off = _dense_scratch(net, l, ws, rows, off)
    ws.extra[l] = off
    off += 2 * rows * net.sizes[l]
    ws.aux[l] = off
    return off + 2 * rows * net.sizes[l + 1]


cdef void _adapted_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                           floating* buf) noexcept nogil:
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef _Adapted a = _adapted(net, ws, l)
    cdef const floating* theta = <const floating*> p.theta
    cdef const floating* X = _input(p, l, buf)
    cdef Py_ssize_t i, j, m, n = hi - lo
    cdef floating* xr = buf + a.xr
    cdef floating* P = buf + a.prod
    cdef floating* Z = buf + ws.z[l]
    cdef floating* A = buf + ws.a[l]
    cdef const floating* r
    cdef const floating* sc
    for i in range(lo, hi):
        r = theta + a.r + (i % a.M) * a.n_in
        for j in range(a.n_in):
            xr[i * a.n_in + j] = X[i * a.n_in + j] * r[j]
    gemm(False, False, <int> n, <int> a.n_out, <int> a.n_in, <floating> 1.0, xr + lo * a.n_in,
         <int> a.n_in, theta + net.w_start[l], <int> a.n_out, <floating> 0.0,
         P + lo * a.n_out, <int> a.n_out)
    for i in range(lo, hi):
        m = i % a.M
        sc = theta + a.s + m * a.n_out
        for j in range(a.n_out):
            Z[i * a.n_out + j] = P[i * a.n_out + j] * sc[j]
        bias_activation(Z + i * a.n_out, theta + net.b_start[l] + m * a.n_out,
                        A + i * a.n_out, 1, a.n_out, net.activation[l])
    if has_dropout(net, ws, l):
        for i in range(lo * a.n_out, hi * a.n_out):
            buf[ws.dropped[l] + i] = A[i] * buf[ws.mask[l] + i]


cdef void _adapted_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                            floating* buf) noexcept nogil:
    """The error at the pre-activation (in place), times s; through W^T, the
    error at x ∘ r; times r, the error at the input."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef _Adapted a = _adapted(net, ws, l)
    cdef const floating* theta = <const floating*> p.theta
    cdef Py_ssize_t i, j, n = hi - lo
    cdef floating* D = buf + ws.delta[l]
    cdef floating* Ds = buf + a.ds
    cdef floating* E = buf + a.e
    cdef const floating* sc
    cdef const floating* r
    if has_dropout(net, ws, l):
        multiply(D + lo * a.n_out, buf + ws.mask[l] + lo * a.n_out, n * a.n_out)
    activation_backward(D + lo * a.n_out, buf + ws.z[l] + lo * a.n_out,
                        buf + ws.a[l] + lo * a.n_out, n * a.n_out, net.activation[l])
    for i in range(lo, hi):
        sc = theta + a.s + (i % a.M) * a.n_out
        for j in range(a.n_out):
            Ds[i * a.n_out + j] = D[i * a.n_out + j] * sc[j]
    gemm(False, True, <int> n, <int> a.n_in, <int> a.n_out, <floating> 1.0, Ds + lo * a.n_out,
         <int> a.n_out, theta + net.w_start[l], <int> a.n_out, <floating> 0.0,
         E + lo * a.n_in, <int> a.n_in)
    for i in range(lo, hi):
        r = theta + a.r + (i % a.M) * a.n_in
        for j in range(a.n_in):
            buf[ws.delta[l - 1] + i * a.n_in + j] = E[i * a.n_in + j] * r[j]


cdef void _adapted_weight_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                               Py_ssize_t r0, Py_ssize_t r1, bint accumulate,
                               floating* buf) noexcept nogil:
    """Rows [r0, r1) of W's gradient, (x ∘ r)^T (D ∘ s) over the members' rows
    [0, rows)."""
    cdef _Adapted a = _adapted(p.net, p.ws, l)
    gemm(True, False, <int> (r1 - r0), <int> a.n_out, <int> rows, <floating> 1.0,
         buf + a.xr + r0, <int> a.n_in, buf + a.ds, <int> a.n_out,
         <floating> (1.0 if accumulate else 0.0), grad + p.net.w_start[l] + r0 * a.n_out,
         <int> a.n_out)


cdef void _adapted_members_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                                bint accumulate, floating* buf) noexcept nogil:
    """Every member's r, s and bias gradient over the members' rows [0,
    rows), rows in order: x times the error at x ∘ r; (x ∘ r) W times the
    error at the pre-activation; that error."""
    cdef const Network* net = p.net
    cdef _Adapted a = _adapted(net, p.ws, l)
    cdef const floating* X = _input(p, l, buf)
    cdef const floating* E = buf + a.e
    cdef const floating* P = buf + a.prod
    cdef const floating* D = buf + p.ws.delta[l]
    cdef floating* gr = grad + a.r
    cdef floating* gs = grad + a.s
    cdef floating* gb = grad + net.b_start[l]
    cdef Py_ssize_t i, j, m
    if not accumulate:
        for j in range(a.M * a.n_in):
            gr[j] = 0
        for j in range(a.M * a.n_out):
            gs[j] = 0
            gb[j] = 0
    for i in range(rows):
        m = i % a.M
        for j in range(a.n_in):
            gr[m * a.n_in + j] += X[i * a.n_in + j] * E[i * a.n_in + j]
        for j in range(a.n_out):
            gs[m * a.n_out + j] += D[i * a.n_out + j] * P[i * a.n_out + j]
            gb[m * a.n_out + j] += D[i * a.n_out + j]


cdef void _adapted_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad, bint accumulate,
                        floating* buf) noexcept nogil:
    _adapted_weight_grad(p, l, rows, grad, 0, p.net.sizes[l], accumulate, buf)
    _adapted_members_grad(p, l, rows, grad, accumulate, buf)


cdef void _adapted_block(const Pass* p, const Update* u, int l, Py_ssize_t r0, Py_ssize_t r1,
                         floating* buf) noexcept nogil:
    """W's rows [r0, r1) (with the L2 terms), or every member's r, s and bias
    (r0 < 0; no decay): their gradient, then their update."""
    cdef const Network* net = p.net
    cdef _Adapted a = _adapted(net, p.ws, l)
    cdef floating* theta = <floating*> u.theta
    cdef floating* grad = <floating*> u.grad
    if r0 < 0:
        _adapted_members_grad(p, l, u.rows, grad, False, buf)
        update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m,
               <floating*> u.v, a.r, net.p_stop[l], 0.0, 0.0)
        return
    _adapted_weight_grad(p, l, u.rows, grad, r0, r1, False, buf)
    update(u.settings, u.learning_rate, u.step, theta, grad, <floating*> u.m, <floating*> u.v,
           net.w_start[l] + r0 * a.n_out, net.w_start[l] + r1 * a.n_out, u.penalty, u.decay)


cdef void _adapted_decays(const Network* net, int l, Py_ssize_t* first,
                          Py_ssize_t* stop) noexcept nogil:
    """W decays; the members' scales and biases do not."""
    first[0] = net.w_start[l]
    stop[0] = net.w_start[l] + net.sizes[l] * net.sizes[l + 1]


# ---- EMBEDDING and ONE_HOT: categorical inputs, each a code, as vectors ------------------------
cdef inline Py_ssize_t _category(const Network* net, int j, double code) noexcept nogil:
    """The row of categorical input j's table (or its indicator) for `code`:
    the code, or the last row (cardinality) for -1, an unseen or missing value."""
    cdef Py_ssize_t r = <Py_ssize_t> code
    return r if r >= 0 else net.cardinality[j]


cdef Py_ssize_t _codes_scratch(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                               Py_ssize_t off) noexcept nogil:
    cdef Py_ssize_t width = net.sizes[l + 1]
    ws.out[l] = off
    off += rows * width
    ws.delta[l] = off
    return off + rows * width


cdef void _embedding_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                             floating* buf) noexcept nogil:
    """The numeric columns, then each categorical input's row of its table."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, t, n_in = net.sizes[l], m = net.codes[l], n = n_in - m
    cdef Py_ssize_t width = net.sizes[l + 1], units = (width - n) // m
    cdef const floating* X = _input(p, l, buf)
    cdef const floating* tables = <const floating*> p.theta + net.w_start[l]
    cdef const floating* row
    cdef floating* y
    for i in range(lo, hi):
        y = buf + p.ws.out[l] + i * width
        for j in range(n):
            y[j] = X[i * n_in + j]
        for j in range(m):
            row = tables + (net.table_row[j] + _category(net, j, X[i * n_in + n + j])) * units
            for t in range(units):
                y[n + j * units + t] = row[t]


cdef void _onehot_forward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                          floating* buf) noexcept nogil:
    """The numeric columns, then each categorical input's indicator vector."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, t, n_in = net.sizes[l], m = net.codes[l], n = n_in - m
    cdef Py_ssize_t width = net.sizes[l + 1]
    cdef const floating* X = _input(p, l, buf)
    cdef floating* y
    for i in range(lo, hi):
        y = buf + p.ws.out[l] + i * width
        for j in range(n):
            y[j] = X[i * n_in + j]
        for t in range(n, width):
            y[t] = 0
        for j in range(m):
            y[n + net.table_row[j] + _category(net, j, X[i * n_in + n + j])] = 1


cdef void _codes_backward(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                          floating* buf) noexcept nogil:
    """The numeric columns' error passes back; the codes have none."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, n_in = net.sizes[l], m = net.codes[l], n = n_in - m
    cdef Py_ssize_t width = net.sizes[l + 1]
    if l == 0:
        return
    for i in range(lo, hi):
        for j in range(n):
            buf[p.ws.delta[l - 1] + i * n_in + j] = buf[p.ws.delta[l] + i * width + j]
        for j in range(m):
            buf[p.ws.delta[l - 1] + i * n_in + n + j] = 0


cdef void _embedding_tables_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                                 Py_ssize_t j0, Py_ssize_t j1, bint accumulate,
                                 floating* buf) noexcept nogil:
    """The gradient of inputs [j0, j1)'s tables: each row's error added to the
    rows its codes chose, rows in order."""
    cdef const Network* net = p.net
    cdef Py_ssize_t i, j, t, n_in = net.sizes[l], m = net.codes[l], n = n_in - m
    cdef Py_ssize_t width = net.sizes[l + 1], units = (width - n) // m
    cdef const floating* X = _input(p, l, buf)
    cdef floating* g = grad + net.w_start[l]
    cdef floating* gr
    cdef const floating* d
    if not accumulate:
        for t in range(net.table_row[j0] * units,
                       (net.table_row[j1 - 1] + net.cardinality[j1 - 1] + 1) * units):
            g[t] = 0
    for i in range(rows):
        d = buf + p.ws.delta[l] + i * width + n
        for j in range(j0, j1):
            gr = g + (net.table_row[j] + _category(net, j, X[i * n_in + n + j])) * units
            for t in range(units):
                gr[t] += d[j * units + t]


cdef void _embedding_grad(const Pass* p, int l, Py_ssize_t rows, floating* grad,
                          bint accumulate, floating* buf) noexcept nogil:
    _embedding_tables_grad(p, l, rows, grad, 0, p.net.codes[l], accumulate, buf)


cdef Py_ssize_t _embedding_blocks(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil:
    """A block per categorical input: its table."""
    cdef Py_ssize_t j
    if blocks != NULL:
        for j in range(net.codes[l]):
            blocks[3 * j] = l
            blocks[3 * j + 1] = j
            blocks[3 * j + 2] = j + 1
    return net.codes[l]


cdef void _embedding_block(const Pass* p, const Update* u, int l, Py_ssize_t j0,
                           Py_ssize_t j1, floating* buf) noexcept nogil:
    """Inputs [j0, j1)'s tables: their gradient, then their update (no decay)."""
    cdef const Network* net = p.net
    cdef Py_ssize_t m = net.codes[l], n = net.sizes[l] - m
    cdef Py_ssize_t units = (net.sizes[l + 1] - n) // m
    _embedding_tables_grad(p, l, u.rows, <floating*> u.grad, j0, j1, False, buf)
    update(u.settings, u.learning_rate, u.step, <floating*> u.theta, <const floating*> u.grad,
           <floating*> u.m, <floating*> u.v, net.w_start[l] + net.table_row[j0] * units,
           net.w_start[l] + (net.table_row[j1 - 1] + net.cardinality[j1 - 1] + 1) * units,
           0.0, 0.0)


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

_TABLE[<int> PERIODIC].forward_f32 = _periodic_forward[float]
_TABLE[<int> PERIODIC].forward_f64 = _periodic_forward[double]
_TABLE[<int> PERIODIC].backward_f32 = _periodic_backward[float]
_TABLE[<int> PERIODIC].backward_f64 = _periodic_backward[double]
_TABLE[<int> PERIODIC].grad_f32 = _periodic_grad[float]
_TABLE[<int> PERIODIC].grad_f64 = _periodic_grad[double]
_TABLE[<int> PERIODIC].block_f32 = _periodic_block[float]
_TABLE[<int> PERIODIC].block_f64 = _periodic_block[double]
_TABLE[<int> PERIODIC].part_f32 = _whole_row[float]
_TABLE[<int> PERIODIC].part_f64 = _whole_row[double]
_TABLE[<int> PERIODIC].scratch = _periodic_scratch
_TABLE[<int> PERIODIC].blocks = _periodic_blocks
_TABLE[<int> PERIODIC].decays = _periodic_decays

_TABLE[<int> EMBEDDING].forward_f32 = _embedding_forward[float]
_TABLE[<int> EMBEDDING].forward_f64 = _embedding_forward[double]
_TABLE[<int> EMBEDDING].backward_f32 = _codes_backward[float]
_TABLE[<int> EMBEDDING].backward_f64 = _codes_backward[double]
_TABLE[<int> EMBEDDING].grad_f32 = _embedding_grad[float]
_TABLE[<int> EMBEDDING].grad_f64 = _embedding_grad[double]
_TABLE[<int> EMBEDDING].block_f32 = _embedding_block[float]
_TABLE[<int> EMBEDDING].block_f64 = _embedding_block[double]
_TABLE[<int> EMBEDDING].part_f32 = _whole_row[float]
_TABLE[<int> EMBEDDING].part_f64 = _whole_row[double]
_TABLE[<int> EMBEDDING].scratch = _codes_scratch
_TABLE[<int> EMBEDDING].blocks = _embedding_blocks
_TABLE[<int> EMBEDDING].decays = _no_decay

_TABLE[<int> ONE_HOT].forward_f32 = _onehot_forward[float]
_TABLE[<int> ONE_HOT].forward_f64 = _onehot_forward[double]
_TABLE[<int> ONE_HOT].backward_f32 = _codes_backward[float]
_TABLE[<int> ONE_HOT].backward_f64 = _codes_backward[double]
_TABLE[<int> ONE_HOT].grad_f32 = _no_grad[float]
_TABLE[<int> ONE_HOT].grad_f64 = _no_grad[double]
_TABLE[<int> ONE_HOT].block_f32 = _no_block[float]
_TABLE[<int> ONE_HOT].block_f64 = _no_block[double]
_TABLE[<int> ONE_HOT].part_f32 = _whole_row[float]
_TABLE[<int> ONE_HOT].part_f64 = _whole_row[double]
_TABLE[<int> ONE_HOT].scratch = _codes_scratch
_TABLE[<int> ONE_HOT].blocks = _no_blocks
_TABLE[<int> ONE_HOT].decays = _no_decay

_TABLE[<int> PIECEWISE_LINEAR].forward_f32 = _piecewise_forward[float]
_TABLE[<int> PIECEWISE_LINEAR].forward_f64 = _piecewise_forward[double]
_TABLE[<int> PIECEWISE_LINEAR].backward_f32 = _piecewise_backward[float]
_TABLE[<int> PIECEWISE_LINEAR].backward_f64 = _piecewise_backward[double]
_TABLE[<int> PIECEWISE_LINEAR].grad_f32 = _piecewise_grad[float]
_TABLE[<int> PIECEWISE_LINEAR].grad_f64 = _piecewise_grad[double]
_TABLE[<int> PIECEWISE_LINEAR].block_f32 = _piecewise_block[float]
_TABLE[<int> PIECEWISE_LINEAR].block_f64 = _piecewise_block[double]
_TABLE[<int> PIECEWISE_LINEAR].part_f32 = _whole_row[float]
_TABLE[<int> PIECEWISE_LINEAR].part_f64 = _whole_row[double]
_TABLE[<int> PIECEWISE_LINEAR].scratch = _piecewise_scratch
_TABLE[<int> PIECEWISE_LINEAR].blocks = _piecewise_blocks
_TABLE[<int> PIECEWISE_LINEAR].decays = _piecewise_decays

_TABLE[<int> REPLICATE].forward_f32 = _replicate_forward[float]
_TABLE[<int> REPLICATE].forward_f64 = _replicate_forward[double]
_TABLE[<int> REPLICATE].backward_f32 = _replicate_backward[float]
_TABLE[<int> REPLICATE].backward_f64 = _replicate_backward[double]
_TABLE[<int> REPLICATE].grad_f32 = _replicate_grad[float]
_TABLE[<int> REPLICATE].grad_f64 = _replicate_grad[double]
_TABLE[<int> REPLICATE].block_f32 = _replicate_block[float]
_TABLE[<int> REPLICATE].block_f64 = _replicate_block[double]
_TABLE[<int> REPLICATE].part_f32 = _whole_row[float]
_TABLE[<int> REPLICATE].part_f64 = _whole_row[double]
_TABLE[<int> REPLICATE].scratch = _replicate_scratch
_TABLE[<int> REPLICATE].blocks = _members_blocks
_TABLE[<int> REPLICATE].decays = _no_decay

_TABLE[<int> MEMBER_DENSE].forward_f32 = _member_dense_forward[float]
_TABLE[<int> MEMBER_DENSE].forward_f64 = _member_dense_forward[double]
_TABLE[<int> MEMBER_DENSE].backward_f32 = _member_dense_backward[float]
_TABLE[<int> MEMBER_DENSE].backward_f64 = _member_dense_backward[double]
_TABLE[<int> MEMBER_DENSE].grad_f32 = _member_dense_grad[float]
_TABLE[<int> MEMBER_DENSE].grad_f64 = _member_dense_grad[double]
_TABLE[<int> MEMBER_DENSE].block_f32 = _member_dense_block[float]
_TABLE[<int> MEMBER_DENSE].block_f64 = _member_dense_block[double]
_TABLE[<int> MEMBER_DENSE].part_f32 = _whole_row[float]
_TABLE[<int> MEMBER_DENSE].part_f64 = _whole_row[double]
_TABLE[<int> MEMBER_DENSE].scratch = _member_dense_scratch
_TABLE[<int> MEMBER_DENSE].blocks = _members_blocks
_TABLE[<int> MEMBER_DENSE].decays = _dense_decays

_TABLE[<int> ADAPTED_DENSE].forward_f32 = _adapted_forward[float]
_TABLE[<int> ADAPTED_DENSE].forward_f64 = _adapted_forward[double]
_TABLE[<int> ADAPTED_DENSE].backward_f32 = _adapted_backward[float]
_TABLE[<int> ADAPTED_DENSE].backward_f64 = _adapted_backward[double]
_TABLE[<int> ADAPTED_DENSE].grad_f32 = _adapted_grad[float]
_TABLE[<int> ADAPTED_DENSE].grad_f64 = _adapted_grad[double]
_TABLE[<int> ADAPTED_DENSE].block_f32 = _adapted_block[float]
_TABLE[<int> ADAPTED_DENSE].block_f64 = _adapted_block[double]
_TABLE[<int> ADAPTED_DENSE].part_f32 = _whole_row[float]
_TABLE[<int> ADAPTED_DENSE].part_f64 = _whole_row[double]
_TABLE[<int> ADAPTED_DENSE].scratch = _adapted_scratch
_TABLE[<int> ADAPTED_DENSE].blocks = _dense_blocks
_TABLE[<int> ADAPTED_DENSE].decays = _adapted_decays
