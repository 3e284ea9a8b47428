from cython cimport floating
from libc.stdint cimport uint64_t

cdef uint64_t stream_seed(uint64_t seed, uint64_t epoch, uint64_t stream) noexcept nogil
cdef uint64_t next_u64(uint64_t* state) noexcept nogil
cdef double next_double(uint64_t* state) noexcept nogil
cdef Py_ssize_t bounded(uint64_t* state, Py_ssize_t n) noexcept nogil
cdef void shuffle(Py_ssize_t* index, Py_ssize_t n, uint64_t* state) noexcept nogil
cdef void dropout_mask(floating* mask, Py_ssize_t size, double rate,
                       uint64_t* state) noexcept nogil
