/* GELU and its derivative in float32 without libm calls.
 *
 * glibc's erff and expf are scalar calls, so a loop over them runs one value
 * at a time. These are branch-free (clamps compile to min/max), so GCC
 * vectorises the loops that call them; every ISA path runs this one build of
 * the code, so its bits are the same on every CPU. float64 keeps libm's erf.
 *
 * erf: x P(x^2) / Q(x^2) with x clamped to [-4, 4] (erf(4) rounds to 1 in
 * float32), the rational minimax approximation Eigen and XLA use for float32
 * (coefficients theirs); absolute error within a few float32 ulps of 1.
 * exp (of a non-positive argument): n = round(x / ln 2), r = x - n ln 2 in two
 * parts (Cody and Waite), e^r by Cephes' expf polynomial, times 2^n built in
 * the exponent bits; below -87 it is 0 (so 2^n stays a normal number).
 */
#ifndef ARCHFIT_GELU_H
#define ARCHFIT_GELU_H

#include <stdint.h>
#include <string.h>

static inline float archfit_clamp_f32(float x, float lo, float hi)
{
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

static inline float archfit_erf_f32(float x)
{
    const float a13 = -2.72614225801306e-10f, a11 = 2.77068142495902e-08f,
                a9 = -2.10102402082508e-06f, a7 = -5.69250639462346e-05f,
                a5 = -7.34990630326855e-04f, a3 = -2.95459980854025e-03f,
                a1 = -1.60960333262415e-02f;
    const float b8 = -1.45660718464996e-05f, b6 = -2.13374055278905e-04f,
                b4 = -1.68282697438203e-03f, b2 = -7.37332916720468e-03f,
                b0 = -1.42647390514189e-02f;
    float c = archfit_clamp_f32(x, -4.0f, 4.0f), t = c * c, p, q, e;
    p = ((((((a13 * t + a11) * t + a9) * t + a7) * t + a5) * t + a3) * t + a1) * c;
    q = (((b8 * t + b6) * t + b4) * t + b2) * t + b0;
    e = p / q;
    /* exactly +-1 from 4 on, where float32's erf is (so gelu(-huge) is -0, not huge) */
    e = x >= 4.0f ? 1.0f : e;
    return x <= -4.0f ? -1.0f : e;
}

/* e^x for x <= 0 (larger x are not asked for); 0 below -87. */
static inline float archfit_exp_nonpositive_f32(float x)
{
    const float shift = 12582912.0f;            /* 1.5 * 2^23: adding it rounds to an integer */
    float c = archfit_clamp_f32(x, -87.0f, 0.0f), n, r, p, scale;
    int32_t bits;
    n = (c * 1.44269504088896341f + shift) - shift;
    r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
    p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
          + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    p = (p * r) * r + r + 1.0f;
    bits = ((int32_t) n + 127) << 23;
    memcpy(&scale, &bits, sizeof scale);
    return x < -87.0f ? 0.0f : p * scale;       /* e^-87 is 1.6e-38: flush below it */
}

static inline float archfit_gelu_f32(float z)
{
    return 0.5f * z * (1.0f + archfit_erf_f32(z * 0.70710678118654752440f));
}

/* d/dz z Phi(z) = Phi(z) + z phi(z) */
static inline float archfit_gelu_grad_f32(float z)
{
    return 0.5f * (1.0f + archfit_erf_f32(z * 0.70710678118654752440f))
           + z * 0.39894228040143267794f * archfit_exp_nonpositive_f32(-0.5f * z * z);
}

#endif
