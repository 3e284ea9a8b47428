/* C = op(A) op(B) for small row-major matrices (alpha 1, beta 0).
 *
 * OpenBLAS pays a dispatch, packing and threading check per call that, at the
 * sizes of small networks' layers (64 x 64 x 64), costs as much as the
 * arithmetic. This kernel keeps a 4 x 16 block of C (4 x 8 in double) in
 * eight AVX2 registers while it walks k: two loads of B and four broadcasts
 * of A feed eight FMAs. op(B) transposed is first copied into `scratch`
 * (k x n), so B's rows are always contiguous.
 *
 * Every element of C is one FMA chain over k in increasing order, whichever
 * block or edge path computes it: a row's result does not depend on the
 * other rows in the call, and equals archfit_vecmat's for the same row.
 */
#ifndef ARCHFIT_SMALLGEMM_H
#define ARCHFIT_SMALLGEMM_H

#include "vecmat.h"

#define ARCHFIT_A(i, p) (trans_a ? A[(p) * lda + (i)] : A[(i) * lda + (p)])

static inline const float* archfit_rows_of_b_f32(int trans_b, ptrdiff_t n, ptrdiff_t k,
                                          const float* B, ptrdiff_t* ldb, float* scratch) {
    if (!trans_b) return B;
    for (ptrdiff_t p = 0; p < k; p++)
        for (ptrdiff_t j = 0; j < n; j++) scratch[p * n + j] = B[j * *ldb + p];
    *ldb = n;
    return scratch;
}

static inline const double* archfit_rows_of_b_f64(int trans_b, ptrdiff_t n, ptrdiff_t k,
                                           const double* B, ptrdiff_t* ldb, double* scratch) {
    if (!trans_b) return B;
    for (ptrdiff_t p = 0; p < k; p++)
        for (ptrdiff_t j = 0; j < n; j++) scratch[p * n + j] = B[j * *ldb + p];
    *ldb = n;
    return scratch;
}

static inline void archfit_small_gemm_f32_portable(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                            ptrdiff_t k, const float* A, ptrdiff_t lda,
                                            const float* B, ptrdiff_t ldb, float* C,
                                            ptrdiff_t ldc, float* scratch) {
    B = archfit_rows_of_b_f32(trans_b, n, k, B, &ldb, scratch);
    for (ptrdiff_t i = 0; i < m; i++)
        archfit_vecmat_f32(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb,
                           C + i * ldc);
}

static inline void archfit_small_gemm_f64_portable(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                            ptrdiff_t k, const double* A, ptrdiff_t lda,
                                            const double* B, ptrdiff_t ldb, double* C,
                                            ptrdiff_t ldc, double* scratch) {
    B = archfit_rows_of_b_f64(trans_b, n, k, B, &ldb, scratch);
    for (ptrdiff_t i = 0; i < m; i++)
        archfit_vecmat_f64(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb,
                           C + i * ldc);
}

#ifdef ARCHFIT_X86_DISPATCH
__attribute__((target("avx2,fma")))
static inline void archfit_small_gemm_f32_avx2(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                        ptrdiff_t k, const float* A, ptrdiff_t lda,
                                        const float* B, ptrdiff_t ldb, float* C, ptrdiff_t ldc,
                                        float* scratch) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    ptrdiff_t i = 0;
    B = archfit_rows_of_b_f32(trans_b, n, k, B, &ldb, scratch);
    for (; i + 4 <= m; i += 4) {
        for (ptrdiff_t j = 0; j < n; j += 16) {
            /* masks for the last, partial block of columns */
            const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j)), lanes);
            const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j - 8)), lanes);
            const int full = j + 16 <= n;
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00,
                   c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            const float* b = B + j;
            for (ptrdiff_t p = 0; p < k; p++, b += ldb) {
                const __m256 b0 = full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
                const __m256 b1 = full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
                __m256 a = _mm256_set1_ps(ARCHFIT_A(i, p));
                c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
                a = _mm256_set1_ps(ARCHFIT_A(i + 1, p));
                c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
                a = _mm256_set1_ps(ARCHFIT_A(i + 2, p));
                c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
                a = _mm256_set1_ps(ARCHFIT_A(i + 3, p));
                c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
            }
            float* c = C + i * ldc + j;
            if (full) {
                _mm256_storeu_ps(c, c00); _mm256_storeu_ps(c + 8, c01); c += ldc;
                _mm256_storeu_ps(c, c10); _mm256_storeu_ps(c + 8, c11); c += ldc;
                _mm256_storeu_ps(c, c20); _mm256_storeu_ps(c + 8, c21); c += ldc;
                _mm256_storeu_ps(c, c30); _mm256_storeu_ps(c + 8, c31);
            } else {
                _mm256_maskstore_ps(c, m0, c00); _mm256_maskstore_ps(c + 8, m1, c01); c += ldc;
                _mm256_maskstore_ps(c, m0, c10); _mm256_maskstore_ps(c + 8, m1, c11); c += ldc;
                _mm256_maskstore_ps(c, m0, c20); _mm256_maskstore_ps(c + 8, m1, c21); c += ldc;
                _mm256_maskstore_ps(c, m0, c30); _mm256_maskstore_ps(c + 8, m1, c31);
            }
        }
    }
    for (; i < m; i++)      /* the last 1..3 rows */
        archfit_vecmat_f32_avx2(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb,
                                C + i * ldc);
}

__attribute__((target("avx2,fma")))
static inline void archfit_small_gemm_f64_avx2(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                        ptrdiff_t k, const double* A, ptrdiff_t lda,
                                        const double* B, ptrdiff_t ldb, double* C,
                                        ptrdiff_t ldc, double* scratch) {
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    ptrdiff_t i = 0;
    B = archfit_rows_of_b_f64(trans_b, n, k, B, &ldb, scratch);
    for (; i + 4 <= m; i += 4) {
        for (ptrdiff_t j = 0; j < n; j += 8) {
            const __m256i m0 = _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n - j)), lanes);
            const __m256i m1 = _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n - j - 4)), lanes);
            const int full = j + 8 <= n;
            __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00,
                    c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            const double* b = B + j;
            for (ptrdiff_t p = 0; p < k; p++, b += ldb) {
                const __m256d b0 = full ? _mm256_loadu_pd(b) : _mm256_maskload_pd(b, m0);
                const __m256d b1 = full ? _mm256_loadu_pd(b + 4) : _mm256_maskload_pd(b + 4, m1);
                __m256d a = _mm256_set1_pd(ARCHFIT_A(i, p));
                c00 = _mm256_fmadd_pd(a, b0, c00); c01 = _mm256_fmadd_pd(a, b1, c01);
                a = _mm256_set1_pd(ARCHFIT_A(i + 1, p));
                c10 = _mm256_fmadd_pd(a, b0, c10); c11 = _mm256_fmadd_pd(a, b1, c11);
                a = _mm256_set1_pd(ARCHFIT_A(i + 2, p));
                c20 = _mm256_fmadd_pd(a, b0, c20); c21 = _mm256_fmadd_pd(a, b1, c21);
                a = _mm256_set1_pd(ARCHFIT_A(i + 3, p));
                c30 = _mm256_fmadd_pd(a, b0, c30); c31 = _mm256_fmadd_pd(a, b1, c31);
            }
            double* c = C + i * ldc + j;
            if (full) {
                _mm256_storeu_pd(c, c00); _mm256_storeu_pd(c + 4, c01); c += ldc;
                _mm256_storeu_pd(c, c10); _mm256_storeu_pd(c + 4, c11); c += ldc;
                _mm256_storeu_pd(c, c20); _mm256_storeu_pd(c + 4, c21); c += ldc;
                _mm256_storeu_pd(c, c30); _mm256_storeu_pd(c + 4, c31);
            } else {
                _mm256_maskstore_pd(c, m0, c00); _mm256_maskstore_pd(c + 4, m1, c01); c += ldc;
                _mm256_maskstore_pd(c, m0, c10); _mm256_maskstore_pd(c + 4, m1, c11); c += ldc;
                _mm256_maskstore_pd(c, m0, c20); _mm256_maskstore_pd(c + 4, m1, c21); c += ldc;
                _mm256_maskstore_pd(c, m0, c30); _mm256_maskstore_pd(c + 4, m1, c31);
            }
        }
    }
    for (; i < m; i++)
        archfit_vecmat_f64_avx2(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb,
                                C + i * ldc);
}
#endif

/* `scratch` holds k * n elements when trans_b (op(B) is copied there). */
static inline void archfit_small_gemm_f32(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                   ptrdiff_t k, const float* A, ptrdiff_t lda, const float* B,
                                   ptrdiff_t ldb, float* C, ptrdiff_t ldc, float* scratch) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) {
        archfit_small_gemm_f32_avx2(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
        return;
    }
#endif
    archfit_small_gemm_f32_portable(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
}

static inline void archfit_small_gemm_f64(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                   ptrdiff_t k, const double* A, ptrdiff_t lda, const double* B,
                                   ptrdiff_t ldb, double* C, ptrdiff_t ldc, double* scratch) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) {
        archfit_small_gemm_f64_avx2(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
        return;
    }
#endif
    archfit_small_gemm_f64_portable(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
}

#undef ARCHFIT_A
#endif
