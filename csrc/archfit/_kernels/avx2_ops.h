/* The AVX2 operations of one element type under neutral names (AV_*), for
 * the type-generic kernel bodies (vecmat_impl.h, smallgemm_impl.h,
 * packgemm_impl.h): float, or double when AV_DOUBLE is defined. avx512_ops.h
 * defines the same names for AVX-512, so each body is written once for both
 * instruction sets. Include it before a body and simd_ops_end.h after it,
 * which undefines them (and AV_DOUBLE), ready for the next type or
 * instruction set. No include guard: it is meant to be included once per
 * type and body.
 */
#define AV_TARGET __attribute__((target("avx2,fma")))
#define AV_MASK_T __m256i
#ifndef AV_DOUBLE
#define AV_NAME(name) name##_f32_avx2
#define AV_TYPED(name) name##_f32    /* the type's plain C helpers */
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
/* the lanes below `left` (any integer), for masked loads and stores */
#define AV_MASK(left) \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#else
#define AV_NAME(name) name##_f64_avx2
#define AV_TYPED(name) name##_f64
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
#define AV_MASK(left) \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(left)), _mm256_setr_epi64x(0, 1, 2, 3))
#endif
