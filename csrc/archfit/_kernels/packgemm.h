/* C = op(A) W with W packed once and shared: the large products of batched
 * predictions and of training steps cut into shards.
 *
 * Predicting many rows runs X @ W for every layer on chunks of rows, one chunk
 * per thread. Through BLAS, every chunk's call packs W again (OpenBLAS: ~10%
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
 * The body is written once (packgemm_impl.h) and included for float
 * (archfit_*_f32) and double (archfit_*_f64). CPUs with AVX2 and FMA only
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

#define ARCHFIT_PK_CAT2(a, b) a##_##b
#define ARCHFIT_PK_CAT(a, b) ARCHFIT_PK_CAT2(a, b)

/* ---- float: panels of 16, A in blocks of 96 rows (96 KiB) ---- */
#define PK_T float
#define PK_FN(name) ARCHFIT_PK_CAT(name, f32)
#define PK_NR 16
#define PK_LANES 8
#define PK_MC 96
#define PK_V __m256
#define PK_VI __m256i
#define PK_LOAD _mm256_loadu_ps
#define PK_STORE _mm256_storeu_ps
#define PK_MLOAD _mm256_maskload_ps
#define PK_MSTORE _mm256_maskstore_ps
#define PK_ZERO _mm256_setzero_ps
#define PK_BCAST _mm256_broadcast_ss
#define PK_FMA _mm256_fmadd_ps
#define PK_LANE_INDEX _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
#define PK_MASK(left, lanes) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left)), lanes)
#include "packgemm_impl.h"     /* which undefines the PK_ macros */

/* ---- double: panels of 8, A in blocks of 96 rows (192 KiB) ---- */
#define PK_T double
#define PK_FN(name) ARCHFIT_PK_CAT(name, f64)
#define PK_NR 8
#define PK_LANES 4
#define PK_MC 96
#define PK_V __m256d
#define PK_VI __m256i
#define PK_LOAD _mm256_loadu_pd
#define PK_STORE _mm256_storeu_pd
#define PK_MLOAD _mm256_maskload_pd
#define PK_MSTORE _mm256_maskstore_pd
#define PK_ZERO _mm256_setzero_pd
#define PK_BCAST _mm256_broadcast_sd
#define PK_FMA _mm256_fmadd_pd
#define PK_LANE_INDEX _mm256_setr_epi64x(0, 1, 2, 3)
#define PK_MASK(left, lanes) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(left)), lanes)
#include "packgemm_impl.h"     /* which undefines the PK_ macros */

#endif
