/* C = op(A) op(B) for small row-major matrices (alpha 1, beta 0).
 *
 * OpenBLAS pays a dispatch, packing and threading check per call that, at the
 * sizes of small networks' layers (64 x 64 x 64), costs as much as the
 * arithmetic. This kernel keeps a block of C in registers while it walks k:
 * on AVX2, 4 x 16 floats (4 x 8 doubles) in eight registers, where two loads
 * of B and four broadcasts of A feed eight FMAs; on AVX-512, 8 x 32 floats
 * (8 x 16 doubles) in sixteen of its 32 registers, two loads and eight
 * broadcasts feeding sixteen FMAs. op(B) transposed is first copied into
 * `scratch` (k x n), so B's rows are always contiguous.
 *
 * Every element of C is one FMA chain over k in increasing order, whichever
 * block or edge path computes it: a row's result does not depend on the
 * other rows in the call, and equals archfit_vecmat's for the same row.
 */
#ifndef ARCHFIT_SMALLGEMM_H
#define ARCHFIT_SMALLGEMM_H

#include "vecmat.h"

/* op(B)'s rows, contiguous: B itself, or op(B) = B^T copied into scratch (k x n). */
#define ARCHFIT_ROWS_OF_B(T, NAME)                                                       \
    static inline const T* NAME(int trans_b, ptrdiff_t n, ptrdiff_t k, const T* B,       \
                                ptrdiff_t* ldb, T* scratch) {                            \
        if (!trans_b) return B;                                                          \
        for (ptrdiff_t p = 0; p < k; p++)                                                \
            for (ptrdiff_t j = 0; j < n; j++) scratch[p * n + j] = B[j * *ldb + p];      \
        *ldb = n;                                                                        \
        return scratch;                                                                  \
    }
ARCHFIT_ROWS_OF_B(float, archfit_rows_of_b_f32)
ARCHFIT_ROWS_OF_B(double, archfit_rows_of_b_f64)
#undef ARCHFIT_ROWS_OF_B

#define ARCHFIT_SMALL_GEMM_ARGS(T)                                                       \
    int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T* A,         \
    ptrdiff_t lda, const T* B, ptrdiff_t ldb, T* C, ptrdiff_t ldc, T* scratch

/* The portable loops: one vecmat per row. */
#define ARCHFIT_SMALL_GEMM_PORTABLE(T, SUFFIX)                                           \
    static inline void archfit_small_gemm_##SUFFIX##_portable(ARCHFIT_SMALL_GEMM_ARGS(T)) { \
        B = archfit_rows_of_b_##SUFFIX(trans_b, n, k, B, &ldb, scratch);                 \
        for (ptrdiff_t i = 0; i < m; i++)                                                \
            archfit_vecmat_##SUFFIX##_portable(k, n, trans_a ? A + i : A + i * lda,      \
                                               trans_a ? lda : 1, B, ldb, C + i * ldc);  \
    }
ARCHFIT_SMALL_GEMM_PORTABLE(float, f32)
ARCHFIT_SMALL_GEMM_PORTABLE(double, f64)
#undef ARCHFIT_SMALL_GEMM_PORTABLE

#ifdef ARCHFIT_X86_DISPATCH
/* The SIMD bodies (smallgemm_impl.h), one per element type and instruction set.
 * AVX2 blocks of 4 rows: blocks of 6 (12 accumulators) were slower at the
 * commonest small-network product, 32 x 64 x 64, and no better elsewhere. */
#include "avx2_ops.h"
#define SG_MR 4
#include "smallgemm_impl.h"
#include "simd_ops_end.h"
#define AV_DOUBLE
#include "avx2_ops.h"
#define SG_MR 4
#include "smallgemm_impl.h"
#include "simd_ops_end.h"

#include "avx512_ops.h"
#define SG_MR 8
#include "smallgemm_impl.h"
#include "simd_ops_end.h"
#define AV_DOUBLE
#include "avx512_ops.h"
#define SG_MR 8
#include "smallgemm_impl.h"
#include "simd_ops_end.h"
#endif

/* The dispatchers: the body of cpu.h's level. `scratch` holds k * n elements
 * when trans_b (op(B) is copied there). */
static inline void archfit_small_gemm_f32(ARCHFIT_SMALL_GEMM_ARGS(float)) {
    ARCHFIT_ISA_CALL(archfit_small_gemm_f32, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc,
                     scratch);
}

static inline void archfit_small_gemm_f64(ARCHFIT_SMALL_GEMM_ARGS(double)) {
    ARCHFIT_ISA_CALL(archfit_small_gemm_f64, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc,
                     scratch);
}
#undef ARCHFIT_SMALL_GEMM_ARGS
#endif
