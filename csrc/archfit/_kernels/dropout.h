/* Inverted-dropout masks from the SplitMix64 stream of _random.pyx.
 *
 * Element i of a call draws u_i = mix(s + (i + 1) G) >> 11, a 53-bit integer,
 * and the state ends at s + n G: the draws next_double() makes, one per
 * element. A unit is dropped when u_i 2^-53 < rate, that is when
 * u_i < ceil(rate 2^53) (scaling by 2^53 is exact), so the comparison is an
 * integer one and the mask (0 or keep) has the same bits on every path. The
 * scalar loop paid two 64-bit multiplies, an integer-to-double conversion and
 * an unpredictable branch per element (its cost: benchmarks/RESULTS.md); the
 * AVX2 body draws four at a time, its 64-bit products from 32-bit ones, and
 * the AVX-512 level runs it too (AVX-512F has no 64-bit multiply either).
 */
#ifndef ARCHFIT_DROPOUT_H
#define ARCHFIT_DROPOUT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "splitmix.h"

/* The draws below which a unit is dropped: ceil(rate 2^53), rate in [0, 1). */
static inline uint64_t archfit_dropout_threshold(double rate) {
    return (uint64_t)ceil(rate * 9007199254740992.0);
}

#define ARCHFIT_DROPOUT_ARGS(T) T* mask, ptrdiff_t n, double rate, uint64_t* state

#define ARCHFIT_DROPOUT_PORTABLE(T, SUFFIX)                                            \
    static inline void archfit_dropout_##SUFFIX##_portable(ARCHFIT_DROPOUT_ARGS(T)) {  \
        const uint64_t below = archfit_dropout_threshold(rate);                        \
        const T keep = (T)(1.0 / (1.0 - rate));                                        \
        uint64_t s = *state;                                                           \
        for (ptrdiff_t i = 0; i < n; i++) {                                            \
            s += ARCHFIT_GOLDEN;                                                       \
            mask[i] = (archfit_splitmix(s) >> 11) < below ? (T)0 : keep;               \
        }                                                                              \
        *state = s;                                                                    \
    }
ARCHFIT_DROPOUT_PORTABLE(float, f32)
ARCHFIT_DROPOUT_PORTABLE(double, f64)
#undef ARCHFIT_DROPOUT_PORTABLE

#ifdef ARCHFIT_X86_DISPATCH
/* a * b mod 2^64 in each lane, from 32 x 32 -> 64-bit products */
__attribute__((target("avx2")))
static inline __m256i archfit_mul64_avx2(__m256i a, __m256i b) {
    const __m256i lo = _mm256_mul_epu32(a, b);
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b),
                                           _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32)));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

/* Four draws' "dropped" flags (all ones where u < below), advancing the states. */
__attribute__((target("avx2")))
static inline __m256i archfit_dropped4_avx2(__m256i* s, __m256i step, __m256i below) {
    const __m256i m1 = _mm256_set1_epi64x((long long)ARCHFIT_MIX1);
    const __m256i m2 = _mm256_set1_epi64x((long long)ARCHFIT_MIX2);
    __m256i z = *s;
    *s = _mm256_add_epi64(z, step);
    z = archfit_mul64_avx2(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), m1);
    z = archfit_mul64_avx2(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), m2);
    z = _mm256_srli_epi64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 31)), 11);
    return _mm256_cmpgt_epi64(below, z);      /* both below 2^63: a signed compare */
}

#define ARCHFIT_DROPOUT_AVX2_START                                                     \
    const __m256i below4 = _mm256_set1_epi64x((long long)archfit_dropout_threshold(rate)); \
    const __m256i step = _mm256_set1_epi64x((long long)(4 * ARCHFIT_GOLDEN));          \
    uint64_t s = *state;                                                               \
    __m256i s4 = _mm256_setr_epi64x((long long)(s + ARCHFIT_GOLDEN),                   \
                                    (long long)(s + 2 * ARCHFIT_GOLDEN),               \
                                    (long long)(s + 3 * ARCHFIT_GOLDEN),               \
                                    (long long)(s + 4 * ARCHFIT_GOLDEN));              \
    ptrdiff_t i = 0;
/* the last n - i draws, one at a time, from the state after the first i */
#define ARCHFIT_DROPOUT_AVX2_TAIL(SUFFIX)                                              \
    *state = s + (uint64_t)i * ARCHFIT_GOLDEN;                                         \
    archfit_dropout_##SUFFIX##_portable(mask + i, n - i, rate, state);

__attribute__((target("avx2")))
static inline void archfit_dropout_f64_avx2(ARCHFIT_DROPOUT_ARGS(double)) {
    const __m256d keep4 = _mm256_set1_pd(1.0 / (1.0 - rate));
    ARCHFIT_DROPOUT_AVX2_START
    for (; i + 4 <= n; i += 4) {
        const __m256i dropped = archfit_dropped4_avx2(&s4, step, below4);
        _mm256_storeu_pd(mask + i, _mm256_andnot_pd(_mm256_castsi256_pd(dropped), keep4));
    }
    ARCHFIT_DROPOUT_AVX2_TAIL(f64)
}

__attribute__((target("avx2")))
static inline void archfit_dropout_f32_avx2(ARCHFIT_DROPOUT_ARGS(float)) {
    const __m256 keep8 = _mm256_set1_ps((float)(1.0 / (1.0 - rate)));
    const __m256i low_halves = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    ARCHFIT_DROPOUT_AVX2_START
    for (; i + 8 <= n; i += 8) {
        /* eight draws: each 64-bit flag's low half, in order */
        const __m256i a = _mm256_permutevar8x32_epi32(archfit_dropped4_avx2(&s4, step, below4),
                                                      low_halves);
        const __m256i b = _mm256_permutevar8x32_epi32(archfit_dropped4_avx2(&s4, step, below4),
                                                      low_halves);
        const __m256i dropped = _mm256_blend_epi32(a, b, 0xF0);
        _mm256_storeu_ps(mask + i, _mm256_andnot_ps(_mm256_castsi256_ps(dropped), keep8));
    }
    ARCHFIT_DROPOUT_AVX2_TAIL(f32)
}
#undef ARCHFIT_DROPOUT_AVX2_START
#undef ARCHFIT_DROPOUT_AVX2_TAIL
#endif

/* The dispatchers: the AVX2 body on both x86 levels (the bits are the same on every path). */
static inline void archfit_dropout_f32(ARCHFIT_DROPOUT_ARGS(float)) {
    ARCHFIT_AVX2_OR_PORTABLE(archfit_dropout_f32)(mask, n, rate, state);
}
static inline void archfit_dropout_f64(ARCHFIT_DROPOUT_ARGS(double)) {
    ARCHFIT_AVX2_OR_PORTABLE(archfit_dropout_f64)(mask, n, rate, state);
}

#undef ARCHFIT_DROPOUT_ARGS
#endif
