/* Vector-matrix products y = x W for one input row: the whole forward pass of
 * a single sample. OpenBLAS's GEMV streams W well but pays a call overhead
 * that dominates at these sizes; with W row-major (k, n), keeping a block of
 * outputs in registers while streaming W's rows is all it takes.
 *
 * y[0:n] = x[0:k] @ W[0:k, 0:n]; W row-major with leading dimension ldw.
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

static void archfit_vecmat_f32_portable(ptrdiff_t k, ptrdiff_t n, const float* x,
                                        const float* W, ptrdiff_t ldw, float* y) {
    for (ptrdiff_t j = 0; j < n; j++) y[j] = 0.0f;
    for (ptrdiff_t i = 0; i < k; i++) {
        const float xi = x[i];
        const float* row = W + i * ldw;
        for (ptrdiff_t j = 0; j < n; j++) y[j] += xi * row[j];
    }
}

static void archfit_vecmat_f64_portable(ptrdiff_t k, ptrdiff_t n, const double* x,
                                        const double* W, ptrdiff_t ldw, double* y) {
    for (ptrdiff_t j = 0; j < n; j++) y[j] = 0.0;
    for (ptrdiff_t i = 0; i < k; i++) {
        const double xi = x[i];
        const double* row = W + i * ldw;
        for (ptrdiff_t j = 0; j < n; j++) y[j] += xi * row[j];
    }
}

#ifdef ARCHFIT_X86_DISPATCH
/* 8 independent FMA chains (8 registers of outputs) cover the FMA latency. */
__attribute__((target("avx2,fma")))
static void archfit_vecmat_f32_avx2(ptrdiff_t k, ptrdiff_t n, const float* x,
                                    const float* W, ptrdiff_t ldw, float* y) {
    ptrdiff_t j = 0;
    for (; j + 64 <= n; j += 64) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0,
               a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        const float* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw) {
            const __m256 xi = _mm256_broadcast_ss(x + i);
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
    for (; j + 8 <= n; j += 8) {
        __m256 a = _mm256_setzero_ps();
        const float* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i), _mm256_loadu_ps(r), a);
        _mm256_storeu_ps(y + j, a);
    }
    for (; j < n; j++) {
        float a = 0.0f;
        for (ptrdiff_t i = 0; i < k; i++) a = __builtin_fmaf(x[i], W[i * ldw + j], a);
        y[j] = a;
    }
}

__attribute__((target("avx2,fma")))
static void archfit_vecmat_f64_avx2(ptrdiff_t k, ptrdiff_t n, const double* x,
                                    const double* W, ptrdiff_t ldw, double* y) {
    ptrdiff_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0,
                a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        const double* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw) {
            const __m256d xi = _mm256_broadcast_sd(x + i);
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
            a = _mm256_fmadd_pd(_mm256_broadcast_sd(x + i), _mm256_loadu_pd(r), a);
        _mm256_storeu_pd(y + j, a);
    }
    for (; j < n; j++) {
        double a = 0.0;
        for (ptrdiff_t i = 0; i < k; i++) a = __builtin_fma(x[i], W[i * ldw + j], a);
        y[j] = a;
    }
}

static int archfit_have_avx2(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return have;
}
#endif

static void archfit_vecmat_f32(ptrdiff_t k, ptrdiff_t n, const float* x, const float* W,
                               ptrdiff_t ldw, float* y) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) { archfit_vecmat_f32_avx2(k, n, x, W, ldw, y); return; }
#endif
    archfit_vecmat_f32_portable(k, n, x, W, ldw, y);
}

static void archfit_vecmat_f64(ptrdiff_t k, ptrdiff_t n, const double* x, const double* W,
                               ptrdiff_t ldw, double* y) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) { archfit_vecmat_f64_avx2(k, n, x, W, ldw, y); return; }
#endif
    archfit_vecmat_f64_portable(k, n, x, W, ldw, y);
}

/* The instruction set archfit_vecmat_* use on this CPU (for reports). */
static const char* archfit_vecmat_isa(void) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) return "avx2+fma";
#endif
    return "portable";
}

#endif
