"""Class labels: the sorted classes and codes of integer labels, by counting."""
import numpy as np
from libc.stdint cimport int64_t, uint64_t


def integer_codes(const int64_t[::1] labels, Py_ssize_t max_span):
    """(classes, codes) of integer labels, or None when they span more than
    `max_span` consecutive values (a counting table would then be too large).

    classes: the distinct labels in increasing order (int64); codes: each
    label's index among them (C int). The same result as ``np.unique`` then
    ``np.searchsorted``, in three passes without sorting: a small fit's
    Python time is a visible share of many parallel fits.
    """
    cdef Py_ssize_t n = labels.shape[0], i, k = 0
    cdef int64_t lo, hi, v
    if n == 0:
        return None
    lo = hi = labels[0]
    with nogil:
        for i in range(1, n):
            v = labels[i]
            if v < lo:
                lo = v
            elif v > hi:
                hi = v
    if <uint64_t> hi - <uint64_t> lo >= <uint64_t> max_span:    # no overflow at the extremes
        return None
    table = np.zeros(<Py_ssize_t> (hi - lo) + 1, dtype=np.intc)
    cdef int[::1] t = table
    with nogil:
        for i in range(n):
            t[labels[i] - lo] = 1
        for i in range(t.shape[0]):        # present values -> their rank
            if t[i]:
                t[i] = <int> k
                k += 1
            else:
                t[i] = -1
    classes = np.empty(k, dtype=np.int64)
    codes = np.empty(n, dtype=np.intc)
    cdef int64_t[::1] c = classes
    cdef int[::1] out = codes
    with nogil:
        for i in range(t.shape[0]):
            if t[i] >= 0:
                c[t[i]] = lo + i
        for i in range(n):
            out[i] = t[labels[i] - lo]
    return classes, codes
