# archfit's Cython API: train and evaluate networks from other compiled code.
#
# Design
# ------
# * A ``Network`` describes a network's shape, its activations, head and loss,
#   and where each weight and bias lives in θ; ``network_init`` fills it. It
#   holds no parameters and no dtype: the same Network serves float32 and
#   float64 θ.
# * ``Network`` and ``TrainingState`` are reached through pointers, their
#   fields through the accessors below: both grow when the kernels gain a
#   kind of layer, so compiled code that declared one by value, or read a
#   field at its offset, would break silently. A Network takes
#   ``network_bytes()`` bytes of the caller's (malloc them: never
#   ``sizeof(Network)``); a TrainingState lives at the start of its training
#   block, where ``training_init`` puts it. ``api_version()`` is the version
#   the running library was built with: compare it with ``API_VERSION``.
# * Every buffer belongs to the caller. θ is ``net.n_parameters`` values of the
#   dtype. A fit's other state (gradient, optimizer moments, sample order,
#   scratch, packed weights) lives in ONE block of memory whose size
#   ``training_plan`` reports and which ``training_init`` lays out; a
#   prediction or a loss evaluation takes a scratch block whose size
#   ``prediction_plan`` or ``gradient_plan`` reports. Blocks need no alignment
#   beyond malloc's; the kernels align inside them.
# * The plan functions decide how a computation runs (threads, shards, chunks,
#   packed operands, bytes) and report it; the run functions follow the plan
#   they are given. Nothing is decided twice.
# * Every function is ``nogil`` and ``noexcept``, never allocates, and never
#   calls back into Python. Inputs are trusted: shapes, finiteness, label
#   ranges and sizes are the caller's to check (archfit's Python layer does
#   it before every call). A run function returns a ``Status``.
# * Results do not depend on the number of threads. Two calls may run at the
#   same time on different threads when they write to different buffers: two
#   ``train_epoch`` on different states, any number of ``predict`` or
#   ``loss_and_grad`` sharing θ but not scratch. A call may itself use up to
#   the plan's ``threads`` OpenMP threads.
# * Training and evaluation are bit-for-bit those of ``archfit.fit`` and
#   ``archfit.Model`` for the same inputs and settings.
#
# Documented in docs/embedding.md; examples/embedding/ is a package built
# against this file by the tests.

from libc.stdint cimport uint64_t

cdef extern from *:
    # Layers of a network, at most. A C macro (emitted before any type), so
    # that every module's structs can size their arrays with it. The API
    # version counts changes to the structs and signatures below: compiled
    # code built against another version must be rebuilt.
    """
    #define ARCHFIT_MAX_LAYERS 64
    #define ARCHFIT_MAX_CATEGORICAL 256
    #define ARCHFIT_MAX_MEMBERS 1024
    #define ARCHFIT_API_VERSION 5
    """
    enum: MAX_LAYERS "ARCHFIT_MAX_LAYERS"
    enum: MAX_CATEGORICAL "ARCHFIT_MAX_CATEGORICAL"
    enum: MAX_MEMBERS "ARCHFIT_MAX_MEMBERS"
    enum: API_VERSION "ARCHFIT_API_VERSION"

# ---- codes (archfit.kernels.ACTIVATIONS etc. name them for Python) -------------------
cdef enum DType:
    FLOAT32 = 0
    FLOAT64 = 1

cdef enum Precision:
    # The operands of a network's DENSE products of dense rows
    PRECISION_NATIVE = 0        # θ's dtype
    PRECISION_BFLOAT16 = 1      # float32 rounded to bfloat16, accumulated in float32 (bf16.h)

cdef enum LayerKind:
    # A row of the kernels' layer table each (archfit._kernels._layers).
    DENSE = 0                   # activation(x W + b)
    LAYER_NORM = 1              # (x - mean) / sqrt(var + eps) * gain + bias, per row
    ADD = 2                     # x + the input of layer `link`: a residual block's end
    PERIODIC = 3                # per feature x: activation([cos 2πcx, sin 2πcx] W + b),
                                # c its `frequencies` learned frequencies (width n -> n units)
    EMBEDDING = 4               # each categorical input's code -> its row of a learned
                                # table (units wide); numeric inputs pass through
    ONE_HOT = 5                 # each categorical input's code -> an indicator vector
                                # (cardinality + 1 wide); numeric inputs pass through
    PIECEWISE_LINEAR = 6        # per feature x (the first layer only): activation(x u +
                                # e(x) W + b), e(x) its `bins` piecewise-linear codes
                                # against fixed edges (width n -> n units)
    REPLICATE = 7               # an ensemble inside the network (BatchEnsemble): each
                                # row becomes `members` rows, one per member, each
                                # times its own scale r_m with `adapter`; every later
                                # layer runs on the members' rows
    MEMBER_DENSE = 8            # x W_m + b_m: each member's own weights and bias (an
                                # ensemble's last layer); the head's outputs are the
                                # mean of the members'
    ADAPTED_DENSE = 9           # activation((x ∘ r_m) W ∘ s_m + b_m): a DENSE layer on an
                                # ensemble's members' rows with shared W, each member's
                                # own scales r_m, s_m and bias b_m (BatchEnsemble's
                                # rank-1 adapters; TabM)
    N_KINDS = 10

cdef enum Activation:
    IDENTITY = 0
    RELU = 1
    LEAKY_RELU = 2
    TANH = 3
    SIGMOID = 4
    GELU = 5

cdef enum Head:
    SOFTMAX = 0
    SIGMOID_HEAD = 1
    LINEAR = 2
    EXPONENTIAL = 3             # exp(z): a mean for counts (log link)

cdef enum Loss:
    CROSS_ENTROPY = 0
    BINARY_CROSS_ENTROPY = 1
    SQUARED_ERROR = 2
    HUBER = 3
    POISSON = 4                 # half Poisson deviance, with the EXPONENTIAL head

cdef enum Optimizer:
    SGD = 0
    MOMENTUM = 1
    ADAM = 2
    ADAMW = 3

cpdef enum Status:
    OK = 0
    NONFINITE_LOSS = 1          # an epoch's loss became NaN or infinite
    NONFINITE_PARAMETERS = 2    # θ became NaN or infinite
    INVALID_ARGUMENT = 3        # a function refused its arguments
    INTERRUPTED = 4             # TrainingState.interrupt was raised: the epoch stopped
                                # between two mini-batches (the ones before it are done)

# ---- descriptions ----------------------------------------------------------------------
cdef struct InputSpec:
    # A row of X: `numeric` numeric columns, then `categorical` columns each holding
    # a category's code as a number: 0 .. cardinality[j] - 1, or -1 for a value
    # unseen in training or missing (its own row of an embedding's table).
    Py_ssize_t numeric
    int categorical                     # at most MAX_CATEGORICAL
    const Py_ssize_t* cardinality       # (categorical,) categories of each; NULL if none

cdef struct LayerSpec:
    # One layer as network_of_layers takes it.
    int kind                    # a LayerKind
    Py_ssize_t units            # DENSE, ADAPTED_DENSE, MEMBER_DENSE: outputs; PERIODIC,
                                # PIECEWISE_LINEAR: outputs per
                                # numeric input;
                                # EMBEDDING: outputs per categorical input; other kinds 0
    int activation              # DENSE, ADAPTED_DENSE, PERIODIC, PIECEWISE_LINEAR: an
                                # Activation; others IDENTITY
    int link                    # ADD: the layer whose input is added (a residual block's
                                # first layer, < this one); others -1
    double epsilon              # LAYER_NORM: added to the variance; others 0
    Py_ssize_t frequencies      # PERIODIC: frequencies per feature; others 0
    Py_ssize_t bins             # PIECEWISE_LINEAR: bins per feature; others 0
    Py_ssize_t members          # REPLICATE: the ensemble's members, k; others 0
    bint adapter                # REPLICATE: a learned scale per member and input column
    bint own_dropout            # DENSE before the last: its own dropout rate, `dropout`,
    double dropout              # instead of the fit's (Settings.dropout); others 0

cdef struct Network:
    # archfit's own fields (they change between versions): allocate
    # network_bytes() bytes and read through the network_* accessors.
    int n_layers                        # layer l maps sizes[l] -> sizes[l + 1]
    Py_ssize_t sizes[MAX_LAYERS + 1]
    int kind[MAX_LAYERS]                # a LayerKind per layer; the last is DENSE
    int activation[MAX_LAYERS]          # DENSE: its activation (the last layer's is
                                        # IDENTITY: the head acts); others IDENTITY
    Py_ssize_t w_start[MAX_LAYERS]      # DENSE: weight block (sizes[l], sizes[l+1]) row-major
                                        # in θ; LAYER_NORM: its gain (sizes[l],)
    Py_ssize_t b_start[MAX_LAYERS]      # DENSE: bias (sizes[l+1],); LAYER_NORM: bias (sizes[l],)
    Py_ssize_t p_stop[MAX_LAYERS]       # layer l's parameters are θ[w_start[l]:p_stop[l]]
    int link[MAX_LAYERS]                # ADD: the layer whose input it adds; else -1
    int skip_from[MAX_LAYERS]           # the ADD layer that adds layer l's input, or -1
    double epsilon[MAX_LAYERS]          # LAYER_NORM's epsilon; else 0
    double dropout[MAX_LAYERS]          # DENSE: its own dropout rate, or -1: the fit's
    int codes[MAX_LAYERS]               # categorical columns (codes) at the end of layer
                                        # l's input: the inputs' until an EMBEDDING or
                                        # ONE_HOT layer takes them, then 0
    int n_categorical                   # categorical inputs
    Py_ssize_t cardinality[MAX_CATEGORICAL]     # categories of each
    Py_ssize_t table_row[MAX_CATEGORICAL]       # EMBEDDING: the first row of input j's table
                                                # (each has cardinality + 1 rows)
    Py_ssize_t frequencies[MAX_LAYERS]  # PERIODIC: frequencies per feature (θ: the
                                        # frequencies (n, K) at w_start, the weights
                                        # (n, 2K, units) after them, the bias (n, units)
                                        # at b_start); else 0
    Py_ssize_t bins[MAX_LAYERS]         # PIECEWISE_LINEAR: bins per feature, T (θ: the
                                        # edges (n, T + 1) at w_start, fixed - fitted on
                                        # the data, never trained: their gradient is 0 -
                                        # then the linear weights (n, units), the
                                        # weights (n, T, units), the bias (n, units) at
                                        # b_start); else 0
    int members                         # members of the network's ensemble (1: none):
                                        # each row is `members` rows after its REPLICATE
    Py_ssize_t replicas[MAX_LAYERS]     # rows of layer l's input per row of X: 1 up to
                                        # the REPLICATE, members after it
    bint adapter[MAX_LAYERS]            # REPLICATE: scales r (members, width) at w_start
                                        # (MEMBER_DENSE: weights (members, n_in, n_out)
                                        # at w_start, bias (members, n_out) at b_start;
                                        # ADAPTED_DENSE: W (n_in, n_out) at w_start, then
                                        # r (members, n_in), s (members, n_out), and the
                                        # bias (members, n_out) at b_start)
    Py_ssize_t n_parameters
    int head
    int loss
    double huber_delta
    int precision                       # a Precision (float32 θ only for BFLOAT16)

cdef struct Settings:
    # The fitting algorithm's fixed settings (archfit.Hyperparameters' fields).
    int optimizer
    double momentum             # MOMENTUM
    bint nesterov               # MOMENTUM
    double beta1                # ADAM, ADAMW
    double beta2                # ADAM, ADAMW
    double epsilon              # ADAM, ADAMW
    double l2                   # coupled L2 (AdamW: decoupled weight decay)
    double dropout              # rate on every DENSE layer but the last that has no rate
                                # of its own, 0 <= dropout < 1
    bint shuffle                # a new order of the samples every epoch
    uint64_t seed               # of the shuffles and dropout masks
    Py_ssize_t batch_size

cdef struct Data:
    # Caller-owned, read-only. X and targets are row-major, of θ's dtype.
    const void* X               # (n_samples, sizes[0]); with indptr: the stored values
    Py_ssize_t n_samples
    const int* labels           # SOFTMAX: (n_samples,) class indices; else NULL
    const void* targets         # SIGMOID_HEAD, LINEAR: (n_samples, n_outputs); else NULL
    const void* weights         # (n_samples,) non-negative sample weights, or NULL
    # Sparse X (compressed sparse rows), or NULL: row r's values are X[indptr[r]] ..
    # X[indptr[r + 1] - 1], in columns indices[indptr[r]] ..; the first layer's
    # products and weight gradient are then sparse x dense. Only for a network
    # whose first layer is DENSE and whose inputs no ADD links to.
    const Py_ssize_t* indptr    # (n_samples + 1,), or NULL: X is dense
    const int* indices          # column of each stored value, 0 <= column < sizes[0]
    # Rows of a shared X, or NULL: sample i's features are X's row rows[i]
    # (dense X, training with shuffle only); labels, targets and weights are
    # still per sample (n_samples of each). Members of a population training
    # on folds or bootstrap samples of one X use it instead of copies.
    const Py_ssize_t* rows

# ---- plans -----------------------------------------------------------------------------
cdef struct TrainingPlan:
    Py_ssize_t rows             # rows of the largest mini-batch
    int shards                  # row shards of a step (1: the step is not shared)
    int threads                 # threads a step uses: min(budget, shards) or 1
    bint packed                 # weights kept packed for the shards' products
    Py_ssize_t bytes            # of the state's memory block

cdef struct PredictionPlan:
    Py_ssize_t rows             # rows per chunk
    Py_ssize_t chunks
    int threads                 # threads sharing the chunks (or one row's columns)
    bint packed                 # weights packed once, read by every chunk
    Py_ssize_t bytes            # of the scratch block

cdef struct GradientPlan:
    Py_ssize_t rows             # rows per chunk
    Py_ssize_t chunks
    int threads                 # threads sharing the chunks
    Py_ssize_t bytes            # of the scratch block

cdef struct TrainingState:
    # Filled by training_init, at the start of the training block; read and
    # set through the state_* accessors (θ, the moments, the step and the
    # interrupt flag may change between epochs, to continue a fit; nothing
    # else). The fields are archfit's own.
    Network net
    Settings settings
    TrainingPlan plan
    int dtype
    Py_ssize_t n_samples
    Py_ssize_t n_targets
    void* theta                 # caller-owned θ, updated in place
    void* grad                  # (n_parameters,), in the block
    void* m                     # momentum / Adam's first moment, in the block
    void* v                     # Adam's second moment, in the block
    long long step              # updates made so far (Adam's t)
    const int* interrupt        # NULL (training_init's), or a flag read before every
                                # mini-batch: nonzero stops the epoch with INTERRUPTED
    void* internal              # the kernel's bookkeeping, in the block

# ---- functions -------------------------------------------------------------------------
cdef int network_init(Network* net, int n_layers, const Py_ssize_t* sizes,
                      const int* activations, int head, int loss,
                      double huber_delta) noexcept nogil
    # A network of DENSE layers. sizes: n_layers + 1 widths; activations: n_layers
    # codes, the last IDENTITY.

cdef int network_init_layers(Network* net, const InputSpec* inputs, int n_layers,
                             const LayerSpec* layers, int head, int loss,
                             double huber_delta) noexcept nogil
    # Any layers: n_layers specifications (zero each first: memset), first to last;
    # the last is DENSE with IDENTITY. INVALID_ARGUMENT for a kind, width,
    # activation, link or field the kernels do not run (an ADD whose input width
    # differs from its link's input width, a field another kind uses set).

cdef TrainingPlan training_plan(const Network* net, const Settings* settings, int dtype,
                                Py_ssize_t n_samples, Py_ssize_t n_targets,
                                int threads) noexcept nogil
    # threads: the budget (at least 1); n_targets: columns of Data.targets (0 for labels)

cdef int training_init(TrainingState** state, const Network* net, const Settings* settings,
                       int dtype, Py_ssize_t n_samples, Py_ssize_t n_targets, int threads,
                       void* theta, void* memory) noexcept nogil
    # memory: training_plan(...).bytes bytes; *state: the state, in it (valid
    # while memory is); it keeps its own copy of net and settings. Moments
    # start at zero, step at 0.

cdef int api_version() noexcept nogil
    # API_VERSION of the library running (compiled code must equal it)

cdef Py_ssize_t network_bytes() noexcept nogil
    # bytes a Network takes: allocate them for network_init(_layers)

cdef Py_ssize_t network_n_parameters(const Network* net) noexcept nogil
    # length of θ

cdef Py_ssize_t network_n_inputs(const Network* net) noexcept nogil
    # columns of a row of X (numeric, then categorical codes)

cdef Py_ssize_t network_n_outputs(const Network* net) noexcept nogil
    # columns of predict's output (and of Data.targets)

cdef int network_members(const Network* net) noexcept nogil
    # members of the ensemble inside the network (1: none)

cdef int network_set_precision(Network* net, int precision) noexcept nogil
    # a Precision for the DENSE products (network_init* set PRECISION_NATIVE);
    # PRECISION_BFLOAT16 applies to float32 θ only. INVALID_ARGUMENT otherwise.

cdef long long state_step(const TrainingState* state) noexcept nogil
    # updates made so far (Adam's t)

cdef void state_set_step(TrainingState* state, long long step) noexcept nogil

cdef void* state_theta(const TrainingState* state) noexcept nogil
    # the caller's θ the state updates

cdef void state_set_theta(TrainingState* state, void* theta) noexcept nogil
    # another θ (of the network's n_parameters, the state's dtype) for the next epochs

cdef void* state_gradient(const TrainingState* state) noexcept nogil
    # the last mini-batch's gradient (n_parameters), in the block

cdef void* state_moment(const TrainingState* state, int which) noexcept nogil
    # which 1: momentum / Adam's first moment; 2: Adam's second moment; else NULL
    # (n_parameters of the state's dtype, in the block: write them to continue a fit)

cdef void state_set_interrupt(TrainingState* state, const int* flag) noexcept nogil
    # NULL, or a flag read before every mini-batch: nonzero stops the epoch
    # with INTERRUPTED

cdef int train_epoch(TrainingState* state, const Data* data, double learning_rate,
                     uint64_t epoch, int threads, double* loss_sum,
                     double* weight_sum) noexcept nogil
    # One epoch over data (state.n_samples rows). The epoch's order and masks
    # depend on (seed, epoch) alone. loss_sum / weight_sum is its mean loss.

cdef int train_epoch_part(TrainingState* state, const Data* data, double learning_rate,
                          uint64_t epoch, Py_ssize_t first, int threads, double* loss_sum,
                          double* weight_sum) noexcept nogil
    # Part of an epoch, for data that is not in memory at once: data holds the
    # epoch's rows first .. first + data.n_samples - 1 IN THE EPOCH'S ORDER
    # (epoch_order's, or the data's own without shuffle), gathered by the caller.
    # Parts run in sequence from first = 0; each but the last is a multiple of
    # batch_size rows. The sums are this part's; all parts together are
    # bit for bit train_epoch over the whole data.

cdef int train_population(TrainingState** states, const Data* data,
                          const double* learning_rates, const uint64_t* epochs,
                          int n_members, int threads, double* loss_sums, double* weight_sums,
                          int* statuses) noexcept nogil
    # One epoch of each of n_members fits (states[i] on data[i], at
    # learning_rates[i], its epoch epochs[i]) in one call: the members are
    # shared by up to `threads` threads, each member's epoch on one thread, so
    # member i ends bit for bit as train_epoch(states[i], ...) would, whatever
    # `threads`. statuses[i] is member i's train_epoch status; returns OK.

cdef void epoch_order(const Settings* settings, uint64_t epoch, Py_ssize_t n_samples,
                      Py_ssize_t* order) noexcept nogil
    # The sample order train_epoch uses in `epoch` (0, 1, ... without shuffle).

cdef PredictionPlan prediction_plan(const Network* net, int dtype, Py_ssize_t n_rows,
                                    int threads) noexcept nogil

cdef int predict(const Network* net, const PredictionPlan* plan, int dtype,
                 const void* theta, const void* X, Py_ssize_t n_rows, void* out,
                 void* memory) noexcept nogil
    # out: (n_rows, n_outputs) probabilities or values; plan for the same n_rows

cdef int predict_data(const Network* net, const PredictionPlan* plan, int dtype,
                      const void* theta, const Data* data, void* out,
                      void* memory) noexcept nogil
    # predict for a Data (dense or sparse X; labels, targets, weights unused)

cdef int evaluate(const Network* net, const PredictionPlan* plan, int dtype,
                  const void* theta, const Data* data, void* out, void* memory,
                  double* loss) noexcept nogil
    # predict_data that also puts data's weighted mean loss into `loss` (no L2), out
    # (or NULL: no outputs) and memory as for predict_data; the loss, like the outputs,
    # does not depend on the plan's thread count

cdef GradientPlan gradient_plan(const Network* net, int dtype, Py_ssize_t n_rows,
                                int threads) noexcept nogil

cdef int loss_and_grad(const Network* net, const GradientPlan* plan, int dtype,
                       const void* theta, const Data* data, double l2, void* grad,
                       void* memory, double* loss) noexcept nogil
    # loss: weighted mean loss + l2/2 ||W||^2; grad (or NULL: no gradient) in θ's layout;
    # plan for data.n_samples rows; neither depends on the plan's thread count

cdef const char* isa() noexcept nogil
    # the instruction set the kernels use: "avx512", "avx2" or "portable"
