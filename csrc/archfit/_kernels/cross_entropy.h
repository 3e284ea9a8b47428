/* Softmax cross-entropy over rows of logits: the weighted loss and its
 * gradient with respect to the logits, the head of every classifier's step.
 *
 * For row i with logits z, label c and weight w:
 *   loss_i = log(sum_j exp(z_j - m)) + m - z_c,   m = max_j z_j
 *   D[i, j] = (exp(z_j - m) / s) * g  (minus g at j = c),  g = w * grad_scale
 * computed in double whatever the element type. libm's exp, one call per
 * output, was the largest cost after the products in a small network's step
 * (benchmarks/RESULTS.md); here exp(z - m) runs four doubles at a time
 * (archfit_exp_nonpositive), with the row's sum in four fixed partial sums,
 * so a row's bits do not depend on which x86 path runs it: the AVX-512 level
 * runs this same AVX2 body (a row of 10 classes fills 2.5 registers of 4
 * doubles, and 8 lanes would change the sum's order). The portable build
 * evaluates the same formulas without FMA.
 */
#ifndef ARCHFIT_CROSS_ENTROPY_H
#define ARCHFIT_CROSS_ENTROPY_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

/* exp(x) for x <= 0 (positive x is taken as 0; NaN stays NaN): x = n ln2 + r
 * with |r| <= ln2 / 2, e^r by its Taylor polynomial of degree 13 (truncation
 * below 5e-18), times 2^n built in the exponent bits. Results below the
 * smallest normal double are 0, as flush-to-zero makes them in every kernel.
 * Within 1 ulp of the exact value (tests/kernels: against NumPy's exp).
 * Horner's rule: the head is bound by its operations, not their latency, and
 * Estrin's scheme (fewer dependent steps, more operations) was slower. */
#define ARCHFIT_EXP_LOG2E 1.4426950408889634
#define ARCHFIT_EXP_LN2_HI 6.93147180369123816490e-01   /* 21 low bits zero: n * it is exact */
#define ARCHFIT_EXP_LN2_LO 1.90821492927058770002e-10
#define ARCHFIT_EXP_SHIFT 6755399441055744.0             /* 1.5 * 2^52: rounds to an integer */
#define ARCHFIT_EXP_MIN -708.39                           /* exp of it is above 2^-1022 */

static const double archfit_exp_taylor[14] = {
    1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
    1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
    1.0 / 6.0, 0.5, 1.0, 1.0};

static inline double archfit_exp_nonpositive_portable(double x) {
    if (x != x) return x;
    if (x < ARCHFIT_EXP_MIN) return 0.0;
    if (x > 0) x = 0;
    const double t = x * ARCHFIT_EXP_LOG2E + ARCHFIT_EXP_SHIFT;
    const double n = t - ARCHFIT_EXP_SHIFT;
    double r = x - n * ARCHFIT_EXP_LN2_HI;
    r = r - n * ARCHFIT_EXP_LN2_LO;
    double p = archfit_exp_taylor[0];
    for (int k = 1; k < 14; k++) p = p * r + archfit_exp_taylor[k];
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023u) << 52;      /* t's low bits hold n; 2^n's exponent field */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* One row's loss; writes the row's gradient to d unless d is NULL. */
#define ARCHFIT_XENT_ROW_PORTABLE(T)                                                   \
    const T* zr = Z + i * n_cols;                                                      \
    double m = zr[0];                                                                  \
    for (ptrdiff_t j = 1; j < n_cols; j++)                                             \
        if (zr[j] > m) m = zr[j];                                                      \
    double part[4] = {0, 0, 0, 0};                                                     \
    for (ptrdiff_t j = 0; j < n_cols; j++) {                                           \
        const double e = archfit_exp_nonpositive_portable(zr[j] - m);                  \
        part[j % 4] += e;                                                              \
        if (d != NULL) d[j] = (T)e;                                                    \
    }                                                                                  \
    const double s = (part[0] + part[1]) + (part[2] + part[3]);                        \
    row = m + log(s) - zr[labels[i]];                                                  \
    if (d != NULL) {                                                                   \
        for (ptrdiff_t j = 0; j < n_cols; j++) d[j] = (T)(d[j] / s) * g;               \
        d[labels[i]] -= g;                                                             \
    }

#define ARCHFIT_XENT_ARGS(T)                                                           \
    const T* Z, ptrdiff_t n_rows, ptrdiff_t n_cols, const int* labels, const T* weights, \
        T* D, double grad_scale, double* row_loss

/* The rows' loop around one row's body ROW(T), the same for every build. */
#define ARCHFIT_XENT_ROWS(T, ROW)                                                      \
    double total = 0;                                                                  \
    for (ptrdiff_t i = 0; i < n_rows; i++) {                                           \
        const double w = weights != NULL ? (double)weights[i] : 1.0;                   \
        T* d = D != NULL ? D + i * n_cols : NULL;                                      \
        const T g = (T)(w * grad_scale);                                               \
        double row;                                                                    \
        ROW(T)                                                                         \
        total += w * row;                                                              \
        if (row_loss != NULL) row_loss[i] = w * row;                                   \
    }                                                                                  \
    return total;

static inline double archfit_cross_entropy_f32_portable(ARCHFIT_XENT_ARGS(float)) {
    ARCHFIT_XENT_ROWS(float, ARCHFIT_XENT_ROW_PORTABLE)
}
static inline double archfit_cross_entropy_f64_portable(ARCHFIT_XENT_ARGS(double)) {
    ARCHFIT_XENT_ROWS(double, ARCHFIT_XENT_ROW_PORTABLE)
}

#ifdef ARCHFIT_X86_DISPATCH
__attribute__((target("avx2,fma")))
static inline __m256d archfit_exp_nonpositive_avx2(__m256d x) {
    const __m256d lo = _mm256_set1_pd(ARCHFIT_EXP_MIN);
    const __m256d shift = _mm256_set1_pd(ARCHFIT_EXP_SHIFT);
    const __m256d under = _mm256_cmp_pd(x, lo, _CMP_LT_OQ);    /* false for NaN */
    x = _mm256_max_pd(lo, x);                                  /* max and min pass a NaN x */
    x = _mm256_min_pd(_mm256_setzero_pd(), x);
    const __m256d t = _mm256_fmadd_pd(x, _mm256_set1_pd(ARCHFIT_EXP_LOG2E), shift);
    const __m256d n = _mm256_sub_pd(t, shift);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(ARCHFIT_EXP_LN2_HI), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(ARCHFIT_EXP_LN2_LO), r);
    __m256d p = _mm256_set1_pd(archfit_exp_taylor[0]);
    for (int k = 1; k < 14; k++) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(archfit_exp_taylor[k]));
    const __m256i bits = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_castpd_si256(t), _mm256_set1_epi64x(1023)), 52);
    return _mm256_andnot_pd(under, _mm256_mul_pd(p, _mm256_castsi256_pd(bits)));
}

/* Four elements of a row as doubles, and back; the lanes below `left` only
 * at a row's end (masked: nothing read or written past it). */
#define ARCHFIT_MASK4_64(left) \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(left)), _mm256_setr_epi64x(0, 1, 2, 3))
#define ARCHFIT_MASK4_32(left) \
    _mm_cmpgt_epi32(_mm_set1_epi32((int)(left)), _mm_setr_epi32(0, 1, 2, 3))

__attribute__((target("avx2,fma")))
static inline __m256d archfit_load4_f32(const float* p, ptrdiff_t left) {
    return _mm256_cvtps_pd(left >= 4 ? _mm_loadu_ps(p) : _mm_maskload_ps(p, ARCHFIT_MASK4_32(left)));
}
__attribute__((target("avx2,fma")))
static inline __m256d archfit_load4_f64(const double* p, ptrdiff_t left) {
    return left >= 4 ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, ARCHFIT_MASK4_64(left));
}
__attribute__((target("avx2,fma")))
static inline void archfit_store4_f32(float* p, ptrdiff_t left, __m256d v) {
    const __m128 f = _mm256_cvtpd_ps(v);
    if (left >= 4) _mm_storeu_ps(p, f);
    else _mm_maskstore_ps(p, ARCHFIT_MASK4_32(left), f);
}
__attribute__((target("avx2,fma")))
static inline void archfit_store4_f64(double* p, ptrdiff_t left, __m256d v) {
    if (left >= 4) _mm256_storeu_pd(p, v);
    else _mm256_maskstore_pd(p, ARCHFIT_MASK4_64(left), v);
}
/* d = (T)(d / s) * g on four elements: the quotient rounded to T, then T's product */
__attribute__((target("avx2,fma")))
static inline void archfit_scale4_f32(float* p, ptrdiff_t left, __m256d s, float g) {
    const __m128 q = _mm_mul_ps(_mm256_cvtpd_ps(_mm256_div_pd(archfit_load4_f32(p, left), s)),
                                _mm_set1_ps(g));
    if (left >= 4) _mm_storeu_ps(p, q);
    else _mm_maskstore_ps(p, ARCHFIT_MASK4_32(left), q);
}
__attribute__((target("avx2,fma")))
static inline void archfit_scale4_f64(double* p, ptrdiff_t left, __m256d s, double g) {
    archfit_store4_f64(p, left, _mm256_mul_pd(_mm256_div_pd(archfit_load4_f64(p, left), s),
                                              _mm256_set1_pd(g)));
}

#define ARCHFIT_XENT_ROW_AVX2(T, SUFFIX)                                               \
    const T* zr = Z + i * n_cols;                                                      \
    T mt = zr[0];                                                                      \
    for (ptrdiff_t j = 1; j < n_cols; j++)                                             \
        if (zr[j] > mt) mt = zr[j];                                                    \
    const double m = mt;                                                               \
    const __m256d mv = _mm256_set1_pd(m);                                              \
    __m256d part = _mm256_setzero_pd();                                                \
    for (ptrdiff_t j = 0; j < n_cols; j += 4) {                                        \
        const ptrdiff_t left = n_cols - j;                                             \
        __m256d e = archfit_exp_nonpositive_avx2(                                      \
            _mm256_sub_pd(archfit_load4_##SUFFIX(zr + j, left), mv));                  \
        if (left < 4) e = _mm256_and_pd(e, _mm256_castsi256_pd(ARCHFIT_MASK4_64(left))); \
        part = _mm256_add_pd(part, e);                                                 \
        if (d != NULL) archfit_store4_##SUFFIX(d + j, left, e);                        \
    }                                                                                  \
    double p4[4];                                                                      \
    _mm256_storeu_pd(p4, part);                                                        \
    const double s = (p4[0] + p4[1]) + (p4[2] + p4[3]);                                \
    row = m + log(s) - zr[labels[i]];                                                  \
    if (d != NULL) {                                                                   \
        const __m256d sv = _mm256_set1_pd(s);                                          \
        for (ptrdiff_t j = 0; j < n_cols; j += 4)                                      \
            archfit_scale4_##SUFFIX(d + j, n_cols - j, sv, g);                         \
        d[labels[i]] -= g;                                                             \
    }
#define ARCHFIT_XENT_ROW_AVX2_F32(T) ARCHFIT_XENT_ROW_AVX2(T, f32)
#define ARCHFIT_XENT_ROW_AVX2_F64(T) ARCHFIT_XENT_ROW_AVX2(T, f64)

__attribute__((target("avx2,fma")))
static inline double archfit_cross_entropy_f32_avx2(ARCHFIT_XENT_ARGS(float)) {
    ARCHFIT_XENT_ROWS(float, ARCHFIT_XENT_ROW_AVX2_F32)
}
__attribute__((target("avx2,fma")))
static inline double archfit_cross_entropy_f64_avx2(ARCHFIT_XENT_ARGS(double)) {
    ARCHFIT_XENT_ROWS(double, ARCHFIT_XENT_ROW_AVX2_F64)
}
__attribute__((target("avx2,fma")))
static inline void archfit_exp_nonpositive_many_avx2(const double* x, double* y, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i += 4)
        archfit_store4_f64(y + i, n - i, archfit_exp_nonpositive_avx2(archfit_load4_f64(x + i, n - i)));
}
#undef ARCHFIT_XENT_ROW_AVX2_F32
#undef ARCHFIT_XENT_ROW_AVX2_F64
#undef ARCHFIT_XENT_ROW_AVX2
#undef ARCHFIT_MASK4_32
#undef ARCHFIT_MASK4_64
#endif

/* The dispatchers; the AVX-512 level runs the AVX2 body (see the top). */
static inline double archfit_cross_entropy_f32(ARCHFIT_XENT_ARGS(float)) {
    return ARCHFIT_AVX2_OR_PORTABLE(archfit_cross_entropy_f32)(Z, n_rows, n_cols, labels, weights,
                                                               D, grad_scale, row_loss);
}
static inline double archfit_cross_entropy_f64(ARCHFIT_XENT_ARGS(double)) {
    return ARCHFIT_AVX2_OR_PORTABLE(archfit_cross_entropy_f64)(Z, n_rows, n_cols, labels, weights,
                                                               D, grad_scale, row_loss);
}

/* exp(x) for x <= 0 on the current path, element by element (a test hook). */
static inline void archfit_exp_nonpositive_many_portable(const double* x, double* y, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = archfit_exp_nonpositive_portable(x[i]);
}
static inline void archfit_exp_nonpositive(const double* x, double* y, ptrdiff_t n) {
    ARCHFIT_AVX2_OR_PORTABLE(archfit_exp_nonpositive_many)(x, y, n);
}

#undef ARCHFIT_XENT_ROWS
#undef ARCHFIT_XENT_ARGS
#undef ARCHFIT_XENT_ROW_PORTABLE
#endif
