/* C = op(A) op(B) (+ C) with bfloat16 operands and float32 accumulation: the
 * products of a fit with Hyperparameters(precision="bfloat16").
 *
 * Every operand is rounded from float32 to bfloat16 (nearest, ties to even;
 * a subnormal becomes a signed zero, as the instructions' DAZ treats it), k is
 * taken in pairs (k odd: a zero after the last), and each element of C is one
 * chain over the pairs in increasing order, continued across blocks of k from
 * C itself: a row's result does not depend on the other rows, the blocking or
 * the thread that computes it.
 *
 * Bodies, by the CPU's level (cpu.h):
 *   AMX          TDPBF16PS on 16 x 16 tiles; per pair, the even term then the
 *                odd (the instruction's order)
 *   AVX512_BF16  VDPBF16PS, 4 rows x 64 columns; per pair, the odd term then
 *                the even (the instruction's order)
 *   AVX2 and up  bfloat16 widened to float32 and two FMAs per pair in
 *                VDPBF16PS's order: the same bits as VDPBF16PS (the products of
 *                two bfloat16 are exact in float32, and the kernels run with
 *                flush-to-zero and denormals-are-zero)
 *   portable     the same in plain C
 * The operands are rounded and packed (in 8 lanes from AVX2 up, 16 with the
 * CPU's own conversion on AVX512_BF16; the same bits as the plain C): op(A)
 * as rows of pairs of k (a 32-bit word: the even element low, the odd high)
 * in every call, op(B) in panels of NB columns of pairs, either in the call
 * or once for many calls (a fit keeps each layer's W and W^T packed and
 * re-packs the rows each update changes), both zero-padded to whole blocks.
 * The product then walks a panel of B (in L2) against MB rows of A at a
 * time, KB pairs of k at a time, the MB x NB block of C in L1.
 *
 * ARCHFIT_BF16_EMULATED (tests/emulation/bf16_emulation.c): the AVX512_BF16
 * and AMX bodies compiled with their instructions emulated lane by lane in
 * plain C, to test them on any CPU.
 */
#ifndef ARCHFIT_BF16_H
#define ARCHFIT_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

#if defined(ARCHFIT_AVX512_EMULATED) && !defined(ARCHFIT_BF16_EMULATED)
/* a test build with AVX-512 emulated has VDPBF16PS and AMX emulated too: its
 * kernel suite runs those bodies (one thread: the emulated tiles are shared) */
#define ARCHFIT_BF16_EMULATED 1
#endif

#define ARCHFIT_BF16_KB 256    /* pairs of k per block */
#define ARCHFIT_BF16_NB 64     /* columns of C per block */
#define ARCHFIT_BF16_MB 16     /* rows of C per block: an AMX tile's */

/* x rounded to bfloat16 (the top 16 bits of a float32). */
static inline uint16_t archfit_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7F800000u) == 0x7F800000u)       /* infinity, or NaN kept quiet */
        return (uint16_t)((u >> 16) | ((u & 0x007FFFFFu) ? 0x0040u : 0u));
    if ((u & 0x7F800000u) == 0)                 /* zero or subnormal: signed zero */
        return (uint16_t)((u >> 16) & 0x8000u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float archfit_bf16_float(uint32_t bits16) {
    const uint32_t u = bits16 << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The bfloat16 of each of 8 floats, in the low half of its lane (AVX2). */
#ifdef ARCHFIT_X86_DISPATCH
__attribute__((target("avx2")))
static inline __m256i archfit_bf16_round8(__m256 x) {
    const __m256i u = _mm256_castps_si256(x);
    const __m256i exponent = _mm256_and_si256(u, _mm256_set1_epi32(0x7F800000));
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd)), 16);
    const __m256i top = _mm256_srli_epi32(u, 16);
    const __m256i nan = _mm256_andnot_si256(
        _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x007FFFFF)),
                           _mm256_setzero_si256()), _mm256_set1_epi32(0x0040));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(top, nan),
                           _mm256_cmpeq_epi32(exponent, _mm256_set1_epi32(0x7F800000)));
    return _mm256_blendv_epi8(r, _mm256_and_si256(top, _mm256_set1_epi32(0x8000)),
                              _mm256_cmpeq_epi32(exponent, _mm256_setzero_si256()));
}
#endif

static inline uint32_t archfit_bf16_pair(float lo, float hi) {
    return archfit_bf16_round(lo) | (uint32_t)archfit_bf16_round(hi) << 16;
}

#ifdef ARCHFIT_X86_DISPATCH
__attribute__((target("avx2")))
static void archfit_bf16_adjacent_avx2(const float* x, ptrdiff_t whole, uint32_t* out) {
    const __m256i gather = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    ptrdiff_t q = 0;
    for (; q + 4 <= whole; q += 4) {
        /* lanes e0 o0 e1 o1 ...: each qword's low dword becomes e | o << 16 */
        const __m256i r = archfit_bf16_round8(_mm256_loadu_ps(x + 2 * q));
        const __m256i t = _mm256_or_si256(r, _mm256_srli_epi64(r, 16));
        _mm_storeu_si128((__m128i*)(out + q),
                         _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(t, gather)));
    }
    for (; q < whole; q++)
        out[q] = archfit_bf16_pair(x[2 * q], x[2 * q + 1]);
}

__attribute__((target("avx2")))
static void archfit_bf16_across_avx2(const float* lo, const float* hi, ptrdiff_t count,
                                     uint32_t* out) {
    ptrdiff_t q = 0;
    for (; q + 8 <= count; q += 8) {
        __m256i w = archfit_bf16_round8(_mm256_loadu_ps(lo + q));
        if (hi != NULL)
            w = _mm256_or_si256(
                w, _mm256_slli_epi32(archfit_bf16_round8(_mm256_loadu_ps(hi + q)), 16));
        _mm256_storeu_si256((__m256i*)(out + q), w);
    }
    for (; q < count; q++)
        out[q] = hi != NULL ? archfit_bf16_pair(lo[q], hi[q]) : archfit_bf16_round(lo[q]);
}
#endif

#if defined(ARCHFIT_X86_DISPATCH) && !defined(ARCHFIT_BF16_EMULATED)
/* The same with the CPU's own conversion (VCVTNE2PS2BF16: nearest even,
 * subnormals to signed zero, NaN made quiet - the rounding above). */
#define ARCHFIT_BF16_CONVERT_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
ARCHFIT_BF16_CONVERT_TARGET
static void archfit_bf16_adjacent_native(const float* x, ptrdiff_t whole, uint32_t* out) {
    ptrdiff_t q = 0;
    for (; q + 16 <= whole; q += 16)    /* 32 floats, in order: word q is x[2q] | x[2q+1] << 16 */
        _mm512_storeu_si512((void*)(out + q),
                            (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 2 * q + 16),
                                                         _mm512_loadu_ps(x + 2 * q)));
    for (; q < whole; q++)
        out[q] = archfit_bf16_pair(x[2 * q], x[2 * q + 1]);
}

ARCHFIT_BF16_CONVERT_TARGET
static void archfit_bf16_across_native(const float* lo, const float* hi, ptrdiff_t count,
                                       uint32_t* out) {
    ptrdiff_t q = 0;
    for (; q + 16 <= count; q += 16) {
        __m512i w = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(lo + q)));
        if (hi != NULL)
            w = _mm512_or_si512(w, _mm512_slli_epi32(_mm512_cvtepu16_epi32(
                                   (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(hi + q))), 16));
        _mm512_storeu_si512((void*)(out + q), w);
    }
    for (; q < count; q++)
        out[q] = hi != NULL ? archfit_bf16_pair(lo[q], hi[q]) : archfit_bf16_round(lo[q]);
}
#endif

/* How the operands are rounded and packed: plain C, AVX2, or the CPU's own
 * conversion (AVX512_BF16, not under emulation); the same bits each way. */
enum { ARCHFIT_BF16_PACK_PLAIN = 0, ARCHFIT_BF16_PACK_AVX2 = 1, ARCHFIT_BF16_PACK_NATIVE = 2 };

static inline int archfit_bf16_pack_way(int plain) {
#ifdef ARCHFIT_X86_DISPATCH
    if (plain)
        return ARCHFIT_BF16_PACK_PLAIN;
#ifndef ARCHFIT_BF16_EMULATED
    if (archfit_isa() >= ARCHFIT_ISA_AVX512_BF16)
        return ARCHFIT_BF16_PACK_NATIVE;
#endif
    return archfit_isa() >= ARCHFIT_ISA_AVX2 ? ARCHFIT_BF16_PACK_AVX2 : ARCHFIT_BF16_PACK_PLAIN;
#else
    (void)plain;
    return ARCHFIT_BF16_PACK_PLAIN;
#endif
}

/* out[q] = the pair (x[2q], x[2q + 1]) for q < (k + 1) / 2; an odd k's last
 * element pairs with a zero. */
static void archfit_bf16_adjacent(const float* x, ptrdiff_t k, uint32_t* out, int way) {
    const ptrdiff_t whole = k / 2;
#if defined(ARCHFIT_X86_DISPATCH) && !defined(ARCHFIT_BF16_EMULATED)
    if (way == ARCHFIT_BF16_PACK_NATIVE)
        archfit_bf16_adjacent_native(x, whole, out);
    else
#endif
#ifdef ARCHFIT_X86_DISPATCH
    if (way != ARCHFIT_BF16_PACK_PLAIN)
        archfit_bf16_adjacent_avx2(x, whole, out);
    else
#endif
        for (ptrdiff_t q = 0; q < whole; q++)
            out[q] = archfit_bf16_pair(x[2 * q], x[2 * q + 1]);
    (void)way;
    if (k % 2)
        out[whole] = archfit_bf16_round(x[k - 1]);
}

/* out[q] = the pair (lo[q], hi[q]) for q < count; hi NULL: zeros. */
static void archfit_bf16_across(const float* lo, const float* hi, ptrdiff_t count,
                                uint32_t* out, int way) {
#if defined(ARCHFIT_X86_DISPATCH) && !defined(ARCHFIT_BF16_EMULATED)
    if (way == ARCHFIT_BF16_PACK_NATIVE) {
        archfit_bf16_across_native(lo, hi, count, out);
        return;
    }
#endif
#ifdef ARCHFIT_X86_DISPATCH
    if (way != ARCHFIT_BF16_PACK_PLAIN) {
        archfit_bf16_across_avx2(lo, hi, count, out);
        return;
    }
#endif
    (void)way;
    for (ptrdiff_t q = 0; q < count; q++)
        out[q] = hi != NULL ? archfit_bf16_pair(lo[q], hi[q]) : archfit_bf16_round(lo[q]);
}

/* Scratch words for a transposed operand's rows. */
#define ARCHFIT_BF16_STRIP 256

/* The packed layouts, one place: pairs of k padded to 16 (an AMX tile's),
 * op(A)'s rows to MB, op(B)'s columns to NB. op(A): the word of row i and pair
 * q at P[i * kpad + q]. op(B): panels of NB columns, each kpad pairs of NB
 * words, so that a body's block of B is one contiguous run (rows of B a
 * power of two apart would share cache sets): the word of pair q and column j
 * at P[(j / NB) * kpad * NB + q * NB + j % NB]. */
static inline ptrdiff_t archfit_bf16_kpad(ptrdiff_t k) { return ((k + 1) / 2 + 15) / 16 * 16; }
static inline ptrdiff_t archfit_bf16_npad(ptrdiff_t n) {
    return (n + ARCHFIT_BF16_NB - 1) / ARCHFIT_BF16_NB * ARCHFIT_BF16_NB;
}
/* Words of op(B) (k x n) packed. */
static inline ptrdiff_t archfit_bf16_packed_words(ptrdiff_t k, ptrdiff_t n) {
    return archfit_bf16_kpad(k) * archfit_bf16_npad(n);
}
static inline uint32_t* archfit_bf16_b_word(uint32_t* P, ptrdiff_t kpad, ptrdiff_t q,
                                             ptrdiff_t j) {
    return P + (j / ARCHFIT_BF16_NB) * kpad * ARCHFIT_BF16_NB + q * ARCHFIT_BF16_NB
             + j % ARCHFIT_BF16_NB;
}

#ifdef ARCHFIT_X86_DISPATCH
/* out[c * ldo + r] = in[r * ldi + c] for an 8 x 8 block of words (AVX2). */
__attribute__((target("avx2")))
static inline void archfit_bf16_transpose8(const uint32_t* in, ptrdiff_t ldi, uint32_t* out,
                                           ptrdiff_t ldo) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps((const float*)(in + i * ldi));     /* moved, never computed */
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps((float*)(out + i * ldo), _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps((float*)(out + (i + 4) * ldo),
                         _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}
#endif

/* out[c * ldo + r] = in[r * ldi + c] for r < rows, c < cols: a transposed
 * operand's words to their packed places, 8 x 8 at a time from AVX2 up. */
static void archfit_bf16_transpose(const uint32_t* in, ptrdiff_t ldi, ptrdiff_t rows,
                                   ptrdiff_t cols, uint32_t* out, ptrdiff_t ldo, int way) {
    ptrdiff_t c = 0;
#ifdef ARCHFIT_X86_DISPATCH
    if (way != ARCHFIT_BF16_PACK_PLAIN && rows == 8)
        for (; c + 8 <= cols; c += 8)
            archfit_bf16_transpose8(in + c, ldi, out + c * ldo, ldo);
#endif
    (void)way;
    for (; c < cols; c++)
        for (ptrdiff_t r = 0; r < rows; r++)
            out[c * ldo + r] = in[r * ldi + c];
}

/* op(A) (m x k; A row-major with leading dimension lda, transposed when
 * `trans`) packed into P, its padding zeroed. */
static void archfit_bf16_pack_a(int trans, const float* A, ptrdiff_t lda, ptrdiff_t m,
                                ptrdiff_t k, uint32_t* P, int way) {
    const ptrdiff_t kpad = archfit_bf16_kpad(k), pairs = (k + 1) / 2;
    const ptrdiff_t mpad = (m + ARCHFIT_BF16_MB - 1) / ARCHFIT_BF16_MB * ARCHFIT_BF16_MB;
    for (ptrdiff_t i = 0; i < m; i++)
        memset(P + i * kpad + pairs, 0, (kpad - pairs) * sizeof(uint32_t));
    memset(P + m * kpad, 0, (mpad - m) * kpad * sizeof(uint32_t));
    if (!trans) {
        for (ptrdiff_t i = 0; i < m; i++)
            archfit_bf16_adjacent(A + i * lda, k, P + i * kpad, way);
        return;
    }
    /* op(A)[i][c] = A[c][i]: pair p of rows i0.. is A's rows 2p and 2p + 1
     * there; 8 pairs at a time, then transposed into their rows */
    uint32_t w[8][ARCHFIT_BF16_STRIP];
    for (ptrdiff_t i0 = 0; i0 < m; i0 += ARCHFIT_BF16_STRIP) {
        const ptrdiff_t n = m - i0 < ARCHFIT_BF16_STRIP ? m - i0 : ARCHFIT_BF16_STRIP;
        for (ptrdiff_t p = 0; p < pairs; p += 8) {
            const ptrdiff_t pb = pairs - p < 8 ? pairs - p : 8;
            for (ptrdiff_t t = 0; t < pb; t++) {
                const ptrdiff_t c = 2 * (p + t);
                archfit_bf16_across(A + c * lda + i0, c + 1 < k ? A + (c + 1) * lda + i0 : NULL,
                                    n, w[t], way);
            }
            archfit_bf16_transpose(w[0], ARCHFIT_BF16_STRIP, pb, n, P + i0 * kpad + p, kpad, way);
        }
    }
}

/* Rows [c0, c1) of k (c0 even; c1 even or k) and columns [j0, j1) of op(B)
 * (k x n; B row-major with leading dimension ldb, transposed when `trans`)
 * packed into P; the padding past the last row and column zeroed when the
 * part reaches them. Parts that share no pair or column may be packed by
 * different threads at once. */
static void archfit_bf16_pack_b_part(int trans, const float* B, ptrdiff_t ldb, ptrdiff_t k,
                                     ptrdiff_t n, ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t j0,
                                     ptrdiff_t j1, uint32_t* P, int way) {
    const ptrdiff_t kpad = archfit_bf16_kpad(k), npad = archfit_bf16_npad(n);
    const ptrdiff_t q0 = c0 / 2, q1 = c1 == k ? kpad : (c1 + 1) / 2;
    const ptrdiff_t stop = j1 == n ? npad : j1;
    for (ptrdiff_t q = q0; q < q1; q++)       /* zeros first: rows past k, columns past n */
        for (ptrdiff_t j = 2 * q < k ? j1 : j0; j < stop; j++)
            *archfit_bf16_b_word(P, kpad, q, j) = 0;
    if (c1 > k) c1 = k;
    if (!trans) {
        for (ptrdiff_t q = q0; 2 * q < c1; q++) {
            const float* lo = B + 2 * q * ldb;
            const float* hi = 2 * q + 1 < k ? lo + ldb : NULL;
            for (ptrdiff_t j = j0; j < j1;) {          /* a run within one panel */
                const ptrdiff_t end = (j / ARCHFIT_BF16_NB + 1) * ARCHFIT_BF16_NB;
                const ptrdiff_t count = (end < j1 ? end : j1) - j;
                archfit_bf16_across(lo + j, hi != NULL ? hi + j : NULL, count,
                                    archfit_bf16_b_word(P, kpad, q, j), way);
                j += count;
            }
        }
        return;
    }
    /* op(B)[c][j] = B[j][c]: column j's pairs are adjacent in row j of B; 8
     * columns (of one panel) at a time, then transposed into their places */
    uint32_t w[8][ARCHFIT_BF16_STRIP];
    for (ptrdiff_t c = c0; c < c1; c += 2 * ARCHFIT_BF16_STRIP) {
        const ptrdiff_t kc = c1 - c < 2 * ARCHFIT_BF16_STRIP ? c1 - c : 2 * ARCHFIT_BF16_STRIP;
        for (ptrdiff_t j = j0; j < j1;) {
            const ptrdiff_t end = (j / ARCHFIT_BF16_NB + 1) * ARCHFIT_BF16_NB;
            ptrdiff_t jb = (end < j1 ? end : j1) - j;
            if (jb > 8) jb = 8;
            for (ptrdiff_t u = 0; u < jb; u++)
                archfit_bf16_adjacent(B + (j + u) * ldb + c, kc, w[u], way);
            archfit_bf16_transpose(w[0], ARCHFIT_BF16_STRIP, jb, (kc + 1) / 2,
                                   archfit_bf16_b_word(P, kpad, c / 2, j), ARCHFIT_BF16_NB, way);
            j += jb;
        }
    }
}

/* A body: T[i * NB + j] (MB x NB) += pairs [0, kp) of Ap's MB rows (Ap[i * lda
 * + p]) times Bp's NB columns (Bp[p * ldb + j]). */
typedef void (*archfit_bf16_body)(ptrdiff_t kp, const uint32_t* Ap, ptrdiff_t lda,
                                  const uint32_t* Bp, ptrdiff_t ldb, float* T);

/* ---- portable: widened, odd term then even ------------------------------------------ */
static void archfit_bf16_body_portable(ptrdiff_t kp, const uint32_t* Ap, ptrdiff_t lda,
                                       const uint32_t* Bp, ptrdiff_t ldb, float* T) {
    for (ptrdiff_t i = 0; i < ARCHFIT_BF16_MB; i++) {
        float* t = T + i * ARCHFIT_BF16_NB;
        for (ptrdiff_t p = 0; p < kp; p++) {
            const uint32_t a = Ap[i * lda + p];
            const float a_lo = archfit_bf16_float(a & 0xFFFFu), a_hi = archfit_bf16_float(a >> 16);
            const uint32_t* b = Bp + p * ldb;
            for (ptrdiff_t j = 0; j < ARCHFIT_BF16_NB; j++) {
                /* each product is exact: one rounding per term, fused or not */
                float s = t[j] + a_hi * archfit_bf16_float(b[j] >> 16);
                t[j] = s + a_lo * archfit_bf16_float(b[j] & 0xFFFFu);
            }
        }
    }
}

#ifdef ARCHFIT_X86_DISPATCH
/* ---- AVX2: widened, two FMAs per pair ---------------------------------------------- */
__attribute__((target("avx2,fma")))
static void archfit_bf16_body_avx2(ptrdiff_t kp, const uint32_t* Ap, ptrdiff_t lda,
                                   const uint32_t* Bp, ptrdiff_t ldb, float* T) {
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    for (ptrdiff_t i = 0; i < ARCHFIT_BF16_MB; i += 2) {
        for (ptrdiff_t j = 0; j < ARCHFIT_BF16_NB; j += 32) {
            __m256 acc[2][4];
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 4; c++)
                    acc[r][c] = _mm256_loadu_ps(T + (i + r) * ARCHFIT_BF16_NB + j + 8 * c);
            for (ptrdiff_t p = 0; p < kp; p++) {
                const uint32_t* b = Bp + p * ldb + j;
                __m256 b_lo[4], b_hi[4];
                for (int c = 0; c < 4; c++) {
                    const __m256i w = _mm256_loadu_si256((const __m256i*)(b + 8 * c));
                    b_lo[c] = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
                    b_hi[c] = _mm256_castsi256_ps(_mm256_and_si256(w, high));
                }
                for (int r = 0; r < 2; r++) {
                    const uint32_t a = Ap[(i + r) * lda + p];
                    const __m256 a_lo = _mm256_set1_ps(archfit_bf16_float(a & 0xFFFFu));
                    const __m256 a_hi = _mm256_set1_ps(archfit_bf16_float(a >> 16));
                    for (int c = 0; c < 4; c++)
                        acc[r][c] = _mm256_fmadd_ps(a_lo, b_lo[c],
                                                    _mm256_fmadd_ps(a_hi, b_hi[c], acc[r][c]));
                }
            }
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 4; c++)
                    _mm256_storeu_ps(T + (i + r) * ARCHFIT_BF16_NB + j + 8 * c, acc[r][c]);
        }
    }
}
#endif

/* ---- AVX512_BF16 and AMX: the instructions, or their emulation ---------------------- */
#if defined(ARCHFIT_X86_DISPATCH) || defined(ARCHFIT_BF16_EMULATED)
#ifdef ARCHFIT_BF16_EMULATED
#define ARCHFIT_BF16_TARGET
#define ARCHFIT_AMX_TARGET
typedef struct { float f[16]; } archfit_bf16_v;
typedef struct { uint32_t w[16]; } archfit_bf16_w;
static inline archfit_bf16_v archfit_bf16_loadu(const float* p) {
    archfit_bf16_v v;
    memcpy(v.f, p, sizeof v.f);
    return v;
}
static inline void archfit_bf16_storeu(float* p, archfit_bf16_v v) { memcpy(p, v.f, sizeof v.f); }
static inline archfit_bf16_w archfit_bf16_loadw(const uint32_t* p) {
    archfit_bf16_w v;
    memcpy(v.w, p, sizeof v.w);
    return v;
}
static inline archfit_bf16_w archfit_bf16_set1w(uint32_t x) {
    archfit_bf16_w v;
    for (int l = 0; l < 16; l++) v.w[l] = x;
    return v;
}
/* VDPBF16PS, as the Intel SDM defines it: per lane, the odd products then the
 * even, each added with one rounding */
static inline archfit_bf16_v archfit_bf16_dp(archfit_bf16_v acc, archfit_bf16_w a,
                                             archfit_bf16_w b) {
    for (int l = 0; l < 16; l++) {
        volatile float s = acc.f[l] + archfit_bf16_float(a.w[l] >> 16)
                                      * archfit_bf16_float(b.w[l] >> 16);
        acc.f[l] = s + archfit_bf16_float(a.w[l] & 0xFFFFu) * archfit_bf16_float(b.w[l] & 0xFFFFu);
    }
    return acc;
}
#else
#define ARCHFIT_BF16_TARGET __attribute__((target("avx512f,avx512bf16")))
#define ARCHFIT_AMX_TARGET __attribute__((target("amx-tile,amx-bf16")))
typedef __m512 archfit_bf16_v;
typedef __m512i archfit_bf16_w;
#define archfit_bf16_loadu _mm512_loadu_ps
#define archfit_bf16_storeu _mm512_storeu_ps
#define archfit_bf16_loadw(p) _mm512_loadu_si512((const void*)(p))
#define archfit_bf16_set1w(x) _mm512_set1_epi32((int)(x))
#define archfit_bf16_dp(acc, a, b) \
    _mm512_dpbf16_ps((acc), (__m512bh)(a), (__m512bh)(b))
#endif

ARCHFIT_BF16_TARGET
static void archfit_bf16_body_avx512_bf16(ptrdiff_t kp, const uint32_t* Ap, ptrdiff_t lda,
                                          const uint32_t* Bp, ptrdiff_t ldb, float* T) {
    for (ptrdiff_t i = 0; i < ARCHFIT_BF16_MB; i += 4) {
        archfit_bf16_v acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                acc[r][c] = archfit_bf16_loadu(T + (i + r) * ARCHFIT_BF16_NB + 16 * c);
        for (ptrdiff_t p = 0; p < kp; p++) {
            archfit_bf16_w b[4];
            for (int c = 0; c < 4; c++)
                b[c] = archfit_bf16_loadw(Bp + p * ldb + 16 * c);
            for (int r = 0; r < 4; r++) {
                const archfit_bf16_w a = archfit_bf16_set1w(Ap[(i + r) * lda + p]);
                for (int c = 0; c < 4; c++)
                    acc[r][c] = archfit_bf16_dp(acc[r][c], a, b[c]);
            }
        }
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                archfit_bf16_storeu(T + (i + r) * ARCHFIT_BF16_NB + 16 * c, acc[r][c]);
    }
}

/* AMX: tiles 0-3 hold C (16 x 16 each), tile 4 A's 16 rows x 16 pairs, tile 5
 * B's 16 pairs x 16 columns. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} archfit_amx_config;

#ifdef ARCHFIT_BF16_EMULATED
static float archfit_amx_tile[8][16][16];   /* as floats; A and B tiles as words */
static void archfit_amx_loadconfig(const archfit_amx_config* c) { (void)c; }
static void archfit_amx_release(void) {}
static void archfit_amx_loadd(int t, const void* p, ptrdiff_t stride) {
    for (int r = 0; r < 16; r++)
        memcpy(archfit_amx_tile[t][r], (const char*)p + r * stride, 64);
}
static void archfit_amx_stored(int t, void* p, ptrdiff_t stride) {
    for (int r = 0; r < 16; r++)
        memcpy((char*)p + r * stride, archfit_amx_tile[t][r], 64);
}
/* TDPBF16PS, as the Intel SDM defines it: per element and pair, the even
 * product then the odd, each added with one rounding */
static void archfit_amx_dp(int c, int a, int b) {
    for (int m = 0; m < 16; m++)
        for (int k = 0; k < 16; k++) {
            uint32_t wa;
            memcpy(&wa, &archfit_amx_tile[a][m][k], 4);
            for (int n = 0; n < 16; n++) {
                uint32_t wb;
                memcpy(&wb, &archfit_amx_tile[b][k][n], 4);
                volatile float s = archfit_amx_tile[c][m][n]
                    + archfit_bf16_float(wa & 0xFFFFu) * archfit_bf16_float(wb & 0xFFFFu);
                archfit_amx_tile[c][m][n] = s + archfit_bf16_float(wa >> 16)
                                                * archfit_bf16_float(wb >> 16);
            }
        }
}
#define ARCHFIT_AMX_LOADD(t, p, s) archfit_amx_loadd(t, p, s)
#define ARCHFIT_AMX_STORED(t, p, s) archfit_amx_stored(t, p, s)
#define ARCHFIT_AMX_DP(c, a, b) archfit_amx_dp(c, a, b)
#else
#define archfit_amx_loadconfig(c) _tile_loadconfig(c)
#define archfit_amx_release() _tile_release()
#define ARCHFIT_AMX_LOADD(t, p, s) _tile_loadd(t, p, s)
#define ARCHFIT_AMX_STORED(t, p, s) _tile_stored(t, p, s)
#define ARCHFIT_AMX_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#endif

/* The configuration of tiles 0-5: every tile 16 rows of 64 bytes. */
ARCHFIT_AMX_TARGET
static void archfit_amx_configure(void) {
    archfit_amx_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 6; t++) {
        c.colsb[t] = 64;
        c.rows[t] = 16;
    }
    archfit_amx_loadconfig(&c);
}

ARCHFIT_AMX_TARGET
static void archfit_amx_done(void) { archfit_amx_release(); }

ARCHFIT_AMX_TARGET
static void archfit_bf16_body_amx(ptrdiff_t kp, const uint32_t* Ap, ptrdiff_t lda,
                                  const uint32_t* Bp, ptrdiff_t ldb, float* T) {
    const ptrdiff_t ldt = ARCHFIT_BF16_NB * sizeof(float);
    ARCHFIT_AMX_LOADD(0, T, ldt);
    ARCHFIT_AMX_LOADD(1, T + 16, ldt);
    ARCHFIT_AMX_LOADD(2, T + 32, ldt);
    ARCHFIT_AMX_LOADD(3, T + 48, ldt);
    for (ptrdiff_t p = 0; p < kp; p += 16) {      /* kp: a multiple of 16 (packed with zeros) */
        const uint32_t* b = Bp + p * ldb;
        const ptrdiff_t stride = ldb * (ptrdiff_t)sizeof(uint32_t);
        ARCHFIT_AMX_LOADD(4, Ap + p, lda * (ptrdiff_t)sizeof(uint32_t));
        ARCHFIT_AMX_LOADD(5, b, stride);
        ARCHFIT_AMX_DP(0, 4, 5);
        ARCHFIT_AMX_LOADD(5, b + 16, stride);
        ARCHFIT_AMX_DP(1, 4, 5);
        ARCHFIT_AMX_LOADD(5, b + 32, stride);
        ARCHFIT_AMX_DP(2, 4, 5);
        ARCHFIT_AMX_LOADD(5, b + 48, stride);
        ARCHFIT_AMX_DP(3, 4, 5);
    }
    ARCHFIT_AMX_STORED(0, T, ldt);
    ARCHFIT_AMX_STORED(1, T + 16, ldt);
    ARCHFIT_AMX_STORED(2, T + 32, ldt);
    ARCHFIT_AMX_STORED(3, T + 48, ldt);
}
#endif

/* ---- the product --------------------------------------------------------------------- */
/* The bodies by name (archfit.kernels' bf16 path; the tests call each). */
enum { ARCHFIT_BF16_PORTABLE = 0, ARCHFIT_BF16_WIDENED = 1, ARCHFIT_BF16_VDPBF16PS = 2,
       ARCHFIT_BF16_AMX = 3 };

/* The body this process's level runs. */
static inline int archfit_bf16_body_of_level(int level) {
#if defined(ARCHFIT_X86_DISPATCH)
    if (level >= ARCHFIT_ISA_AMX) return ARCHFIT_BF16_AMX;
    if (level >= ARCHFIT_ISA_AVX512_BF16) return ARCHFIT_BF16_VDPBF16PS;
    if (level >= ARCHFIT_ISA_AVX2) return ARCHFIT_BF16_WIDENED;
#endif
    (void)level;
    return ARCHFIT_BF16_PORTABLE;
}

/* acc plus one pair's two products (each exact in float32), in the body's
 * order: the even term first with `even_first` (AMX), else the odd (VDPBF16PS). */
static inline float archfit_bf16_pair_step(float acc, float a0, float b0, float a1, float b1,
                                           int even_first) {
    if (even_first) {
        acc = acc + a0 * b0;
        return acc + a1 * b1;
    }
    acc = acc + a1 * b1;
    return acc + a0 * b0;
}

/* The product element by element, unpacked (no memory of its own): each
 * chain as the bodies make it, AMX's pair order with `even_first`. Slow; for
 * when the packed operands' memory cannot be had. */
static void archfit_bf16_gemm_direct(int even_first, int trans_a, int trans_b, ptrdiff_t m,
                                     ptrdiff_t n, ptrdiff_t k, const float* A, ptrdiff_t lda,
                                     const float* B, ptrdiff_t ldb, float* C, ptrdiff_t ldc,
                                     int accumulate) {
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) {
            float acc = accumulate ? C[i * ldc + j] : 0.0f;
            for (ptrdiff_t c = 0; c < k; c += 2) {
                const float a0 = archfit_bf16_float(archfit_bf16_round(
                    trans_a ? A[c * lda + i] : A[i * lda + c]));
                const float b0 = archfit_bf16_float(archfit_bf16_round(
                    trans_b ? B[j * ldb + c] : B[c * ldb + j]));
                float a1 = 0.0f, b1 = 0.0f;
                if (c + 1 < k) {
                    a1 = archfit_bf16_float(archfit_bf16_round(
                        trans_a ? A[(c + 1) * lda + i] : A[i * lda + c + 1]));
                    b1 = archfit_bf16_float(archfit_bf16_round(
                        trans_b ? B[j * ldb + c + 1] : B[(c + 1) * ldb + j]));
                }
                acc = archfit_bf16_pair_step(acc, a0, b0, a1, b1, even_first);
            }
            C[i * ldc + j] = acc;
        }
}

/* The calling thread's memory for op(A) packed, kept from call to call:
 * fresh memory would cost a page fault per 4 KiB on every product (the
 * threads are OpenMP's pool, so each keeps one buffer, as large as its
 * largest op(A)). NULL when it cannot be had. */
static uint32_t* archfit_bf16_scratch(size_t words) {
    static __thread uint32_t* buffer = NULL;
    static __thread size_t capacity = 0;
    if (words > capacity) {
        free(buffer);
        capacity = (words + 4095) / 4096 * 4096;
        buffer = (uint32_t*)aligned_alloc(64, capacity * sizeof(uint32_t));
        if (buffer == NULL)
            capacity = 0;
    }
    return buffer;
}

/* archfit_bf16_gemm_direct's product with op(B) packed: for when op(A)'s
 * packed memory cannot be had. */
static void archfit_bf16_gemm_packed_direct(int even_first, int trans_a, ptrdiff_t m,
                                            ptrdiff_t n, ptrdiff_t k, const float* A,
                                            ptrdiff_t lda, const uint32_t* Bp, float* C,
                                            ptrdiff_t ldc, int accumulate) {
    const ptrdiff_t kpad = archfit_bf16_kpad(k);
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) {
            float acc = accumulate ? C[i * ldc + j] : 0.0f;
            for (ptrdiff_t c = 0; c < k; c += 2) {
                const uint32_t b = *archfit_bf16_b_word((uint32_t*)Bp, kpad, c / 2, j);
                const float a0 = archfit_bf16_float(archfit_bf16_round(
                    trans_a ? A[c * lda + i] : A[i * lda + c]));
                const float a1 = c + 1 < k ? archfit_bf16_float(archfit_bf16_round(
                    trans_a ? A[(c + 1) * lda + i] : A[i * lda + c + 1])) : 0.0f;
                const float b0 = archfit_bf16_float(b & 0xFFFFu), b1 = archfit_bf16_float(b >> 16);
                acc = archfit_bf16_pair_step(acc, a0, b0, a1, b1, even_first);
            }
            C[i * ldc + j] = acc;
        }
}

/* C (m x n, ldc) = op(A) op(B), or += with `accumulate`; op(A) is m x k,
 * row-major float32, and op(B) (k x n) already packed (archfit_bf16_pack_b_part)
 * in Bp; with body `which`. Returns 0, or -1 when op(A)'s packed memory could
 * not be had (the product then ran without it). */
static int archfit_bf16_gemm_packed(int which, int trans_a, ptrdiff_t m, ptrdiff_t n,
                                    ptrdiff_t k, const float* A, ptrdiff_t lda,
                                    const uint32_t* Bp, float* C, ptrdiff_t ldc,
                                    int accumulate) {
    archfit_bf16_body body = archfit_bf16_body_portable;
    int tiles = 0;
    if (m <= 0 || n <= 0)
        return 0;
#if defined(ARCHFIT_X86_DISPATCH) || defined(ARCHFIT_BF16_EMULATED)
    if (which == ARCHFIT_BF16_AMX) { body = archfit_bf16_body_amx; tiles = 1; }
    if (which == ARCHFIT_BF16_VDPBF16PS) body = archfit_bf16_body_avx512_bf16;
#endif
#ifdef ARCHFIT_X86_DISPATCH
    if (which == ARCHFIT_BF16_WIDENED) body = archfit_bf16_body_avx2;
#endif
    const ptrdiff_t pairs = (k + 1) / 2, kpad = archfit_bf16_kpad(k);
    const ptrdiff_t mpad = (m + ARCHFIT_BF16_MB - 1) / ARCHFIT_BF16_MB * ARCHFIT_BF16_MB;
    uint32_t* Ap = archfit_bf16_scratch((size_t)mpad * kpad);
    if (Ap == NULL) {
        archfit_bf16_gemm_packed_direct(which == ARCHFIT_BF16_AMX, trans_a, m, n, k, A, lda, Bp,
                                        C, ldc, accumulate);
        return -1;
    }
    float T[ARCHFIT_BF16_MB * ARCHFIT_BF16_NB] __attribute__((aligned(64)));  /* a block of C */
    archfit_bf16_pack_a(trans_a, A, lda, m, k, Ap,
                        archfit_bf16_pack_way(which == ARCHFIT_BF16_PORTABLE));
#if defined(ARCHFIT_X86_DISPATCH) || defined(ARCHFIT_BF16_EMULATED)
    if (tiles)
        archfit_amx_configure();
#endif
    for (ptrdiff_t j0 = 0; j0 < n; j0 += ARCHFIT_BF16_NB) {
        /* one panel of B's NB columns (in L2) against MB rows of A at a time,
         * their block of C in L1 */
        const ptrdiff_t nb = n - j0 < ARCHFIT_BF16_NB ? n - j0 : ARCHFIT_BF16_NB;
        const uint32_t* Bpanel = Bp + j0 * kpad;
        for (ptrdiff_t i0 = 0; i0 < m; i0 += ARCHFIT_BF16_MB) {
            const ptrdiff_t mb = m - i0 < ARCHFIT_BF16_MB ? m - i0 : ARCHFIT_BF16_MB;
            memset(T, 0, sizeof(float) * ARCHFIT_BF16_MB * ARCHFIT_BF16_NB);
            if (accumulate)
                for (ptrdiff_t i = 0; i < mb; i++)
                    memcpy(T + i * ARCHFIT_BF16_NB, C + (i0 + i) * ldc + j0, nb * sizeof(float));
            for (ptrdiff_t p0 = 0; p0 < kpad; p0 += ARCHFIT_BF16_KB) {
                const ptrdiff_t kp = kpad - p0 < ARCHFIT_BF16_KB ? kpad - p0 : ARCHFIT_BF16_KB;
                body(tiles ? kp : (pairs - p0 < kp ? pairs - p0 : kp), Ap + i0 * kpad + p0, kpad,
                     Bpanel + p0 * ARCHFIT_BF16_NB, ARCHFIT_BF16_NB, T);
            }
            for (ptrdiff_t i = 0; i < mb; i++)
                memcpy(C + (i0 + i) * ldc + j0, T + i * ARCHFIT_BF16_NB, nb * sizeof(float));
        }
    }
#if defined(ARCHFIT_X86_DISPATCH) || defined(ARCHFIT_BF16_EMULATED)
    if (tiles)
        archfit_amx_done();
#endif
    return 0;
}

/* C (m x n, ldc) = op(A) op(B), or += with `accumulate`; op(A) is m x k,
 * op(B) k x n, all row-major float32; with body `which`. Returns 0, or -1 when
 * the packed operands' memory could not be had (the product then ran unpacked). */
static int archfit_bf16_gemm_with(int which, int trans_a, int trans_b, ptrdiff_t m,
                                  ptrdiff_t n, ptrdiff_t k, const float* A, ptrdiff_t lda,
                                  const float* B, ptrdiff_t ldb, float* C, ptrdiff_t ldc,
                                  int accumulate) {
    if (m <= 0 || n <= 0)
        return 0;
    uint32_t* Bp = (uint32_t*)malloc((size_t)archfit_bf16_packed_words(k, n) * sizeof(uint32_t));
    if (Bp != NULL) {
        archfit_bf16_pack_b_part(trans_b, B, ldb, k, n, 0, k, 0, n, Bp,
                                 archfit_bf16_pack_way(which == ARCHFIT_BF16_PORTABLE));
        const int status = archfit_bf16_gemm_packed(which, trans_a, m, n, k, A, lda, Bp, C, ldc,
                                                    accumulate);
        free(Bp);
        return status;
    }
    archfit_bf16_gemm_direct(which == ARCHFIT_BF16_AMX, trans_a, trans_b, m, n, k, A, lda,
                             B, ldb, C, ldc, accumulate);
    return -1;
}

/* The product with this process's body. */
static inline int archfit_bf16_gemm(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                    ptrdiff_t k, const float* A, ptrdiff_t lda, const float* B,
                                    ptrdiff_t ldb, float* C, ptrdiff_t ldc, int accumulate) {
    return archfit_bf16_gemm_with(archfit_bf16_body_of_level(archfit_isa()), trans_a, trans_b,
                                  m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

/* op(B)'s part packed (archfit_bf16_pack_b_part), in this process's way. */
static inline void archfit_bf16_pack(int trans, const float* B, ptrdiff_t ldb, ptrdiff_t k,
                                     ptrdiff_t n, ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t j0,
                                     ptrdiff_t j1, uint32_t* P) {
    archfit_bf16_pack_b_part(trans, B, ldb, k, n, c0, c1, j0, j1, P, archfit_bf16_pack_way(0));
}

/* The product with op(B) packed, with this process's body. */
static inline int archfit_bf16_gemm_prepacked(int trans_a, ptrdiff_t m, ptrdiff_t n,
                                              ptrdiff_t k, const float* A, ptrdiff_t lda,
                                              const uint32_t* Bp, float* C, ptrdiff_t ldc,
                                              int accumulate) {
    return archfit_bf16_gemm_packed(archfit_bf16_body_of_level(archfit_isa()), trans_a, m, n, k,
                                    A, lda, Bp, C, ldc, accumulate);
}

#endif
