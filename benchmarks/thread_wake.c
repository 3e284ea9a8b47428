/* What an OpenMP parallel region costs after the team has been idle: the
 * other thread spins for a while after a region (GNU OpenMP's spin count),
 * then sleeps, and waking it costs whatever the machine charges for that -
 * tens of microseconds on bare metal, milliseconds on a virtual machine whose
 * idle virtual CPU the host has descheduled. archfit's idle rule
 * (_plan.idle_threads) is sized by this.
 *
 *   gcc -O2 -fopenmp benchmarks/thread_wake.c -o /tmp/thread_wake && /tmp/thread_wake
 *
 * Prints, for pauses of 0, 1, 20 and 100 ms before it, the mean and worst
 * time of an empty two-thread region (20 of each), and the CPU time the
 * process burns in the 200 ms after a region (the idle thread spinning).
 */
#include <omp.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + r.ru_stime.tv_sec
           + r.ru_stime.tv_usec * 1e-6;
}

int main(void) {
    static const int pause_us[4] = {0, 1000, 20000, 100000};
    volatile int x = 0;
    for (int g = 0; g < 4; g++) {
        double worst = 0, sum = 0;
        for (int rep = 0; rep < 20; rep++) {
#pragma omp parallel num_threads(2)
            { x++; }
            usleep(pause_us[g]);
            double t = now();
#pragma omp parallel num_threads(2)
            { x++; }
            t = now() - t;
            sum += t;
            if (t > worst) worst = t;
        }
        printf("pause %3d ms: empty 2-thread region, mean %8.1f us, worst %8.1f us\n",
               pause_us[g] / 1000, sum / 20 * 1e6, worst * 1e6);
    }
    for (int rep = 0; rep < 3; rep++) {
#pragma omp parallel num_threads(2)
        { for (int i = 0; i < 1000000; i++) x++; }
        double c = cpu_seconds();
        usleep(200000);
        printf("CPU time burned in the 200 ms after a region: %.1f ms\n",
               (cpu_seconds() - c) * 1e3);
    }
    return 0;
}
