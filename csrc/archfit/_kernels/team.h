/* OpenMP team helpers for Cython's parallel blocks, which have no barrier of
 * their own. Without OpenMP a "team" is the calling thread alone.
 *
 * GNU OpenMP cannot start a team in a child made by fork() once the parent
 * has used one: the child hangs. So a forked child runs every kernel on one
 * thread (archfit_threads), as PyTorch does; spawned processes are unaffected. */
#ifndef ARCHFIT_TEAM_H
#define ARCHFIT_TEAM_H

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
static volatile int archfit_forked = 0;
static void archfit_mark_forked(void) { archfit_forked = 1; }
static void archfit_install_fork_guard(void) { pthread_atfork(NULL, NULL, archfit_mark_forked); }
#else
static const int archfit_forked = 0;
static void archfit_install_fork_guard(void) {}
#endif

/* A monotonic clock in nanoseconds (0 where there is none): when archfit's
 * last kernel call ended, for the idle rule in _plan.pyx. */
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
static inline unsigned long long archfit_now_ns(void) {
    LARGE_INTEGER count, rate;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&rate);
    return (unsigned long long) ((double) count.QuadPart * 1e9 / (double) rate.QuadPart);
}
#else
#include <time.h>
static inline unsigned long long archfit_now_ns(void) {
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) return 0;
    return (unsigned long long) t.tv_sec * 1000000000ull + (unsigned long long) t.tv_nsec;
}
#endif

/* The threads a kernel may use when `asked` for: 1 in a forked child. */
static inline int archfit_threads(int asked) { return archfit_forked || asked < 1 ? 1 : asked; }

#ifdef _OPENMP
#include <omp.h>
static inline int archfit_team_size(void) { return omp_get_num_threads(); }
static inline void archfit_barrier(void) {
#pragma omp barrier
}
#else
static inline int archfit_team_size(void) { return 1; }
static inline void archfit_barrier(void) {}
#endif

#endif
