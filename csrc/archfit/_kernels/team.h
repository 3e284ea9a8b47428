/* OpenMP team helpers for Cython's parallel blocks, which have no barrier of
 * their own. Without OpenMP a "team" is the calling thread alone. */
#ifndef ARCHFIT_TEAM_H
#define ARCHFIT_TEAM_H

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
