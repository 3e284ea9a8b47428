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

cdef extern from "bf16.h" nogil:
    # op(B) packed once for many bfloat16 products (bf16.h's layout)
    Py_ssize_t bf16_packed_words "archfit_bf16_packed_words"(Py_ssize_t k, Py_ssize_t n)
    void bf16_pack "archfit_bf16_pack"(int trans, const float* B, Py_ssize_t ldb, Py_ssize_t k,
                                       Py_ssize_t n, Py_ssize_t c0, Py_ssize_t c1,
                                       Py_ssize_t j0, Py_ssize_t j1, unsigned int* P)
    int bf16_gemm_prepacked "archfit_bf16_gemm_prepacked"(
        int trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A, Py_ssize_t lda,
        const unsigned int* Bp, float* C, Py_ssize_t ldc, int accumulate)

cdef enum:
    SMALL_B = 8192          # op(B) elements: 32 KiB in float32, in L1 across the rows
    SMALL_FMAS = 524288     # beyond this, OpenBLAS's blocked GEMM wins


cdef inline bint small_product(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """Whether gemm sends C = A B, C (m, n) with m > 1, to smallgemm.h (else BLAS)."""
    return n > 1 and k * n <= SMALL_B and m * n * k <= SMALL_FMAS
