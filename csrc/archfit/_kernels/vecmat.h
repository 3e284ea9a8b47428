/* Vector-matrix products y = x W for one input row: the whole forward pass of
 * a single sample. OpenBLAS's GEMV streams W well but pays a call overhead
 * that dominates at these sizes; with W row-major (k, n), keeping a block of
 * outputs in registers while streaming W's rows is all it takes.
 *
 * y[0:n] = x[0:k] @ W[0:k, 0:n]; x strided by incx, W row-major with leading
 * dimension ldw. A product of small matrices is one such call per output row
 * (see _blas.gemm): B stays in L1 and no BLAS call or packing is paid.
 * Each output is the sum over i in increasing order (one FMA chain), so a
 * column's value does not depend on which other columns are computed with it.
 *
 * On x86-64 with GCC or Clang an AVX2+FMA version is chosen at run time when
 * the CPU has it; elsewhere a portable loop.
 */
#ifndef ARCHFIT_VECMAT_H
#define ARCHFIT_VECMAT_H

#include <stddef.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define ARCHFIT_X86_DISPATCH 1
#include <immintrin.h>
#endif

static inline void archfit_vecmat_f32_portable(ptrdiff_t k, ptrdiff_t n, const float* x, ptrdiff_t incx,
                                        const float* W, ptrdiff_t ldw, float* y) {
    for (ptrdiff_t j = 0; j < n; j++) y[j] = 0.0f;
    for (ptrdiff_t i = 0; i < k; i++) {
        const float xi = x[i * incx];
        const float* row = W + i * ldw;
        for (ptrdiff_t j = 0; j < n; j++) y[j] += xi * row[j];
    }
}

static inline void archfit_vecmat_f64_portable(ptrdiff_t k, ptrdiff_t n, const double* x, ptrdiff_t incx,
                                        const double* W, ptrdiff_t ldw, double* y) {
    for (ptrdiff_t j = 0; j < n; j++) y[j] = 0.0;
    for (ptrdiff_t i = 0; i < k; i++) {
        const double xi = x[i * incx];
        const double* row = W + i * ldw;
        for (ptrdiff_t j = 0; j < n; j++) y[j] += xi * row[j];
    }
}

#ifdef ARCHFIT_X86_DISPATCH
/* 8 independent FMA chains (8 registers of outputs) cover the FMA latency. */
__attribute__((target("avx2,fma")))
static inline void archfit_vecmat_f32_avx2(ptrdiff_t k, ptrdiff_t n, const float* x, ptrdiff_t incx,
                                    const float* W, ptrdiff_t ldw, float* y) {
    ptrdiff_t j = 0;
    for (; j + 64 <= n; j += 64) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0,
               a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        const float* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw) {
            const __m256 xi = _mm256_broadcast_ss(x + i * incx);
            a0 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r), a0);
            a1 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 8), a1);
            a2 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 16), a2);
            a3 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 24), a3);
            a4 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 32), a4);
            a5 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 40), a5);
            a6 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 48), a6);
            a7 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 56), a7);
        }
        _mm256_storeu_ps(y + j, a0);      _mm256_storeu_ps(y + j + 8, a1);
        _mm256_storeu_ps(y + j + 16, a2); _mm256_storeu_ps(y + j + 24, a3);
        _mm256_storeu_ps(y + j + 32, a4); _mm256_storeu_ps(y + j + 40, a5);
        _mm256_storeu_ps(y + j + 48, a6); _mm256_storeu_ps(y + j + 56, a7);
    }
    for (; j + 32 <= n; j += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw) {
            const __m256 xi = _mm256_broadcast_ss(x + i * incx);
            a0 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r), a0);
            a1 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 8), a1);
            a2 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 16), a2);
            a3 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(r + 24), a3);
        }
        _mm256_storeu_ps(y + j, a0);      _mm256_storeu_ps(y + j + 8, a1);
        _mm256_storeu_ps(y + j + 16, a2); _mm256_storeu_ps(y + j + 24, a3);
    }
    for (; j + 8 <= n; j += 8) {
        __m256 a = _mm256_setzero_ps();
        const float* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i * incx), _mm256_loadu_ps(r), a);
        _mm256_storeu_ps(y + j, a);
    }
    if (j < n) {                /* the last 1..7 columns: masked loads and store */
        const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j)), lanes);
        __m256 a = _mm256_setzero_ps();
        const float* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i * incx), _mm256_maskload_ps(r, mask), a);
        _mm256_maskstore_ps(y + j, mask, a);
    }
}

__attribute__((target("avx2,fma")))
static inline void archfit_vecmat_f64_avx2(ptrdiff_t k, ptrdiff_t n, const double* x, ptrdiff_t incx,
                                    const double* W, ptrdiff_t ldw, double* y) {
    ptrdiff_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0,
                a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        const double* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw) {
            const __m256d xi = _mm256_broadcast_sd(x + i * incx);
            a0 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r), a0);
            a1 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r + 4), a1);
            a2 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r + 8), a2);
            a3 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r + 12), a3);
            a4 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r + 16), a4);
            a5 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r + 20), a5);
            a6 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r + 24), a6);
            a7 = _mm256_fmadd_pd(xi, _mm256_loadu_pd(r + 28), a7);
        }
        _mm256_storeu_pd(y + j, a0);      _mm256_storeu_pd(y + j + 4, a1);
        _mm256_storeu_pd(y + j + 8, a2);  _mm256_storeu_pd(y + j + 12, a3);
        _mm256_storeu_pd(y + j + 16, a4); _mm256_storeu_pd(y + j + 20, a5);
        _mm256_storeu_pd(y + j + 24, a6); _mm256_storeu_pd(y + j + 28, a7);
    }
    for (; j + 4 <= n; j += 4) {
        __m256d a = _mm256_setzero_pd();
        const double* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw)
            a = _mm256_fmadd_pd(_mm256_broadcast_sd(x + i * incx), _mm256_loadu_pd(r), a);
        _mm256_storeu_pd(y + j, a);
    }
    if (j < n) {                /* the last 1..3 columns: masked loads and store */
        const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
        const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n - j)), lanes);
        __m256d a = _mm256_setzero_pd();
        const double* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw)
            a = _mm256_fmadd_pd(_mm256_broadcast_sd(x + i * incx), _mm256_maskload_pd(r, mask), a);
        _mm256_maskstore_pd(y + j, mask, a);
    }
}

static inline int archfit_have_avx2(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return have;
}
#endif

static inline void archfit_vecmat_f32(ptrdiff_t k, ptrdiff_t n, const float* x, ptrdiff_t incx,
                               const float* W,
                               ptrdiff_t ldw, float* y) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) { archfit_vecmat_f32_avx2(k, n, x, incx, W, ldw, y); return; }
#endif
    archfit_vecmat_f32_portable(k, n, x, incx, W, ldw, y);
}

static inline void archfit_vecmat_f64(ptrdiff_t k, ptrdiff_t n, const double* x, ptrdiff_t incx,
                               const double* W,
                               ptrdiff_t ldw, double* y) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) { archfit_vecmat_f64_avx2(k, n, x, incx, W, ldw, y); return; }
#endif
    archfit_vecmat_f64_portable(k, n, x, incx, W, ldw, y);
}

/* The instruction set archfit_vecmat_* use on this CPU (for reports). */
static inline const char* archfit_vecmat_isa(void) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) return "avx2+fma";
#endif
    return "portable";
}

#endif
