"""A small, fast, seedable generator usable without the GIL.

Design: SplitMix64 (Steele, Lea & Flood 2014) passes BigCrush, needs eight
bytes of state, and lets us derive an independent stream for every
(seed, epoch, purpose) by hashing the three together. Because each epoch's
randomness depends only on its number, continuing a fit reproduces exactly the
epochs a longer fit would have run.
"""
import numpy as np

from libc.stdint cimport uint64_t

cdef extern from "splitmix.h" nogil:
    const uint64_t GOLDEN "ARCHFIT_GOLDEN"
    uint64_t _mix "archfit_splitmix"(uint64_t z)

cdef extern from "dropout.h" nogil:
    void archfit_dropout_f32(float* mask, Py_ssize_t n, double rate, uint64_t* state)
    void archfit_dropout_f64(double* mask, Py_ssize_t n, double rate, uint64_t* state)

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs


cdef uint64_t stream_seed(uint64_t seed, uint64_t epoch, uint64_t stream) noexcept nogil:
    """State of the stream for one purpose (shuffle, dropout, ...) in one epoch."""
    return _mix(_mix(_mix(seed + GOLDEN) ^ (epoch + <uint64_t> 1)) ^ (stream + <uint64_t> 7))


cdef uint64_t next_u64(uint64_t* state) noexcept nogil:
    state[0] += GOLDEN
    return _mix(state[0])


cdef double next_double(uint64_t* state) noexcept nogil:
    """Uniform on [0, 1) with 53 random bits."""
    return (next_u64(state) >> 11) * (1.0 / 9007199254740992.0)


cdef Py_ssize_t bounded(uint64_t* state, Py_ssize_t n) noexcept nogil:
    """Uniform integer in [0, n) without modulo bias (rejection sampling)."""
    cdef uint64_t un = <uint64_t> n
    cdef uint64_t threshold = (<uint64_t> 0 - un) % un
    cdef uint64_t r = next_u64(state)
    while r < threshold:
        r = next_u64(state)
    return <Py_ssize_t> (r % un)


cdef void shuffle(Py_ssize_t* index, Py_ssize_t n, uint64_t* state) noexcept nogil:
    """Fisher-Yates shuffle in place."""
    cdef Py_ssize_t i, j, tmp
    for i in range(n - 1, 0, -1):
        j = bounded(state, i + 1)
        tmp = index[i]
        index[i] = index[j]
        index[j] = tmp


cdef void dropout_mask(floating* mask, Py_ssize_t size, double rate,
                       uint64_t* state) noexcept nogil:
    """Inverted dropout: 0 with probability ``rate``, else 1 / (1 - rate); one
    draw of the stream per element, as ``next_double(state) < rate`` (dropout.h)."""
    if floating is float:
        archfit_dropout_f32(mask, size, rate, state)
    else:
        archfit_dropout_f64(mask, size, rate, state)


# ---- test hooks -------------------------------------------------------------

def permutation(Py_ssize_t n, uint64_t seed, uint64_t epoch=0, uint64_t stream=0):
    """The permutation of ``range(n)`` the kernels would use."""
    index = np.arange(n, dtype=np.intp)
    cdef Py_ssize_t[::1] view = index
    cdef uint64_t state = stream_seed(seed, epoch, stream)
    if n > 1:
        shuffle(&view[0], n, &state)
    return index


def uniform(Py_ssize_t n, uint64_t seed, uint64_t epoch=0, uint64_t stream=0):
    """``n`` draws from U[0, 1) of the given stream."""
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] view = out
    cdef uint64_t state = stream_seed(seed, epoch, stream)
    cdef Py_ssize_t i
    for i in range(n):
        view[i] = next_double(&state)
    return out


def mask(floating[::1] out, double rate, uint64_t seed, uint64_t epoch=0, uint64_t stream=1,
         Py_ssize_t split=0):
    """Fill ``out`` with an inverted-dropout mask: ``out[:split]`` then the rest,
    continuing the stream."""
    if not 0 <= split <= out.shape[0]:
        raise ValueError(f"split must be in [0, {out.shape[0]}], got {split}")
    cdef uint64_t state = stream_seed(seed, epoch, stream)
    if split:
        dropout_mask(&out[0], split, rate, &state)
    if out.shape[0] > split:
        dropout_mask(&out[split], out.shape[0] - split, rate, &state)
