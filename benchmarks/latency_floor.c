/* The floor under one-sample latency of 784-256-128-10 (float32) on this
 * machine: archfit's own vector-matrix kernel (vecmat.h), the columns of the
 * two large layers shared by two threads as Kernel.predict_ready shares them,
 * but with the team already running (no region start, no Python, no
 * validation, no allocation). What is left is streaming the weights.
 *
 *   gcc -O2 -fopenmp -Icsrc/archfit/_kernels benchmarks/latency_floor.c \
 *       -o /tmp/latency_floor && /tmp/latency_floor
 *
 * Prints microseconds per forward pass for each set of layers (a barrier
 * after each layer, as in archfit) and one thread's time for the whole pass.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vecmat.h"

static const int S[4] = {784, 256, 128, 10};
static float* W[3];
static float* A[4];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Columns of part `part` of `parts` of layer l (archfit's _row_layer split). */
static void layer(int l, int part, int parts) {
    const int n = S[l + 1];
    const int per = ((n + parts - 1) / parts + 7) / 8 * 8;
    int c0 = part * per, c1;
    if (c0 > n) c0 = n;
    c1 = c0 + per > n ? n : c0 + per;
    if (c0 < c1) archfit_vecmat_f32(S[l], c1 - c0, A[l], 1, W[l] + c0, n, A[l + 1] + c0);
}

/* Median over 7 runs of `reps` passes through the layers in `mask`, 2 threads. */
static double two_threads(int mask, int reps) {
    double runs[7];
    for (int run = 0; run < 7; run++) {
        double start = 0.0, stop = 0.0;
#pragma omp parallel num_threads(2)
        {
            const int tid = omp_get_thread_num();
#pragma omp barrier
            if (tid == 0) start = now();
            for (int r = 0; r < reps; r++)
                for (int l = 0; l < 3; l++) {
                    if (!(mask >> l & 1)) continue;
                    if (S[l] * S[l + 1] >= 32768) layer(l, tid, 2);
                    else if (tid == 0) layer(l, 0, 1);
#pragma omp barrier
                }
            if (tid == 0) stop = now();
        }
        runs[run] = (stop - start) / reps * 1e6;
    }
    for (int i = 0; i < 7; i++)          /* insertion sort; the median is runs[3] */
        for (int j = i; j > 0 && runs[j] < runs[j - 1]; j--) {
            double t = runs[j]; runs[j] = runs[j - 1]; runs[j - 1] = t;
        }
    return runs[3];
}

int main(void) {
    const int reps = 20000;
    for (int l = 0; l < 3; l++) {
        W[l] = malloc(sizeof(float) * S[l] * S[l + 1]);
        for (int i = 0; i < S[l] * S[l + 1]; i++) W[l][i] = 0.01f * (float)(i % 7 - 3);
    }
    for (int l = 0; l < 4; l++) {
        A[l] = malloc(sizeof(float) * 1024);
        for (int i = 0; i < 1024; i++) A[l][i] = 0.5f;
    }
    printf("784-256-128-10 float32, one sample, weights %.0f KiB\n",
           (784.0 * 256 + 256 * 128 + 128 * 10) * 4 / 1024);
    printf("2 threads, first layer only:  %6.2f us\n", two_threads(1, reps));
    printf("2 threads, layers 2 and 3:    %6.2f us\n", two_threads(6, reps));
    printf("2 threads, whole pass:        %6.2f us\n", two_threads(7, reps));
    double start = now();
    for (int r = 0; r < reps; r++)
        for (int l = 0; l < 3; l++) layer(l, 0, 1);
    printf("1 thread, whole pass:         %6.2f us\n", (now() - start) / reps * 1e6);
    return 0;
}
