/* Are all values finite? An exponent field of all ones marks inf and NaN; an
 * integer OR over that test vectorises (a floating-point sum of x - x, the
 * obvious trick, is one serial dependency chain the compiler may not reorder).
 * The may_alias types make reading the floats' bits well-defined. */
#ifndef ARCHFIT_FINITE_H
#define ARCHFIT_FINITE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
typedef uint32_t __attribute__((__may_alias__)) archfit_bits32;
typedef uint64_t __attribute__((__may_alias__)) archfit_bits64;
#else
typedef uint32_t archfit_bits32;
typedef uint64_t archfit_bits64;
#endif

static inline int archfit_all_finite_f32(const float* x, ptrdiff_t n) {
    const archfit_bits32* b = (const archfit_bits32*)x;
    uint32_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) bad |= (uint32_t)((b[i] & 0x7f800000u) == 0x7f800000u);
    return bad == 0;
}

static inline int archfit_all_finite_f64(const double* x, ptrdiff_t n) {
    const archfit_bits64* b = (const archfit_bits64*)x;
    uint64_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++)
        bad |= (uint64_t)((b[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull);
    return bad == 0;
}

#endif
