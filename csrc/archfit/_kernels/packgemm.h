/* C = op(A) W with W packed once and shared: the large products of batched
 * predictions and of training steps cut into shards.
 *
 * Predicting many rows runs X @ W for every layer on chunks of rows, one chunk
 * per thread. Through BLAS, every chunk's call packs W again (a visible share
 * of a 4096-row prediction of a 784-256-128-10 network) and each thread packs
 * its own copy. Here W is packed once, into panels of PK_NR columns (16
 * floats or 8 doubles: k x PK_NR, contiguous, zero-padded), and every thread
 * reads the same panels.
 *
 * The product walks A in blocks of PK_MC rows (copied into `work` as groups
 * of 6 rows, kept in L2 with their block of C), W in blocks of PK_KC rows (one
 * panel block, 16 KiB, stays in L1 while it meets every row of the A block),
 * and keeps a 6 x PK_NR block of C in twelve AVX2 registers: two loads of W
 * and six broadcasts of A feed twelve FMAs. Every element of C is one FMA
 * chain over k in increasing order (a later block of k reloads the partial
 * sums from C and continues), so a row's result does not depend on the other
 * rows, and equals vecmat's and small_gemm's for the same row.
 *
 * The body is written once (packgemm_impl.h) and included for float and
 * double; it defines archfit_packed_size_f32/_f64, archfit_pack_f32/_f64,
 * archfit_pack_rows_f32/_f64, archfit_pack_rows_t_f32/_f64 and the AVX2
 * product archfit_packed_gemm_avx2_f32/_f64, which the dispatchers
 * archfit_packed_gemm_f32/_f64 below call. CPUs with AVX2 and FMA only
 * (archfit_packed_gemm_available); elsewhere the caller uses BLAS.
 */
#ifndef ARCHFIT_PACKGEMM_H
#define ARCHFIT_PACKGEMM_H

#include "vecmat.h"

#define ARCHFIT_PK_MR 6      /* rows per register block */
#ifndef ARCHFIT_PK_KC
#define ARCHFIT_PK_KC 256    /* rows of W per block: a 16 KiB panel block */
#endif
#ifndef ARCHFIT_PK_NC
#define ARCHFIT_PK_NC 256    /* columns per block of C */
#endif
/* Bytes of packed W from which the kernel prefetches W's next panel. */
#define ARCHFIT_PK_FAR (4 << 20)
/* Elements of the `work` buffer archfit_packed_gemm_* need (either type). */
#define ARCHFIT_PK_WORK (96 * ARCHFIT_PK_KC)

static inline int archfit_packed_gemm_available(void) {
#ifdef ARCHFIT_X86_DISPATCH
    return archfit_have_avx2();
#else
    return 0;
#endif
}

#ifdef ARCHFIT_X86_DISPATCH
/* Six full rows of A (leading dimension lda), columns [0, kc), into `work` as
 * work[p * 6 + r], eight columns at a time through an 8 x 8 register
 * transpose (rows 6 and 7 zero); returns the columns done (a multiple of 8).
 * (Copying one float at a time to places 6 apart is several times slower.) */
__attribute__((target("avx2")))
static inline ptrdiff_t archfit_pk_pack6_f32(ptrdiff_t kc, const float* src, ptrdiff_t lda,
                                             float* work) {
    const __m256 z = _mm256_setzero_ps();
    ptrdiff_t p = 0;
    for (; p + 8 <= kc; p += 8, work += 48) {
        const __m256 r0 = _mm256_loadu_ps(src + p), r1 = _mm256_loadu_ps(src + lda + p);
        const __m256 r2 = _mm256_loadu_ps(src + 2 * lda + p);
        const __m256 r3 = _mm256_loadu_ps(src + 3 * lda + p);
        const __m256 r4 = _mm256_loadu_ps(src + 4 * lda + p);
        const __m256 r5 = _mm256_loadu_ps(src + 5 * lda + p);
        const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        /* s0 = rows 0-3 of columns 0 | 4, s1: 1 | 5, s2: 2 | 6, s3: 3 | 7;
         * s4..s7 the same for rows 4-5 (and two zeros) */
        const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const __m256 s4 = _mm256_shuffle_ps(t4, z, 0x44), s5 = _mm256_shuffle_ps(t4, z, 0xEE);
        const __m256 s6 = _mm256_shuffle_ps(t5, z, 0x44), s7 = _mm256_shuffle_ps(t5, z, 0xEE);
        /* column c: 6 values and 2 zeros, which the next column overwrites */
        _mm256_storeu_ps(work, _mm256_permute2f128_ps(s0, s4, 0x20));
        _mm256_storeu_ps(work + 6, _mm256_permute2f128_ps(s1, s5, 0x20));
        _mm256_storeu_ps(work + 12, _mm256_permute2f128_ps(s2, s6, 0x20));
        _mm256_storeu_ps(work + 18, _mm256_permute2f128_ps(s3, s7, 0x20));
        _mm256_storeu_ps(work + 24, _mm256_permute2f128_ps(s0, s4, 0x31));
        _mm256_storeu_ps(work + 30, _mm256_permute2f128_ps(s1, s5, 0x31));
        _mm256_storeu_ps(work + 36, _mm256_permute2f128_ps(s2, s6, 0x31));
        const __m256 last = _mm256_permute2f128_ps(s3, s7, 0x31);
        _mm_storeu_ps(work + 42, _mm256_castps256_ps128(last));
        _mm_storel_pi((__m64*)(work + 46), _mm256_extractf128_ps(last, 1));
    }
    return p;
}
#endif

/* ---- float: panels of 16, A in blocks of 96 rows (96 KiB) ---- */
#include "avx2_ops.h"
#define PK_FN(name) name##_f32
#define PK_NR 16
#define PK_MC 96
#define PK_PACK6 archfit_pk_pack6_f32
#include "packgemm_impl.h"     /* which undefines the PK_ macros */
#include "avx2_ops_end.h"

/* ---- double: panels of 8, A in blocks of 96 rows (192 KiB) ---- */
#define AV_DOUBLE
#include "avx2_ops.h"
#define PK_FN(name) name##_f64
#define PK_NR 8
#define PK_MC 96
#include "packgemm_impl.h"     /* which undefines the PK_ macros */
#include "avx2_ops_end.h"

/* C (m x n, leading dimension ldc) := op(A) (m x k; A is (k, m) with leading
 * dimension lda when trans_a, else (m, k)) @ W, W packed by archfit_pack_* into
 * P; `work` holds ARCHFIT_PK_WORK elements. k >= 1. Only when
 * archfit_packed_gemm_available(); does nothing otherwise. */
static inline void archfit_packed_gemm_f32(int trans_a, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                           const float* A, ptrdiff_t lda, const float* P,
                                           float* C, ptrdiff_t ldc, float* work) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2() && m > 0 && n > 0 && k > 0)
        archfit_packed_gemm_avx2_f32(trans_a, m, n, k, A, lda, P, C, ldc, work);
#else
    (void)trans_a; (void)m; (void)n; (void)k; (void)A; (void)lda; (void)P; (void)C; (void)ldc;
    (void)work;
#endif
}

static inline void archfit_packed_gemm_f64(int trans_a, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                           const double* A, ptrdiff_t lda, const double* P,
                                           double* C, ptrdiff_t ldc, double* work) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2() && m > 0 && n > 0 && k > 0)
        archfit_packed_gemm_avx2_f64(trans_a, m, n, k, A, lda, P, C, ldc, work);
#else
    (void)trans_a; (void)m; (void)n; (void)k; (void)A; (void)lda; (void)P; (void)C; (void)ldc;
    (void)work;
#endif
}

#endif
