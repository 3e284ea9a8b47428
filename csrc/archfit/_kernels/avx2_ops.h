/* The AVX2 operations of one element type under neutral names (AV_*), for
 * the type-generic kernel bodies (vecmat_impl.h, smallgemm_impl.h,
 * packgemm_impl.h): float, or double when AV_DOUBLE is defined. Include it
 * before a body and avx2_ops_end.h after it, which undefines them (and
 * AV_DOUBLE), ready for the next type. No include guard: it is meant to be
 * included once per type and body.
 */
#ifndef AV_DOUBLE
#define AV_T float
#define AV_V __m256
#define AV_LANES 8
#define AV_LOAD _mm256_loadu_ps
#define AV_STORE _mm256_storeu_ps
#define AV_MLOAD _mm256_maskload_ps
#define AV_MSTORE _mm256_maskstore_ps
#define AV_ZERO _mm256_setzero_ps
#define AV_SET1 _mm256_set1_ps
#define AV_BCAST _mm256_broadcast_ss
#define AV_FMA _mm256_fmadd_ps
#define AV_LANE_INDEX _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
/* the lanes below `left` (lanes: AV_LANE_INDEX), for masked loads/stores */
#define AV_MASK(left, lanes) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left)), lanes)
#else
#define AV_T double
#define AV_V __m256d
#define AV_LANES 4
#define AV_LOAD _mm256_loadu_pd
#define AV_STORE _mm256_storeu_pd
#define AV_MLOAD _mm256_maskload_pd
#define AV_MSTORE _mm256_maskstore_pd
#define AV_ZERO _mm256_setzero_pd
#define AV_SET1 _mm256_set1_pd
#define AV_BCAST _mm256_broadcast_sd
#define AV_FMA _mm256_fmadd_pd
#define AV_LANE_INDEX _mm256_setr_epi64x(0, 1, 2, 3)
#define AV_MASK(left, lanes) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(left)), lanes)
#endif
