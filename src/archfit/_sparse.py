"""Sparse X: scipy.sparse matrices and arrays, kept sparse all the way to the kernels.

The kernels take compressed sparse rows (values, column indices, row
pointers) and compute the first layer's products and weight gradient as
sparse x dense, so a one-hot or bag-of-words matrix is never made dense.
"""
from __future__ import annotations

import numpy as np

from archfit._validation import MAX_DIMENSION, check_finite


def is_sparse(X) -> bool:
    """True for a scipy.sparse matrix or array (without importing scipy for others)."""
    if not hasattr(X, "nnz") or not hasattr(X, "tocsr"):
        return False
    from scipy import sparse
    return sparse.issparse(X)


class SparseRows:
    """A validated sparse design matrix in compressed sparse rows, of the
    model's dtype, as the kernels take it.

    Attributes
    ----------
    values : ndarray (nnz,)
    indices : ndarray of C int (nnz,)
        Column of each value.
    indptr : ndarray of intp (n_samples + 1,)
    shape : tuple
    """

    def __init__(self, matrix, values, indices, indptr):
        self.matrix, self.values, self.indices, self.indptr = matrix, values, indices, indptr
        self.shape = matrix.shape
        self.dtype = values.dtype

    @classmethod
    def of(cls, X, n_features: int, dtype, name: str = "X") -> "SparseRows":
        """Check a scipy.sparse X and lay it out for the kernels (copying only
        what is not already of the right type)."""
        from scipy import sparse
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional, got shape {X.shape}")
        matrix = sparse.csr_matrix(X)
        n, d = matrix.shape
        if n == 0:
            raise ValueError(f"{name} is empty: it has 0 samples")
        if d != n_features:
            raise ValueError(f"{name} has {d} features, the architecture expects {n_features}")
        if n > MAX_DIMENSION:
            raise ValueError(f"{name} has more than {MAX_DIMENSION} samples")
        kind = matrix.dtype.kind
        if kind == "c":
            raise TypeError(f"{name} must be real-valued, got complex dtype {matrix.dtype}")
        if kind not in "biuf":
            raise TypeError(f"{name} must be numeric (bool, integer or float), got dtype "
                            f"{matrix.dtype}")
        check_finite(matrix.data, f"{name} (sparse)", index="stored value")
        with np.errstate(over="ignore"):
            values = np.ascontiguousarray(matrix.data, dtype=dtype)
        check_finite(values, f"{name} (sparse, converted to {np.dtype(dtype)})",
                         index="stored value")
        indices = np.ascontiguousarray(matrix.indices, dtype=np.intc)
        indptr = np.ascontiguousarray(matrix.indptr, dtype=np.intp)
        if indices.size and (indices.min() < 0 or indices.max() >= d):
            raise ValueError(f"{name} has column indices outside 0 .. {d - 1}")
        if indptr[0] != 0 or indptr[-1] != len(values) or (np.diff(indptr) < 0).any():
            raise ValueError(f"{name}'s row pointers are not a valid compressed layout")
        return cls(matrix, values, indices, indptr)

    def __len__(self) -> int:
        return self.shape[0]

    def subset(self, rows) -> "SparseRows":
        """These rows at `rows` (a split's part), still sparse."""
        part = self.matrix[np.asarray(rows)]
        return SparseRows(part, np.ascontiguousarray(part.data, dtype=self.dtype),
                          np.ascontiguousarray(part.indices, dtype=np.intc),
                          np.ascontiguousarray(part.indptr, dtype=np.intp))

    def with_dtype(self, dtype, n_features: int, name: str = "X") -> "SparseRows":
        return self if np.dtype(dtype) == self.dtype else \
            SparseRows.of(self.matrix, n_features, dtype, name)

    def parts(self):
        """The arrays a fingerprint hashes."""
        return (self.indptr, self.indices, self.values)
