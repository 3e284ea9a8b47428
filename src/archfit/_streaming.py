"""Data larger than memory: a file-backed design matrix read a part at a time.

A ``numpy.memmap`` (or any array whose memory is a mapped file) is never
copied whole: its checks and fingerprint stream over it in parts, a fit
gathers each part of an epoch's rows into memory in the model's dtype, and a
prediction converts one part at a time.

Rows are read from the file with ``pread`` (``_kernels._files``) when X is a
``numpy.memmap`` whose file can be opened again and holds the same bytes: no
page faults, and nothing added to the process's resident memory (the
operating system's page cache holds the file). Otherwise they are read
through the mapping, and after each part the pages are handed back
(``madvise(MADV_DONTNEED)`` on Linux, for shared mappings - a read-only or
read-write ``numpy.memmap`` - where that loses nothing).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import sys

import numpy as np

from archfit._kernels._files import read_rows
from archfit._sparse import SparseRows, is_sparse
from archfit._validation import MAX_DIMENSION, as_features, check_codes, check_finite

# Bytes of rows gathered per part (in the model's dtype): large enough that a
# kernel call's fixed cost vanishes, small enough to stay out of the way.
PART_BYTES = 32 * 2**20


def file_backed(X) -> bool:
    """True when ``X`` is an array whose memory is a mapped file."""
    base = X
    for _ in range(64):
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
        if base is None:
            return False
        if isinstance(base, memoryview):
            base = base.obj
    return False


# numpy.memmap modes that map the file shared: the mapping is the file
_SHARED_MODES = ("r", "r+", "w+", "readonly", "readwrite", "write")


def _root_memmap(X):
    """The numpy.memmap that maps X's file (the last one along X's bases)."""
    base, root = X, None
    while base is not None:
        if isinstance(base, np.memmap):
            root = base
        base = getattr(base, "base", None)
    return root


class _File:
    """X's file opened again for ``pread``: the byte offset of X's first row,
    the stride between rows. None (from ``of``) when X's rows cannot be read
    that way or the file no longer holds X's bytes."""

    def __init__(self, fd, offset, stride, row_bytes):
        self.fd, self.offset, self.stride, self.row_bytes = fd, offset, stride, row_bytes

    @classmethod
    def of(cls, X):
        root = _root_memmap(X)
        # not copy-on-write ("c"): its pages may differ from the file
        if (root is None or getattr(root, "filename", None) is None
                or getattr(root, "mode", None) not in _SHARED_MODES or X.ndim != 2
                or X.shape[0] == 0 or X.strides[0] <= 0
                or (X.shape[1] > 1 and X.strides[1] != X.dtype.itemsize)):
            return None
        offset = X.ctypes.data - root.ctypes.data + int(getattr(root, "offset", 0))
        row_bytes = X.shape[1] * X.dtype.itemsize
        try:
            fd = os.open(root.filename, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        self = cls(fd, offset, X.strides[0], row_bytes)
        try:
            # the same file still? its first and last rows read back as mapped
            probe = np.empty((2, row_bytes), dtype=np.uint8)
            last = X.shape[0] - 1
            read_rows(fd, offset, row_bytes, self.stride, np.array([0, last], dtype=np.intp),
                      np.arange(2, dtype=np.intp), probe)
            mapped = np.stack([np.frombuffer(np.ascontiguousarray(X[i]).tobytes(), np.uint8)
                               for i in (0, last)])
            if not np.array_equal(probe, mapped):
                raise OSError("the file differs from the mapping")
        except (OSError, ValueError):
            self.close()
            return None
        return self

    def read(self, rows, into, out) -> None:
        """out[into[i]] = row rows[i] (rows ascending)."""
        k = len(rows)
        if k > 1 and rows[-1] - rows[0] == k - 1:
            # consecutive rows: one read of the span, not one per row
            flat = out.view(np.uint8).reshape(k, self.row_bytes)
            in_place = self.stride == self.row_bytes and np.array_equal(into, np.arange(k))
            span = (flat.reshape(-1) if in_place else
                    np.empty((k - 1) * self.stride + self.row_bytes, dtype=np.uint8))
            self._read_span(span, self.offset + rows[0] * self.stride)
            if not in_place:
                flat[into] = np.lib.stride_tricks.as_strided(span, (k, self.row_bytes),
                                                             (self.stride, 1))
            return
        read_rows(self.fd, self.offset, self.row_bytes, self.stride,
                  np.ascontiguousarray(rows, dtype=np.intp),
                  np.ascontiguousarray(into, dtype=np.intp),
                  out.view(np.uint8).reshape(len(out), self.row_bytes))

    def _read_span(self, span, offset) -> None:
        view, done = memoryview(span), 0
        while done < len(span):
            got = os.preadv(self.fd, [view[done:]], offset + done)
            if got <= 0:
                raise OSError("the file ended before the rows it should hold")
            done += got

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self):
        self.close()


def _shared_mapping(X):
    """(address, bytes) of the memmap under X when its pages may be dropped
    without losing anything - opened read-only or read-write (MAP_SHARED),
    not copy-on-write -, else None."""
    root = _root_memmap(X)
    if root is None or getattr(root, "mode", None) not in _SHARED_MODES:
        return None
    start = root.ctypes.data
    aligned = start - start % _PAGE
    return aligned, start + root.nbytes - aligned


_PAGE = mmap.PAGESIZE
_MADV_DONTNEED = 4
_madvise = None
if sys.platform.startswith("linux"):
    try:
        _madvise = ctypes.CDLL(None, use_errno=True).madvise
        _madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):     # pragma: no cover - libc without madvise
        _madvise = None


def features(X, n_features: int, dtype, name: str = "X", sparse: bool = True,
             categorical=()):
    """X validated for a kernel: a :class:`FileRows` when it is file-backed
    (checked by streaming over it), else :func:`in_memory`'s. `categorical`:
    the cardinalities of the categorical inputs, X's last columns, whose codes
    are checked."""
    if isinstance(X, FileRows):
        return X.with_dtype(dtype, n_features)
    if not isinstance(X, SparseRows) and not is_sparse(X) and file_backed(X):
        return FileRows(X, n_features, dtype, name, categorical=categorical)
    return in_memory(X, n_features, dtype, name, sparse, categorical)


def rows_of(X, index):
    """Rows `index` of checked X as data of its own kind: a file's rows are
    still read from the file, sparse rows stay sparse, an array's are copied
    (C-contiguous)."""
    if isinstance(X, (FileRows, SparseRows)):
        return X.subset(index)
    return np.ascontiguousarray(X[index])


def in_memory(X, n_features: int, dtype, name: str = "X", sparse: bool = True,
              categorical=()):
    """X validated for a kernel and held in memory: :class:`SparseRows` for
    scipy.sparse X, else ``as_features``' C-contiguous array. Without
    `sparse` (a network whose first layer reads its inputs densely), sparse
    X is checked as such and then made dense. `categorical`: as for
    :func:`features`."""
    if isinstance(X, SparseRows):
        X = X.with_dtype(dtype, n_features, name)
    elif is_sparse(X):
        X = SparseRows.of(X, n_features, dtype, name)
    else:
        X = as_features(X, n_features, dtype, name)
        check_codes(X, categorical, name)
        return X
    if sparse:
        return X
    X = np.ascontiguousarray(X.matrix.toarray(), dtype=dtype)
    check_codes(X, categorical, name)
    return X


class FileRows:
    """Rows of a file-backed matrix, read in parts and converted to ``dtype``.

    Parameters
    ----------
    X : array, file-backed, shape (n, n_features)
    n_features : int
    dtype : numpy dtype
        The model's; each part is converted on its own, so a float64 file
        serves a float32 model without a float64 copy in memory.
    name : str
        The argument's name, for errors.
    rows : array of int, optional
        The rows of X this stands for, in this order (all of X by default).
    """

    def __init__(self, X, n_features: int, dtype, name: str = "X", rows=None, _checked=False,
                 _file=None, _transform=None, categorical=()):
        self.X, self.dtype, self.name = X, np.dtype(dtype), name
        self.transform = _transform
        self.rows = None if rows is None else np.asarray(rows, dtype=np.intp)
        self._file = _file if _file is not None or _checked else _File.of(X)
        self._mapping = (_shared_mapping(X) if _madvise is not None and self._file is None
                         else None)
        if not _checked:
            self._check(n_features, categorical)

    # ---- checks ---------------------------------------------------------------------------
    def _check(self, n_features: int, categorical=()) -> None:
        X, name = self.X, self.name
        kind = X.dtype.kind
        if kind == "c":
            raise TypeError(f"{name} must be real-valued, got complex dtype {X.dtype}")
        if kind not in "biuf":
            raise TypeError(f"{name} must be numeric (bool, integer or float), got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional (n_samples, n_features), "
                             f"got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{name} is empty: it has 0 samples")
        if X.shape[1] != n_features:
            raise ValueError(f"{name} has {X.shape[1]} features, the architecture expects "
                             f"{n_features}")
        if X.shape[0] > MAX_DIMENSION:
            raise ValueError(f"{name} has more than {MAX_DIMENSION} samples")
        for lo, hi in FileRows(X, n_features, X.dtype, name, _checked=True,
                               _file=self._file).parts(X.shape[0]):
            part = self._raw(np.arange(lo, hi))
            check_finite(part, f"{name} (rows {lo} to {hi - 1})", first_row=lo)
            check_codes(part, categorical, name, first_row=lo)
            if kind == "f" and part.dtype != self.dtype:
                with np.errstate(over="ignore"):
                    converted = part.astype(self.dtype)
                check_finite(converted, f"{name} (converted to {self.dtype}, rows {lo} to "
                             f"{hi - 1})", first_row=lo)
            self.release()

    # ---- reading -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.X.shape[1])

    def __len__(self) -> int:
        return self.X.shape[0] if self.rows is None else len(self.rows)

    def parts(self, n: int | None = None, multiple: int = 1):
        """(lo, hi) bounds of consecutive parts of about PART_BYTES each, every
        part but the last a multiple of `multiple` rows."""
        n = len(self) if n is None else n
        row_bytes = max(1, self.X.shape[1] * max(self.dtype.itemsize, self.X.dtype.itemsize))
        size = max(1, PART_BYTES // row_bytes)
        size = max(multiple, size // multiple * multiple)
        return [(lo, min(n, lo + size)) for lo in range(0, n, size)]

    def take(self, positions=None, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows at `positions` (of this object's rows), or rows lo..hi-1, in
        that order, as a C-contiguous array of the model's dtype."""
        if positions is None:
            positions = np.arange(lo, len(self) if hi is None else hi)
        file_rows = np.asarray(positions) if self.rows is None else self.rows[positions]
        rows = np.ascontiguousarray(self._raw(file_rows), dtype=self.dtype)
        return rows if self.transform is None else self.transform(rows)

    def _raw(self, file_rows) -> np.ndarray:
        """Rows of the file, in X's own dtype; read in file order (the pages
        one after another), each put in its place."""
        order = np.argsort(file_rows, kind="stable")
        out = np.empty((len(file_rows), self.X.shape[1]), dtype=self.X.dtype)
        if self._file is not None:
            self._file.read(file_rows[order], order, out)
        else:
            out[order] = self.X[file_rows[order]]
        return out

    def subset(self, positions) -> "FileRows":
        """These rows at `positions` (a validation split's training part)."""
        rows = np.asarray(positions, dtype=np.intp)
        return FileRows(self.X, self.X.shape[1], self.dtype, self.name,
                        rows if self.rows is None else self.rows[rows], _checked=True,
                        _file=self._file, _transform=self.transform)

    def transformed(self, transform) -> "FileRows":
        """These rows with `transform` applied to every part read (after any
        transform already there)."""
        if self.transform is not None:
            first = self.transform
            transform = (lambda part, second=transform: second(first(part)))
        return FileRows(self.X, self.X.shape[1], self.dtype, self.name, self.rows,
                        _checked=True, _file=self._file, _transform=transform)

    def with_dtype(self, dtype, n_features: int) -> "FileRows":
        """These rows for a model of `dtype` (checked again if narrower)."""
        dtype = np.dtype(dtype)
        if self.X.shape[1] != n_features:
            raise ValueError(f"{self.name} has {self.X.shape[1]} features, the architecture "
                             f"expects {n_features}")
        if dtype == self.dtype:
            return self
        out = FileRows(self.X, n_features, dtype, self.name, self.rows, _checked=True,
                       _file=self._file, _transform=self.transform)
        if dtype.itemsize < self.dtype.itemsize:
            out._check(n_features)
        return out

    def release(self) -> None:
        """Hand the pages read so far back to the operating system."""
        if self._mapping is not None:
            _madvise(self._mapping[0], self._mapping[1], _MADV_DONTNEED)
