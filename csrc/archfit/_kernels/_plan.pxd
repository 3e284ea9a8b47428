# Planning: how a fit, a prediction or a loss evaluation runs, and where its
# scratch lives. Decided here once; the other kernel modules follow the plan
# and the Python layer only reads it (archfit.kernels reports it).
from archfit.kernels cimport (Network, Settings, TrainingPlan, PredictionPlan, GradientPlan,
                              TrainingState, LayerSpec, InputSpec, MAX_LAYERS)
from libc.stdint cimport uint64_t

cdef enum:
    # A full-data loss and gradient (L-BFGS's objective) runs in chunks of at
    # most CHUNK_ROWS rows (GEMM stays efficient, scratch stays bounded),
    # shared among threads: at least GRADIENT_CHUNKS of them when each keeps
    # a training shard's minimum of rows and work. Each chunk's gradient is
    # computed alone and the chunks' gradients are added in chunk order, so
    # the chunks, fixed by the network and n, fix the result.
    CHUNK_ROWS = 1024
    GRADIENT_CHUNKS = 4
    # Predicting n rows: up to PREDICT_CHUNK rows in one chunk, more in chunks
    # of n/4 rows, between PREDICT_CHUNK and PREDICT_MAX_ROWS (each chunk's GEMM
    # packs the weights again), shared out among threads. The chunks depend on
    # n alone, so the result does not depend on the thread count.
    PREDICT_CHUNK = 256
    PREDICT_MAX_ROWS = 1024
    # With the weights packed once (AVX2), chunks cost no re-packing:
    # small ones (two of packgemm's 96-row blocks) balance the threads' work.
    # Up to PREDICT_CHUNK rows packed (their products too large for smallgemm)
    # go in two chunks, of a multiple of 16 rows, when each chunk's products
    # have SHARD_MIN_FLOPS of work, else in one.
    PACKED_ROWS = 192
    # Training on an AVX2 CPU keeps the weights of every layer with at least
    # PACK_MIN_WEIGHTS of them packed (for X W) and packed transposed (for
    # D W^T), refreshed block by block right after each update; the row shards
    # of a step (or its one shard) all read that one copy. Smaller layers take
    # smallgemm. Only
    # while the copies stay in cache (at most PACK_MAX_BYTES): beyond, rewriting
    # them every step costs more memory traffic than BLAS's packing per shard.
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
    # One sample: a layer with at least this many weights (and 16 outputs) has
    # its columns shared among threads; each thread's part of W then stays in
    # its own core's cache from one call to the next.
    ROW_SPLIT_MIN_WEIGHTS = 32768
    # Alignment of every array in a memory block, in bytes.
    ALIGN = 64
    # After a pause of IDLE_NS nanoseconds with no kernel call, a prediction
    # runs on one thread when one thread does its work in the time a sleeping
    # thread takes to wake: at most IDLE_SOLO_FLOPS, or the last wake measured
    # at IDLE_SOLO_RATE flops a nanosecond (one core's rate, float64's and
    # below float32's) - idle_threads.
    IDLE_NS = 2000000
    IDLE_SOLO_FLOPS = 16000000
    IDLE_SOLO_RATE = 40

cdef struct Workspace:
    # Offsets (in elements of the dtype) into one scratch buffer, for `rows` rows.
    # Each kind of layer lays out its own arrays (_layers' table: scratch).
    Py_ssize_t rows
    Py_ssize_t out[MAX_LAYERS]      # each layer's output, what the next layer reads
    Py_ssize_t delta[MAX_LAYERS]    # the error at each layer's output; a DENSE layer's
                                    # backward turns its own into the error at its
                                    # pre-activation, in place
    Py_ssize_t z[MAX_LAYERS]        # DENSE: pre-activation (logits for the last);
                                    # LAYER_NORM: the normalised rows
    Py_ssize_t a[MAX_LAYERS]        # DENSE: activation of a hidden layer; PERIODIC,
                                    # PIECEWISE_LINEAR: output
    Py_ssize_t mask[MAX_LAYERS]     # DENSE: dropout mask of a hidden layer (rate[l] > 0)
    Py_ssize_t dropped[MAX_LAYERS]  # DENSE: activation * mask (rate[l] > 0)
    double rate[MAX_LAYERS]         # each layer's dropout rate in this computation (0: none)
    Py_ssize_t aux[MAX_LAYERS]      # LAYER_NORM: 1 / standard deviation of each row;
                                    # PERIODIC: each row's cos and sin features (n, 2K);
                                    # PIECEWISE_LINEAR: each row's bin codes (n, T);
                                    # ADAPTED_DENSE: (x ∘ r) W, then the error at
                                    # the pre-activation times s (each n_out wide)
    Py_ssize_t extra[MAX_LAYERS]    # PERIODIC: each row's error at those features (n, 2K),
                                    # then its terms of the frequencies' gradient (n, K);
                                    # ADAPTED_DENSE: x ∘ r, then the error at it (n_in)
    Py_ssize_t x                    # gathered mini-batch inputs (if gathering)
    Py_ssize_t t                    # gathered mini-batch targets (if gathering)
    Py_ssize_t w                    # gathered mini-batch sample weights (if gathering)
    Py_ssize_t size
    bint dropout

cdef struct Packed:
    # Packed operands of θ's dtype: P[l] for X W, PT[l] (l >= 1) for D W^T, D[l]
    # a training step's error at layer l for the weight gradient inp^T D;
    # layer[l] says whether layer l uses them.
    void* P[MAX_LAYERS]
    void* PT[MAX_LAYERS]
    void* D[MAX_LAYERS]
    bint layer[MAX_LAYERS]

cdef struct Internal:
    # A TrainingState's bookkeeping, after the state at the start of its memory block.
    Workspace ws
    Packed pk
    bint packed                     # pk is in use
    void* scratch                   # ws.size elements
    Py_ssize_t* index               # the epoch's sample order (n_samples)
    int* batch_labels               # the gathered mini-batch's labels (rows)
    double* row_loss                # each row's loss in the mini-batch (rows)
    Py_ssize_t* blocks              # (layer, r0, r1) triples of the update phase
    Py_ssize_t n_blocks
    void* work                      # with pk: each thread's packed-GEMM scratch
    uint64_t dropout_stream         # the masks' generator between parts of an epoch

cdef int threads_allowed(int asked) noexcept nogil
cdef void calls_end() noexcept nogil
cdef int idle_threads(int planned, double flops, unsigned long long* wake_from) noexcept nogil
cdef void wake_seen(unsigned long long since) noexcept nogil
cdef Py_ssize_t workspace(const Network* net, Workspace* ws, Py_ssize_t rows, double dropout,
                          bint gather, Py_ssize_t n_targets) noexcept nogil
cdef Py_ssize_t packed_layout(const Network* net, Packed* pk, char* base, Py_ssize_t rows,
                              bint f64) noexcept nogil
cdef int shards_for(const Network* net, Py_ssize_t rows) noexcept nogil
cdef Py_ssize_t _n_weights(const Network* net) noexcept nogil
cdef Py_ssize_t update_blocks(const Network* net, Py_ssize_t* blocks) noexcept nogil
cdef bint splits(const Network* net, int l) noexcept nogil
cdef bint any_splits(const Network* net) noexcept nogil
cdef int network_of(Network* net, int n_layers, const Py_ssize_t* sizes,
                    const int* activations, int head, int loss, double huber_delta) noexcept nogil
cdef int network_of_layers(Network* net, const InputSpec* inputs, int n_layers,
                           const LayerSpec* layers, int head, int loss,
                           double huber_delta) noexcept nogil
cdef TrainingPlan plan_training(const Network* net, const Settings* settings, bint f64,
                                Py_ssize_t n_samples, Py_ssize_t n_targets,
                                int threads) noexcept nogil
cdef int lay_out_training(TrainingState** out, const Network* net, const Settings* settings,
                          int dtype, Py_ssize_t n_samples, Py_ssize_t n_targets, int threads,
                          void* theta, void* memory) noexcept nogil
cdef PredictionPlan plan_prediction(const Network* net, bint f64, Py_ssize_t n_rows,
                                    int threads) noexcept nogil
cdef Py_ssize_t prediction_block(const Network* net, const PredictionPlan* plan, bint f64,
                                 char* base, Workspace* ws, Packed* pk, double** losses,
                                 char** scratch, Py_ssize_t* stride) noexcept nogil
cdef GradientPlan plan_gradient(const Network* net, bint f64, Py_ssize_t n_rows,
                                int threads) noexcept nogil
cdef Py_ssize_t gradient_block(const Network* net, const GradientPlan* plan, bint f64,
                               char* base, Workspace* ws, double** losses, char** scratch,
                               char** grads, Py_ssize_t* stride) noexcept nogil
cdef char* aligned(void* p) noexcept nogil
cdef void* packed_operands(const TrainingState* state, Py_ssize_t* count) noexcept nogil
