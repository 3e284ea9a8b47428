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
 * Levels are ordered: a kernel runs its AVX-512 body at ARCHFIT_ISA_AVX512,
 * its AVX2 body at ARCHFIT_ISA_AVX2, its portable C below (ARCHFIT_ISA_CALL).
 * The AVX-512 level needs AVX-512F with AVX2 and FMA (every AVX-512 CPU has
 * them) and an operating system that saves the 512-bit registers, which
 * __builtin_cpu_supports checks.
 */
#ifndef ARCHFIT_CPU_H
#define ARCHFIT_CPU_H

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define ARCHFIT_X86_DISPATCH 1
#ifdef ARCHFIT_AVX512_EMULATED
#include "avx512_emulation.h"    /* a test build: AVX-512 emulated on AVX2 */
#endif
#include <immintrin.h>
#elif defined(_M_X64)
#include <xmmintrin.h>
#endif

/* Levels above AVX512 add bfloat16 products (bf16.h): AVX512_BF16's
 * VDPBF16PS, then AMX's tiles; every float32 kernel runs its AVX-512 body
 * there. */
enum { ARCHFIT_ISA_PORTABLE = 0, ARCHFIT_ISA_AVX2 = 1, ARCHFIT_ISA_AVX512 = 2,
       ARCHFIT_ISA_AVX512_BF16 = 3, ARCHFIT_ISA_AMX = 4 };

/* Whether this is a test build whose AVX-512 level is emulated. */
#ifdef ARCHFIT_AVX512_EMULATED
#define ARCHFIT_ISA_EMULATED 1
#else
#define ARCHFIT_ISA_EMULATED 0
#endif

#if defined(ARCHFIT_X86_DISPATCH) && !defined(ARCHFIT_AVX512_EMULATED)
#include <cpuid.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
/* CPUID.(7,1):EAX[5]. */
static int archfit_cpu_avx512_bf16(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1u);
}
/* AMX-TILE and AMX-BF16 (CPUID.(7,0):EDX[24], [22]), tile state enabled by the
 * OS (XCR0[18:17]), and this process allowed to use it (Linux's
 * ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, asked for here, once). */
static int archfit_cpu_amx(void) {
    unsigned a, b, c, d, lo, hi;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1u) || !((d >> 22) & 1u))
        return 0;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & (3u << 17)) != (3u << 17))
        return 0;
#ifdef __linux__
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return 0;
#endif
}
#endif

/* The highest level this CPU (and its operating system) can run. */
static int archfit_isa_detect(void) {
#ifdef ARCHFIT_X86_DISPATCH
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return ARCHFIT_ISA_PORTABLE;
    if (__builtin_cpu_supports("avx512f")) {   /* implies the OS saves zmm state */
#ifndef ARCHFIT_AVX512_EMULATED
        if (archfit_cpu_avx512_bf16())
            return archfit_cpu_amx() ? ARCHFIT_ISA_AMX : ARCHFIT_ISA_AVX512_BF16;
#endif
        return ARCHFIT_ISA_AVX512;
    }
#ifdef ARCHFIT_AVX512_EMULATED
    return ARCHFIT_ISA_AMX;    /* AVX-512, AVX512_BF16 and AMX all emulated (bf16.h) */
#endif
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

/* One dispatch for every kernel: name##_avx512, name##_avx2 or name##_portable
 * (all taking the same arguments), by the level. */
#ifdef ARCHFIT_X86_DISPATCH
#define ARCHFIT_ISA_CALL(name, ...)                                          \
    do {                                                                     \
        const int level_ = archfit_isa();                                    \
        if (level_ >= ARCHFIT_ISA_AVX512) name##_avx512(__VA_ARGS__);        \
        else if (level_ >= ARCHFIT_ISA_AVX2) name##_avx2(__VA_ARGS__);      \
        else name##_portable(__VA_ARGS__);                                   \
    } while (0)
#else
#define ARCHFIT_ISA_CALL(name, ...) name##_portable(__VA_ARGS__)
#endif

/* For kernels whose AVX-512 level runs the AVX2 body (cross_entropy.h,
 * dropout.h): name##_avx2 from the AVX2 level up, else name##_portable. */
#ifdef ARCHFIT_X86_DISPATCH
#define ARCHFIT_AVX2_OR_PORTABLE(name) \
    (archfit_isa() >= ARCHFIT_ISA_AVX2 ? name##_avx2 : name##_portable)
#else
#define ARCHFIT_AVX2_OR_PORTABLE(name) name##_portable
#endif

/* Flush-to-zero for the duration of a kernel call, on each thread it uses.
 *
 * As a classifier becomes confident, probabilities and backpropagated errors
 * become subnormal, and x86 arithmetic on subnormal numbers is many times
 * slower. Every kernel entry (and every OpenMP thread inside it) calls
 * archfit_fp_enter, which sets flush-to-zero and denormals-are-zero and
 * returns the thread's previous mode, and archfit_fp_leave with that value
 * before returning: the caller's mode, exception flags included, is restored
 * exactly, so archfit never changes the numerics of the code that calls it.
 * x86-64: MXCSR's FTZ (bit 15) and DAZ (bit 6); arm64: FPCR's FZ (bit 24);
 * elsewhere nothing. */
#define ARCHFIT_MXCSR_FTZ_DAZ 0x8040u
#define ARCHFIT_FPCR_FZ (1ull << 24)

static inline unsigned long long archfit_fp_mode(void) {
#if defined(__x86_64__) || defined(_M_X64)
    return _mm_getcsr();
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    unsigned long long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#else
    return 0;
#endif
}

static inline void archfit_fp_set(unsigned long long mode) {
#if defined(__x86_64__) || defined(_M_X64)
    _mm_setcsr((unsigned int)mode);
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__ __volatile__("msr fpcr, %0" : : "r"(mode));
#else
    (void)mode;
#endif
}

static inline unsigned long long archfit_fp_enter(void) {
    const unsigned long long saved = archfit_fp_mode();
#if defined(__x86_64__) || defined(_M_X64)
    archfit_fp_set(saved | ARCHFIT_MXCSR_FTZ_DAZ);
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    archfit_fp_set(saved | ARCHFIT_FPCR_FZ);
#endif
    return saved;
}

static inline void archfit_fp_leave(unsigned long long saved) { archfit_fp_set(saved); }

/* `mode` with flushing turned off. */
static inline unsigned long long archfit_fp_without_flush(unsigned long long mode) {
#if defined(__x86_64__) || defined(_M_X64)
    return mode & ~(unsigned long long)ARCHFIT_MXCSR_FTZ_DAZ;
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    return mode & ~ARCHFIT_FPCR_FZ;
#else
    return mode;
#endif
}

/* Whether this thread's mode flushes subnormal results (and inputs) to zero. */
static inline int archfit_fp_flushes(unsigned long long mode) {
#if defined(__x86_64__) || defined(_M_X64)
    return (mode & ARCHFIT_MXCSR_FTZ_DAZ) == ARCHFIT_MXCSR_FTZ_DAZ;
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    return (mode & ARCHFIT_FPCR_FZ) != 0;
#else
    (void)mode;
    return 0;
#endif
}

#endif
