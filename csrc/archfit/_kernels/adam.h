/* Adam's update over a slice: the loop that touches every parameter at every
 * step. Plain C that the compiler vectorises; on x86-64 an AVX-512 or AVX2
 * build of the same loop is chosen at run time (16 or 8 floats at a time
 * instead of SSE's 4). No build contracts a multiply and an add into an FMA
 * (AVX-512F has FMA instructions, so its build says so), so every build gives
 * the same bits.
 *
 *   g = grad + pen * theta
 *   m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
 *   theta -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
 */
#ifndef ARCHFIT_ADAM_H
#define ARCHFIT_ADAM_H

#include <math.h>
#include <stddef.h>
#include "vecmat.h"

#define ARCHFIT_ADAM_BODY(T, SQRT)                                                 \
    for (ptrdiff_t i = 0; i < n; i++) {                                            \
        const T g = grad[i] + pen * theta[i];                                      \
        m[i] = b1 * m[i] + (1 - b1) * g;                                           \
        v[i] = b2 * v[i] + (1 - b2) * g * g;                                       \
        theta[i] -= step_size * m[i] / (SQRT(v[i]) * inv_sqrt_bc2 + eps);          \
    }

#define ARCHFIT_ADAM_ARGS(T)                                                       \
    ptrdiff_t n, T* restrict theta, const T* restrict grad, T* restrict m,         \
    T* restrict v, T b1, T b2, T eps, T step_size, T inv_sqrt_bc2, T pen

static inline void archfit_adam_f32_portable(ARCHFIT_ADAM_ARGS(float)) { ARCHFIT_ADAM_BODY(float, sqrtf) }
static inline void archfit_adam_f64_portable(ARCHFIT_ADAM_ARGS(double)) { ARCHFIT_ADAM_BODY(double, sqrt) }

#ifdef ARCHFIT_X86_DISPATCH
__attribute__((target("avx2")))
static inline void archfit_adam_f32_avx2(ARCHFIT_ADAM_ARGS(float)) { ARCHFIT_ADAM_BODY(float, sqrtf) }
__attribute__((target("avx2")))
static inline void archfit_adam_f64_avx2(ARCHFIT_ADAM_ARGS(double)) { ARCHFIT_ADAM_BODY(double, sqrt) }
/* The AVX-512 build: no contraction into FMA, which AVX-512F has (GCC: the
 * optimize attribute; Clang: its pragma); in a test build with
 * ARCHFIT_AVX512_EMULATED (cpu.h), AVX2 code. */
#if defined(ARCHFIT_AVX512_EMULATED)
#define ARCHFIT_ADAM_TARGET "avx2"
#elif defined(__clang__)
#define ARCHFIT_ADAM_TARGET "avx512f"
#else
#define ARCHFIT_ADAM_TARGET "avx512f,prefer-vector-width=512"
#endif
#if defined(__clang__)
#define ARCHFIT_ADAM_AVX512 __attribute__((target(ARCHFIT_ADAM_TARGET)))
#define ARCHFIT_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define ARCHFIT_ADAM_AVX512 __attribute__((target(ARCHFIT_ADAM_TARGET), optimize("fp-contract=off")))
#define ARCHFIT_NO_CONTRACT
#endif
ARCHFIT_ADAM_AVX512
static inline void archfit_adam_f32_avx512(ARCHFIT_ADAM_ARGS(float)) {
    ARCHFIT_NO_CONTRACT ARCHFIT_ADAM_BODY(float, sqrtf)
}
ARCHFIT_ADAM_AVX512
static inline void archfit_adam_f64_avx512(ARCHFIT_ADAM_ARGS(double)) {
    ARCHFIT_NO_CONTRACT ARCHFIT_ADAM_BODY(double, sqrt)
}
#undef ARCHFIT_ADAM_AVX512
#undef ARCHFIT_ADAM_TARGET
#undef ARCHFIT_NO_CONTRACT
#endif

/* The dispatchers: the build of cpu.h's level. */
static inline void archfit_adam_f32(ARCHFIT_ADAM_ARGS(float)) {
    ARCHFIT_ISA_CALL(archfit_adam_f32, n, theta, grad, m, v, b1, b2, eps, step_size, inv_sqrt_bc2,
                     pen);
}

static inline void archfit_adam_f64(ARCHFIT_ADAM_ARGS(double)) {
    ARCHFIT_ISA_CALL(archfit_adam_f64, n, theta, grad, m, v, b1, b2, eps, step_size, inv_sqrt_bc2,
                     pen);
}

#undef ARCHFIT_ADAM_ARGS
#undef ARCHFIT_ADAM_BODY
#endif
