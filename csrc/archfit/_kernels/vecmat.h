/* Vector-matrix products y = x W for one input row: the whole forward pass of
 * a single sample. OpenBLAS's GEMV streams W well but pays a call overhead
 * that dominates at these sizes; with W row-major (k, n), keeping a block of
 * outputs in registers while streaming W's rows is all it takes.
 *
 * y[0:n] = x[0:k] @ W[0:k, 0:n]; x strided by incx, W row-major with leading
 * dimension ldw. A product of small matrices is one such call per output row
 * (see _blas.gemm): B stays in L1 and no BLAS call or packing is paid.
 * Each output is the sum over i in increasing order (one FMA chain), so a
 * column's value does not depend on which other columns are computed with it.
 *
 * On x86-64 with GCC or Clang an AVX-512 or AVX2+FMA version runs when
 * cpu.h's level allows it; elsewhere a portable loop.
 */
#ifndef ARCHFIT_VECMAT_H
#define ARCHFIT_VECMAT_H

#include <stddef.h>

#include "cpu.h"

/* y = x W's arguments, and the portable loops: one body for both types. */
#define ARCHFIT_VECMAT_ARGS(T)                                                       \
    ptrdiff_t k, ptrdiff_t n, const T* x, ptrdiff_t incx, const T* W, ptrdiff_t ldw, T* y
#define ARCHFIT_VECMAT_PORTABLE(T, SUFFIX)                                           \
    static inline void archfit_vecmat_##SUFFIX##_portable(ARCHFIT_VECMAT_ARGS(T)) {   \
        for (ptrdiff_t j = 0; j < n; j++) y[j] = (T)0;                                \
        for (ptrdiff_t i = 0; i < k; i++) {                                           \
            const T xi = x[i * incx];                                                 \
            const T* row = W + i * ldw;                                               \
            for (ptrdiff_t j = 0; j < n; j++) y[j] += xi * row[j];                    \
        }                                                                             \
    }
ARCHFIT_VECMAT_PORTABLE(float, f32)
ARCHFIT_VECMAT_PORTABLE(double, f64)
#undef ARCHFIT_VECMAT_PORTABLE

#ifdef ARCHFIT_X86_DISPATCH
/* The SIMD bodies, one per element type and instruction set (vecmat_impl.h):
 * 8 independent FMA chains (8 registers of outputs) cover the FMA latency. */
#include "avx2_ops.h"
#include "vecmat_impl.h"
#include "simd_ops_end.h"
#define AV_DOUBLE
#include "avx2_ops.h"
#include "vecmat_impl.h"
#include "simd_ops_end.h"

#include "avx512_ops.h"
#include "vecmat_impl.h"
#include "simd_ops_end.h"
#define AV_DOUBLE
#include "avx512_ops.h"
#include "vecmat_impl.h"
#include "simd_ops_end.h"
#endif

/* The dispatchers: the body of cpu.h's level. */
static inline void archfit_vecmat_f32(ARCHFIT_VECMAT_ARGS(float)) {
    ARCHFIT_ISA_CALL(archfit_vecmat_f32, k, n, x, incx, W, ldw, y);
}

static inline void archfit_vecmat_f64(ARCHFIT_VECMAT_ARGS(double)) {
    ARCHFIT_ISA_CALL(archfit_vecmat_f64, k, n, x, incx, W, ldw, y);
}
#undef ARCHFIT_VECMAT_ARGS

#endif
