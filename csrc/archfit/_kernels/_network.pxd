from cython cimport floating
from libc.stdint cimport uint64_t

from archfit._kernels._optimizers cimport OptimizerConfig

cdef enum:
    MAX_LAYERS = 64

cdef struct Network:
    # Shape of the network; dtype-free. Layer l maps sizes[l] -> sizes[l + 1].
    int n_layers
    Py_ssize_t sizes[MAX_LAYERS + 1]
    int activation[MAX_LAYERS]     # the last layer's is IDENTITY: the head acts
    Py_ssize_t w_start[MAX_LAYERS] # weight block (sizes[l], sizes[l+1]) row-major in theta
    Py_ssize_t b_start[MAX_LAYERS] # bias block (sizes[l+1],) in theta
    Py_ssize_t n_parameters
    int head
    int loss
    double huber_delta

cdef struct Workspace:
    # Offsets into one buffer of the model's dtype, planned for `rows` rows.
    Py_ssize_t rows
    Py_ssize_t z[MAX_LAYERS]        # pre-activation of each layer (logits for the last)
    Py_ssize_t a[MAX_LAYERS]        # activation of each hidden layer
    Py_ssize_t mask[MAX_LAYERS]     # dropout mask of each hidden layer (if dropout)
    Py_ssize_t dropped[MAX_LAYERS]  # activation * mask (if dropout)
    Py_ssize_t delta[MAX_LAYERS]    # backpropagated error at each layer's pre-activation
    Py_ssize_t x                    # gathered mini-batch inputs (if gathering)
    Py_ssize_t t                    # gathered mini-batch targets (if gathering)
    Py_ssize_t w                    # gathered mini-batch sample weights (if gathering)
    Py_ssize_t size
    bint dropout

cdef Py_ssize_t plan(const Network* net, Workspace* ws, Py_ssize_t rows, bint dropout,
                     bint gather, Py_ssize_t n_targets) noexcept nogil

cdef void forward(const Network* net, const Workspace* ws, const floating* theta,
                  const floating* X, Py_ssize_t lo, Py_ssize_t hi, floating* buf,
                  const void* pk=*, floating* work=*) noexcept nogil

cdef void backward(const Network* net, const Workspace* ws, const floating* theta,
                   const floating* X, Py_ssize_t n_rows, floating* buf,
                   floating* grad, bint accumulate) noexcept nogil

cdef int run_epoch(const Network* net, const Workspace* ws, OptimizerConfig* config,
                   floating* theta, floating* grad, floating* m, floating* v,
                   const floating* X, Py_ssize_t n_samples,
                   const int* labels, const floating* targets, const floating* weights,
                   Py_ssize_t* index, int* batch_labels, floating* buf, double* row_loss,
                   const Py_ssize_t* blocks, Py_ssize_t n_blocks,
                   Py_ssize_t batch_size, int n_threads,
                   bint shuffle, double l2, bint decoupled,
                   double dropout, uint64_t seed, uint64_t epoch,
                   double* loss_sum, double* weight_sum, void* pk=*) noexcept nogil

cdef int shards_for(const Network* net, Py_ssize_t rows) noexcept nogil
