"""The training driver: a whole epoch of mini-batch steps in one call.

Design
------
* ``run_epoch`` does an epoch - shuffle, gather, forward, loss, backward, L2,
  dropout, update - without the GIL and without allocating: everything it
  touches was laid out in the state's memory block by ``training_init``.
* A step has two parallel phases over the plan's threads: rows (the
  mini-batch's shards: gather, forward, loss, backpropagated errors), then θ
  (update blocks: each block's gradient, then at once its update, while the
  block is in cache). Shards, blocks, randomness and the order of the loss sum
  do not depend on the thread count, so neither does the result.
* A non-finite loss or parameter makes it return a status code; the caller
  raises, and since the Python layer trains a copy of θ, nothing half-updated
  escapes.
"""
from libc.math cimport isfinite
from cython cimport floating
from libc.string cimport memcpy
from cython.parallel cimport prange, parallel, threadid

from archfit.kernels cimport (OK, NONFINITE_LOSS, NONFINITE_PARAMETERS, INVALID_ARGUMENT,
                              INTERRUPTED, ADAMW, FLOAT64, Network, Settings,
                              PRECISION_BFLOAT16)
from archfit._kernels._plan cimport (Workspace, Packed, Internal, shards_for, threads_allowed,
                                     calls_end)
from archfit._kernels._passes cimport forward, deltas, pass_of
from archfit._kernels._layers cimport (Pass, Update, Kind, kinds, dense_sparse_grad,
                                       dense_repack_all, has_dropout)
from archfit._kernels.packgemm cimport ARCHFIT_PK_WORK, pack_rows
from archfit._kernels._blas cimport bf16_pack
from archfit._kernels._elementwise cimport members_loss_grad, all_finite
from archfit._kernels._random cimport stream_seed, shuffle as shuffle_index, dropout_mask

from archfit._kernels._cpu cimport archfit_isa_adopt, archfit_fp_enter, archfit_fp_leave
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs

cdef extern from *:
    """
    static inline int archfit_interrupted(const int* flag)
    {
        return flag != NULL && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0;
    }
    /* Ask for the cache lines of `bytes` bytes at p (a row of X the next
     * mini-batch gathers) while this one computes. */
    static inline void archfit_prefetch_row(const void* p, Py_ssize_t bytes)
    {
    #if defined(__GNUC__) || defined(__clang__)
        const char* c = (const char*) p;
        for (Py_ssize_t at = 0; at < bytes; at += 64) __builtin_prefetch(c + at, 0, 3);
    #else
        (void) p; (void) bytes;
    #endif
    }
    """
    bint archfit_interrupted(const int* flag) noexcept nogil
    void archfit_prefetch_row(const void* p, Py_ssize_t bytes) noexcept nogil


cdef enum:
    # The most bytes of X rows prefetched for the next mini-batch: a quarter of
    # a 512 KiB L2 (784 float64 features x 128 rows, 784 KiB, ran 4% slower).
    PREFETCH_MAX_BYTES = 131072


cdef void _draw_masks(const Network* net, const Workspace* ws, Py_ssize_t rows,
                      floating* buf, uint64_t* rng) noexcept nogil:
    """Dropout masks of every masked layer, at its rate, for `rows` rows: one
    stream, in layer order."""
    cdef int l
    for l in range(net.n_layers - 1):
        if has_dropout(net, ws, l):
            dropout_mask(buf + ws.mask[l], rows * net.replicas[l] * net.sizes[l + 1],
                         ws.rate[l], rng)


cdef void _shard(const Network* net, const Workspace* ws, const floating* theta,
                 const floating* X, const Py_ssize_t* order, Py_ssize_t start,
                 Py_ssize_t lo, Py_ssize_t hi, const int* labels, const floating* targets,
                 const floating* weights, int* batch_labels, floating* buf,
                 double scale, double* row_loss, const Packed* pk, floating* work,
                 Py_ssize_t b, const Data* sparse, const Py_ssize_t* rows) noexcept nogil:
    """Rows [lo, hi) of the mini-batch at `start` of the epoch order: gather,
    forward, per-row loss and the error at every layer.

    `order` is the shuffled sample index (NULL: the data's own order). `pk`:
    the packed weights (or NULL), with the running thread's `work`; the batch
    has `b` rows. With `sparse`, X's rows are read where they are, not gathered.
    `rows` (with `order`): sample r's features are X's row rows[r].
    """
    cdef int L = net.n_layers
    cdef Py_ssize_t i, j, r, xr, n_features = net.sizes[0], k = net.sizes[L], M = net.members
    cdef const floating* Xb
    cdef const int* lb = NULL
    cdef const floating* tb = NULL
    cdef const floating* wb = NULL
    cdef int l
    if order != NULL:
        for i in range(lo, hi):
            r = order[start + i]
            xr = rows[r] if rows != NULL else r
            # a loop, not memcpy: rows are often a few dozen bytes
            if sparse == NULL:
                for j in range(n_features):
                    buf[ws.x + i * n_features + j] = X[xr * n_features + j]
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
    forward(net, ws, theta, Xb, lo, hi, buf, pk, work, sparse, order, start)
    members_loss_grad(buf + ws.z[L - 1] + lo * M * k, hi - lo, M, k, net.loss,
                      lb + lo if lb != NULL else NULL, tb + lo * k if tb != NULL else NULL,
                      wb + lo if wb != NULL else NULL, buf + ws.delta[L - 1] + lo * M * k,
                      scale, net.huber_delta, row_loss + lo)
    deltas(net, ws, theta, Xb, lo, hi, buf, pk, work)
    if pk != NULL:
        # this shard's rows of the errors, packed for the weight gradients
        for l in range(L):
            if floating is float and net.precision == PRECISION_BFLOAT16 and pk.layer[l]:
                # pairs of rows (the shards' bounds are even)
                bf16_pack(False, <const float*> (buf + ws.delta[l]), net.sizes[l + 1],
                          b * net.replicas[l], net.sizes[l + 1], lo * net.replicas[l],
                          hi * net.replicas[l], 0, net.sizes[l + 1], <unsigned int*> pk.D[l])
            elif pk.layer[l]:
                pack_rows(b * net.replicas[l], net.sizes[l + 1],
                          <const floating*> (buf + ws.delta[l]), net.sizes[l + 1],
                          lo * net.replicas[l], hi * net.replicas[l], pk.D[l])


cdef void _block(const Pass* shared, const Update* u, floating* work, int l, Py_ssize_t r0,
                 Py_ssize_t r1, floating* buf) noexcept nogil:
    """Block (r0, r1) of layer l's parameters, as its kind computes and updates
    it; `work`: the running thread's packed-GEMM scratch (ARCHFIT_PK_WORK
    elements of its own, or NULL)."""
    cdef Pass p = shared[0]
    cdef Update v = u[0]
    p.work = work
    v.rows = u.rows * p.net.replicas[l]         # an ensemble's layers: the members' rows
    if floating is float:
        kinds()[p.net.kind[l]].block_f32(&p, &v, l, r0, r1, buf)
    else:
        kinds()[p.net.kind[l]].block_f64(&p, &v, l, r0, r1, buf)


cdef inline floating* _thread_work(floating* work, int tid) noexcept nogil:
    """Thread tid's ARCHFIT_PK_WORK elements of `work` (NULL stays NULL)."""
    return work + tid * ARCHFIT_PK_WORK if work != NULL else NULL


cdef int run_epoch(TrainingState* state, const Data* data, double learning_rate,
                   uint64_t epoch, Py_ssize_t first, int threads, double* loss_sum,
                   double* weight_sum) noexcept nogil:
    """One epoch of mini-batch training on state.theta (of the state's dtype),
    or with `first` >= 0 the part of it that `data` holds (train_epoch_part);
    returns OK, INTERRUPTED, INVALID_ARGUMENT or a NONFINITE_* code.

    Up to min(`threads`, the plan's) threads share each step that has shards.
    With packed weights (the plan's `packed`), they are packed here from θ
    first and kept current by every block's update. Subnormal numbers are
    flushed to zero meanwhile, on every thread (cpu.h); the caller's mode is
    restored.
    """
    cdef unsigned long long mode
    cdef Py_ssize_t b = state.settings.batch_size
    if data.rows != NULL and (first >= 0 or data.indptr != NULL or not state.settings.shuffle):
        return INVALID_ARGUMENT
    if first >= 0 and (first % b != 0 or data.n_samples < 1
                       or first + data.n_samples > state.n_samples
                       or (data.n_samples % b != 0
                           and first + data.n_samples != state.n_samples)):
        return INVALID_ARGUMENT
    cdef int status
    mode = archfit_fp_enter()
    if state.dtype == FLOAT64:
        status = _epoch(state, data, learning_rate, epoch, first, threads, loss_sum,
                        weight_sum, <double*> state.theta)
    else:
        status = _epoch(state, data, learning_rate, epoch, first, threads, loss_sum,
                        weight_sum, <float*> state.theta)
    archfit_fp_leave(mode)
    calls_end()
    return status


cdef void run_population(TrainingState** states, const Data* data,
                         const double* learning_rates, const uint64_t* epochs, int n_members,
                         int threads, double* loss_sums, double* weight_sums,
                         int* statuses) noexcept nogil:
    """One epoch of each member: the members are shared by up to `threads`
    threads (dynamically, in order), each member's epoch on one thread, so
    each ends bit for bit as its own run_epoch would."""
    cdef int i, T = min(threads_allowed(threads), n_members)
    if T > 1:
        with parallel(num_threads=T):
            for i in prange(n_members, schedule="dynamic", chunksize=1):
                statuses[i] = run_epoch(states[i], &data[i], learning_rates[i], epochs[i], -1,
                                        1, &loss_sums[i], &weight_sums[i])
    else:
        for i in range(n_members):
            statuses[i] = run_epoch(states[i], &data[i], learning_rates[i], epochs[i], -1, 1,
                                    &loss_sums[i], &weight_sums[i])


cdef void order_of(const Settings* s, uint64_t epoch, Py_ssize_t n_samples,
                   Py_ssize_t* order) noexcept nogil:
    """The sample order of `epoch`: shuffled by (seed, epoch) alone, so that
    continuing a fit replays exactly the epochs a longer fit would have run."""
    cdef Py_ssize_t i
    cdef uint64_t shuffle_state
    for i in range(n_samples):
        order[i] = i
    if s.shuffle:
        shuffle_state = stream_seed(s.seed, epoch, 0)
        shuffle_index(order, n_samples, &shuffle_state)


cdef int _epoch(TrainingState* state, const Data* data, double learning_rate,
                uint64_t epoch, Py_ssize_t first, int threads, double* loss_sum,
                double* weight_sum, floating* theta) noexcept nogil:
    """run_epoch's work, in the flushing mode. A part (`first` >= 0) reads its
    rows in the order given and continues the epoch's dropout stream."""
    cdef unsigned long long mode
    cdef const Network* net = &state.net
    cdef const Settings* s = &state.settings
    cdef Internal* it = <Internal*> state.internal
    cdef const Workspace* ws = &it.ws
    cdef const Packed* pk = &it.pk if it.packed else NULL
    cdef floating* grad = <floating*> state.grad
    cdef floating* m = <floating*> state.m
    cdef floating* v = <floating*> state.v
    cdef floating* buf = <floating*> it.scratch
    cdef floating* work = <floating*> it.work
    cdef Py_ssize_t* index = it.index
    cdef const floating* X = <const floating*> data.X
    cdef const floating* targets = <const floating*> data.targets
    cdef const floating* weights = <const floating*> data.weights
    cdef const int* labels = data.labels
    cdef Py_ssize_t n_samples = data.n_samples, batch_size = state.plan.rows
    cdef int L = net.n_layers, S, T
    cdef Py_ssize_t start, b, i, sh, per, c
    cdef const Py_ssize_t* order = index if s.shuffle and first < 0 else NULL
    cdef const floating* Xb
    cdef uint64_t dropout_state
    cdef double wsum, batch_loss
    cdef const Data* sparse = data if data.indptr != NULL else NULL
    cdef double penalty = 0.0 if s.optimizer == ADAMW else s.l2
    cdef double decay = s.l2 if s.optimizer == ADAMW else 0.0
    # prefetch the next batch's rows only while they fit in cache beside this
    # batch's work (wide rows would evict it)
    cdef bint prefetch = (order != NULL and sparse == NULL and batch_size * net.sizes[0]
                          * <Py_ssize_t> sizeof(floating) <= PREFETCH_MAX_BYTES)

    cdef Pass shared
    cdef Update u
    u.settings = s
    u.learning_rate = learning_rate
    u.penalty = penalty
    u.decay = decay
    u.theta = theta
    u.grad = grad
    u.m = m
    u.v = v
    u.sparse_first = sparse != NULL

    threads = threads_allowed(min(threads, state.plan.threads))
    if pk != NULL:
        dense_repack_all(net, pk, theta, floating is double)
    loss_sum[0] = 0.0
    weight_sum[0] = 0.0
    if order != NULL:
        order_of(s, epoch, n_samples, index)
    dropout_state = it.dropout_stream if first > 0 else stream_seed(s.seed, epoch, 1)

    start = -batch_size
    while start + batch_size < n_samples:
        start += batch_size
        b = batch_size if start + batch_size <= n_samples else n_samples - start
        if archfit_interrupted(state.interrupt):
            return INTERRUPTED
        if prefetch:
            # the next batch's rows lie anywhere in X: start reading them now
            for i in range(start + batch_size, min(start + 2 * batch_size, n_samples)):
                archfit_prefetch_row(
                    X + (data.rows[order[i]] if data.rows != NULL else order[i]) * net.sizes[0],
                    net.sizes[0] * sizeof(floating))

        if weights != NULL:
            wsum = 0.0
            for i in range(b):
                wsum += weights[order[start + i] if order != NULL else start + i]
            if wsum <= 0.0:
                continue        # a batch of zero weight carries no information
        else:
            wsum = <double> b
        if ws.dropout:
            _draw_masks(net, ws, b, buf, &dropout_state)

        S = shards_for(net, b)
        per = (b + S - 1) // S
        if pk != NULL and net.precision == PRECISION_BFLOAT16:
            per += per % 2      # the errors are packed in pairs of rows: a pair in one shard
        T = min(S, threads)
        if T > 1:
            with parallel(num_threads=T):
                mode = archfit_fp_enter()       # this worker thread's mode, restored below
                for sh in prange(S, schedule="static"):
                    _shard(net, ws, theta, X, order, start, min(b, sh * per),
                           min(b, sh * per + per), labels, targets, weights, it.batch_labels,
                           buf, 1.0 / wsum, it.row_loss, pk, _thread_work(work, threadid()), b,
                           sparse, data.rows)
                archfit_fp_leave(mode)
        else:
            for sh in range(S):
                _shard(net, ws, theta, X, order, start, min(b, sh * per), min(b, sh * per + per),
                       labels, targets, weights, it.batch_labels, buf, 1.0 / wsum, it.row_loss,
                       pk, work, b, sparse, data.rows)
        batch_loss = 0.0
        for i in range(b):
            batch_loss += it.row_loss[i]
        if not isfinite(batch_loss):
            return NONFINITE_LOSS
        loss_sum[0] += batch_loss
        weight_sum[0] += wsum
        if sparse != NULL:
            # the first layer's weight gradient, one pass over the batch's values
            dense_sparse_grad(net, sparse, order, start, b, buf + ws.delta[0], grad,
                              floating is double)

        Xb = buf + ws.x if order != NULL else X + start * net.sizes[0]
        state.step += 1
        shared = pass_of(net, ws, theta, Xb, buf, pk, NULL, sparse, order, start)
        u.step = state.step
        u.rows = b
        T = threads if S > 1 else 1    # small steps stay on one thread
        if T > 1:
            with parallel(num_threads=T):
                mode = archfit_fp_enter()
                for c in prange(it.n_blocks, schedule="dynamic"):
                    _block(&shared, &u, _thread_work(work, threadid()), <int> it.blocks[3 * c],
                           it.blocks[3 * c + 1], it.blocks[3 * c + 2], buf)
                archfit_fp_leave(mode)
        else:
            for c in range(it.n_blocks):
                _block(&shared, &u, work, <int> it.blocks[3 * c], it.blocks[3 * c + 1],
                       it.blocks[3 * c + 2], buf)

    it.dropout_stream = dropout_state
    if not all_finite(theta, net.n_parameters):
        return NONFINITE_PARAMETERS
    return OK
