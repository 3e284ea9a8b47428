from cython cimport floating

# Codes shared with the Python layer (archfit.architecture / archfit.model).
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

cdef enum Loss:
    CROSS_ENTROPY = 0
    BINARY_CROSS_ENTROPY = 1
    SQUARED_ERROR = 2
    HUBER = 3

cdef void bias_activation(floating* Z, const floating* bias, floating* A,
                          Py_ssize_t n_rows, Py_ssize_t n_cols, int activation) noexcept nogil
cdef void activation_backward(floating* D, const floating* Z, const floating* A,
                              Py_ssize_t size, int activation) noexcept nogil
cdef void add_bias(floating* Z, const floating* bias,
                   Py_ssize_t n_rows, Py_ssize_t n_cols) noexcept nogil
cdef void column_sums(const floating* D, floating* out, Py_ssize_t n_rows,
                      Py_ssize_t n_cols, bint accumulate) noexcept nogil
cdef void multiply(floating* x, const floating* y, Py_ssize_t size) noexcept nogil
cdef void head_output(const floating* Z, floating* P, Py_ssize_t n_rows,
                      Py_ssize_t n_cols, int head) noexcept nogil
cdef double head_loss_grad(const floating* Z, Py_ssize_t n_rows, Py_ssize_t n_cols,
                           int loss, const int* labels, const floating* targets,
                           const floating* weights, floating* D, double grad_scale,
                           double huber_delta, double* row_loss=*) noexcept nogil
cdef bint all_finite(const floating* x, Py_ssize_t size) noexcept nogil
