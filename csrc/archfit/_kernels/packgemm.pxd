# Declarations of packgemm.h, and one helper per operation over both dtypes
# (Cython's fused `floating`), for every module that uses the packed GEMM.
from cython cimport floating

cdef extern from "packgemm.h" nogil:
    Py_ssize_t archfit_packed_size_f32(Py_ssize_t k, Py_ssize_t n)
    Py_ssize_t archfit_packed_size_f64(Py_ssize_t k, Py_ssize_t n)
    void archfit_pack_f32(Py_ssize_t k, Py_ssize_t n, const float* W, Py_ssize_t ldw, float* P)
    void archfit_pack_f64(Py_ssize_t k, Py_ssize_t n, const double* W, Py_ssize_t ldw,
                          double* P)
    void archfit_pack_rows_f32(Py_ssize_t k, Py_ssize_t n, const float* W, Py_ssize_t ldw,
                               Py_ssize_t r0, Py_ssize_t r1, float* P)
    void archfit_pack_rows_f64(Py_ssize_t k, Py_ssize_t n, const double* W, Py_ssize_t ldw,
                               Py_ssize_t r0, Py_ssize_t r1, double* P)
    void archfit_pack_rows_t_f32(Py_ssize_t k, Py_ssize_t n, const float* W, Py_ssize_t ldw,
                                 Py_ssize_t r0, Py_ssize_t r1, float* PT)
    void archfit_pack_rows_t_f64(Py_ssize_t k, Py_ssize_t n, const double* W, Py_ssize_t ldw,
                                 Py_ssize_t r0, Py_ssize_t r1, double* PT)
    int archfit_packed_gemm_available()
    void archfit_packed_gemm_f32(int trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                 const float* A, Py_ssize_t lda, const float* P, float* C,
                                 Py_ssize_t ldc, float* work)
    void archfit_packed_gemm_f64(int trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                 const double* A, Py_ssize_t lda, const double* P, double* C,
                                 Py_ssize_t ldc, double* work)
    enum: ARCHFIT_PK_WORK


cdef inline Py_ssize_t packed_size(bint f64, Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """Elements of the packed form of a (k, n) matrix of doubles (`f64`) or floats."""
    return archfit_packed_size_f64(k, n) if f64 else archfit_packed_size_f32(k, n)


cdef inline void pack(Py_ssize_t k, Py_ssize_t n, const floating* W, Py_ssize_t ldw,
                      floating* P) noexcept nogil:
    """P := W (k, n) packed, padding included."""
    if floating is float:
        archfit_pack_f32(k, n, W, ldw, P)
    else:
        archfit_pack_f64(k, n, W, ldw, P)


cdef inline void pack_rows(Py_ssize_t k, Py_ssize_t n, const floating* W, Py_ssize_t ldw,
                           Py_ssize_t r0, Py_ssize_t r1, void* P,
                           bint transposed=False) noexcept nogil:
    """Rows [r0, r1) of W (k, n) into P, the packed form of W (or of W^T)."""
    if floating is float:
        if transposed:
            archfit_pack_rows_t_f32(k, n, W, ldw, r0, r1, <float*> P)
        else:
            archfit_pack_rows_f32(k, n, W, ldw, r0, r1, <float*> P)
    else:
        if transposed:
            archfit_pack_rows_t_f64(k, n, W, ldw, r0, r1, <double*> P)
        else:
            archfit_pack_rows_f64(k, n, W, ldw, r0, r1, <double*> P)


cdef inline void packed_gemm(bint trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const floating* A, Py_ssize_t lda, const void* P, floating* C,
                             Py_ssize_t ldc, floating* work) noexcept nogil:
    """C (m, n) := op(A) W, W packed in P; `work` holds ARCHFIT_PK_WORK elements."""
    if floating is float:
        archfit_packed_gemm_f32(trans_a, m, n, k, A, lda, <const float*> P, C, ldc, work)
    else:
        archfit_packed_gemm_f64(trans_a, m, n, k, A, lda, <const double*> P, C, ldc, work)
