/* Every AVX-512 product body of archfit, checked on a CPU without AVX-512.
 *
 * Built by tests/test_avx512_emulation.py with ARCHFIT_AVX512_EMULATED: the
 * bodies of vecmat.h, smallgemm.h and packgemm.h for AVX-512 are compiled
 * from the same source as the library's, with the _mm512_ intrinsics
 * emulated lane by lane on AVX2 (csrc/archfit/_kernels/avx512_emulation.h).
 * For both element types and many shapes (edges of every register block,
 * masked columns, transposed operands), each product must equal
 *
 * - the AVX2 body's result bit for bit (each element is the same FMA chain
 *   over k in increasing order on both instruction sets),
 * - a long-double reference within a rounding bound,
 *
 * and write nothing outside its output; packing must lay W out as the
 * AVX-512 panels expect, row slice by row slice and transposed. Prints one
 * line per failure and exits 1 on any; prints the count of checks otherwise.
 */
#define ARCHFIT_AVX512_EMULATED 1

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smallgemm.h"
#include "packgemm.h"

static long checks = 0, failures = 0;
static unsigned long long state = 0x9E3779B97F4A7C15ull;

static double uniform(void) {      /* in [-1, 1) */
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(state >> 11) / 4503599627370496.0 - 1.0;
}

static void fail(const char* what, const char* type, long a, long b, long c, long d) {
    if (failures < 20)
        printf("FAIL %s %s (%ld, %ld, %ld, %ld)\n", what, type, a, b, c, d);
    failures++;
}

#define GUARD 64      /* elements of sentinel after every output */

/* One test family per element type: T, its suffix S, its name, its unit roundoff. */
#define ARCHFIT_EMULATION_TESTS(T, S, NAME, EPS)                                          \
    static T* S##_random(ptrdiff_t n) {                                                   \
        T* x = malloc((size_t)(n + GUARD) * sizeof(T));                                   \
        for (ptrdiff_t i = 0; i < n + GUARD; i++) x[i] = (T)uniform();                    \
        return x;                                                                         \
    }                                                                                     \
    static T* S##_sentinel(ptrdiff_t n) {                                                 \
        T* x = malloc((size_t)(n + GUARD) * sizeof(T));                                   \
        for (ptrdiff_t i = 0; i < n + GUARD; i++) x[i] = (T)-7.25;                        \
        return x;                                                                         \
    }                                                                                     \
    /* C (m x n, ldc) against op(A) B computed in long double: |error| within k EPS |A||B| */ \
    static int S##_close(int trans_a, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T* A,  \
                         ptrdiff_t lda, const T* B, ptrdiff_t ldb, const T* C,             \
                         ptrdiff_t ldc) {                                                 \
        for (ptrdiff_t i = 0; i < m; i++)                                                 \
            for (ptrdiff_t j = 0; j < n; j++) {                                           \
                long double s = 0, bound = 0;                                             \
                for (ptrdiff_t p = 0; p < k; p++) {                                       \
                    const long double a = trans_a ? A[p * lda + i] : A[i * lda + p];      \
                    s += a * B[p * ldb + j];                                              \
                    bound += fabsl(a * B[p * ldb + j]);                                   \
                }                                                                         \
                if (fabsl(C[i * ldc + j] - s) > (k + 1) * EPS * bound + 1e-30) return 0;  \
            }                                                                             \
        return 1;                                                                         \
    }                                                                                     \
    /* Only C's m x n elements changed: the gaps (ldc > n) and the guard keep the sentinel. */ \
    static int S##_untouched(ptrdiff_t m, ptrdiff_t n, const T* C, ptrdiff_t ldc) {       \
        for (ptrdiff_t i = 0; i < m * ldc + GUARD; i++)                                   \
            if ((i / ldc >= m || i % ldc >= n) && C[i] != (T)-7.25) return 0;            \
        return 1;                                                                         \
    }                                                                                     \
                                                                                          \
    static void S##_vecmat(ptrdiff_t k, ptrdiff_t n, ptrdiff_t incx) {                    \
        T *x = S##_random(k * incx), *W = S##_random(k * (n + 1));                        \
        T *y = S##_sentinel(n), *y2 = S##_sentinel(n);                                    \
        archfit_vecmat_##S##_avx512(k, n, x, incx, W, n + 1, y);                          \
        archfit_vecmat_##S##_avx2(k, n, x, incx, W, n + 1, y2);                           \
        checks++;                                                                         \
        if (memcmp(y, y2, (size_t)(n + GUARD) * sizeof(T)))                               \
            fail("vecmat: AVX-512 differs from AVX2", NAME, k, n, incx, 0);               \
        if (!S##_untouched(1, n, y, n))                                         \
            fail("vecmat: wrote past n", NAME, k, n, incx, 0);                            \
        T* xs = malloc((size_t)k * sizeof(T));                                            \
        for (ptrdiff_t i = 0; i < k; i++) xs[i] = x[i * incx];                            \
        if (!S##_close(0, 1, n, k, xs, k, W, n + 1, y, n))                                \
            fail("vecmat: far from the reference", NAME, k, n, incx, 0);                  \
        free(x); free(W); free(y); free(y2); free(xs);                                    \
    }                                                                                     \
                                                                                          \
    static void S##_small_gemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int trans_a,        \
                               int trans_b) {                                             \
        const ptrdiff_t lda = (trans_a ? m : k) + 2, ldb = (trans_b ? k : n) + 1;         \
        const ptrdiff_t ldc = n + 3;                                                      \
        T *A = S##_random((trans_a ? k : m) * lda), *B = S##_random((trans_b ? n : k) * ldb); \
        T *C = S##_sentinel(m * ldc), *C2 = S##_sentinel(m * ldc);                        \
        T* scratch = malloc((size_t)(k * n + 1) * sizeof(T));                             \
        archfit_small_gemm_##S##_avx512(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, \
                                        scratch);                                         \
        archfit_small_gemm_##S##_avx2(trans_a, trans_b, m, n, k, A, lda, B, ldb, C2, ldc, \
                                      scratch);                                           \
        checks++;                                                                         \
        if (memcmp(C, C2, (size_t)(m * ldc + GUARD) * sizeof(T)))                         \
            fail("small_gemm: AVX-512 differs from AVX2", NAME, m, n, k, trans_a * 2 + trans_b); \
        if (!S##_untouched(m, n, C, ldc))                                                 \
            fail("small_gemm: wrote outside C", NAME, m, n, k, trans_a * 2 + trans_b);    \
        /* op(B) as a plain (k, n) matrix for the reference */                            \
        T* Bk = malloc((size_t)(k * n + 1) * sizeof(T));                                  \
        for (ptrdiff_t p = 0; p < k; p++)                                                 \
            for (ptrdiff_t j = 0; j < n; j++)                                             \
                Bk[p * n + j] = trans_b ? B[j * ldb + p] : B[p * ldb + j];                \
        if (!S##_close(trans_a, m, n, k, A, lda, Bk, n, C, ldc))                          \
            fail("small_gemm: far from the reference", NAME, m, n, k, trans_a * 2 + trans_b); \
        /* each row equals the AVX-512 vecmat of that row */                              \
        T* y = malloc((size_t)(n + 1) * sizeof(T));                                       \
        for (ptrdiff_t i = 0; i < m; i++) {                                               \
            archfit_vecmat_##S##_avx512(k, n, trans_a ? A + i : A + i * lda,              \
                                        trans_a ? lda : 1, Bk, n, y);                     \
            if (memcmp(y, C + i * ldc, (size_t)n * sizeof(T))) {                          \
                fail("small_gemm: a row differs from vecmat's", NAME, m, n, k, i);        \
                break;                                                                    \
            }                                                                             \
        }                                                                                 \
        free(A); free(B); free(C); free(C2); free(scratch); free(Bk); free(y);            \
    }                                                                                     \
                                                                                          \
    static void S##_packed(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int trans_a) {          \
        const ptrdiff_t lda = (trans_a ? m : k) + 1, ldw = n + 2, ldc = n + 1;            \
        T *A = S##_random((trans_a ? k : m) * lda), *W = S##_random(k * ldw);             \
        const ptrdiff_t size = archfit_packed_size_##S##_avx512(k, n);                    \
        const ptrdiff_t size2 = archfit_packed_size_##S##_avx2(k, n);                     \
        T *P = S##_sentinel(size), *P2 = S##_sentinel(size2), *Ps = calloc((size_t)size, sizeof(T)); \
        T *work = malloc(ARCHFIT_PK_WORK * sizeof(T)), *C = S##_sentinel(m * ldc);        \
        T *C2 = S##_sentinel(m * ldc);                                                    \
        archfit_pack_##S##_avx512(k, n, W, ldw, P);                                       \
        archfit_pack_##S##_avx2(k, n, W, ldw, P2);                                        \
        archfit_packed_gemm_##S##_avx512(trans_a, m, n, k, A, lda, P, C, ldc, work);      \
        archfit_packed_gemm_##S##_avx2(trans_a, m, n, k, A, lda, P2, C2, ldc, work);      \
        checks++;                                                                         \
        if (size != k * ((n + 2 * 16 * 4 / (ptrdiff_t)sizeof(T) - 1)                     \
                         / (2 * 16 * 4 / (ptrdiff_t)sizeof(T))) * (2 * 16 * 4 / (ptrdiff_t)sizeof(T))) \
            fail("packed_size: not panels of two 512-bit registers", NAME, k, n, size, 0); \
        if (!S##_untouched(1, size, P, size))                                     \
            fail("pack: wrote past its size", NAME, k, n, 0, 0);                          \
        if (memcmp(C, C2, (size_t)(m * ldc + GUARD) * sizeof(T)))                         \
            fail("packed_gemm: AVX-512 differs from AVX2", NAME, m, n, k, trans_a);       \
        if (!S##_untouched(m, n, C, ldc))                                                 \
            fail("packed_gemm: wrote outside C", NAME, m, n, k, trans_a);                 \
        if (!S##_close(trans_a, m, n, k, A, lda, W, ldw, C, ldc))                         \
            fail("packed_gemm: far from the reference", NAME, m, n, k, trans_a);          \
        /* packing by row slices, into zeros, gives the whole packing */                  \
        const ptrdiff_t cut = k / 3;                                                      \
        archfit_pack_rows_##S##_avx512(k, n, W, ldw, cut, k, Ps);                         \
        archfit_pack_rows_##S##_avx512(k, n, W, ldw, 0, cut, Ps);                         \
        if (memcmp(Ps, P, (size_t)size * sizeof(T)))                                     \
            fail("pack_rows: slices differ from pack", NAME, k, n, cut, 0);               \
        /* the transposed packing: W^T (n, k) packed */                                   \
        T* Wt = malloc((size_t)(n * k + 1) * sizeof(T));                                  \
        for (ptrdiff_t p = 0; p < k; p++)                                                 \
            for (ptrdiff_t j = 0; j < n; j++) Wt[j * k + p] = W[p * ldw + j];             \
        const ptrdiff_t tsize = archfit_packed_size_##S##_avx512(n, k);                   \
        T *PT = calloc((size_t)tsize, sizeof(T)), *PT2 = calloc((size_t)tsize, sizeof(T)); \
        archfit_pack_##S##_avx512(n, k, Wt, k, PT);                                       \
        archfit_pack_rows_t_##S##_avx512(k, n, W, ldw, cut + 1, k, PT2);                  \
        archfit_pack_rows_t_##S##_avx512(k, n, W, ldw, 0, cut + 1, PT2);                  \
        if (memcmp(PT, PT2, (size_t)tsize * sizeof(T)))                                   \
            fail("pack_rows_t: differs from packing W^T", NAME, k, n, cut + 1, 0);        \
        free(A); free(W); free(P); free(P2); free(Ps); free(work); free(C); free(C2);     \
        free(Wt); free(PT); free(PT2);                                                    \
    }                                                                                     \
                                                                                          \
    static void S##_all(void) {                                                           \
        static const ptrdiff_t ks[] = {1, 2, 7, 33, 130};                                 \
        static const ptrdiff_t ns[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65,   \
                                       100, 128, 129, 255, 257};                          \
        static const ptrdiff_t ms[] = {1, 2, 5, 7, 8, 9, 11, 12, 13, 16, 23, 24, 25, 33};  \
        for (size_t a = 0; a < sizeof ks / sizeof *ks; a++)                               \
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {                         \
                S##_vecmat(ks[a], ns[b], 1);                                              \
                S##_vecmat(ks[a], ns[b], 3);                                              \
                for (size_t c = 0; c < sizeof ms / sizeof *ms; c += 2)                    \
                    for (int t = 0; t < 4; t++)                                           \
                        S##_small_gemm(ms[c + (size_t)(t & 1)], ns[b], ks[a], t >> 1, t & 1); \
            }                                                                             \
        static const ptrdiff_t pm[] = {1, 5, 11, 12, 13, 24, 95, 96, 97, 200};            \
        static const ptrdiff_t pn[] = {1, 10, 16, 31, 32, 33, 64, 100, 257, 300};         \
        static const ptrdiff_t pk[] = {1, 7, 127, 128, 129, 300};                         \
        for (size_t a = 0; a < sizeof pm / sizeof *pm; a++)                               \
            for (size_t b = 0; b < sizeof pn / sizeof *pn; b++)                           \
                for (size_t c = 0; c < sizeof pk / sizeof *pk; c++)                       \
                    S##_packed(pm[a], pn[b], pk[c], (int)((a + b + c) & 1));              \
    }

ARCHFIT_EMULATION_TESTS(float, f32, "float32", 5.96e-8L)
ARCHFIT_EMULATION_TESTS(double, f64, "float64", 1.12e-16L)

int main(void) {
    f32_all();
    f64_all();
    if (failures) {
        printf("%ld failures in %ld checks\n", failures, checks);
        return 1;
    }
    printf("%ld checks passed\n", checks);
    return 0;
}
