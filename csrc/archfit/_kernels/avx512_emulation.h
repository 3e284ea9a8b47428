/* The AVX-512 intrinsics archfit's kernel bodies use (avx512_ops.h), emulated
 * with AVX2 and FMA, so that the AVX-512 bodies can run and be tested on a
 * CPU without AVX-512. For tests only: a build with ARCHFIT_AVX512_EMULATED
 * defined (setup.py's ARCHFIT_EMULATE_AVX512=1; tests/emulation's harness)
 * includes it from cpu.h, compiles the AVX-512 bodies for AVX2 and FMA, and
 * reports the AVX-512 level on a CPU with AVX2 and FMA.
 *
 * Each emulated operation has the instruction's semantics lane by lane: a
 * 512-bit register is two 256-bit halves; an FMA is the AVX2 FMA of each half
 * (one rounding per lane, as vfmadd231ps); a masked load reads only the lanes
 * whose mask bit is set and zeroes the others; a masked store writes only
 * those lanes. An intrinsic the bodies start to use without an emulation
 * here fails to compile (AVX-512 code in an AVX2 function), never silently.
 */
#ifndef ARCHFIT_AVX512_EMULATION_H
#define ARCHFIT_AVX512_EMULATION_H

#include <immintrin.h>    /* first: the names below replace its own */
#include <stdint.h>

#define EMU_TARGET __attribute__((target("avx2,fma")))

typedef struct { __m256 h[2]; } emu_m512;
typedef struct { __m256d h[2]; } emu_m512d;
typedef uint16_t emu_mmask16;
typedef uint8_t emu_mmask8;

#define __m512 emu_m512
#define __m512d emu_m512d
#define __mmask16 emu_mmask16
#define __mmask8 emu_mmask8

EMU_TARGET static inline emu_m512 emu_loadu_ps(const float* p) {
    emu_m512 r = {{_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}};
    return r;
}
EMU_TARGET static inline emu_m512d emu_loadu_pd(const double* p) {
    emu_m512d r = {{_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)}};
    return r;
}
EMU_TARGET static inline void emu_storeu_ps(float* p, emu_m512 v) {
    _mm256_storeu_ps(p, v.h[0]);
    _mm256_storeu_ps(p + 8, v.h[1]);
}
EMU_TARGET static inline void emu_storeu_pd(double* p, emu_m512d v) {
    _mm256_storeu_pd(p, v.h[0]);
    _mm256_storeu_pd(p + 4, v.h[1]);
}
EMU_TARGET static inline emu_m512 emu_maskz_loadu_ps(emu_mmask16 k, const float* p) {
    float lanes[16];
    for (int i = 0; i < 16; i++) lanes[i] = (k >> i) & 1 ? p[i] : 0.0f;
    return emu_loadu_ps(lanes);
}
EMU_TARGET static inline emu_m512d emu_maskz_loadu_pd(emu_mmask8 k, const double* p) {
    double lanes[8];
    for (int i = 0; i < 8; i++) lanes[i] = (k >> i) & 1 ? p[i] : 0.0;
    return emu_loadu_pd(lanes);
}
EMU_TARGET static inline void emu_mask_storeu_ps(float* p, emu_mmask16 k, emu_m512 v) {
    float lanes[16];
    emu_storeu_ps(lanes, v);
    for (int i = 0; i < 16; i++)
        if ((k >> i) & 1) p[i] = lanes[i];
}
EMU_TARGET static inline void emu_mask_storeu_pd(double* p, emu_mmask8 k, emu_m512d v) {
    double lanes[8];
    emu_storeu_pd(lanes, v);
    for (int i = 0; i < 8; i++)
        if ((k >> i) & 1) p[i] = lanes[i];
}
EMU_TARGET static inline emu_m512 emu_set1_ps(float x) {
    emu_m512 r = {{_mm256_set1_ps(x), _mm256_set1_ps(x)}};
    return r;
}
EMU_TARGET static inline emu_m512d emu_set1_pd(double x) {
    emu_m512d r = {{_mm256_set1_pd(x), _mm256_set1_pd(x)}};
    return r;
}
EMU_TARGET static inline emu_m512 emu_setzero_ps(void) { return emu_set1_ps(0.0f); }
EMU_TARGET static inline emu_m512d emu_setzero_pd(void) { return emu_set1_pd(0.0); }
EMU_TARGET static inline emu_m512 emu_fmadd_ps(emu_m512 a, emu_m512 b, emu_m512 c) {
    emu_m512 r = {{_mm256_fmadd_ps(a.h[0], b.h[0], c.h[0]),
                   _mm256_fmadd_ps(a.h[1], b.h[1], c.h[1])}};
    return r;
}
EMU_TARGET static inline emu_m512d emu_fmadd_pd(emu_m512d a, emu_m512d b, emu_m512d c) {
    emu_m512d r = {{_mm256_fmadd_pd(a.h[0], b.h[0], c.h[0]),
                    _mm256_fmadd_pd(a.h[1], b.h[1], c.h[1])}};
    return r;
}

#define _mm512_loadu_ps(p) emu_loadu_ps((const float*)(p))
#define _mm512_loadu_pd(p) emu_loadu_pd((const double*)(p))
#define _mm512_storeu_ps(p, v) emu_storeu_ps((float*)(p), (v))
#define _mm512_storeu_pd(p, v) emu_storeu_pd((double*)(p), (v))
#define _mm512_maskz_loadu_ps(k, p) emu_maskz_loadu_ps((k), (const float*)(p))
#define _mm512_maskz_loadu_pd(k, p) emu_maskz_loadu_pd((k), (const double*)(p))
#define _mm512_mask_storeu_ps(p, k, v) emu_mask_storeu_ps((float*)(p), (k), (v))
#define _mm512_mask_storeu_pd(p, k, v) emu_mask_storeu_pd((double*)(p), (k), (v))
#define _mm512_set1_ps emu_set1_ps
#define _mm512_set1_pd emu_set1_pd
#define _mm512_setzero_ps emu_setzero_ps
#define _mm512_setzero_pd emu_setzero_pd
#define _mm512_fmadd_ps emu_fmadd_ps
#define _mm512_fmadd_pd emu_fmadd_pd

#endif
