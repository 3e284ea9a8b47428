from cython cimport floating

# The codes (Activation, Head, Loss) are declared once, in archfit/kernels.pxd.
from archfit.kernels cimport (IDENTITY, RELU, LEAKY_RELU, TANH, SIGMOID, GELU,
                              SOFTMAX, SIGMOID_HEAD, LINEAR, EXPONENTIAL,
                              CROSS_ENTROPY, BINARY_CROSS_ENTROPY, SQUARED_ERROR, HUBER, POISSON)

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
cdef double members_loss_grad(const floating* Z, Py_ssize_t n_rows, Py_ssize_t members,
                              Py_ssize_t n_cols, int loss, const int* labels,
                              const floating* targets, const floating* weights, floating* D,
                              double grad_scale, double huber_delta,
                              double* row_loss=*) noexcept nogil
cdef void members_output(const floating* Z, floating* P, Py_ssize_t n_rows,
                         Py_ssize_t members, Py_ssize_t n_cols, int head,
                         floating* each) noexcept nogil
cdef bint all_finite(const floating* x, Py_ssize_t size) noexcept nogil
