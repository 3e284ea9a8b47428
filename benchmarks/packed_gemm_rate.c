/* archfit's packed GEMM (packgemm.h) on one thread, alone: the products of a
 * 784-256-128-10 training step at batch 128 and of a 4,096-row prediction,
 * float32 and float64, and the same products with bfloat16 operands (bf16.h, W
 * packed once as a fit keeps it and op(A) rounded and packed in every call, by
 * the body of this CPU's level: AMX, VDPBF16PS or widened to float32), with
 * nothing else in the caches. Read against
 * fma_peak.c's one-thread figures, it says how much of a step's shortfall is
 * the product kernel itself and how much the rest of the step.
 *
 *   gcc -O3 -Icsrc/archfit/_kernels benchmarks/packed_gemm_rate.c -o /tmp/packed_gemm_rate
 *   /tmp/packed_gemm_rate [float32 peak] [float64 peak]
 *
 * Prints GFLOP/s (best of 5 runs) per shape, and the share of the peaks when
 * given (GFLOP/s, one thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "packgemm.h"
#include "bf16.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void* aligned(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

/* GFLOP/s of C = op(A) W (m x n, inner k), W packed once; op(A) = A^T when trans_a. */
#define RATE(T, S)                                                                        \
    static double rate_##S(int trans_a, int m, int n, int k) {                            \
        /* 64-byte aligned, as archfit's blocks are (unaligned, panel loads */          \
        /* would cross cache lines) */                                                     \
        T* A = aligned(sizeof(T) * m * k);                                                \
        T* W = aligned(sizeof(T) * k * n);                                                \
        T* P = aligned(sizeof(T) * archfit_packed_size_##S(k, n));                        \
        T* C = aligned(sizeof(T) * m * n);                                                \
        T* work = aligned(sizeof(T) * ARCHFIT_PK_WORK);                                   \
        for (int i = 0; i < m * k; i++) A[i] = (T)((i % 13) - 6) * (T)0.01;               \
        for (int i = 0; i < k * n; i++) W[i] = (T)((i % 7) - 3) * (T)0.01;               \
        archfit_pack_##S(k, n, W, n, P);                                                  \
        const int reps = 1 + (int)(4e8 / (2.0 * m * n * k));                              \
        double best = 1e9;                                                                \
        for (int run = 0; run < 5; run++) {                                               \
            const double start = now();                                                   \
            for (int r = 0; r < reps; r++)                                                \
                archfit_packed_gemm_##S(trans_a, m, n, k, A, trans_a ? m : k, P, C, n, work); \
            const double t = (now() - start) / reps;                                      \
            if (t < best) best = t;                                                       \
        }                                                                                 \
        free(A); free(W); free(P); free(C); free(work);                                   \
        return 2.0 * m * n * k / best * 1e-9;                                             \
    }
RATE(float, f32)
RATE(double, f64)

/* GFLOP/s of the same product with bfloat16 operands, W packed once. */
static double rate_bf16(int trans_a, int m, int n, int k) {
    float* A = aligned(sizeof(float) * m * k);
    float* W = aligned(sizeof(float) * k * n);
    uint32_t* P = aligned(sizeof(uint32_t) * archfit_bf16_packed_words(k, n));
    float* C = aligned(sizeof(float) * m * n);
    for (int i = 0; i < m * k; i++) A[i] = (float)((i % 13) - 6) * 0.01f;
    for (int i = 0; i < k * n; i++) W[i] = (float)((i % 7) - 3) * 0.01f;
    archfit_bf16_pack(0, W, n, k, n, 0, k, 0, n, P);
    const int reps = 1 + (int)(4e8 / (2.0 * m * n * k));
    double best = 1e9;
    for (int run = 0; run < 5; run++) {
        const double start = now();
        for (int r = 0; r < reps; r++)
            archfit_bf16_gemm_prepacked(trans_a, m, n, k, A, trans_a ? m : k, P, C, n, 0);
        const double t = (now() - start) / reps;
        if (t < best) best = t;
    }
    free(A); free(W); free(P); free(C);
    return 2.0 * m * n * k / best * 1e-9;
}

int main(int argc, char** argv) {
    const double peak[2] = {argc > 1 ? atof(argv[1]) : 0, argc > 2 ? atof(argv[2]) : 0};
    static const struct { const char* what; int trans_a, m, n, k; } shapes[] = {
        {"step: X W1", 0, 128, 256, 784},
        {"step: X^T D1 (W1's gradient)", 1, 784, 256, 128},
        {"step: H1 W2", 0, 128, 128, 256},
        {"step: H1^T D2 (W2's gradient)", 1, 256, 128, 128},
        {"a shard of 64 rows: X W1", 0, 64, 256, 784},
        {"prediction: 4,096 rows of X W1", 0, 4096, 256, 784},
        {"W3 step: H1 W2 (2048 x 2048)", 0, 256, 2048, 2048},
        {"W3 step: H1^T D2 (W2's gradient)", 1, 2048, 2048, 256},
    };
    static const char* levels[] = {"portable", "avx2", "avx512", "avx512_bf16", "amx"};
    static const char* bodies[] = {"plain C", "widened to float32", "VDPBF16PS", "AMX tiles"};
    if (!archfit_packed_gemm_available()) {
        printf("this CPU has no AVX2 and FMA: archfit hands these products to BLAS\n");
        return 0;
    }
    printf("archfit's packed GEMM, one thread, kernel path %s (bfloat16: %s)\n",
           levels[archfit_isa()], bodies[archfit_bf16_body_of_level(archfit_isa())]);
    printf("%-34s %6s %6s %6s   float32  float64 bfloat16 (GFLOP/s)\n", "product", "m", "n", "k");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const double r32 = rate_f32(shapes[s].trans_a, shapes[s].m, shapes[s].n, shapes[s].k);
        const double r64 = rate_f64(shapes[s].trans_a, shapes[s].m, shapes[s].n, shapes[s].k);
        const double rbf = rate_bf16(shapes[s].trans_a, shapes[s].m, shapes[s].n, shapes[s].k);
        printf("%-34s %6d %6d %6d   %7.1f  %7.1f  %7.1f", shapes[s].what, shapes[s].m,
               shapes[s].n, shapes[s].k, r32, r64, rbf);
        if (peak[0] > 0 && peak[1] > 0)
            printf("   (%.0f%%, %.0f%% of peak)", 100 * r32 / peak[0], 100 * r64 / peak[1]);
        printf("\n");
    }
    return 0;
}
