"""Rows of a file read with ``pread``, without mapping the file.

A shuffled epoch over a memory-mapped file touches its pages in random
order: each first touch is a page fault (several microseconds), and every
page touched counts in the process's resident memory until it is unmapped.
Reading the rows with ``pread`` instead costs one system call per row, copies
from the operating system's page cache, and adds nothing to resident memory.
"""
from libc.errno cimport errno, EINTR
from libc.string cimport strerror

cdef extern from "<unistd.h>" nogil:
    ssize_t pread(int fd, void* buf, size_t count, long long offset)


def read_rows(int fd, long long offset, Py_ssize_t row_bytes, Py_ssize_t stride,
              const Py_ssize_t[::1] rows, const Py_ssize_t[::1] into, unsigned char[:, ::1] out):
    """out[into[i]] = the `row_bytes` bytes at offset + rows[i] * stride, for every i.

    Raises OSError when a read fails or the file ends early.
    """
    cdef Py_ssize_t i, got, n = rows.shape[0]
    cdef ssize_t r = 0
    cdef int failed = 0
    if into.shape[0] != n or out.shape[1] != row_bytes:
        raise ValueError("rows, into and out do not agree")
    for i in range(n):
        if not 0 <= into[i] < out.shape[0]:
            raise IndexError(f"into[{i}] = {into[i]} is outside out")
    with nogil:
        for i in range(n):
            got = 0
            while got < row_bytes:
                r = pread(fd, &out[into[i], 0] + got, row_bytes - got,
                          offset + rows[i] * stride + got)
                if r < 0 and errno == EINTR:
                    continue
                if r <= 0:
                    failed = 1
                    break
                got += r
            if failed:
                break
    if failed:
        if r < 0:
            raise OSError(errno, strerror(errno).decode())
        raise OSError(f"the file ended before row {rows[i]}")
