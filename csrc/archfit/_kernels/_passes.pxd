# Forward and backward passes over rows of a mini-batch or a chunk.
from cython cimport floating

from archfit.kernels cimport Network, Data
from archfit._kernels._plan cimport Workspace, Packed
from archfit._kernels._layers cimport Pass


cdef inline Pass pass_of(const Network* net, const Workspace* ws, const void* theta,
                         const void* X, void* buf, const Packed* pk, void* work,
                         const Data* sparse, const Py_ssize_t* order,
                         Py_ssize_t start) noexcept nogil:
    """The description of one pass, for the layer table's functions (inline:
    a one-row prediction's path stays in the caller's module)."""
    cdef Pass p
    p.net = net
    p.ws = ws
    p.theta = theta
    p.X = X
    p.buf = buf
    p.pk = pk
    p.work = work
    p.sparse = sparse
    p.order = order
    p.start = start
    return p

cdef void forward(const Network* net, const Workspace* ws, const floating* theta,
                  const floating* X, Py_ssize_t lo, Py_ssize_t hi, floating* buf,
                  const Packed* pk=*, floating* work=*, const Data* sparse=*,
                  const Py_ssize_t* order=*, Py_ssize_t start=*) noexcept nogil
cdef void deltas(const Network* net, const Workspace* ws, const floating* theta,
                 const floating* X, Py_ssize_t lo, Py_ssize_t hi, floating* buf,
                 const Packed* pk=*, floating* work=*) noexcept nogil
cdef void backward(const Network* net, const Workspace* ws, const floating* theta,
                   const floating* X, Py_ssize_t n_rows, floating* buf,
                   floating* grad, bint accumulate, const Data* sparse=*,
                   Py_ssize_t start=*) noexcept nogil
