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
* On AVX2 CPUs the large products of batched predictions and of sharded
  training steps read operands packed once and shared by the threads
  (``packgemm.h``; see PACKED_ROWS and PACK_MIN_WEIGHTS) instead of BLAS
  packing them again in every call.
* Kernels trust their input: shapes, dtypes, contiguity, finiteness and label
  ranges are checked by the Python layer before any call here.
"""
import numpy as np
cimport numpy as cnp

from libc.math cimport isfinite
from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from cython.parallel cimport prange, parallel, threadid

from archfit._kernels._blas cimport gemm

cdef extern from "team.h" nogil:
    int archfit_team_size()
    void archfit_barrier()
    void archfit_install_fork_guard()
    int archfit_threads(int asked)

archfit_install_fork_guard()

cdef extern from "vecmat.h" nogil:
    void archfit_vecmat_f32(Py_ssize_t k, Py_ssize_t n, const float* x, Py_ssize_t incx,
                            const float* W, Py_ssize_t ldw, float* y)
    void archfit_vecmat_f64(Py_ssize_t k, Py_ssize_t n, const double* x, Py_ssize_t incx,
                            const double* W, Py_ssize_t ldw, double* y)
from archfit._kernels.packgemm cimport (
    ARCHFIT_PK_WORK, archfit_packed_gemm_available, packed_size, pack, pack_rows, packed_gemm)
from archfit._kernels._elementwise cimport (
    bias_activation, activation_backward, add_bias, column_sums, multiply,
    head_output, head_loss_grad, all_finite, IDENTITY)
from archfit._kernels._optimizers cimport OptimizerConfig, update
from archfit._kernels._random cimport stream_seed, shuffle as shuffle_index, dropout_mask
from archfit._kernels._elementwise import ACTIVATIONS, HEADS, LOSSES
from archfit._kernels._optimizers import OPTIMIZERS

cnp.import_array()

# Status codes returned by run_epoch.
cpdef enum Status:
    OK = 0
    NONFINITE_LOSS = 1
    NONFINITE_PARAMETERS = 2

# Rows per chunk when computing a full-data loss and gradient: large enough
# for efficient GEMM, small enough to keep scratch memory bounded.
CHUNK_ROWS = 1024

MAX_DEPTH = MAX_LAYERS

cdef enum:
    # Predicting n rows: up to PREDICT_CHUNK rows in one chunk, more in chunks
    # of n/4 rows, between PREDICT_CHUNK and PREDICT_MAX_ROWS (each chunk's GEMM
    # packs the weights again), shared out among threads. The chunks depend on
    # n alone, so the result does not depend on the thread count.
    PREDICT_CHUNK = 256
    PREDICT_MAX_ROWS = 1024
    # With the weights packed once (AVX2), chunks cost no re-packing:
    # small ones (two of packgemm's 96-row blocks) balance the threads' work.
    PACKED_ROWS = 192
    # Training on an AVX2 CPU keeps the weights of every layer with
    # at least PACK_MIN_WEIGHTS of them packed (for X W) and packed transposed
    # (for D W^T), refreshed block by block right after each update; the row
    # shards of a step all read that one copy. Smaller layers take smallgemm.
    # Only while the copies stay in cache (at most PACK_MAX_BYTES, 4 MiB):
    # beyond, rewriting them every step costs more memory traffic than BLAS's
    # packing per shard (1024-2048-2048-10: 13% slower packed).
    PACK_MIN_WEIGHTS = 8192
    PACK_MAX_BYTES = 4194304
    # A mini-batch is cut into shards of rows that threads share, when each
    # shard keeps at least SHARD_MIN_ROWS rows (GEMM stays efficient) and
    # SHARD_MIN_FLOPS of work (the two fork/joins per step stay negligible);
    # at most MAX_SHARDS. BLAS gives different last bits for a row depending
    # on which rows share its call, so the shards are fixed by the network
    # and batch size, never by the thread count.
    SHARD_MIN_ROWS = 64
    SHARD_MIN_FLOPS = 4000000
    MAX_SHARDS = 2
    # Parameters per block of the gradient-and-update phase, fixed by the
    # network for the same reason; a block's gradient is still in L2 when its
    # update reads it. Every block's GEMM packs the layer's whole error matrix
    # again, so a block has at least BLOCK_MIN_ROWS weight rows.
    UPDATE_BLOCK = 65536
    BLOCK_MIN_ROWS = 256

    # One sample: a layer with at least this many weights has its columns
    # shared among threads; each thread's part of W then stays in its own
    # core's cache from one call to the next.
    ROW_SPLIT_MIN_WEIGHTS = 32768

PREDICT_ROWS = PREDICT_CHUNK


cdef Py_ssize_t predict_rows(Py_ssize_t n, bint packed) noexcept nogil:
    """Rows per chunk when predicting n rows (`packed`: with packed weights)."""
    cdef Py_ssize_t rows = ((n + 3) // 4 + 15) // 16 * 16
    if n <= PREDICT_CHUNK:
        return n
    if packed:
        return PACKED_ROWS
    return max(<Py_ssize_t> PREDICT_CHUNK, min(<Py_ssize_t> PREDICT_MAX_ROWS, rows))


cdef int shards_for(const Network* net, Py_ssize_t rows) noexcept nogil:
    """How many row shards a training step over `rows` rows is cut into."""
    cdef Py_ssize_t l, weights = 0, by_rows, by_work
    for l in range(net.n_layers):
        weights += net.sizes[l] * net.sizes[l + 1]
    by_rows = rows // SHARD_MIN_ROWS
    by_work = 6 * weights * rows // SHARD_MIN_FLOPS   # forward 2, backward 4 flops per weight
    return <int> max(1, min(<Py_ssize_t> MAX_SHARDS, min(by_rows, by_work)))


cdef Py_ssize_t plan(const Network* net, Workspace* ws, Py_ssize_t rows, bint dropout,
                     bint gather, Py_ssize_t n_targets) noexcept nogil:
    """Lay out the scratch buffer for `rows` rows; returns its length.

    Every array is (rows, width) row-major, so a shard of rows [lo, hi) of
    any of them is contiguous.
    """
    cdef Py_ssize_t off = 0, l, width
    cdef int L = net.n_layers
    ws.rows = rows
    ws.dropout = dropout
    for l in range(L):
        width = net.sizes[l + 1]
        ws.z[l] = off
        off += rows * width
        ws.delta[l] = off
        off += rows * width
        if l < L - 1:
            ws.a[l] = off
            off += rows * width
            if dropout:
                ws.mask[l] = off
                off += rows * width
                ws.dropped[l] = off
                off += rows * width
    ws.x = ws.t = ws.w = off
    if gather:
        off += rows * net.sizes[0]
        ws.t = off
        off += rows * n_targets
        ws.w = off
        off += rows
    ws.size = off
    return off


cdef void draw_masks(const Network* net, const Workspace* ws, Py_ssize_t rows,
                     floating* buf, double dropout, uint64_t* rng) noexcept nogil:
    """Dropout masks of every hidden layer for `rows` rows, one stream in order."""
    cdef int l
    for l in range(net.n_layers - 1):
        dropout_mask(buf + ws.mask[l], rows * net.sizes[l + 1], dropout, rng)


cdef struct Packed:
    # A training step's packed operands, of the model's dtype: P[l] for X W,
    # PT[l] (l >= 1) for D W^T, D[l] the step's error at layer l for the
    # weight gradient inp^T D; layer[l] says whether layer l uses them. (The
    # packed GEMM's scratch is per thread: the Trainer's `work`.)
    void* P[MAX_LAYERS]
    void* PT[MAX_LAYERS]
    void* D[MAX_LAYERS]
    bint layer[MAX_LAYERS]


cdef Py_ssize_t _plan_packed(const Network* net, Packed* pk, char* base, Py_ssize_t rows,
                             bint f64) noexcept nogil:
    """Lay out `pk` for batches of up to `rows` rows from `base` (or only count
    when NULL); returns the elements it needs (float64 when `f64`)."""
    cdef Py_ssize_t off = 0, n_in, n_out, item = 8 if f64 else 4
    cdef int l
    for l in range(net.n_layers):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        pk.layer[l] = n_in * n_out >= PACK_MIN_WEIGHTS
        pk.P[l] = pk.PT[l] = pk.D[l] = NULL
        if pk.layer[l]:
            if base != NULL:
                pk.P[l] = base + off * item
            off += packed_size(f64, n_in, n_out)
            if base != NULL:
                pk.D[l] = base + off * item
            off += packed_size(f64, rows, n_out)
            if l > 0:
                if base != NULL:
                    pk.PT[l] = base + off * item
                off += packed_size(f64, n_out, n_in)
    return off


cdef inline void _repack(const Network* net, const Packed* pk, const floating* theta, int l,
                         Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Refresh rows [r0, r1) of layer l's packed weights from θ."""
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    if not pk.layer[l]:
        return
    pack_rows(n_in, n_out, theta + net.w_start[l], n_out, r0, r1, pk.P[l])
    if l > 0:
        pack_rows(n_in, n_out, theta + net.w_start[l], n_out, r0, r1, pk.PT[l], True)


cdef inline void _product(const void* pk, int l, bint transposed,
                          Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A,
                          const floating* W, floating* C, floating* work) noexcept nogil:
    """C = A op(W) for layer l: A (m, k), W layer l's weights (n_in, n_out),
    op(W) = W^T when `transposed`; from the packed copy when there is one."""
    cdef const Packed* p = <const Packed*> pk
    if p != NULL and p.layer[l]:
        packed_gemm(False, m, n, k, A, k, p.PT[l] if transposed else p.P[l], C, n, work)
    elif transposed:
        gemm(False, True, <int> m, <int> n, <int> k, <floating> 1.0, A, <int> k, W, <int> k,
             <floating> 0.0, C, <int> n)
    else:
        gemm(False, False, <int> m, <int> n, <int> k, <floating> 1.0, A, <int> k, W, <int> n,
             <floating> 0.0, C, <int> n)


cdef void forward(const Network* net, const Workspace* ws,
                  const floating* theta,   # IN  parameters
                  const floating* X,       # IN  (ws.rows, sizes[0]); rows [lo, hi) are read
                  Py_ssize_t lo, Py_ssize_t hi,
                  floating* buf,           # INOUT scratch: rows [lo, hi) written; masks read
                  const void* pk=NULL,     # IN  a Packed of θ's dtype, or NULL: BLAS
                  floating* work=NULL      # scratch of the packed GEMM (with pk)
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
                 const void* pk=NULL,     # IN  a Packed of θ's dtype, or NULL: BLAS
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


cdef inline const floating* _layer_input(const Network* net, const Workspace* ws,
                                        const floating* X, const floating* buf,
                                        int l) noexcept nogil:
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
    cdef const floating* inp = _layer_input(net, ws, X, buf, l)
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
                   bint accumulate) noexcept nogil:
    cdef int l
    deltas(net, ws, theta, 0, n_rows, buf)
    for l in range(net.n_layers):
        layer_grad(net, ws, X, n_rows, buf, grad, l, 0, net.sizes[l], accumulate)
        layer_grad(net, ws, X, n_rows, buf, grad, l, -1, -1, accumulate)


cdef void _shard(const Network* net, const Workspace* ws, const floating* theta,
                 const floating* X, const Py_ssize_t* order, Py_ssize_t start,
                 Py_ssize_t lo, Py_ssize_t hi, const int* labels, const floating* targets,
                 const floating* weights, int* batch_labels, floating* buf,
                 double scale, double* row_loss, const void* pk, floating* work,
                 Py_ssize_t b) noexcept nogil:
    """Rows [lo, hi) of the mini-batch at `start` of the epoch order: gather,
    forward, per-row loss and the error at every layer.

    `order` is the shuffled sample index (NULL: the data's own order). `pk`:
    the packed weights (a Packed, or NULL), with the running thread's `work`;
    the batch has `b` rows.
    """
    cdef int L = net.n_layers
    cdef Py_ssize_t i, j, r, n_features = net.sizes[0], k = net.sizes[L]
    cdef const floating* Xb
    cdef const int* lb = NULL
    cdef const floating* tb = NULL
    cdef const floating* wb = NULL
    if order != NULL:
        for i in range(lo, hi):
            r = order[start + i]
            # a loop, not memcpy: rows are often a few dozen bytes
            for j in range(n_features):
                buf[ws.x + i * n_features + j] = X[r * n_features + j]
            if labels != NULL:
                batch_labels[i] = labels[r]
            if targets != NULL:
                memcpy(buf + ws.t + i * k, targets + r * k, k * sizeof(floating))
            if weights != NULL:
                buf[ws.w + i] = weights[r]
        Xb = buf + ws.x
        if labels != NULL:
            lb = batch_labels
        if targets != NULL:
            tb = buf + ws.t
        if weights != NULL:
            wb = buf + ws.w
    else:
        Xb = X + start * n_features
        if labels != NULL:
            lb = labels + start
        if targets != NULL:
            tb = targets + start * k
        if weights != NULL:
            wb = weights + start
    forward(net, ws, theta, Xb, lo, hi, buf, pk, work)
    head_loss_grad(buf + ws.z[L - 1] + lo * k, hi - lo, k, net.loss,
                   lb + lo if lb != NULL else NULL, tb + lo * k if tb != NULL else NULL,
                   wb + lo if wb != NULL else NULL, buf + ws.delta[L - 1] + lo * k,
                   scale, net.huber_delta, row_loss + lo)
    deltas(net, ws, theta, lo, hi, buf, pk, work)
    cdef const Packed* p = <const Packed*> pk
    cdef int l
    if p != NULL:
        # this shard's rows of the errors, packed for the weight gradients
        for l in range(L):
            if p.layer[l]:
                pack_rows(b, net.sizes[l + 1], <const floating*> (buf + ws.delta[l]),
                           net.sizes[l + 1], lo, hi, p.D[l])


cdef void _block(const Network* net, const Workspace* ws, const OptimizerConfig* config,
                 floating* theta, floating* grad, floating* m, floating* v,
                 const floating* Xb, Py_ssize_t rows, const floating* buf,
                 int l, Py_ssize_t r0, Py_ssize_t r1, double penalty, double decay,
                 const void* pk, floating* work) noexcept nogil:
    """Gradient of one block of θ, then its update while the block is in cache
    (and its packed copies, when `pk` is a Packed; `work`, ARCHFIT_PK_WORK
    elements of the running thread's own, is then the packed GEMM's scratch).

    Weight rows [r0, r1) of layer l get the L2 terms; a bias block (r0 < 0)
    does not.
    """
    cdef Py_ssize_t first, stop
    cdef const Packed* p = <const Packed*> pk
    if p != NULL and work != NULL and r0 >= 0 and p.layer[l]:
        packed_gemm(True, r1 - r0, net.sizes[l + 1], rows, _layer_input(net, ws, Xb, buf, l) + r0,
               net.sizes[l], p.D[l], grad + net.w_start[l] + r0 * net.sizes[l + 1],
               net.sizes[l + 1], work)
    else:
        layer_grad(net, ws, Xb, rows, buf, grad, l, r0, r1, False)
    if r0 < 0:
        first = net.b_start[l]
        stop = first + net.sizes[l + 1]
        update(config, theta, grad, m, v, first, stop, 0.0, 0.0)
    else:
        first = net.w_start[l] + r0 * net.sizes[l + 1]
        stop = net.w_start[l] + r1 * net.sizes[l + 1]
        update(config, theta, grad, m, v, first, stop, penalty, decay)
        if pk != NULL:
            _repack(net, <const Packed*> pk, theta, l, r0, r1)


cdef inline floating* _thread_work(floating* work, int tid) noexcept nogil:
    """Thread tid's ARCHFIT_PK_WORK elements of `work` (NULL stays NULL)."""
    return work + tid * ARCHFIT_PK_WORK if work != NULL else NULL


cdef int run_epoch(const Network* net, const Workspace* ws, OptimizerConfig* config,
                   floating* theta, floating* grad, floating* m, floating* v,
                   const floating* X, Py_ssize_t n_samples,
                   const int* labels, const floating* targets, const floating* weights,
                   Py_ssize_t* index, int* batch_labels, floating* buf, double* row_loss,
                   const Py_ssize_t* blocks, Py_ssize_t n_blocks,
                   Py_ssize_t batch_size, int n_threads,
                   bint shuffle, double l2, bint decoupled,
                   double dropout, uint64_t seed, uint64_t epoch,
                   double* loss_sum, double* weight_sum, void* pk=NULL,
                   floating* work=NULL) noexcept nogil:
    """One epoch of mini-batch training; returns OK or a NONFINITE_* code.

    `pk` (a Packed of θ's dtype, or NULL) holds packed copies of the weights,
    packed here from θ first and kept current by every block's update;
    `work` then holds ARCHFIT_PK_WORK elements per thread, the scratch of
    the packed GEMMs of whichever shard or block the thread runs.
    A step has two parallel phases over up to `n_threads` threads: rows (the
    mini-batch's shards: gather, forward, loss, backpropagated errors), then θ
    (`blocks`: n_blocks triples (layer, r0, r1), r0 < 0 for a bias; each
    block's gradient, then its update). Shards, blocks, randomness and the
    order of the loss sum do not depend on the thread count, so neither does
    the result.
    """
    cdef int L = net.n_layers, S, T
    cdef Py_ssize_t start, b, i, s, per, c
    cdef const Py_ssize_t* order = index if shuffle else NULL
    cdef const floating* Xb
    cdef uint64_t shuffle_state, dropout_state
    cdef double wsum, batch_loss
    cdef double penalty = 0.0 if decoupled else l2
    cdef double decay = l2 if decoupled else 0.0

    n_threads = archfit_threads(n_threads)
    if pk != NULL:
        for i in range(net.n_layers):
            _repack(net, <const Packed*> pk, theta, <int> i, 0, net.sizes[i])
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

        if weights != NULL:
            wsum = 0.0
            for i in range(b):
                wsum += weights[index[start + i] if shuffle else start + i]
            if wsum <= 0.0:
                continue        # a batch of zero weight carries no information
        else:
            wsum = <double> b
        if ws.dropout:
            draw_masks(net, ws, b, buf, dropout, &dropout_state)

        S = shards_for(net, b)
        per = (b + S - 1) // S
        T = min(S, n_threads)
        if T > 1:
            for s in prange(S, num_threads=T, schedule="static"):
                _shard(net, ws, theta, X, order, start, min(b, s * per), min(b, s * per + per),
                       labels, targets, weights, batch_labels, buf, 1.0 / wsum, row_loss,
                       pk, _thread_work(work, threadid()), b)
        else:
            for s in range(S):
                _shard(net, ws, theta, X, order, start, min(b, s * per), min(b, s * per + per),
                       labels, targets, weights, batch_labels, buf, 1.0 / wsum, row_loss,
                       pk, work, b)
        batch_loss = 0.0
        for i in range(b):
            batch_loss += row_loss[i]
        if not isfinite(batch_loss):
            return NONFINITE_LOSS
        loss_sum[0] += batch_loss
        weight_sum[0] += wsum

        Xb = buf + ws.x if shuffle else X + start * net.sizes[0]
        config.step += 1
        T = n_threads if S > 1 else 1    # small steps stay on one thread
        if T > 1:
            for c in prange(n_blocks, num_threads=T, schedule="dynamic"):
                _block(net, ws, config, theta, grad, m, v, Xb, b, buf,
                       <int> blocks[3 * c], blocks[3 * c + 1], blocks[3 * c + 2], penalty, decay,
                       pk, _thread_work(work, threadid()))
        else:
            for c in range(n_blocks):
                _block(net, ws, config, theta, grad, m, v, Xb, b, buf,
                       <int> blocks[3 * c], blocks[3 * c + 1], blocks[3 * c + 2], penalty, decay,
                       pk, work)

    if not all_finite(theta, net.n_parameters):
        return NONFINITE_PARAMETERS
    return OK


cdef Py_ssize_t update_blocks(const Network* net, Py_ssize_t* blocks) noexcept nogil:
    """Fill `blocks` (or only count them when NULL) with (layer, r0, r1) triples."""
    cdef Py_ssize_t n = 0, l, r0, step
    for l in range(net.n_layers):
        step = max(BLOCK_MIN_ROWS, UPDATE_BLOCK // net.sizes[l + 1])
        r0 = 0
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
        n += 1
    return n


cdef inline void _vecmat(Py_ssize_t k, Py_ssize_t n, const floating* x, const floating* W,
                         Py_ssize_t ldw, floating* y) noexcept nogil:
    if floating is float:
        archfit_vecmat_f32(k, n, x, 1, W, ldw, y)
    else:
        archfit_vecmat_f64(k, n, x, 1, W, ldw, y)


cdef inline bint _splits(const Network* net, int l) noexcept nogil:
    return (net.sizes[l] * net.sizes[l + 1] >= ROW_SPLIT_MIN_WEIGHTS
            and net.sizes[l + 1] >= 16)


cdef bint _any_splits(const Network* net) noexcept nogil:
    cdef int l
    for l in range(net.n_layers):
        if _splits(net, l):
            return True
    return False


cdef void _row_layer(const Network* net, const Workspace* ws, const floating* theta,
                     floating* buf, int l, int part, int parts) noexcept nogil:
    """Columns of part `part` of `parts` of layer l, for one sample."""
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef Py_ssize_t per = ((n_out + parts - 1) // parts + 7) // 8 * 8
    cdef Py_ssize_t c0 = min(n_out, part * per), c1 = min(n_out, c0 + per)
    cdef const floating* inp = buf + ws.a[l - 1] if l > 0 else buf + ws.x
    cdef floating* Z = buf + ws.z[l]
    if c0 >= c1:
        return
    _vecmat(n_in, c1 - c0, inp, theta + net.w_start[l] + c0, n_out, Z + c0)
    if l < net.n_layers - 1:
        bias_activation(Z + c0, theta + net.b_start[l] + c0, buf + ws.a[l] + c0, 1, c1 - c0,
                        net.activation[l])
    else:
        add_bias(Z + c0, theta + net.b_start[l] + c0, 1, c1 - c0)


cdef void _forward_row(const Network* net, const Workspace* ws, const floating* theta,
                       floating* buf, int n_threads) noexcept nogil:
    """Forward pass of the one sample at buf + ws.x; large layers' columns shared.

    One parallel region for the whole pass, a barrier after each layer; no
    region when no layer is large enough to share. Every output column is the
    same FMA chain however the columns are shared, so the result does not
    depend on `n_threads`.
    """
    cdef int l, tid, team, L = net.n_layers
    n_threads = archfit_threads(n_threads)
    if n_threads <= 1 or not _any_splits(net):
        for l in range(L):
            _row_layer(net, ws, theta, buf, l, 0, 1)
        return
    with parallel(num_threads=n_threads):
        tid = threadid()
        team = archfit_team_size()      # may be smaller than asked for
        for l in range(L):
            if _splits(net, l):
                _row_layer(net, ws, theta, buf, l, tid, team)
            elif tid == 0:
                _row_layer(net, ws, theta, buf, l, 0, 1)
            if l < L - 1:
                archfit_barrier()   # the region's end waits for the last layer


cdef void _predict_row(const Network* net, const Workspace* ws, const floating* theta,
                       const floating* x, floating* out, floating* buf,
                       int n_threads) noexcept nogil:
    """Outputs of the one sample x; ws planned for one row with room for x."""
    memcpy(buf + ws.x, x, net.sizes[0] * sizeof(floating))
    _forward_row(net, ws, theta, buf, n_threads)
    head_output(buf + ws.z[net.n_layers - 1], out, 1, net.sizes[net.n_layers], net.head)


cdef void _predict_chunk(const Network* net, const Workspace* ws, const floating* theta,
                         const floating* X, floating* out, Py_ssize_t n, Py_ssize_t lo,
                         floating* buf, const void* pk=NULL, floating* work=NULL) noexcept nogil:
    """Outputs of rows [lo, lo + ws.rows) of X (fewer at the end); with `pk`
    (see _pack_weights) the products read the packed weights, `work` being
    the packed GEMM's scratch."""
    cdef int L = net.n_layers
    cdef Py_ssize_t b = min(ws.rows, n - lo)
    forward(net, ws, theta, X + lo * net.sizes[0], 0, b, buf, pk, work)
    head_output(buf + ws.z[L - 1], out + lo * net.sizes[L], b, net.sizes[L], net.head)


cdef Py_ssize_t _packed_size(const Network* net, bint f64) noexcept nogil:
    """Elements of every layer's weights packed for archfit_packed_gemm."""
    cdef Py_ssize_t size = 0
    cdef int l
    for l in range(net.n_layers):
        size += packed_size(f64, net.sizes[l], net.sizes[l + 1])
    return size


cdef void _pack_weights(const Network* net, const floating* theta, floating* P,
                        Packed* pk) noexcept nogil:
    """Every layer's weights, packed one after another into P, and `pk`
    pointing forward's products at them (no transposed copies or errors)."""
    cdef int l
    for l in range(net.n_layers):
        pack(net.sizes[l], net.sizes[l + 1], theta + net.w_start[l], net.sizes[l + 1], P)
        pk.layer[l] = True
        pk.P[l] = P
        pk.PT[l] = pk.D[l] = NULL
        P += packed_size(floating is double, net.sizes[l], net.sizes[l + 1])


cdef int _predict_ready(const Network* net, const floating* theta, const floating* X,
                        Py_ssize_t n, floating* out, int n_threads) noexcept nogil:
    """Outputs of n <= PREDICT_CHUNK rows; 1 done, 2 X not finite, 0 out of memory."""
    cdef Workspace ws
    cdef floating* buf
    cdef int L = net.n_layers
    if not all_finite(X, n * net.sizes[0]):
        return 2
    plan(net, &ws, n, False, n == 1, 0)
    buf = <floating*> malloc(ws.size * sizeof(floating))
    if buf == NULL:
        return 0
    if n == 1:
        _predict_row(net, &ws, theta, X, out, buf, n_threads)
    else:
        forward(net, &ws, theta, X, 0, n, buf)
        head_output(buf + ws.z[L - 1], out, n, net.sizes[L], net.head)
    free(buf)
    return 1


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

    @staticmethod
    def chunk_rows(Py_ssize_t n, bint packed=False):
        """Rows per chunk when predicting n rows (threads share the chunks)."""
        return predict_rows(n, packed)

    def splits_rows(self):
        """Whether one sample's forward pass shares a layer's columns among threads."""
        return _any_splits(&self.net)

    def packs(self, Py_ssize_t n):
        """Whether predicting n rows packs the weights once for all chunks (AVX2)."""
        return n > PREDICT_CHUNK and archfit_packed_gemm_available() != 0

    def packed_size(self, bint float64=False, int threads=1):
        """Elements of the packed weights and each of `threads` threads' work
        buffer (see ``packs``)."""
        return _packed_size(&self.net, float64) + max(1, threads) * ARCHFIT_PK_WORK

    def shards(self, Py_ssize_t rows):
        """Row shards a training step over `rows` rows is cut into (1: one thread)."""
        return shards_for(&self.net, rows)

    def training_size(self, Py_ssize_t rows, bint dropout=False, bint gather=False,
                      Py_ssize_t n_targets=0, int itemsize=0, int threads=1):
        """Elements a Trainer allocates beyond θ: gradient, moments, scratch
        (and, given the dtype's `itemsize`, packed weights and each of
        `threads` threads' packed-GEMM scratch when it ``trains_packed``)."""
        cdef Workspace ws
        cdef Packed pk
        cdef Py_ssize_t size = 3 * self.net.n_parameters + plan(&self.net, &ws, rows, dropout,
                                                                 gather, n_targets)
        if itemsize and self.trains_packed(rows, itemsize == 8):
            size += _plan_packed(&self.net, &pk, NULL, rows, itemsize == 8)
            size += max(1, threads) * ARCHFIT_PK_WORK
        return size

    def trains_packed(self, Py_ssize_t rows, bint float64=False):
        """Whether training at batch size `rows` keeps packed weights.

        On a CPU with AVX2, when the step is cut into shards (``shards``), a
        layer has at least PACK_MIN_WEIGHTS weights and the packed copies fit
        in PACK_MAX_BYTES (4 MiB): the shards' products then read one packed
        copy instead of BLAS packing the weights for each shard.
        """
        cdef Packed pk
        cdef int l
        if archfit_packed_gemm_available() == 0 or shards_for(&self.net, rows) < 2:
            return False
        if _plan_packed(&self.net, &pk, NULL, rows, float64) * (8 if float64 else 4) \
                > PACK_MAX_BYTES:
            return False
        for l in range(self.net.n_layers):
            if pk.layer[l]:
                return True
        return False

    def predict(self, const floating[::1] theta, const floating[:, ::1] X, floating[:, ::1] out,
                int n_threads=1):
        """out = head(f(X; θ)), in chunks (``chunk_rows``), without the GIL.

        Up to `n_threads` threads share the chunks (the caller keeps BLAS to one
        thread when it asks for more than one); the result does not depend on it.
        Several chunks on an AVX2 CPU (``packs``): the weights are packed
        once and every chunk's products read them (``packgemm.h``), so each row's
        outputs do not depend on the other rows either.
        """
        cdef Workspace ws
        cdef Py_ssize_t n = X.shape[0], rows, c, n_chunks
        cdef bint packs = self.packs(n)
        rows = predict_rows(n, packs)
        cdef int T
        cdef floating* P = NULL
        cdef Packed pk
        if n == 0:
            return
        n_chunks = (n + rows - 1) // rows
        T = <int> max(1, min(<Py_ssize_t> archfit_threads(n_threads), n_chunks))
        plan(&self.net, &ws, rows, False, n == 1, 0)
        cdef Py_ssize_t per = ws.size + (ARCHFIT_PK_WORK if packs else 0)   # per thread
        scratch = np.empty(T * per, dtype=np.float32 if floating is float else np.float64)
        cdef floating[::1] buf = scratch
        cdef floating[::1] packed
        if packs:
            packed = np.empty(_packed_size(&self.net, floating is double), dtype=scratch.dtype)
            P = &packed[0]
        with nogil:
            if P != NULL:
                # Rows are independent here, so chunks go to whichever thread is free.
                _pack_weights(&self.net, &theta[0], P, &pk)
                for c in prange(n_chunks, num_threads=T, schedule="dynamic"):
                    _predict_chunk(&self.net, &ws, &theta[0], &X[0, 0], &out[0, 0], n,
                                   c * rows, &buf[0] + threadid() * per, &pk,
                                   &buf[0] + threadid() * per + ws.size)
            elif n == 1:
                _predict_row(&self.net, &ws, &theta[0], &X[0, 0], &out[0, 0], &buf[0],
                             n_threads)
            elif T == 1:
                for c in range(n_chunks):
                    _predict_chunk(&self.net, &ws, &theta[0], &X[0, 0], &out[0, 0], n,
                                   c * rows, &buf[0])
            else:
                for c in prange(n_chunks, num_threads=T, schedule="static"):
                    _predict_chunk(&self.net, &ws, &theta[0], &X[0, 0], &out[0, 0], n,
                                   c * rows, &buf[0] + threadid() * ws.size)

    def predict_ready(self, cnp.ndarray theta, X, int n_threads=1):
        """head(f(X; θ)) for up to PREDICT_ROWS rows, validated here in C; or None.

        The fast path for small predictions (one sample: a few microseconds
        of overhead). Returns None, having done nothing, unless X is already a
        C-contiguous (n, n_inputs) array of θ's dtype with 1 <= n <=
        PREDICT_ROWS and only finite values: the caller then validates and
        converts X with its full error messages. θ must be valid (the caller's
        own, already checked).
        """
        cdef cnp.ndarray arr
        cdef Py_ssize_t n, k = self.net.sizes[self.net.n_layers]
        cdef int threads = max(1, n_threads)
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
        if cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32:
            ok = _predict_ready(&self.net, <const float*> cnp.PyArray_DATA(theta),
                                <const float*> cnp.PyArray_DATA(arr), n,
                                <float*> cnp.PyArray_DATA(out), threads)
        elif cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT64:
            ok = _predict_ready(&self.net, <const double*> cnp.PyArray_DATA(theta),
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
                forward(&self.net, &ws, &theta[0], &X[start, 0], 0, b, &buf[0])
                D = &buf[ws.delta[L - 1]] if compute_grad else NULL
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
    cdef readonly object buffer, index, batch_labels, grad, m, v, row_loss, blocks
    cdef readonly object packed     # buffer of the packed operands (θ's dtype), or None
    cdef object work                # with `packed`: each thread's packed-GEMM scratch
    cdef Packed pk
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
        self.row_loss = np.zeros(rows, dtype=np.float64)
        self.blocks = np.zeros((update_blocks(&kernel.net, NULL), 3), dtype=np.intp)
        cdef Py_ssize_t[:, ::1] blocks = self.blocks
        update_blocks(&kernel.net, &blocks[0, 0])
        P = kernel.net.n_parameters
        self.grad = np.zeros(P, dtype=dtype)
        self.m = np.zeros(P, dtype=dtype) if m is None else np.array(m, dtype=dtype, copy=True)
        self.v = np.zeros(P, dtype=dtype) if v is None else np.array(v, dtype=dtype, copy=True)
        self.packed = self.work = None
        cdef bint f64 = np.dtype(dtype) == np.float64
        cdef cnp.ndarray packed
        if kernel.trains_packed(rows, f64):
            # zeros: the panels' padding is never written again
            packed = np.zeros(_plan_packed(&kernel.net, &self.pk, NULL, rows, f64), dtype=dtype)
            self.packed = packed
            _plan_packed(&kernel.net, &self.pk, <char*> cnp.PyArray_DATA(packed), rows, f64)

    @property
    def step(self):
        """Number of parameter updates made so far (Adam's t)."""
        return self.config.step

    def epoch(self, floating[::1] theta, const floating[:, ::1] X, const int[::1] labels,
              const floating[:, ::1] targets, const floating[::1] weights,
              double learning_rate, uint64_t epoch, int n_threads=1):
        """Run one epoch in place on `theta`; returns (loss_sum, weight_sum, status).

        Up to `n_threads` threads share each step when it is large enough (see
        ``Kernel.shards``); the caller keeps BLAS to one thread when it asks
        for more than one here. The result is the same for any `n_threads`.
        """
        cdef floating[::1] buf = self.buffer
        cdef floating[::1] grad = self.grad
        cdef floating[::1] m = self.m
        cdef floating[::1] v = self.v
        cdef Py_ssize_t[::1] index = self.index
        cdef int[::1] batch_labels = self.batch_labels
        cdef double[::1] row_loss = self.row_loss
        cdef Py_ssize_t[:, ::1] blocks = self.blocks
        cdef const int* lab = _labels_ptr(labels)
        cdef const floating* tgt = &targets[0, 0] if targets is not None else NULL
        cdef const floating* wts = &weights[0] if weights is not None else NULL
        cdef double loss_sum = 0.0, weight_sum = 0.0
        cdef int status
        cdef void* pk = NULL
        cdef floating[::1] work = None
        cdef floating* pw = NULL
        cdef int threads = max(1, n_threads)
        if self.packed is not None:
            pk = &self.pk
            if self.work is None or self.work.shape[0] < threads * ARCHFIT_PK_WORK:
                # allocated here, with the GIL: out of memory raises before any step
                self.work = np.empty(threads * ARCHFIT_PK_WORK, dtype=self.packed.dtype)
            work = self.work
            pw = &work[0]
        self.config.learning_rate = learning_rate
        with nogil:
            status = run_epoch(&self.kernel.net, &self.ws, &self.config,
                               &theta[0], &grad[0], &m[0], &v[0],
                               &X[0, 0], X.shape[0], lab, tgt, wts,
                               &index[0], &batch_labels[0], &buf[0], &row_loss[0],
                               &blocks[0, 0], blocks.shape[0],
                               self.batch_size, threads,
                               self.shuffle, self.l2, self.decoupled,
                               self.dropout, self.seed, epoch, &loss_sum, &weight_sum, pk, pw)
        return loss_sum, weight_sum, status
