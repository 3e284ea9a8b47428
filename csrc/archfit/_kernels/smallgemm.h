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
#define SG_T float
#define SG_FN(name) name##_f32
#define SG_VECMAT archfit_vecmat_f32
#define SG_VECMAT_AVX2 archfit_vecmat_f32_avx2
#define SG_LANES 8
#define SG_V __m256
#define SG_LOAD _mm256_loadu_ps
#define SG_STORE _mm256_storeu_ps
#define SG_MLOAD _mm256_maskload_ps
#define SG_MSTORE _mm256_maskstore_ps
#define SG_ZERO _mm256_setzero_ps
#define SG_SET1 _mm256_set1_ps
#define SG_FMA _mm256_fmadd_ps
#define SG_MASK(left) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left)), \
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#include "smallgemm_impl.h"     /* which undefines the SG_ macros */

#define SG_T double
#define SG_FN(name) name##_f64
#define SG_VECMAT archfit_vecmat_f64
#define SG_VECMAT_AVX2 archfit_vecmat_f64_avx2
#define SG_LANES 4
#define SG_V __m256d
#define SG_LOAD _mm256_loadu_pd
#define SG_STORE _mm256_storeu_pd
#define SG_MLOAD _mm256_maskload_pd
#define SG_MSTORE _mm256_maskstore_pd
#define SG_ZERO _mm256_setzero_pd
#define SG_SET1 _mm256_set1_pd
#define SG_FMA _mm256_fmadd_pd
#define SG_MASK(left) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(left)), \
                                         _mm256_setr_epi64x(0, 1, 2, 3))
#include "smallgemm_impl.h"

#undef ARCHFIT_A
#endif
