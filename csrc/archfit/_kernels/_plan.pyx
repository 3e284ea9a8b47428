"""Planning: how a fit, a prediction or a loss evaluation runs.

Design
------
* Every decision that depends on the network, the batch and the CPU - row
  shards, update blocks, prediction chunks, packed operands, threads, scratch
  sizes - is made here, once per fit or call, and stored in a plan that the
  kernels follow and the Python layer reads (``archfit.kernels`` reports it).
* A memory block is laid out by the same function that counts its bytes (run
  once with no base to count, once with the caller's block to place), so the
  size reported and the layout used cannot drift apart.
* Shards, blocks and chunks depend on the network and the number of rows,
  never on the number of threads: results do not depend on it.
"""
from libc.string cimport memset

from archfit.kernels cimport (OK, INVALID_ARGUMENT, FLOAT32, FLOAT64, IDENTITY, GELU,
                              SOFTMAX, EXPONENTIAL, CROSS_ENTROPY, POISSON, SGD, ADAMW,
                              DENSE, LAYER_NORM, ADD, PERIODIC, EMBEDDING, ONE_HOT,
                              PIECEWISE_LINEAR, REPLICATE, MEMBER_DENSE, ADAPTED_DENSE,
                              MAX_CATEGORICAL, MAX_MEMBERS, PRECISION_NATIVE,
                              PRECISION_BFLOAT16)
from archfit._kernels._layers cimport kinds
from archfit._kernels.packgemm cimport ARCHFIT_PK_WORK, archfit_packed_gemm_available, packed_size
from archfit._kernels._blas cimport small_product, bf16_packed_words

cdef extern from "team.h" nogil:
    void archfit_install_fork_guard()
    int archfit_threads(int asked)
    unsigned long long archfit_now_ns()

cdef extern from *:
    # When the last kernel call ended (nanoseconds, archfit_now_ns), shared by
    # every module through calls_end/idle_threads; calls on other threads
    # race on it harmlessly (relaxed atomics: any recent value will do).
    """
    static unsigned long long archfit_last_call_end = 0;
    static inline unsigned long long archfit_last_call(void)
    { return __atomic_load_n(&archfit_last_call_end, __ATOMIC_RELAXED); }
    static inline void archfit_set_last_call(unsigned long long t)
    { __atomic_store_n(&archfit_last_call_end, t, __ATOMIC_RELAXED); }
    /* How long the last woken worker thread took to arrive (nanoseconds). */
    static unsigned long long archfit_last_wake = 0;
    static inline unsigned long long archfit_wake(void)
    { return __atomic_load_n(&archfit_last_wake, __ATOMIC_RELAXED); }
    static inline void archfit_set_wake(unsigned long long t)
    { __atomic_store_n(&archfit_last_wake, t, __ATOMIC_RELAXED); }
    """
    unsigned long long archfit_last_call() nogil
    void archfit_set_last_call(unsigned long long t) nogil
    unsigned long long archfit_wake() nogil
    void archfit_set_wake(unsigned long long t) nogil

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs
archfit_install_fork_guard()    # team.h: this module is the one that counts threads


cdef int threads_allowed(int asked) noexcept nogil:
    """The threads a kernel may use when asked for `asked`: 1 in a forked child."""
    return archfit_threads(asked)


cdef void calls_end() noexcept nogil:
    """A kernel call ends now (for idle_threads)."""
    archfit_set_last_call(archfit_now_ns())


cdef int idle_threads(int planned, double flops, unsigned long long* wake_from) noexcept nogil:
    """The threads a prediction of `flops` work runs on when its plan says
    `planned`. After a pause (no kernel call ended in the last IDLE_NS
    nanoseconds) the other threads sleep, and waking them costs tens of
    microseconds on bare metal, milliseconds on some virtual machines: then
    one thread, for work one thread does in that time - IDLE_SOLO_FLOPS, or
    the last wake measured at IDLE_SOLO_RATE flops a nanosecond, whichever
    is more. When threads are woken after a pause, `wake_from` is the time
    now (their first worker reports its arrival: wake_seen), else 0.
    Results do not depend on the thread count, only the time."""
    cdef unsigned long long now
    cdef double solo
    wake_from[0] = 0
    if planned <= 1:
        return planned
    now = archfit_now_ns()
    if now == 0 or now - archfit_last_call() <= IDLE_NS:
        return planned
    solo = max(<double> IDLE_SOLO_FLOPS, <double> archfit_wake() * IDLE_SOLO_RATE)
    if flops <= solo:
        return 1
    wake_from[0] = now
    return planned


cdef void wake_seen(unsigned long long since) noexcept nogil:
    """A worker thread woken at `since` (idle_threads' wake_from) has arrived."""
    cdef unsigned long long now = archfit_now_ns()
    if now > since:
        archfit_set_wake(now - since)


def idle_threads_py(int planned, double flops):
    """Test hook: idle_threads' thread count."""
    cdef unsigned long long wake_from
    return idle_threads(planned, flops, &wake_from)


def set_wake_py(unsigned long long nanoseconds):
    """Test hook: the last wake measured, as wake_seen would set it."""
    archfit_set_wake(nanoseconds)


def calls_end_py():
    """Test hook: calls_end."""
    calls_end()


cdef inline Py_ssize_t _up(Py_ssize_t nbytes) noexcept nogil:
    """`nbytes` rounded up to the block alignment."""
    return (nbytes + ALIGN - 1) // ALIGN * ALIGN


cdef char* aligned(void* p) noexcept nogil:
    """The first ALIGN-aligned address at or after `p`."""
    return <char*> ((<size_t> p + ALIGN - 1) // ALIGN * ALIGN)


cdef int network_of(Network* net, int n_layers, const Py_ssize_t* sizes,
                    const int* activations, int head, int loss, double huber_delta) noexcept nogil:
    """Fill `net` for a stack of DENSE layers on numeric inputs (network_of_layers)."""
    cdef LayerSpec layers[MAX_LAYERS]
    cdef InputSpec inputs
    cdef int l
    if not 1 <= n_layers <= MAX_LAYERS:
        return INVALID_ARGUMENT
    memset(layers, 0, sizeof(layers))
    for l in range(n_layers):
        layers[l].kind = DENSE
        layers[l].units = sizes[l + 1]
        layers[l].activation = activations[l]
        layers[l].link = -1
    inputs.numeric = sizes[0]
    inputs.categorical = 0
    inputs.cardinality = NULL
    return network_of_layers(net, &inputs, n_layers, layers, head, loss, huber_delta)


cdef int network_of_layers(Network* net, const InputSpec* inputs, int n_layers,
                           const LayerSpec* layers, int head, int loss,
                           double huber_delta) noexcept nogil:
    """Fill `net` (θ's layout included: each layer's parameters in order, a
    DENSE layer's weight block then its bias); INVALID_ARGUMENT for a network
    no kernel runs."""
    cdef Py_ssize_t start = 0, width, n_in, n_num, K, T, rows = 0
    cdef int l, j, k, codes
    cdef bint ensemble
    if inputs == NULL or inputs.numeric < 0 or not 0 <= inputs.categorical <= MAX_CATEGORICAL \
            or inputs.numeric + inputs.categorical < 1 \
            or (inputs.categorical > 0 and inputs.cardinality == NULL):
        return INVALID_ARGUMENT
    if not 1 <= n_layers <= MAX_LAYERS or not SOFTMAX <= head <= EXPONENTIAL \
            or not CROSS_ENTROPY <= loss <= POISSON or not huber_delta > 0:
        return INVALID_ARGUMENT
    if layers[n_layers - 1].kind not in (DENSE, MEMBER_DENSE) \
            or layers[n_layers - 1].activation != IDENTITY:
        return INVALID_ARGUMENT         # the head acts on a last DENSE layer's values
    net.n_categorical = inputs.categorical
    for j in range(inputs.categorical):
        if inputs.cardinality[j] < 1:
            return INVALID_ARGUMENT
        net.cardinality[j] = inputs.cardinality[j]
        net.table_row[j] = rows
        rows += inputs.cardinality[j] + 1       # a row for unseen or missing values too
    width = inputs.numeric + inputs.categorical
    codes = inputs.categorical
    net.n_layers = n_layers
    net.sizes[0] = width
    net.members = 1
    ensemble = False                    # a REPLICATE came
    for l in range(n_layers):
        net.skip_from[l] = -1
    for l in range(n_layers):
        n_in = width
        n_num = n_in - codes
        net.kind[l] = layers[l].kind
        net.codes[l] = codes
        net.activation[l] = IDENTITY
        net.link[l] = -1
        net.epsilon[l] = 0.0
        net.frequencies[l] = 0
        net.bins[l] = 0
        net.replicas[l] = net.members
        net.adapter[l] = False
        net.dropout[l] = -1.0
        net.w_start[l] = start
        if layers[l].kind != PERIODIC and layers[l].frequencies != 0:
            return INVALID_ARGUMENT
        if layers[l].kind != PIECEWISE_LINEAR and layers[l].bins != 0:
            return INVALID_ARGUMENT
        if layers[l].kind != REPLICATE and (layers[l].members != 0 or layers[l].adapter):
            return INVALID_ARGUMENT
        if ensemble and layers[l].kind not in (DENSE, LAYER_NORM, ADD, MEMBER_DENSE,
                                               ADAPTED_DENSE):
            return INVALID_ARGUMENT     # a member's rows go through these kinds only
        if layers[l].own_dropout:
            if layers[l].kind not in (DENSE, ADAPTED_DENSE) or l == n_layers - 1 \
                    or not 0.0 <= layers[l].dropout < 1.0:
                return INVALID_ARGUMENT
            net.dropout[l] = layers[l].dropout
        elif layers[l].dropout != 0.0:
            return INVALID_ARGUMENT
        if codes > 0 and layers[l].kind in (DENSE, LAYER_NORM, ADD):
            return INVALID_ARGUMENT     # codes are not numbers: an EMBEDDING or ONE_HOT first
        if layers[l].kind == DENSE:
            if layers[l].units < 1 or not IDENTITY <= layers[l].activation <= GELU:
                return INVALID_ARGUMENT
            width = layers[l].units
            net.activation[l] = layers[l].activation
            start += n_in * width
            net.b_start[l] = start
            start += width
        elif layers[l].kind == LAYER_NORM:
            if not layers[l].epsilon > 0 or layers[l].units not in (0, n_in):
                return INVALID_ARGUMENT
            net.epsilon[l] = layers[l].epsilon
            start += n_in
            net.b_start[l] = start
            start += n_in
        elif layers[l].kind == ADD:
            k = layers[l].link
            if not 0 <= k < l or net.sizes[k] != n_in or net.skip_from[k] >= 0 \
                    or net.codes[k] != 0 or layers[l].units not in (0, n_in) \
                    or net.replicas[k] != net.replicas[l]:
                return INVALID_ARGUMENT
            net.link[l] = k
            net.skip_from[k] = l
            net.b_start[l] = start
        elif layers[l].kind == PERIODIC:
            # embeds the numeric columns; codes pass through, after them
            K = layers[l].frequencies
            if layers[l].units < 1 or K < 1 or n_num < 1 \
                    or not IDENTITY <= layers[l].activation <= GELU:
                return INVALID_ARGUMENT
            width = n_num * layers[l].units + codes
            net.activation[l] = layers[l].activation
            net.frequencies[l] = K
            start += n_num * K + n_num * 2 * K * layers[l].units
            net.b_start[l] = start
            start += n_num * layers[l].units
        elif layers[l].kind == PIECEWISE_LINEAR:
            # the network's numeric inputs, against edges fitted on them; codes pass through
            T = layers[l].bins
            if l != 0 or layers[l].units < 1 or T < 1 or n_num < 1 \
                    or not IDENTITY <= layers[l].activation <= GELU:
                return INVALID_ARGUMENT
            width = n_num * layers[l].units + codes
            net.activation[l] = layers[l].activation
            net.bins[l] = T
            start += n_num * (T + 1) + n_num * layers[l].units + n_num * T * layers[l].units
            net.b_start[l] = start
            start += n_num * layers[l].units
        elif layers[l].kind == REPLICATE:
            # once, after the embeddings, before the last layer
            if ensemble or codes > 0 or l == n_layers - 1 \
                    or not 1 <= layers[l].members <= MAX_MEMBERS or layers[l].units != 0:
                return INVALID_ARGUMENT
            net.adapter[l] = layers[l].adapter
            if layers[l].adapter:
                start += layers[l].members * n_in
            net.b_start[l] = start
            net.members = <int> layers[l].members
            ensemble = True
        elif layers[l].kind == ADAPTED_DENSE:
            # a hidden layer on an ensemble's members' rows
            if not ensemble or l == n_layers - 1 or layers[l].units < 1 \
                    or not IDENTITY <= layers[l].activation <= GELU:
                return INVALID_ARGUMENT
            width = layers[l].units
            net.activation[l] = layers[l].activation
            start += n_in * width + net.members * (n_in + width)
            net.b_start[l] = start
            start += net.members * width
        elif layers[l].kind == MEMBER_DENSE:
            if not ensemble or l != n_layers - 1 or layers[l].units < 1:
                return INVALID_ARGUMENT
            width = layers[l].units
            start += net.members * n_in * width
            net.b_start[l] = start
            start += net.members * width
        elif layers[l].kind == EMBEDDING:
            if codes < 1 or layers[l].units < 1 or codes != inputs.categorical:
                return INVALID_ARGUMENT
            width = n_num + codes * layers[l].units
            start += rows * layers[l].units
            net.b_start[l] = start
            codes = 0
        elif layers[l].kind == ONE_HOT:
            if codes < 1 or codes != inputs.categorical or layers[l].units != 0:
                return INVALID_ARGUMENT
            width = n_num + rows
            net.b_start[l] = start
            codes = 0
        else:
            return INVALID_ARGUMENT
        net.p_stop[l] = start
        net.sizes[l + 1] = width
    net.n_parameters = start
    net.head = head
    net.loss = loss
    net.huber_delta = huber_delta
    net.precision = PRECISION_NATIVE
    return OK


cdef Py_ssize_t workspace(const Network* net, Workspace* ws, Py_ssize_t rows, double dropout,
                          bint gather, Py_ssize_t n_targets) noexcept nogil:
    """Lay out the scratch buffer for `rows` rows; returns its length in elements.

    `dropout`: a fit's rate (Settings.dropout), which every DENSE layer but
    the last takes unless it has its own; negative for an evaluation (no
    masks). Every array is (rows, width) row-major, so a shard of rows [lo,
    hi) of any of them is contiguous. Each layer's kind lays out its own
    arrays.
    """
    cdef Py_ssize_t off = 0
    cdef int l, L = net.n_layers
    ws.rows = rows
    ws.dropout = False
    for l in range(L):
        ws.rate[l] = 0.0
        if dropout >= 0.0 and (net.kind[l] == DENSE or net.kind[l] == ADAPTED_DENSE) \
                and l < L - 1:
            ws.rate[l] = net.dropout[l] if net.dropout[l] >= 0.0 else dropout
            ws.dropout = ws.dropout or ws.rate[l] > 0.0
    for l in range(L):
        off = kinds()[net.kind[l]].scratch(net, l, ws, rows * net.replicas[l], off)
    ws.x = ws.t = ws.w = off
    if gather:
        off += rows * net.sizes[0]
        ws.t = off
        off += rows * n_targets
        ws.w = off
        off += rows
    ws.size = off
    return off


cdef Py_ssize_t packed_layout(const Network* net, Packed* pk, char* base, Py_ssize_t rows,
                              bint f64) noexcept nogil:
    """Lay out a training step's packed operands for batches of up to `rows`
    rows from `base` (or only count when NULL); returns the elements needed."""
    cdef Py_ssize_t off = 0, n_in, n_out, item = 8 if f64 else 4
    cdef int l
    cdef bint bf16 = net.precision == PRECISION_BFLOAT16 and not f64
    for l in range(net.n_layers):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        pk.P[l] = pk.PT[l] = pk.D[l] = NULL
        if bf16:
            # bfloat16 products (bf16.h's words, 4 bytes each): every DENSE
            # layer, whose products would otherwise pack their operands per call
            pk.layer[l] = net.kind[l] == DENSE
            if pk.layer[l]:
                if base != NULL:
                    pk.P[l] = base + off * 4
                off += bf16_packed_words(n_in, n_out)
                if base != NULL:
                    pk.D[l] = base + off * 4
                off += bf16_packed_words(rows * net.replicas[l], n_out)
                if l > 0:
                    if base != NULL:
                        pk.PT[l] = base + off * 4
                    off += bf16_packed_words(n_out, n_in)
            continue
        pk.layer[l] = (net.kind[l] == DENSE and n_in * n_out >= PACK_MIN_WEIGHTS
                       and net.precision == PRECISION_NATIVE)
        if pk.layer[l]:
            if base != NULL:
                pk.P[l] = base + off * item
            off += packed_size(f64, n_in, n_out)
            if base != NULL:
                pk.D[l] = base + off * item
            off += packed_size(f64, rows * net.replicas[l], n_out)
            if l > 0:
                if base != NULL:
                    pk.PT[l] = base + off * item
                off += packed_size(f64, n_out, n_in)
    return off


cdef Py_ssize_t packed_weights_size(const Network* net, bint f64) noexcept nogil:
    """Elements of every layer's weights packed for a prediction."""
    cdef Py_ssize_t size = 0
    cdef int l
    for l in range(net.n_layers):
        if net.kind[l] == DENSE:
            size += packed_size(f64, net.sizes[l], net.sizes[l + 1])
    return size


cdef void packed_weights_layout(const Network* net, Packed* pk, char* base,
                                bint f64) noexcept nogil:
    """`pk` pointing every layer's packed weights into `base`, one after
    another (a prediction's: no transposed copies, no errors)."""
    cdef int l
    cdef Py_ssize_t item = 8 if f64 else 4
    for l in range(net.n_layers):
        pk.layer[l] = net.kind[l] == DENSE and net.precision == PRECISION_NATIVE
        pk.P[l] = base if pk.layer[l] else NULL
        pk.PT[l] = pk.D[l] = NULL
        if pk.layer[l]:
            base += packed_size(f64, net.sizes[l], net.sizes[l + 1]) * item


cdef Py_ssize_t _n_weights(const Network* net) noexcept nogil:
    """The weights of every DENSE, MEMBER_DENSE, PERIODIC and PIECEWISE_LINEAR
    layer (biases not counted; a bin's code counts as a weight), each times
    the rows it runs on per row of X (an ensemble's members): a row's
    multiply-adds in one forward pass; a LAYER_NORM layer counts as its width
    (its work per row is a few passes over it)."""
    cdef Py_ssize_t weights = 0, w
    cdef int l
    for l in range(net.n_layers):
        w = 0
        if net.kind[l] == DENSE or net.kind[l] == MEMBER_DENSE or net.kind[l] == ADAPTED_DENSE:
            w = net.sizes[l] * net.sizes[l + 1]
        elif net.kind[l] == LAYER_NORM:
            w = net.sizes[l]
        elif net.kind[l] == PERIODIC:
            w = (net.sizes[l + 1] - net.codes[l]) * 2 * net.frequencies[l]
        elif net.kind[l] == PIECEWISE_LINEAR:
            w = (net.sizes[l + 1] - net.codes[l]) * (net.bins[l] + 2)
        elif net.kind[l] == REPLICATE:
            w = net.members * net.sizes[l]
        weights += w * net.replicas[l]
    return weights


cdef inline Py_ssize_t _step_flops(const Network* net, Py_ssize_t rows) noexcept nogil:
    """The flops of a forward and backward pass over `rows` rows: forward 2,
    backward 4 per weight."""
    return 6 * _n_weights(net) * rows


cdef int shards_for(const Network* net, Py_ssize_t rows) noexcept nogil:
    """How many row shards a training step over `rows` rows is cut into."""
    cdef Py_ssize_t by_rows, by_work
    by_rows = rows // SHARD_MIN_ROWS
    by_work = _step_flops(net, rows) // SHARD_MIN_FLOPS
    return <int> max(1, min(<Py_ssize_t> MAX_SHARDS, min(by_rows, by_work)))


cdef Py_ssize_t update_blocks(const Network* net, Py_ssize_t* blocks) noexcept nogil:
    """Fill `blocks` (or only count them when NULL) with (layer, r0, r1)
    triples, each layer's as its kind cuts its parameters."""
    cdef Py_ssize_t n = 0
    cdef int l
    for l in range(net.n_layers):
        n += kinds()[net.kind[l]].blocks(net, l, blocks + 3 * n if blocks != NULL else NULL)
    return n


cdef bint splits(const Network* net, int l) noexcept nogil:
    """Whether one sample's forward pass shares layer l's columns among
    threads (a large DENSE layer; not in a network with an ensemble inside,
    whose one sample is many rows)."""
    return (net.kind[l] == DENSE and net.members == 1
            and net.sizes[l] * net.sizes[l + 1] >= ROW_SPLIT_MIN_WEIGHTS
            and net.sizes[l + 1] >= 16)


cdef bint any_splits(const Network* net) noexcept nogil:
    cdef int l
    for l in range(net.n_layers):
        if splits(net, l):
            return True
    return False


cdef bint _trains_packed(const Network* net, Py_ssize_t rows, bint f64) noexcept nogil:
    """Whether training at batch size `rows` keeps packed weights: with
    bfloat16 products, always (their operands are packed in any case); else
    on an AVX2 CPU, when some layer has PACK_MIN_WEIGHTS weights and the packed copies
    fit in PACK_MAX_BYTES (a step in one shard too: the packed GEMM beats
    BLAS on its products, and its bits do not depend on BLAS's threads)."""
    cdef Packed pk
    cdef int l
    if net.precision == PRECISION_BFLOAT16 and not f64:
        # bfloat16 products on any CPU: packing once per step always beats per call
        packed_layout(net, &pk, NULL, rows, f64)
    elif archfit_packed_gemm_available() == 0:
        return False
    elif packed_layout(net, &pk, NULL, rows, f64) * (8 if f64 else 4) > PACK_MAX_BYTES:
        return False
    for l in range(net.n_layers):
        if pk.layer[l]:
            return True
    return False


cdef Py_ssize_t _training_block(const Network* net, const Settings* settings, bint f64,
                                Py_ssize_t n_samples, Py_ssize_t n_targets,
                                const TrainingPlan* plan, char* base,
                                TrainingState* state) noexcept nogil:
    """Lay out a training state's block from `base` (ALIGN-aligned): the
    TrainingState itself, its bookkeeping (Internal), then its arrays; or
    only count its bytes when `base` is NULL; returns the bytes."""
    cdef Internal local
    cdef Internal* it = &local if base == NULL else <Internal*> (base + _up(sizeof(TrainingState)))
    cdef Py_ssize_t item = 8 if f64 else 4, P = net.n_parameters, rows = plan.rows
    cdef Py_ssize_t off = _up(sizeof(TrainingState)) + _up(sizeof(Internal)), grad, m, v
    cdef Py_ssize_t scratch, index, labels
    cdef Py_ssize_t losses, blocks, packed = 0, work = 0, n_blocks = update_blocks(net, NULL)
    grad = off
    off += _up(P * item)
    m = off
    off += _up(P * item)
    v = off
    off += _up(P * item)
    scratch = off
    off += _up(item * workspace(net, &it.ws, rows, settings.dropout, settings.shuffle,
                                n_targets))
    index = off
    off += _up(n_samples * sizeof(Py_ssize_t))
    labels = off
    off += _up(rows * sizeof(int))
    losses = off
    off += _up(rows * sizeof(double))
    blocks = off
    off += _up(3 * n_blocks * sizeof(Py_ssize_t))
    if plan.packed:
        packed = off
        off += _up(item * packed_layout(net, &it.pk, base + packed if base != NULL else NULL,
                                        rows, f64))
        work = off
        off += _up(item * plan.threads * ARCHFIT_PK_WORK)
    if base != NULL:
        it.packed = plan.packed
        it.scratch = base + scratch
        it.index = <Py_ssize_t*> (base + index)
        it.batch_labels = <int*> (base + labels)
        it.row_loss = <double*> (base + losses)
        it.blocks = <Py_ssize_t*> (base + blocks)
        it.n_blocks = update_blocks(net, it.blocks)
        it.work = base + work if plan.packed else NULL
        state.grad = base + grad
        state.m = base + m
        state.v = base + v
        state.internal = it
    return off


cdef TrainingPlan plan_training(const Network* net, const Settings* settings, bint f64,
                                Py_ssize_t n_samples, Py_ssize_t n_targets,
                                int threads) noexcept nogil:
    cdef TrainingPlan plan
    plan.rows = max(1, min(settings.batch_size, n_samples))
    plan.shards = shards_for(net, plan.rows)
    plan.threads = min(threads_allowed(threads), plan.shards) if plan.shards > 1 else 1
    plan.packed = _trains_packed(net, plan.rows, f64)
    plan.bytes = ALIGN + _training_block(net, settings, f64, n_samples, n_targets, &plan,
                                         NULL, NULL)
    return plan


cdef int lay_out_training(TrainingState** out, const Network* net, const Settings* settings,
                          int dtype, Py_ssize_t n_samples, Py_ssize_t n_targets, int threads,
                          void* theta, void* memory) noexcept nogil:
    """training_init: plan, zero and lay out `memory` for a fit; the state
    itself at its start (*out)."""
    cdef bint f64 = dtype == FLOAT64
    cdef char* base
    cdef Py_ssize_t i
    cdef Internal* it
    cdef TrainingState* state
    cdef TrainingPlan plan
    if (dtype != FLOAT32 and dtype != FLOAT64) or n_samples < 1 or settings.batch_size < 1 \
            or not SGD <= settings.optimizer <= ADAMW or not 0.0 <= settings.dropout < 1.0 \
            or n_targets < 0 or theta == NULL or memory == NULL or out == NULL:
        return INVALID_ARGUMENT
    base = aligned(memory)
    plan = plan_training(net, settings, f64, n_samples, n_targets, threads)
    # zeros: moments start at zero, and the packed panels' padding is never written again
    memset(base, 0, plan.bytes - (base - <char*> memory))
    state = <TrainingState*> base
    out[0] = state
    state.net = net[0]
    state.settings = settings[0]
    state.plan = plan
    state.dtype = dtype
    state.n_samples = n_samples
    state.n_targets = n_targets
    state.theta = theta
    state.step = 0
    state.interrupt = NULL
    _training_block(&state.net, &state.settings, f64, n_samples, n_targets, &state.plan,
                    base, state)
    it = <Internal*> state.internal
    for i in range(n_samples):
        it.index[i] = i
    return OK


cdef Py_ssize_t _predict_rows(const Network* net, Py_ssize_t n, bint packed) noexcept nogil:
    """Rows per chunk when predicting n rows (`packed`: with packed weights)."""
    cdef Py_ssize_t rows = ((n + 3) // 4 + 15) // 16 * 16, half
    if packed and n <= PREDICT_CHUNK:
        # two chunks when each is worth a fork/join (as a training step's shards)
        half = ((n + 1) // 2 + 15) // 16 * 16
        return half if half < n and 2 * _n_weights(net) * half >= SHARD_MIN_FLOPS else n
    if n <= PREDICT_CHUNK:
        return n
    if packed:
        return PACKED_ROWS
    return max(<Py_ssize_t> PREDICT_CHUNK, min(<Py_ssize_t> PREDICT_MAX_ROWS, rows))


cdef bint _packs(const Network* net, Py_ssize_t n_rows) noexcept nogil:
    """Whether predicting n_rows rows packs the weights: on a CPU with the
    packed GEMM, for more than PREDICT_CHUNK rows, and for fewer (but two or
    more) when a layer's product would otherwise go to BLAS."""
    cdef int l
    if n_rows < 2 or archfit_packed_gemm_available() == 0 or net.precision != PRECISION_NATIVE:
        return False
    if n_rows > PREDICT_CHUNK:
        return True
    for l in range(net.n_layers):
        if net.kind[l] == DENSE and not small_product(n_rows, net.sizes[l + 1], net.sizes[l]):
            return True
    return False


cdef PredictionPlan plan_prediction(const Network* net, bint f64, Py_ssize_t n_rows,
                                    int threads) noexcept nogil:
    """Chunks of rows shared among threads; one row: its large layers' columns
    shared; on an AVX2 CPU, weights packed once for several chunks, or for a
    few rows whose products would otherwise go to BLAS (so no prediction
    calls BLAS there, and every row gets the bits of predicting it alone)."""
    cdef PredictionPlan plan
    cdef Workspace ws
    cdef Packed pk
    cdef char* scratch
    cdef double* losses
    cdef Py_ssize_t stride
    plan.packed = _packs(net, n_rows)
    plan.rows = _predict_rows(net, n_rows, plan.packed)
    plan.chunks = (n_rows + plan.rows - 1) // plan.rows if n_rows > 0 else 0
    if n_rows == 1:
        plan.threads = threads_allowed(threads) if any_splits(net) else 1
    elif plan.chunks > 1:
        plan.threads = <int> min(<Py_ssize_t> threads_allowed(threads), plan.chunks)
    else:
        plan.threads = 1
    plan.bytes = ALIGN + prediction_block(net, &plan, f64, NULL, &ws, &pk, &losses, &scratch,
                                          &stride)
    return plan


cdef Py_ssize_t prediction_block(const Network* net, const PredictionPlan* plan, bint f64,
                                 char* base, Workspace* ws, Packed* pk, double** losses,
                                 char** scratch, Py_ssize_t* stride) noexcept nogil:
    """Lay out a prediction's block from `base` (ALIGN-aligned) - the packed
    weights, each chunk's loss (an evaluation's), then each thread's scratch,
    `stride` bytes apart - or only count when `base` is NULL; returns the
    bytes. `ws` is planned for a chunk."""
    cdef Py_ssize_t item = 8 if f64 else 4, packed = 0
    cdef Py_ssize_t per = workspace(net, ws, plan.rows, -1.0, plan.rows == 1, 0)
    cdef Py_ssize_t chunk_losses = _up(max(plan.chunks, <Py_ssize_t> 1) * sizeof(double))
    if plan.packed:
        per += ARCHFIT_PK_WORK          # each thread's packed-GEMM scratch follows its own
        packed = _up(packed_weights_size(net, f64) * item)
        if base != NULL:
            packed_weights_layout(net, pk, base, f64)
    stride[0] = _up(per * item)
    losses[0] = <double*> (base + packed) if base != NULL else NULL
    scratch[0] = base + packed + chunk_losses if base != NULL else NULL
    return packed + chunk_losses + plan.threads * stride[0]


cdef Py_ssize_t _gradient_rows(const Network* net, Py_ssize_t n) noexcept nogil:
    """Rows per chunk of a loss and gradient over n rows: a quarter of them (in
    multiples of 16), at least a training shard's minimum of rows and work,
    at most CHUNK_ROWS."""
    cdef Py_ssize_t rows = ((n + GRADIENT_CHUNKS - 1) // GRADIENT_CHUNKS + 15) // 16 * 16
    cdef Py_ssize_t least = max(<Py_ssize_t> SHARD_MIN_ROWS,
                                SHARD_MIN_FLOPS // max(<Py_ssize_t> 1, _step_flops(net, 1)))
    return max(<Py_ssize_t> 1, min(n, min(<Py_ssize_t> CHUNK_ROWS, max(rows, least))))


cdef GradientPlan plan_gradient(const Network* net, bint f64, Py_ssize_t n_rows,
                                int threads) noexcept nogil:
    """Chunks of rows shared among threads, each thread with a gradient
    buffer of its own; the chunks depend on the network and n_rows alone."""
    cdef GradientPlan plan
    cdef Workspace ws
    cdef char* scratch
    cdef char* grads
    cdef double* losses
    cdef Py_ssize_t stride
    plan.rows = _gradient_rows(net, n_rows)
    plan.chunks = (n_rows + plan.rows - 1) // plan.rows if n_rows > 0 else 0
    plan.threads = <int> max(<Py_ssize_t> 1, min(<Py_ssize_t> threads_allowed(threads),
                                                 plan.chunks))
    plan.bytes = ALIGN + gradient_block(net, &plan, f64, NULL, &ws, &losses, &scratch, &grads,
                                        &stride)
    return plan


cdef Py_ssize_t gradient_block(const Network* net, const GradientPlan* plan, bint f64,
                               char* base, Workspace* ws, double** losses, char** scratch,
                               char** grads, Py_ssize_t* stride) noexcept nogil:
    """Lay out a loss and gradient's block from `base` (ALIGN-aligned) - each
    chunk's loss, then each thread's scratch at `scratch` and, with several
    chunks, its gradient buffer at `grads` (each `stride` bytes after the
    previous thread's) - or only count when `base` is NULL; returns the
    bytes. `ws` is planned for a chunk."""
    cdef Py_ssize_t item = 8 if f64 else 4
    cdef Py_ssize_t work = _up(workspace(net, ws, plan.rows, -1.0, False, 0) * item)
    cdef Py_ssize_t chunk_losses = _up(max(plan.chunks, <Py_ssize_t> 1) * sizeof(double))
    # a chunk's gradient is computed alone, then added to the others' in order
    cdef Py_ssize_t own = _up(net.n_parameters * item) if plan.chunks > 1 else 0
    stride[0] = work + own
    losses[0] = <double*> base if base != NULL else NULL
    scratch[0] = base + chunk_losses if base != NULL else NULL
    grads[0] = base + chunk_losses + work if base != NULL else NULL
    return chunk_losses + plan.threads * stride[0]


cdef void* packed_operands(const TrainingState* state, Py_ssize_t* count) noexcept nogil:
    """Where a training state's packed operands start (NULL: none), and their
    element count in `count`."""
    cdef const Internal* it = <const Internal*> state.internal
    cdef Packed pk
    cdef int l
    count[0] = 0
    if not it.packed:
        return NULL
    count[0] = packed_layout(&state.net, &pk, NULL, state.plan.rows, state.dtype == FLOAT64)
    for l in range(state.net.n_layers):
        if it.pk.layer[l]:
            return it.pk.P[l]
    return NULL
