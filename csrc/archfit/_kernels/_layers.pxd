# The layer table: one row of C functions per kind of layer (kernels.pxd's
# LayerKind), each over its own slice of θ and its own arrays of the workspace.
# The passes (_passes), the epoch (_training) and the evaluations
# (_prediction) loop over a network's layers through this table and know
# nothing of what a kind does.
from libc.stdint cimport uint64_t
from cython cimport floating

from archfit.kernels cimport Network, Settings, Data, PRECISION_BFLOAT16
from archfit._kernels._plan cimport Workspace, Packed
from archfit._kernels._elementwise cimport bias_activation, add_bias
from archfit._kernels._blas cimport bf16_gemm

cdef extern from "vecmat.h" nogil:
    void archfit_vecmat_f32(Py_ssize_t k, Py_ssize_t n, const float* x, Py_ssize_t incx,
                            const float* W, Py_ssize_t ldw, float* y)
    void archfit_vecmat_f64(Py_ssize_t k, Py_ssize_t n, const double* x, Py_ssize_t incx,
                            const double* W, Py_ssize_t ldw, double* y)

cdef struct Pass:
    # One pass (forward or backward) over rows of a mini-batch or a chunk.
    const Network* net
    const Workspace* ws
    const void* theta           # θ, of the pass's dtype
    const void* X               # the batch's layer-0 inputs (its row 0), unless sparse
    void* buf                   # the workspace's buffer
    const Packed* pk            # DENSE: packed weights, or NULL (BLAS and smallgemm)
    void* work                  # DENSE: the running thread's packed-GEMM scratch (with pk)
    const Data* sparse          # sparse X: the batch's row i is data row order[start + i]
    const Py_ssize_t* order     # (or start + i when NULL)
    Py_ssize_t start

cdef struct Update:
    # What a gradient block's update needs (_training's blocks phase).
    const Settings* settings
    double learning_rate
    long long step
    double penalty              # coupled L2 of the parameters that decay
    double decay                # decoupled weight decay (AdamW) of those
    void* theta                 # θ, updated in place
    void* grad
    void* m
    void* v
    Py_ssize_t rows             # rows of the mini-batch
    bint sparse_first           # sparse X: layer 0's weight gradient is already in grad

# Every function takes the pass's buffer `buf` (p.buf, typed): the type picks
# the float32 or float64 row of the table.
# rows [lo, hi) of layer l: forward (its output from its input), backward (the
# error at its input from the error at its output - layer 0 computes none -
# and whatever its gradient needs)
ctypedef void (*rows_f32)(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                          float* buf) noexcept nogil
ctypedef void (*rows_f64)(const Pass* p, int l, Py_ssize_t lo, Py_ssize_t hi,
                          double* buf) noexcept nogil
# the gradient of layer l's parameters over rows [0, rows) of a pass whose
# backward has run, into `grad` in θ's layout (+= with `accumulate`)
ctypedef void (*grad_f32)(const Pass* p, int l, Py_ssize_t rows, float* grad,
                          bint accumulate, float* buf) noexcept nogil
ctypedef void (*grad_f64)(const Pass* p, int l, Py_ssize_t rows, double* grad,
                          bint accumulate, double* buf) noexcept nogil
# a block (r0, r1) of layer l's parameters, one of those its `blocks` made:
# its gradient, then at once its update (while it is in cache)
ctypedef void (*block_f32)(const Pass* p, const Update* u, int l, Py_ssize_t r0,
                           Py_ssize_t r1, float* buf) noexcept nogil
ctypedef void (*block_f64)(const Pass* p, const Update* u, int l, Py_ssize_t r0,
                           Py_ssize_t r1, double* buf) noexcept nogil
# one sample's forward pass (the workspace planned for one row), part `part`
# of `parts` of layer l: a large DENSE layer shares its columns among threads;
# other layers run whole in part 0
ctypedef void (*part_f32)(const Pass* p, int l, int part, int parts, float* buf) noexcept nogil
ctypedef void (*part_f64)(const Pass* p, int l, int part, int parts, double* buf) noexcept nogil
# planning: layer l's arrays in a workspace for `rows` rows from element `off`
# (returns the next free element); its update blocks as (l, r0, r1) triples
# into `blocks` (or only counted when NULL); the part of its parameters that
# L2 decays, [first, stop) of θ (empty: first == stop)
ctypedef Py_ssize_t (*scratch_fn)(const Network* net, int l, Workspace* ws, Py_ssize_t rows,
                                  Py_ssize_t off) noexcept nogil
ctypedef Py_ssize_t (*blocks_fn)(const Network* net, int l, Py_ssize_t* blocks) noexcept nogil
ctypedef void (*decays_fn)(const Network* net, int l, Py_ssize_t* first,
                           Py_ssize_t* stop) noexcept nogil

cdef struct Kind:
    rows_f32 forward_f32
    rows_f64 forward_f64
    rows_f32 backward_f32
    rows_f64 backward_f64
    grad_f32 grad_f32
    grad_f64 grad_f64
    block_f32 block_f32
    block_f64 block_f64
    part_f32 part_f32
    part_f64 part_f64
    scratch_fn scratch
    blocks_fn blocks
    decays_fn decays

cdef inline bint has_dropout(const Network* net, const Workspace* ws, int l) noexcept nogil:
    """Whether layer l's output is masked by dropout in this computation (the
    workspace holds each layer's rate, _plan.workspace)."""
    return ws.rate[l] > 0.0


cdef const Kind* kinds() noexcept nogil
cdef void dense_sparse_grad(const Network* net, const Data* sparse, const Py_ssize_t* order,
                            Py_ssize_t start, Py_ssize_t rows, const void* D, void* grad,
                            bint f64) noexcept nogil
cdef void dense_repack_all(const Network* net, const Packed* pk, const void* theta,
                           bint f64) noexcept nogil


cdef inline void dense_part(const Pass* p, int l, int part, int parts,
                            floating* buf) noexcept nogil:
    """DENSE's row of the table for one sample: the columns of part `part` of
    `parts` of layer l, through the vector-matrix kernel. Inline here so that
    the one-row prediction (_prediction), a latency path, runs it without a
    call into this module, whose code a prediction after a pause finds cold."""
    cdef const Network* net = p.net
    cdef const Workspace* ws = p.ws
    cdef const floating* theta = <const floating*> p.theta
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef Py_ssize_t per = ((n_out + parts - 1) // parts + 7) // 8 * 8
    cdef Py_ssize_t c0 = min(n_out, part * per), c1 = min(n_out, c0 + per)
    cdef floating* Z = buf + ws.z[l]
    cdef const floating* x = <const floating*> p.X if l == 0 else buf + ws.out[l - 1]
    if c0 >= c1:
        return
    if floating is float and net.precision == PRECISION_BFLOAT16:
        bf16_gemm(False, False, 1, c1 - c0, n_in, x, n_in, theta + net.w_start[l] + c0, n_out,
                  Z + c0, n_out, False)
    elif floating is float:
        archfit_vecmat_f32(n_in, c1 - c0, x, 1, theta + net.w_start[l] + c0, n_out, Z + c0)
    else:
        archfit_vecmat_f64(n_in, c1 - c0, x, 1, theta + net.w_start[l] + c0, n_out, Z + c0)
    if l < net.n_layers - 1:
        bias_activation(Z + c0, theta + net.b_start[l] + c0, buf + ws.a[l] + c0, 1, c1 - c0,
                        net.activation[l])
    else:
        add_bias(Z + c0, theta + net.b_start[l] + c0, 1, c1 - c0)
