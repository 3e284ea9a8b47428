/* The machine's measured FMA peak: the bound every "share of peak" figure is
 * read against. Twelve independent FMA chains per thread (more than two FMA
 * pipes times their latency), on 1 and 2 threads, float32 and float64, 256-bit
 * (AVX2) registers. A clock read from /proc/cpuinfo is not the clock the cores
 * run at; this is what they do.
 *
 *   gcc -O3 -funroll-loops -fopenmp benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 *
 * Prints GFLOP/s (an FMA counts two flops) for each dtype and thread count.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

#define CHAINS 12
#define ITERATIONS 200000000L

/* a <- a * b + c in CHAINS registers; the sum keeps the result live */
__attribute__((target("avx2,fma"))) static double chains_f32(long iterations) {
    __m256 a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps(i * 0.001f);
    const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(0.0001f);
    for (long t = 0; t < iterations; t++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    double sum = 0;
    for (int i = 0; i < CHAINS; i++) sum += _mm256_cvtss_f32(a[i]);
    return sum;
}

__attribute__((target("avx2,fma"))) static double chains_f64(long iterations) {
    __m256d a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_pd(i * 0.001);
    const __m256d b = _mm256_set1_pd(0.9999), c = _mm256_set1_pd(0.0001);
    for (long t = 0; t < iterations; t++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_pd(a[i], b, c);
    double sum = 0;
    for (int i = 0; i < CHAINS; i++) sum += _mm256_cvtsd_f64(a[i]);
    return sum;
}

int main(void) {
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        fprintf(stderr, "this CPU has no AVX2 and FMA\n");
        return 1;
    }
    for (int threads = 1; threads <= 2; threads++) {
        for (int dtype = 0; dtype < 2; dtype++) {
            const double lanes = dtype == 0 ? 8 : 4;
            double sum = 0, start = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
            sum += dtype == 0 ? chains_f32(ITERATIONS) : chains_f64(ITERATIONS);
            const double seconds = omp_get_wtime() - start;
            printf("%s FMA peak, %d thread(s): %.1f GFLOP/s (checksum %.3f)\n",
                   dtype == 0 ? "float32" : "float64", threads,
                   threads * (double)ITERATIONS * CHAINS * lanes * 2 / seconds / 1e9, sum);
        }
    }
    return 0;
}
