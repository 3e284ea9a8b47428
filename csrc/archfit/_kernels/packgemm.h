/* C = op(A) W with W packed once and shared: the large products of batched
 * predictions and of training steps cut into shards.
 *
 * Predicting many rows runs X @ W for every layer on chunks of rows, one chunk
 * per thread. Through BLAS, every chunk's call packs W again (a visible share
 * of a 4096-row prediction of a 784-256-128-10 network) and each thread packs
 * its own copy. Here W is packed once, into panels of two registers of
 * columns (k x PK_NR, contiguous, zero-padded), and every thread reads the
 * same panels.
 *
 * The product walks A in blocks of PK_MC rows (copied into `work` as groups
 * of PK_MR rows, kept in L2 with their block of C), W in blocks of PK_KC rows
 * (one panel block, 16 KiB, stays in L1 while it meets every row of the A
 * block), and keeps a PK_MR x PK_NR block of C in registers:
 *
 *   AVX2     6 x 16 floats (6 x 8 doubles), 12 of 16 registers, PK_KC 256
 *   AVX-512  12 x 32 floats (12 x 16 doubles), 24 of 32 registers, PK_KC 128
 *
 * two loads of W and PK_MR broadcasts of A feeding 2 PK_MR FMAs. Every
 * element of C is one FMA chain over k in increasing order (a later block of
 * k reloads the partial sums from C and continues), so a row's result does
 * not depend on the other rows or the blocking, and equals vecmat's and
 * small_gemm's for the same row on the same instruction set.
 *
 * The body is written once (packgemm_impl.h) and included per element type
 * and instruction set. The packed layout depends on the instruction set (the
 * panel width), so packing goes through the same dispatch as the product:
 * archfit_packed_size_*, archfit_pack_*, archfit_pack_rows_*,
 * archfit_pack_rows_t_* and archfit_packed_gemm_* (f32, f64). CPUs with AVX2
 * and FMA only (archfit_packed_gemm_available); elsewhere the caller uses
 * BLAS, and these do nothing.
 */
#ifndef ARCHFIT_PACKGEMM_H
#define ARCHFIT_PACKGEMM_H

#include "vecmat.h"

/* The largest PK_KC of any instruction set (packgemm_impl.h takes its own). */
#define ARCHFIT_PK_KC 256
#ifndef ARCHFIT_PK_NC
#define ARCHFIT_PK_NC 256    /* columns per block of C */
#endif
/* Bytes of packed W from which the kernel prefetches W's next panel. */
#define ARCHFIT_PK_FAR (4 << 20)
/* Elements of the `work` buffer archfit_packed_gemm_* need (either type). */
#define ARCHFIT_PK_WORK (96 * ARCHFIT_PK_KC)    /* PK_MC <= 96 */

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

/* Six full rows of A (doubles) into `work` as work[p * 6 + r], four columns
 * at a time: rows 0-3 through a 4 x 4 register transpose (one 4-double store
 * per column), rows 4-5 through 2 x 4 (one 2-double store per column).
 * Returns the columns done (a multiple of 4). */
__attribute__((target("avx2")))
static inline ptrdiff_t archfit_pk_pack6_f64(ptrdiff_t kc, const double* src, ptrdiff_t lda,
                                             double* work) {
    ptrdiff_t p = 0;
    for (; p + 4 <= kc; p += 4, work += 24) {
        const __m256d r0 = _mm256_loadu_pd(src + p), r1 = _mm256_loadu_pd(src + lda + p);
        const __m256d r2 = _mm256_loadu_pd(src + 2 * lda + p);
        const __m256d r3 = _mm256_loadu_pd(src + 3 * lda + p);
        const __m256d r4 = _mm256_loadu_pd(src + 4 * lda + p);
        const __m256d r5 = _mm256_loadu_pd(src + 5 * lda + p);
        /* t0: rows 0-1 of columns 0 | 2, t1: of columns 1 | 3; t2, t3 rows 2-3;
         * t4, t5 rows 4-5 */
        const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
        const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
        const __m256d t4 = _mm256_unpacklo_pd(r4, r5), t5 = _mm256_unpackhi_pd(r4, r5);
        _mm256_storeu_pd(work, _mm256_permute2f128_pd(t0, t2, 0x20));
        _mm_storeu_pd(work + 4, _mm256_castpd256_pd128(t4));
        _mm256_storeu_pd(work + 6, _mm256_permute2f128_pd(t1, t3, 0x20));
        _mm_storeu_pd(work + 10, _mm256_castpd256_pd128(t5));
        _mm256_storeu_pd(work + 12, _mm256_permute2f128_pd(t0, t2, 0x31));
        _mm_storeu_pd(work + 16, _mm256_extractf128_pd(t4, 1));
        _mm256_storeu_pd(work + 18, _mm256_permute2f128_pd(t1, t3, 0x31));
        _mm_storeu_pd(work + 22, _mm256_extractf128_pd(t5, 1));
    }
    return p;
}

/* Twelve full rows of A into `work` as work[p * 12 + r], eight columns at a
 * time: rows 0-7 through an 8 x 8 register transpose (one 8-float store per
 * column), rows 8-11 through a 4 x 8 one (one 4-float store per column).
 * Returns the columns done (a multiple of 8). AVX2 code: the AVX-512 body
 * calls it. */
__attribute__((target("avx2")))
static inline ptrdiff_t archfit_pk_pack12_f32(ptrdiff_t kc, const float* src, ptrdiff_t lda,
                                              float* work) {
    ptrdiff_t p = 0;
    for (; p + 8 <= kc; p += 8, work += 96) {
        __m256 r[12], t[12], u[12];
        for (int q = 0; q < 12; q++) r[q] = _mm256_loadu_ps(src + q * lda + p);
        for (int q = 0; q < 12; q += 2) {       /* pairs of rows, interleaved */
            t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
            t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
        }
        /* u[4g + c]: rows 4g..4g+3 of columns c | c + 4 */
        for (int g = 0; g < 3; g++) {
            u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
            u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
            u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
            u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
        }
        for (int c = 0; c < 4; c++) {
            _mm256_storeu_ps(work + c * 12, _mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
            _mm256_storeu_ps(work + (c + 4) * 12, _mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
            _mm_storeu_ps(work + c * 12 + 8, _mm256_castps256_ps128(u[8 + c]));
            _mm_storeu_ps(work + (c + 4) * 12 + 8, _mm256_extractf128_ps(u[8 + c], 1));
        }
    }
    return p;
}
#endif

#ifdef ARCHFIT_X86_DISPATCH
/* ---- AVX2: float blocks of 96 rows of A (96 KiB), double of 96 (192 KiB) ---- */
#include "avx2_ops.h"
#define PK_MR 6
#define PK_KC 256
#define PK_MC 96
#define PK_PACK_ROWS archfit_pk_pack6_f32
#include "packgemm_impl.h"     /* which undefines the PK_ macros */
#include "simd_ops_end.h"

#define AV_DOUBLE
#include "avx2_ops.h"
#define PK_MR 6
#define PK_KC 256
#define PK_MC 96
#define PK_PACK_ROWS archfit_pk_pack6_f64
#include "packgemm_impl.h"
#include "simd_ops_end.h"

/* ---- AVX-512: panel blocks of 128 x 32 floats (16 x 16 doubles): 16 KiB ---- */
#include "avx512_ops.h"
#define PK_MR 12
#define PK_KC 128
#define PK_MC 96
#define PK_PACK_ROWS archfit_pk_pack12_f32
#include "packgemm_impl.h"
#include "simd_ops_end.h"

#define AV_DOUBLE
#include "avx512_ops.h"
#define PK_MR 12
#define PK_KC 128
#define PK_MC 96
#include "packgemm_impl.h"
#include "simd_ops_end.h"
#endif

/* Below AVX2 nothing is packed (the caller uses BLAS). */
#define ARCHFIT_PK_NOTHING(...) ((void)0)
#define archfit_pack_f32_portable ARCHFIT_PK_NOTHING
#define archfit_pack_f64_portable ARCHFIT_PK_NOTHING
#define archfit_pack_rows_f32_portable ARCHFIT_PK_NOTHING
#define archfit_pack_rows_f64_portable ARCHFIT_PK_NOTHING
#define archfit_pack_rows_t_f32_portable ARCHFIT_PK_NOTHING
#define archfit_pack_rows_t_f64_portable ARCHFIT_PK_NOTHING
#define archfit_packed_gemm_f32_portable ARCHFIT_PK_NOTHING
#define archfit_packed_gemm_f64_portable ARCHFIT_PK_NOTHING

#define ARCHFIT_PK_DISPATCHERS(T, S)                                                       \
    /* Elements of the packed form of a (k, n) matrix (0 below AVX2). */                   \
    static inline ptrdiff_t archfit_packed_size_##S(ptrdiff_t k, ptrdiff_t n) {            \
        ARCHFIT_PK_SIZE(S)                                                                 \
        (void)k; (void)n;                                                                  \
        return 0;                                                                          \
    }                                                                                      \
    /* P := W (k x n, row-major, leading dimension ldw), packed. */                        \
    static inline void archfit_pack_##S(ptrdiff_t k, ptrdiff_t n, const T* W, ptrdiff_t ldw, \
                                        T* P) {                                            \
        ARCHFIT_ISA_CALL(archfit_pack_##S, k, n, W, ldw, P);                               \
    }                                                                                      \
    /* Rows [r0, r1) of W into P, laid out as archfit_pack lays out all of W. */           \
    static inline void archfit_pack_rows_##S(ptrdiff_t k, ptrdiff_t n, const T* W,         \
                                             ptrdiff_t ldw, ptrdiff_t r0, ptrdiff_t r1,    \
                                             T* P) {                                       \
        ARCHFIT_ISA_CALL(archfit_pack_rows_##S, k, n, W, ldw, r0, r1, P);                  \
    }                                                                                      \
    /* Rows [r0, r1) of W into PT, the packed form of W^T. */                              \
    static inline void archfit_pack_rows_t_##S(ptrdiff_t k, ptrdiff_t n, const T* W,       \
                                               ptrdiff_t ldw, ptrdiff_t r0, ptrdiff_t r1,  \
                                               T* PT) {                                    \
        ARCHFIT_ISA_CALL(archfit_pack_rows_t_##S, k, n, W, ldw, r0, r1, PT);               \
    }                                                                                      \
    /* C (m x n, leading dimension ldc) := op(A) (m x k; A is (k, m) with leading          \
     * dimension lda when trans_a, else (m, k)) @ W, W packed into P; `work` holds         \
     * ARCHFIT_PK_WORK elements. Only when archfit_packed_gemm_available(). */             \
    static inline void archfit_packed_gemm_##S(int trans_a, ptrdiff_t m, ptrdiff_t n,      \
                                               ptrdiff_t k, const T* A, ptrdiff_t lda,     \
                                               const T* P, T* C, ptrdiff_t ldc, T* work) { \
        if (m > 0 && n > 0 && k > 0)                                                       \
            ARCHFIT_ISA_CALL(archfit_packed_gemm_##S, trans_a, m, n, k, A, lda, P, C, ldc, \
                             work);                                                        \
    }
#ifdef ARCHFIT_X86_DISPATCH
#define ARCHFIT_PK_SIZE(S)                                                                 \
    if (archfit_isa() >= ARCHFIT_ISA_AVX512) return archfit_packed_size_##S##_avx512(k, n); \
    if (archfit_isa() >= ARCHFIT_ISA_AVX2) return archfit_packed_size_##S##_avx2(k, n);
#else
#define ARCHFIT_PK_SIZE(S)
#endif
ARCHFIT_PK_DISPATCHERS(float, f32)
ARCHFIT_PK_DISPATCHERS(double, f64)
#undef ARCHFIT_PK_DISPATCHERS
#undef ARCHFIT_PK_SIZE

#endif
