"""Row-major GEMM through ``scipy.linalg.cython_blas``.

Design: every matrix in archfit is C-contiguous (row-major). Fortran BLAS is
column-major, and a row-major ``C = op(A) op(B)`` is the column-major
``C^T = op(B)^T op(A)^T``; so we call BLAS with the operands swapped and the
dimensions exchanged, and no data is ever transposed or copied.
"""
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* A, int lda,   # IN  op(A) is (m, k)
               const floating* B, int ldb,                    # IN  op(B) is (k, n)
               floating beta, floating* C, int ldc            # INOUT C is (m, n)
               ) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C, all row-major."""
    cdef char ta = b't' if trans_a else b'n'
    cdef char tb = b't' if trans_b else b'n'
    if m == 0 or n == 0:
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> B, &ldb, <float*> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> B, &ldb, <double*> A, &lda,
              &beta, C, &ldc)


def gemm_py(floating[:, ::1] A, floating[:, ::1] B, floating[:, ::1] C,
            bint trans_a=False, bint trans_b=False, double alpha=1.0, double beta=0.0):
    """Test hook: ``C := alpha * op(A) @ op(B) + beta * C`` in place."""
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    with nogil:
        gemm(trans_a, trans_b, m, n, k, <floating> alpha, &A[0, 0], A.shape[1],
             &B[0, 0], B.shape[1], <floating> beta, &C[0, 0], C.shape[1])
