# Forward and backward passes over rows of a mini-batch or a chunk.
from cython cimport floating

from archfit.kernels cimport Network, Data
from archfit._kernels._plan cimport Workspace, Packed

cdef void forward(const Network* net, const Workspace* ws, const floating* theta,
                  const floating* X, Py_ssize_t lo, Py_ssize_t hi, floating* buf,
                  const Packed* pk=*, floating* work=*, const Data* sparse=*,
                  const Py_ssize_t* order=*, Py_ssize_t start=*) noexcept nogil
cdef void deltas(const Network* net, const Workspace* ws, const floating* theta,
                 Py_ssize_t lo, Py_ssize_t hi, floating* buf,
                 const Packed* pk=*, floating* work=*) noexcept nogil
cdef const floating* layer_input(const Network* net, const Workspace* ws, const floating* X,
                                 const floating* buf, int l) noexcept nogil
cdef void layer_grad(const Network* net, const Workspace* ws, const floating* X,
                     Py_ssize_t rows, const floating* buf, floating* grad,
                     int l, Py_ssize_t r0, Py_ssize_t r1, bint accumulate) noexcept nogil
cdef void backward(const Network* net, const Workspace* ws, const floating* theta,
                   const floating* X, Py_ssize_t n_rows, floating* buf,
                   floating* grad, bint accumulate, const Data* sparse=*,
                   Py_ssize_t start=*) noexcept nogil
cdef void sparse_weight_grad(const Network* net, const Data* sparse, const Py_ssize_t* order,
                             Py_ssize_t start, Py_ssize_t rows, const floating* D,
                             floating* grad, bint accumulate) noexcept nogil
cdef void repack(const Network* net, const Packed* pk, const floating* theta, int l,
                 Py_ssize_t r0, Py_ssize_t r1) noexcept nogil
