/* The bfloat16 bodies of bf16.h against a scalar reference, bit for bit, on
 * any x86-64 CPU with AVX2 and FMA: VDPBF16PS and AMX's TDPBF16PS emulated as
 * the Intel SDM defines them (ARCHFIT_BF16_EMULATED), the widened AVX2 body
 * and the plain C body as they are. Shapes cross every block edge (16 rows,
 * 64 columns, 128 pairs of k, an odd k); op(A) and op(B) transposed or not;
 * C overwritten or accumulated; the element-by-element fallbacks too (op(B)
 * as given or packed). Prints "<n> checks passed" or the first mismatch. Built by tests/test_bf16_emulation.py. */
#define ARCHFIT_BF16_EMULATED 1
#include "bf16.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;
static float draw(void) {          /* values of many magnitudes, never subnormal */
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    const float u = (float)((state >> 11) % 2000001) / 1000000.0f - 1.0f;
    return ldexpf(u, (int)((state >> 40) % 9) - 4);
}

/* bfloat16 by frexp and rint (round to nearest, ties to even): 8 significant bits */
static float round_bf16(float x) {
    int e;
    const float m = frexpf(x, &e);
    return ldexpf(rintf(ldexpf(m, 8)), e - 8);
}

static float op(const float* M, ptrdiff_t ld, int trans, ptrdiff_t r, ptrdiff_t c) {
    return trans ? M[c * ld + r] : M[r * ld + c];
}

/* one element: the chain over pairs, each pair's terms in the given order */
static float reference(int odd_first, int ta, int tb, ptrdiff_t k, const float* A,
                       ptrdiff_t lda, const float* B, ptrdiff_t ldb, ptrdiff_t i, ptrdiff_t j,
                       float start) {
    volatile float acc = start;
    for (ptrdiff_t p = 0; p < (k + 1) / 2; p++) {
        for (int t = 0; t < 2; t++) {
            const ptrdiff_t c = 2 * p + (odd_first ? 1 - t : t);
            if (c >= k) continue;      /* the zero that pads an odd k adds +0 */
            const float term = round_bf16(op(A, lda, ta, i, c)) * round_bf16(op(B, ldb, tb, c, j));
            acc = acc + term;
        }
    }
    return acc;
}

int main(void) {
    static const ptrdiff_t shapes[][3] = {{1, 1, 1}, {3, 5, 2}, {16, 64, 256}, {17, 65, 257},
                                          {2, 70, 300}, {33, 3, 41}, {20, 130, 7}, {1, 1, 0},
                                          {3, 66, 1031}, {18, 2, 513}};
    const char* names[] = {"portable", "widened", "vdpbf16ps", "amx"};
    long checks = 0;
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const ptrdiff_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int add = 0; add < 2; add++) {
                    const ptrdiff_t lda = ta ? m : k, ldb = tb ? k : n;
                    float* A = malloc(sizeof(float) * (m * k + 1));
                    float* B = malloc(sizeof(float) * (k * n + 1));
                    float* C0 = malloc(sizeof(float) * m * n);
                    float* C = malloc(sizeof(float) * m * n);
                    for (ptrdiff_t x = 0; x < m * k; x++) A[x] = draw();
                    for (ptrdiff_t x = 0; x < k * n; x++) B[x] = draw();
                    for (ptrdiff_t x = 0; x < m * n; x++) C0[x] = add ? draw() : 0.0f;
                    for (int body = 0; body < 4; body++) {
                        if (body == ARCHFIT_BF16_WIDENED && !avx2) continue;
                        memcpy(C, C0, sizeof(float) * m * n);
                        archfit_bf16_gemm_with(body, ta, tb, m, n, k, A, lda, B, ldb, C, n, add);
                        for (ptrdiff_t i = 0; i < m; i++)
                            for (ptrdiff_t j = 0; j < n; j++) {
                                const float want = reference(body != ARCHFIT_BF16_AMX, ta, tb, k,
                                                             A, lda, B, ldb, i, j, C0[i * n + j]);
                                if (!(C[i * n + j] == want)) {
                                    printf("%s m=%td n=%td k=%td ta=%d tb=%d add=%d (%td, %td): "
                                           "%.9g, reference %.9g\n", names[body], m, n, k, ta, tb,
                                           add, i, j, C[i * n + j], want);
                                    return 1;
                                }
                                checks++;
                            }
                    }
                    uint32_t* Bp = malloc(sizeof(uint32_t) * (archfit_bf16_packed_words(k, n) + 1));
                    archfit_bf16_pack_b_part(tb, B, ldb, k, n, 0, k, 0, n, Bp,
                                             ARCHFIT_BF16_PACK_PLAIN);
                    for (int even = 0; even < 4; even++) {     /* 2, 3: op(B) packed */
                        memcpy(C, C0, sizeof(float) * m * n);
                        if (even < 2)
                            archfit_bf16_gemm_direct(even, ta, tb, m, n, k, A, lda, B, ldb, C, n,
                                                     add);
                        else
                            archfit_bf16_gemm_packed_direct(even - 2, ta, m, n, k, A, lda, Bp, C,
                                                            n, add);
                        for (ptrdiff_t i = 0; i < m; i++)
                            for (ptrdiff_t j = 0; j < n; j++, checks++)
                                if (!(C[i * n + j] == reference(!(even % 2), ta, tb, k, A, lda, B,
                                                                ldb, i, j, C0[i * n + j]))) {
                                    printf("direct even=%d m=%td n=%td k=%td: mismatch\n",
                                           even, m, n, k);
                                    return 1;
                                }
                    }
                    free(A); free(B); free(C0); free(C); free(Bp);
                }
    }
    printf("%ld checks passed\n", checks);
    return 0;
}
