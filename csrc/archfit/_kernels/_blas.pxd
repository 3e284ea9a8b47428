from cython cimport floating

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* A, int lda,
               const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil

cdef void row_gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A,
                   Py_ssize_t lda, const floating* B, Py_ssize_t ldb, floating* C,
                   Py_ssize_t ldc) noexcept nogil

cdef void bf16_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                    const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                    float* C, Py_ssize_t ldc, bint accumulate) noexcept nogil

cdef enum:
    SMALL_B = 8192          # op(B) elements: 32 KiB in float32, in L1 across the rows
    SMALL_FMAS = 524288     # beyond this, OpenBLAS's blocked GEMM wins


cdef inline bint small_product(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """Whether gemm sends C = A B, C (m, n) with m > 1, to smallgemm.h (else BLAS)."""
    return n > 1 and k * n <= SMALL_B and m * n * k <= SMALL_FMAS
