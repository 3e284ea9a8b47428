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

/* The body is written once (smallgemm_impl.h) and included for float
 * (archfit_small_gemm_f32) and double (archfit_small_gemm_f64). */
#include "avx2_ops.h"
#define SG_FN(name) name##_f32
#define SG_VECMAT archfit_vecmat_f32
#define SG_VECMAT_AVX2 archfit_vecmat_f32_avx2
#include "smallgemm_impl.h"     /* which undefines the SG_ macros */
#include "avx2_ops_end.h"

#define AV_DOUBLE
#include "avx2_ops.h"
#define SG_FN(name) name##_f64
#define SG_VECMAT archfit_vecmat_f64
#define SG_VECMAT_AVX2 archfit_vecmat_f64_avx2
#include "smallgemm_impl.h"
#include "avx2_ops_end.h"

#undef ARCHFIT_A

/* The dispatchers: the AVX2 body where cpu.h's level allows it. `scratch`
 * holds k * n elements when trans_b (op(B) is copied there). */
static inline void archfit_small_gemm_f32(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                          ptrdiff_t k, const float* A, ptrdiff_t lda,
                                          const float* B, ptrdiff_t ldb, float* C,
                                          ptrdiff_t ldc, float* scratch) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) {
        archfit_small_gemm_avx2_f32(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
        return;
    }
#endif
    archfit_small_gemm_portable_f32(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
}

static inline void archfit_small_gemm_f64(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                          ptrdiff_t k, const double* A, ptrdiff_t lda,
                                          const double* B, ptrdiff_t ldb, double* C,
                                          ptrdiff_t ldc, double* scratch) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) {
        archfit_small_gemm_avx2_f64(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
        return;
    }
#endif
    archfit_small_gemm_portable_f64(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, scratch);
}
#endif
