"""Evaluation: f(X; θ) through the head, and the loss and gradient over a data set.

Design
------
* Predictions run in chunks of rows (the plan's), shared among threads; on an
  AVX2 CPU the weights are packed once and every chunk's products read them
  (for a few rows, when a product would otherwise go to BLAS), so a row's
  outputs do not depend on the other rows.
* One row is the latency path: a vector-matrix kernel per layer, the columns
  of large layers shared among threads inside one parallel region - unless
  no kernel call ended in the last IDLE_NS (_plan.idle_threads): then the
  other threads sleep, and waking them costs more than the row's work.
* An evaluation (a validation set's loss, ``FitModel.loss``) is a prediction
  that also takes each chunk's loss from its logits: the same chunks,
  products and threads, so it is as reproducible as the outputs.
* The loss with its gradient (L-BFGS's objective) goes through the data in
  the plan's chunks, shared among threads in waves: each chunk's gradient is
  computed alone, then the threads add the wave's gradients to the total in
  chunk order, each over its own slice of θ. The sum's order is the chunks',
  so the result does not depend on the thread count, and memory stays
  bounded for any number of rows.
"""
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from cython.parallel cimport prange, parallel, threadid

from archfit.kernels cimport OK, Data
from archfit.kernels cimport GradientPlan
from archfit._kernels._plan cimport (Workspace, Packed, aligned, prediction_block,
                                     plan_prediction, gradient_block, splits, any_splits,
                                     threads_allowed, calls_end, idle_threads, wake_seen,
                                     _n_weights)
from archfit._kernels._passes cimport forward, backward, pass_of
from archfit._kernels._layers cimport Pass, Kind, kinds, dense_part
from archfit._kernels.packgemm cimport pack, packed_size
from archfit._kernels._elementwise cimport members_output, members_loss_grad, all_finite

cdef extern from "team.h" nogil:
    int archfit_team_size()
    void archfit_barrier()

from archfit._kernels._cpu cimport archfit_isa_adopt, archfit_fp_enter, archfit_fp_leave
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs


from archfit.kernels cimport DENSE


cdef inline void _row_layer(const Pass* p, int l, int part, int parts,
                            floating* buf) noexcept nogil:
    """Part `part` of `parts` of layer l, for one sample (its kind's row)."""
    if p.net.kind[l] == DENSE:
        dense_part(p, l, part, parts, buf)     # the table's entry, inlined: a latency path
        return
    if floating is float:
        kinds()[p.net.kind[l]].part_f32(p, l, part, parts, buf)
    else:
        kinds()[p.net.kind[l]].part_f64(p, l, part, parts, buf)


cdef void _forward_row(const Network* net, const Workspace* ws, const floating* theta,
                       floating* buf, int threads,
                       unsigned long long wake_from=0) noexcept nogil:
    """Forward pass of the one sample at buf + ws.x; large layers' columns shared.

    One parallel region for the whole pass, a barrier after each layer; no
    region when no layer is large enough to share. Every output column is the
    same FMA chain however the columns are shared, so the result does not
    depend on `threads`. `wake_from`: see _plan.idle_threads.
    """
    cdef int l, tid, team, L = net.n_layers
    cdef unsigned long long mode
    cdef Pass p = pass_of(net, ws, theta, buf + ws.x, buf, NULL, NULL, NULL, NULL, 0)
    threads = threads_allowed(threads)
    if threads <= 1 or not any_splits(net):
        for l in range(L):
            _row_layer(&p, l, 0, 1, buf)
        return
    with parallel(num_threads=threads):
        mode = archfit_fp_enter()       # this worker thread's mode, restored below
        tid = threadid()
        team = archfit_team_size()      # may be smaller than asked for
        if wake_from != 0 and tid == 1:
            wake_seen(wake_from)
        for l in range(L):
            if splits(net, l):
                _row_layer(&p, l, tid, team, buf)
            elif tid == 0:
                _row_layer(&p, l, 0, 1, buf)
            if l < L - 1:
                archfit_barrier()   # the region's end waits for the last layer
        archfit_fp_leave(mode)


cdef double _chunk_loss(const Network* net, const Workspace* ws, const floating* buf,
                        const Data* data, Py_ssize_t lo, Py_ssize_t b) noexcept nogil:
    """Weighted sum of the losses of data's rows [lo, lo + b), their logits in buf."""
    cdef Py_ssize_t k = net.sizes[net.n_layers]
    cdef const floating* targets = <const floating*> data.targets
    cdef const floating* weights = <const floating*> data.weights
    return members_loss_grad(buf + ws.z[net.n_layers - 1], b, net.members, k, net.loss,
                             data.labels + lo if data.labels != NULL else NULL,
                             targets + lo * k if targets != NULL else NULL,
                             weights + lo if weights != NULL else NULL,
                             NULL, 1.0, net.huber_delta)


cdef void _predict_row(const Network* net, const Workspace* ws, const floating* theta,
                       const floating* x, floating* out, floating* buf,
                       int threads, unsigned long long wake_from=0) noexcept nogil:
    """Outputs of the one sample x (into `out` unless NULL); ws planned for
    one row with room for x; its logits stay in buf."""
    cdef int L = net.n_layers
    memcpy(buf + ws.x, x, net.sizes[0] * sizeof(floating))
    if net.members > 1:
        forward(net, ws, theta, buf + ws.x, 0, 1, buf)  # the members' rows: no row path
    else:
        _forward_row(net, ws, theta, buf, threads, wake_from)
    if out != NULL:
        members_output(buf + ws.z[L - 1], out, 1, net.members, net.sizes[L], net.head,
                       buf + ws.delta[L - 1])


cdef void _predict_chunk(const Network* net, const Workspace* ws, const floating* theta,
                         const Data* data, floating* out, double* losses, Py_ssize_t c,
                         floating* buf, const Packed* pk=NULL,
                         floating* work=NULL) noexcept nogil:
    """Chunk c, rows [c * ws.rows, ...) of data (fewer at the end): their
    outputs into `out` unless NULL, their loss into losses[c] unless `losses`
    is NULL. With `pk` the products read the packed weights, `work` being the
    packed GEMM's scratch."""
    cdef int L = net.n_layers
    cdef Py_ssize_t n = data.n_samples, lo = c * ws.rows
    cdef Py_ssize_t b = min(ws.rows, n - lo)
    cdef const floating* X = <const floating*> data.X
    if data.indptr != NULL:
        forward(net, ws, theta, X, 0, b, buf, pk, work, data, NULL, lo)
    else:
        forward(net, ws, theta, X + lo * net.sizes[0], 0, b, buf, pk, work)
    if losses != NULL:
        losses[c] = _chunk_loss(net, ws, buf, data, lo, b)
    if out != NULL:
        members_output(buf + ws.z[L - 1], out + lo * net.sizes[L], b, net.members,
                       net.sizes[L], net.head, buf + ws.delta[L - 1])


cdef void _pack_weights(const Network* net, const floating* theta, const Packed* pk,
                        int part, int parts) noexcept nogil:
    """Part `part` of `parts` of every layer's packed weights, into the places
    `pk` points at: a share of each layer's panels of columns (the packed
    form of a block of whole panels is the same block of the whole's)."""
    cdef int l
    cdef Py_ssize_t k, n, panel, panels, p0, p1, j0, j1
    panel = packed_size(floating is double, 1, 1)       # columns per panel
    for l in range(net.n_layers):
        if not pk.layer[l]:
            continue                                    # a kind without weights to pack
        k = net.sizes[l]
        n = net.sizes[l + 1]
        panels = (n + panel - 1) // panel
        p0 = panels * part // parts
        p1 = panels * (part + 1) // parts
        j0 = p0 * panel
        j1 = min(n, p1 * panel)
        if j0 < j1:
            pack(k, j1 - j0, theta + net.w_start[l] + j0, n, <floating*> pk.P[l] + j0 * k)


cdef int predict_rows(const Network* net, const PredictionPlan* plan, const floating* theta,
                      const floating* X, Py_ssize_t n, floating* out,
                      void* memory) noexcept nogil:
    """out = head(f(X; θ)) for n rows, as `plan` says; `memory`: plan.bytes.
    Subnormal numbers are flushed to zero meanwhile, on every thread."""
    cdef Data data
    memset(&data, 0, sizeof(data))      # dense X; no labels, targets or weights
    data.X = X
    data.n_samples = n
    return evaluate_rows(net, plan, theta, &data, out, memory, NULL)


cdef int evaluate_rows(const Network* net, const PredictionPlan* plan, const floating* theta,
                       const Data* data, floating* out, void* memory,
                       double* loss) noexcept nogil:
    """head(f(X; θ)) of data's rows (dense or sparse X) into `out` unless NULL,
    and their weighted mean loss into `loss` unless NULL, as `plan` (for
    data.n_samples rows) says; `memory`: plan.bytes.

    The loss is the sum of each chunk's loss taken in chunk order, so like the
    outputs it does not depend on the thread count; with packed weights a
    row's loss does not depend on the other rows either. Subnormal numbers
    are flushed to zero meanwhile, on every thread.
    """
    cdef unsigned long long mode = archfit_fp_enter()
    _predict_rows(net, plan, theta, data, out, memory, loss)
    archfit_fp_leave(mode)
    calls_end()
    return OK


cdef inline double _total_weight(const floating* weights, Py_ssize_t n) noexcept nogil:
    """The data's total sample weight, summed in row order (n without weights)."""
    cdef double total = 0.0
    cdef Py_ssize_t i
    if weights == NULL:
        return <double> n
    for i in range(n):
        total += weights[i]
    return total


cdef void _predict_rows(const Network* net, const PredictionPlan* plan, const floating* theta,
                        const Data* data, floating* out, void* memory,
                        double* loss) noexcept nogil:
    cdef unsigned long long mode
    cdef Workspace ws
    cdef Packed pk
    cdef Py_ssize_t c, n = data.n_samples, per
    cdef char* scratch
    cdef floating* buf
    cdef double* losses
    cdef const floating* weights = <const floating*> data.weights
    cdef double total = 0.0
    # a small prediction after a pause stays on this thread (the others sleep)
    cdef unsigned long long wake_from
    cdef int T = idle_threads(plan.threads, 2.0 * n * _n_weights(net), &wake_from)
    prediction_block(net, plan, floating is double, aligned(memory), &ws, &pk, &losses,
                     &scratch, &per)
    if loss == NULL:
        losses = NULL                   # no chunk takes its loss
    per //= sizeof(floating)            # each thread's scratch, in elements
    buf = <floating*> scratch
    if plan.packed or data.indptr != NULL:
        # Rows are independent here, so chunks go to whichever thread is free,
        # once the threads have packed the weights together.
        # Sparse X: the first layer reads the sparse rows, the others as planned.
        with parallel(num_threads=T):
            mode = archfit_fp_enter()           # this worker thread's mode, restored below
            if wake_from != 0 and threadid() == 1:
                wake_seen(wake_from)
            if plan.packed:
                _pack_weights(net, theta, &pk, threadid(), archfit_team_size())
                archfit_barrier()
            for c in prange(plan.chunks, schedule="dynamic"):
                _predict_chunk(net, &ws, theta, data, out, losses, c, buf + threadid() * per,
                               &pk if plan.packed else NULL,
                               buf + threadid() * per + ws.size if plan.packed else NULL)
            archfit_fp_leave(mode)
    elif n == 1:
        _predict_row(net, &ws, theta, <const floating*> data.X, out, buf, T, wake_from)
        if losses != NULL:
            losses[0] = _chunk_loss(net, &ws, buf, data, 0, 1)
    elif T == 1:
        for c in range(plan.chunks):
            _predict_chunk(net, &ws, theta, data, out, losses, c, buf)
    else:
        with parallel(num_threads=T):
            mode = archfit_fp_enter()
            if wake_from != 0 and threadid() == 1:
                wake_seen(wake_from)
            for c in prange(plan.chunks, schedule="static"):
                _predict_chunk(net, &ws, theta, data, out, losses, c, buf + threadid() * per)
            archfit_fp_leave(mode)
    if loss != NULL:
        # the chunks' losses in chunk order, over the data's total weight
        for c in range(plan.chunks):
            total += losses[c]
        loss[0] = total / _total_weight(weights, n)


cdef int predict_small(const Network* net, const floating* theta, const floating* X,
                       Py_ssize_t n, floating* out, int threads) noexcept nogil:
    """Outputs of n <= PREDICT_CHUNK rows as predict_rows gives them, with
    scratch of its own: the one-sample latency path. 1 done, 2 X not
    finite, 0 out of memory."""
    cdef PredictionPlan plan
    cdef void* memory
    if not all_finite(X, n * net.sizes[0]):
        return 2
    plan = plan_prediction(net, floating is double, n, threads)
    memory = malloc(plan.bytes)
    if memory == NULL:
        return 0
    predict_rows(net, &plan, theta, X, n, out, memory)
    free(memory)
    return 1


cdef int loss_grad(const Network* net, const GradientPlan* plan, const floating* theta,
                   const Data* data, double l2, floating* grad, void* memory,
                   double* loss) noexcept nogil:
    """Weighted mean loss (+ L2/2 ||W||^2) into `loss`; the gradient into
    `grad` unless NULL; as `plan` (for data.n_samples rows) says, `memory`
    its bytes. Subnormal numbers are flushed to zero meanwhile, on every
    thread."""
    cdef unsigned long long mode = archfit_fp_enter()
    _loss_grad(net, plan, theta, data, l2, grad, memory, loss)
    archfit_fp_leave(mode)
    calls_end()
    return OK


cdef void _gradient_chunk(const Network* net, const Workspace* ws, const floating* theta,
                          const Data* data, Py_ssize_t c, double scale, floating* buf,
                          floating* grad, double* losses) noexcept nogil:
    """Chunk c, rows [c * ws.rows, ...) of data: its weighted loss sum into
    losses[c] and, unless `grad` is NULL, its part of the gradient of the mean
    loss (`scale`: 1 / the data's total weight) written into `grad`."""
    cdef int L = net.n_layers
    cdef Py_ssize_t k = net.sizes[L], n_in = net.sizes[0], lo = c * ws.rows
    cdef Py_ssize_t b = min(ws.rows, data.n_samples - lo)
    cdef const floating* X = <const floating*> data.X
    cdef const floating* targets = <const floating*> data.targets
    cdef const floating* weights = <const floating*> data.weights
    cdef const Data* sparse = data if data.indptr != NULL else NULL
    if sparse != NULL:
        forward(net, ws, theta, X, 0, b, buf, NULL, NULL, sparse, NULL, lo)
    else:
        X += lo * n_in
        forward(net, ws, theta, X, 0, b, buf)
    losses[c] = members_loss_grad(
        buf + ws.z[L - 1], b, net.members, k, net.loss,
        data.labels + lo if data.labels != NULL else NULL,
        targets + lo * k if targets != NULL else NULL,
        weights + lo if weights != NULL else NULL,
        buf + ws.delta[L - 1] if grad != NULL else NULL, scale, net.huber_delta)
    if grad != NULL:
        backward(net, ws, theta, X, b, buf, grad, False, sparse, lo)


cdef inline void _add_slice(floating* total, const floating* part, Py_ssize_t lo,
                            Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(lo, hi):
        total[i] += part[i]


cdef void _loss_grad(const Network* net, const GradientPlan* plan, const floating* theta,
                     const Data* data, double l2, floating* grad, void* memory,
                     double* loss) noexcept nogil:
    cdef unsigned long long mode
    cdef Workspace ws
    cdef double* losses
    cdef char* scratch
    cdef char* grads
    cdef Py_ssize_t stride, n = data.n_samples, P = net.n_parameters, C = plan.chunks
    cdef Py_ssize_t c, i, w, t, p0, p1
    cdef int l, tid, team, T = plan.threads
    cdef double total_w = 0.0, loss_sum = 0.0, penalty = 0.0, scale
    cdef const floating* weights = <const floating*> data.weights
    gradient_block(net, plan, floating is double, aligned(memory), &ws, &losses, &scratch,
                   &grads, &stride)
    total_w = _total_weight(weights, n)
    scale = 1.0 / total_w if total_w > 0 else 0.0
    if grad != NULL and C == 0:
        memset(grad, 0, P * sizeof(floating))
    if T <= 1 or C <= 1:
        for c in range(C):
            _gradient_chunk(net, &ws, theta, data, c, scale, <floating*> scratch,
                            grad if c == 0 or grad == NULL else <floating*> grads, losses)
            if c > 0 and grad != NULL:
                _add_slice(grad, <floating*> grads, 0, P)
    elif grad == NULL:
        with parallel(num_threads=T):
            mode = archfit_fp_enter()           # this worker thread's mode, restored below
            for c in prange(C, schedule="static"):
                _gradient_chunk(net, &ws, theta, data, c, scale,
                                <floating*> (scratch + threadid() * stride), NULL, losses)
            archfit_fp_leave(mode)
    else:
        with parallel(num_threads=T):
            mode = archfit_fp_enter()
            tid = threadid()
            team = archfit_team_size()          # may be smaller than asked for
            # this thread's slice of θ in the additions, whole cache lines apart
            p0 = P * tid // team // 16 * 16
            p1 = P if tid == team - 1 else P * (tid + 1) // team // 16 * 16
            for w in range((C + team - 1) // team):
                c = w * team + tid
                if c < C:
                    _gradient_chunk(net, &ws, theta, data, c, scale,
                                    <floating*> (scratch + tid * stride),
                                    grad if c == 0 else <floating*> (grads + tid * stride),
                                    losses)
                archfit_barrier()
                # the wave's gradients, added to the total in chunk order
                for t in range(team):
                    if 0 < w * team + t < C:
                        _add_slice(grad, <floating*> (grads + t * stride), p0, p1)
                archfit_barrier()
            archfit_fp_leave(mode)
    for c in range(C):
        loss_sum += losses[c]
    if l2 != 0.0:
        for l in range(net.n_layers):
            # the parameters its kind lets decay (a DENSE layer's weights)
            kinds()[net.kind[l]].decays(net, l, &p0, &p1)
            for i in range(p0, p1):
                penalty += theta[i] * theta[i]
                if grad != NULL:
                    grad[i] += <floating> l2 * theta[i]
    loss[0] = loss_sum / total_w + 0.5 * l2 * penalty
