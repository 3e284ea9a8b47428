/* C = A W with W packed once and shared: the products of a batched prediction.
 *
 * Predicting many rows runs X @ W for every layer on chunks of rows, one chunk
 * per thread. Through BLAS, every chunk's call packs W again (OpenBLAS: ~10%
 * of a 4096-row prediction of a 784-256-128-10 network) and each thread packs
 * its own copy. Here W is packed once per prediction, into panels of 16
 * columns (k x 16, contiguous, zero-padded), and every thread reads the same
 * panels.
 *
 * The product walks A in blocks of PK_MC rows (kept in L2 with their block
 * of C), W in blocks of PK_KC rows (one panel block, 16 KiB, stays in L1
 * while it meets every row of the A block), and keeps a 6 x 16 block of C in
 * twelve AVX2 registers: two loads of W and six broadcasts of A feed twelve
 * FMAs. Every element of C is one FMA chain over k in increasing order (a
 * later block of k reloads the partial sums from C and continues), so a
 * row's result does not depend on the other rows, and equals vecmat's and
 * small_gemm's for the same row.
 *
 * float32 on CPUs with AVX2 and FMA only (archfit_packed_gemm_available);
 * elsewhere the caller uses BLAS.
 */
#ifndef ARCHFIT_PACKGEMM_H
#define ARCHFIT_PACKGEMM_H

#include "vecmat.h"

#define ARCHFIT_PK_NR 16     /* columns per panel: two AVX2 registers */
#define ARCHFIT_PK_MR 6      /* rows per register block */
#ifndef ARCHFIT_PK_KC
#define ARCHFIT_PK_KC 256    /* rows of W per block: a 16 KiB panel block */
#endif
#ifndef ARCHFIT_PK_MC
#define ARCHFIT_PK_MC 96     /* rows of A per block: 96 KiB of A (at KC) and of C (at NC) */
#endif
#ifndef ARCHFIT_PK_NC
#define ARCHFIT_PK_NC 256    /* columns per block of C */
#endif

/* Elements of the packed form of a (k, n) matrix. */
static inline ptrdiff_t archfit_packed_size(ptrdiff_t k, ptrdiff_t n) {
    return k * ((n + ARCHFIT_PK_NR - 1) / ARCHFIT_PK_NR) * ARCHFIT_PK_NR;
}

/* P := W (k x n, row-major, leading dimension ldw) as panels of 16 columns. */
static inline void archfit_pack_f32(ptrdiff_t k, ptrdiff_t n, const float* W, ptrdiff_t ldw,
                                    float* P) {
    for (ptrdiff_t j = 0; j < n; j += ARCHFIT_PK_NR) {
        const ptrdiff_t w = n - j < ARCHFIT_PK_NR ? n - j : ARCHFIT_PK_NR;
        for (ptrdiff_t p = 0; p < k; p++, P += ARCHFIT_PK_NR) {
            const float* row = W + p * ldw + j;
            ptrdiff_t c = 0;
            for (; c < w; c++) P[c] = row[c];
            for (; c < ARCHFIT_PK_NR; c++) P[c] = 0.0f;
        }
    }
}

/* Rows [r0, r1) of W (k x n) into P, laid out as archfit_pack_f32 lays out
 * all of W (padding columns untouched: zero from the first full packing).
 * Training re-packs the rows of each block of θ right after updating them. */
static inline void archfit_pack_rows_f32(ptrdiff_t k, ptrdiff_t n, const float* W,
                                         ptrdiff_t ldw, ptrdiff_t r0, ptrdiff_t r1, float* P) {
    for (ptrdiff_t j = 0; j < n; j += ARCHFIT_PK_NR) {
        const ptrdiff_t w = n - j < ARCHFIT_PK_NR ? n - j : ARCHFIT_PK_NR;
        float* panel = P + j * k;
        for (ptrdiff_t r = r0; r < r1; r++) {
            const float* row = W + r * ldw + j;
            float* dst = panel + r * ARCHFIT_PK_NR;
            for (ptrdiff_t c = 0; c < w; c++) dst[c] = row[c];
        }
    }
}

/* Rows [r0, r1) of W (k x n) into PT, the packed form of W^T (n x k): its
 * panels hold 16 rows of W each, element (r, p) at panel r / 16, position
 * p * 16 + r % 16. For the product D W^T of backpropagation. */
static inline void archfit_pack_rows_t_f32(ptrdiff_t k, ptrdiff_t n, const float* W,
                                           ptrdiff_t ldw, ptrdiff_t r0, ptrdiff_t r1,
                                           float* PT) {
    (void)k;
    /* Panel by panel, p outer: each p writes one whole 64-byte line (16 rows'
     * values) while the panel's rows are read as 16 sequential streams;
     * scattering row by row would touch n lines per row instead. */
    for (ptrdiff_t g = r0 - r0 % ARCHFIT_PK_NR; g < r1; g += ARCHFIT_PK_NR) {
        const ptrdiff_t lo = g < r0 ? r0 : g;
        const ptrdiff_t hi = g + ARCHFIT_PK_NR < r1 ? g + ARCHFIT_PK_NR : r1;
        float* panel = PT + g * n;      /* panel g / 16 holds n x 16 */
        if (lo == g && hi == g + ARCHFIT_PK_NR) {
            const float* row = W + g * ldw;
            for (ptrdiff_t p = 0; p < n; p++) {
                float* dst = panel + p * ARCHFIT_PK_NR;
                for (ptrdiff_t c = 0; c < ARCHFIT_PK_NR; c++) dst[c] = row[c * ldw + p];
            }
        } else {
            for (ptrdiff_t p = 0; p < n; p++) {
                float* dst = panel + p * ARCHFIT_PK_NR;
                for (ptrdiff_t r = lo; r < hi; r++) dst[r - g] = W[r * ldw + p];
            }
        }
    }
}

static inline int archfit_packed_gemm_available(void) {
#ifdef ARCHFIT_X86_DISPATCH
    return archfit_have_avx2();
#else
    return 0;
#endif
}

#ifdef ARCHFIT_X86_DISPATCH
/* One block of R (1..6) rows x 16 columns over kc rows of W; A's rows packed
 * by archfit_pk_pack_a (a[p * 6 + r]). `first`: the chain starts at zero,
 * else it continues from C. Columns past the edge are neither read nor
 * written (masks). R is a constant at every call, so the accumulators live in
 * registers. */
__attribute__((target("avx2,fma"), always_inline))
static inline void archfit_pk_block_f32(const int R, ptrdiff_t kc, const float* a,
                                        const float* b, float* c, ptrdiff_t ldc, int first,
                                        int full, __m256i m0, __m256i m1) {
    __m256 acc[ARCHFIT_PK_MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (first) {
            acc[r][0] = _mm256_setzero_ps();
            acc[r][1] = _mm256_setzero_ps();
        } else if (full) {
            acc[r][0] = _mm256_loadu_ps(c + r * ldc);
            acc[r][1] = _mm256_loadu_ps(c + r * ldc + 8);
        } else {
            acc[r][0] = _mm256_maskload_ps(c + r * ldc, m0);
            acc[r][1] = _mm256_maskload_ps(c + r * ldc + 8, m1);
        }
    }
    for (ptrdiff_t p = 0; p < kc; p++, b += ARCHFIT_PK_NR, a += ARCHFIT_PK_MR) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m256 x = _mm256_broadcast_ss(a + r);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (full) {
            _mm256_storeu_ps(c + r * ldc, acc[r][0]);
            _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
        } else {
            _mm256_maskstore_ps(c + r * ldc, m0, acc[r][0]);
            _mm256_maskstore_ps(c + r * ldc + 8, m1, acc[r][1]);
        }
    }
}

/* Rows [i0, i1) x columns [p0, p0 + kc) of op(A) into `work` as groups of 6
 * rows, each kc x 6 with the row index fastest (zeros past i1): the kernel
 * then reads A in order, whatever op(A)'s layout. Without the copy, rows of A
 * a power of two apart (k = 1024, 2048) fall into the same L1 sets. */
static inline void archfit_pk_pack_a_f32(int trans_a, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t p0,
                                         ptrdiff_t kc, const float* A, ptrdiff_t lda,
                                         float* work) {
    for (ptrdiff_t g = i0; g < i1; g += ARCHFIT_PK_MR, work += kc * ARCHFIT_PK_MR) {
        const ptrdiff_t rows = i1 - g < ARCHFIT_PK_MR ? i1 - g : ARCHFIT_PK_MR;
        if (trans_a) {
            for (ptrdiff_t p = 0; p < kc; p++) {
                const float* src = A + (p0 + p) * lda + g;
                for (ptrdiff_t r = 0; r < ARCHFIT_PK_MR; r++)
                    work[p * ARCHFIT_PK_MR + r] = r < rows ? src[r] : 0.0f;
            }
        } else {
            for (ptrdiff_t r = 0; r < ARCHFIT_PK_MR; r++) {
                const float* src = A + (g + r) * lda + p0;
                for (ptrdiff_t p = 0; p < kc; p++)
                    work[p * ARCHFIT_PK_MR + r] = r < rows ? src[p] : 0.0f;
            }
        }
    }
}

/* Rows [i0, i1) (packed in `work`) of C's columns [j, j + 16), over W's rows
 * [p0, p0 + kc). */
__attribute__((target("avx2,fma")))
static inline void archfit_pk_panel_f32(ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t p0, ptrdiff_t kc,
                                        ptrdiff_t j, ptrdiff_t n, ptrdiff_t k,
                                        const float* work, const float* P, float* C,
                                        ptrdiff_t ldc, __m256i lanes) {
    const int full = j + ARCHFIT_PK_NR <= n, first = p0 == 0;
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j)), lanes);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j - 8)), lanes);
    const float* b = P + j * k + p0 * ARCHFIT_PK_NR;   /* panel j / 16, from row p0 */
    const float* a = work;
    float* c = C + i0 * ldc + j;
    ptrdiff_t i = i0;
    for (; i + ARCHFIT_PK_MR <= i1; i += ARCHFIT_PK_MR, a += ARCHFIT_PK_MR * kc,
                                     c += ARCHFIT_PK_MR * ldc)
        archfit_pk_block_f32(6, kc, a, b, c, ldc, first, full, m0, m1);
    switch (i1 - i) {     /* the last 1..5 rows */
    case 5: archfit_pk_block_f32(5, kc, a, b, c, ldc, first, full, m0, m1); break;
    case 4: archfit_pk_block_f32(4, kc, a, b, c, ldc, first, full, m0, m1); break;
    case 3: archfit_pk_block_f32(3, kc, a, b, c, ldc, first, full, m0, m1); break;
    case 2: archfit_pk_block_f32(2, kc, a, b, c, ldc, first, full, m0, m1); break;
    case 1: archfit_pk_block_f32(1, kc, a, b, c, ldc, first, full, m0, m1); break;
    default: break;
    }
}

__attribute__((target("avx2,fma")))
static inline void archfit_packed_gemm_f32_avx2(int trans_a, ptrdiff_t m, ptrdiff_t n,
                                                ptrdiff_t k, const float* A, ptrdiff_t lda,
                                                const float* P, float* C, ptrdiff_t ldc,
                                                float* work) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (ptrdiff_t j0 = 0; j0 < n; j0 += ARCHFIT_PK_NC) {
        const ptrdiff_t j1 = n - j0 < ARCHFIT_PK_NC ? n : j0 + ARCHFIT_PK_NC;
        for (ptrdiff_t i0 = 0; i0 < m; i0 += ARCHFIT_PK_MC) {
            const ptrdiff_t i1 = m - i0 < ARCHFIT_PK_MC ? m : i0 + ARCHFIT_PK_MC;
            for (ptrdiff_t p0 = 0; p0 < k; p0 += ARCHFIT_PK_KC) {
                const ptrdiff_t kc = k - p0 < ARCHFIT_PK_KC ? k - p0 : ARCHFIT_PK_KC;
                archfit_pk_pack_a_f32(trans_a, i0, i1, p0, kc, A, lda, work);
                for (ptrdiff_t j = j0; j < j1; j += ARCHFIT_PK_NR)
                    archfit_pk_panel_f32(i0, i1, p0, kc, j, n, k, work, P, C, ldc, lanes);
            }
        }
    }
}
#endif

/* Elements of the `work` buffer archfit_packed_gemm_f32 needs. */
#define ARCHFIT_PK_WORK (ARCHFIT_PK_MC * ARCHFIT_PK_KC)

/* C (m x n, leading dimension ldc) := op(A) (m x k; A is (k, m) with leading
 * dimension lda when trans_a, else (m, k)) @ W, W packed by archfit_pack_f32
 * into P; `work` holds ARCHFIT_PK_WORK floats. k >= 1. Only when
 * archfit_packed_gemm_available(); does nothing otherwise. */
static inline void archfit_packed_gemm_f32(int trans_a, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                           const float* A, ptrdiff_t lda, const float* P,
                                           float* C, ptrdiff_t ldc, float* work) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2() && m > 0 && n > 0 && k > 0)
        archfit_packed_gemm_f32_avx2(trans_a, m, n, k, A, lda, P, C, ldc, work);
#else
    (void)trans_a; (void)m; (void)n; (void)k; (void)A; (void)lda; (void)P; (void)C; (void)ldc;
    (void)work;
#endif
}

#endif
