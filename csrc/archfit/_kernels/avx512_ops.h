/* The AVX-512 operations of one element type under avx2_ops.h's neutral
 * names (AV_*): the same kernel bodies, sixteen floats or eight doubles a
 * register, masks in mask registers. Undone by simd_ops_end.h. No include
 * guard: included once per type and body.
 *
 * AVX-512F implies AVX2 to GCC, not FMA, so the target names all three
 * (every AVX-512 CPU has them). In a test build with ARCHFIT_AVX512_EMULATED
 * the bodies are AVX2+FMA code over emulated intrinsics (avx512_emulation.h).
 */
#ifdef ARCHFIT_AVX512_EMULATED
#define AV_TARGET __attribute__((target("avx2,fma")))
#else
#define AV_TARGET __attribute__((target("avx512f,avx2,fma")))
#endif
#ifndef AV_DOUBLE
#define AV_NAME(name) name##_f32_avx512
#define AV_TYPED(name) name##_f32    /* the type's plain C helpers */
#define AV_T float
#define AV_V __m512
#define AV_LANES 16
#define AV_MASK_T __mmask16
#define AV_LOAD _mm512_loadu_ps
#define AV_STORE _mm512_storeu_ps
#define AV_MLOAD(p, mask) _mm512_maskz_loadu_ps((mask), (p))
#define AV_MSTORE(p, mask, v) _mm512_mask_storeu_ps((p), (mask), (v))
#define AV_ZERO _mm512_setzero_ps
#define AV_SET1 _mm512_set1_ps
#define AV_BCAST(p) _mm512_set1_ps(*(p))
#define AV_FMA _mm512_fmadd_ps
#else
#define AV_NAME(name) name##_f64_avx512
#define AV_TYPED(name) name##_f64
#define AV_T double
#define AV_V __m512d
#define AV_LANES 8
#define AV_MASK_T __mmask8
#define AV_LOAD _mm512_loadu_pd
#define AV_STORE _mm512_storeu_pd
#define AV_MLOAD(p, mask) _mm512_maskz_loadu_pd((mask), (p))
#define AV_MSTORE(p, mask, v) _mm512_mask_storeu_pd((p), (mask), (v))
#define AV_ZERO _mm512_setzero_pd
#define AV_SET1 _mm512_set1_pd
#define AV_BCAST(p) _mm512_set1_pd(*(p))
#define AV_FMA _mm512_fmadd_pd
#endif
/* the lanes below `left` (any integer), for masked loads and stores */
#define AV_MASK(left)                                                                   \
    ((AV_MASK_T)((left) >= AV_LANES ? (1u << AV_LANES) - 1                              \
                 : (left) <= 0      ? 0u                                                \
                                    : (1u << (unsigned)(left)) - 1))
