/* The instruction set archfit's hand-written kernels use: ONE decision.
 *
 * archfit._kernels._cpu detects what the CPU can run (archfit_isa_detect),
 * lowers it to what the ARCHFIT_ISA environment variable asks for, and every
 * other extension module adopts that level when it is imported
 * (archfit_isa_adopt), before any kernel runs. Each module keeps its own copy
 * of the level (a static in this header: C code in separate extension modules
 * shares no globals), but there is one detection and one reading of the
 * environment. Plain C programs that include a kernel header without Python
 * (benchmarks/latency_floor.c) detect on first use.
 *
 * Levels are ordered: a kernel uses its AVX2 body when the level is at least
 * ARCHFIT_ISA_AVX2. AVX-512 is detected and reported; no kernel has a 512-bit
 * body yet, so on such a CPU the AVX2 bodies run.
 */
#ifndef ARCHFIT_CPU_H
#define ARCHFIT_CPU_H

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define ARCHFIT_X86_DISPATCH 1
#include <immintrin.h>
#endif

enum { ARCHFIT_ISA_PORTABLE = 0, ARCHFIT_ISA_AVX2 = 1, ARCHFIT_ISA_AVX512 = 2 };

/* The highest level this CPU (and its operating system) can run. */
static int archfit_isa_detect(void) {
#ifdef ARCHFIT_X86_DISPATCH
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return ARCHFIT_ISA_PORTABLE;
    if (__builtin_cpu_supports("avx512f"))
        return ARCHFIT_ISA_AVX512;
    return ARCHFIT_ISA_AVX2;
#else
    return ARCHFIT_ISA_PORTABLE;
#endif
}

static int archfit_isa_level = -1;

/* Called once per module at import, with the level archfit._kernels._cpu chose. */
static void archfit_isa_adopt(int level) { archfit_isa_level = level; }

static inline int archfit_isa(void) {
    if (archfit_isa_level < 0)
        archfit_isa_level = archfit_isa_detect();
    return archfit_isa_level;
}

static inline int archfit_have_avx2(void) { return archfit_isa() >= ARCHFIT_ISA_AVX2; }

#endif
