"""The instruction set archfit's kernels use: detected once, here.

``ARCHFIT_ISA`` (``amx``, ``avx512_bf16``, ``avx512``, ``avx2`` or ``portable``;
the two above ``avx512`` add bfloat16 products), read once when archfit
is imported, forces a lower path than the CPU could run, so that the tests can
run every path the CPU supports. A level above what the CPU can run is an
error, as is an unknown name: silently running another path would make a test
that asked for it meaningless.
"""
import os

from cython.parallel cimport parallel, threadid

from archfit._kernels._cpu cimport (archfit_isa_detect, archfit_isa_adopt, archfit_fp_mode,
                                    archfit_fp_set, archfit_fp_enter, archfit_fp_flushes,
                                    archfit_fp_without_flush,
                                    ARCHFIT_ISA_PORTABLE, ARCHFIT_ISA_AVX2, ARCHFIT_ISA_AVX512,
                                    ARCHFIT_ISA_AVX512_BF16, ARCHFIT_ISA_AMX,
                                    ARCHFIT_ISA_EMULATED)

#: The levels by name, lowest first.
LEVELS = {"portable": ARCHFIT_ISA_PORTABLE, "avx2": ARCHFIT_ISA_AVX2,
          "avx512": ARCHFIT_ISA_AVX512, "avx512_bf16": ARCHFIT_ISA_AVX512_BF16,
          "amx": ARCHFIT_ISA_AMX}
_NAMES = {level: name for name, level in LEVELS.items()}

#: The highest level this CPU can run.
DETECTED = _NAMES[archfit_isa_detect()]

#: Whether this is a test build (setup.py's ARCHFIT_EMULATE_AVX512) whose
#: AVX-512 level is emulated on AVX2.
EMULATED = bool(ARCHFIT_ISA_EMULATED)


def _choose(value, str detected):
    """The level named by ARCHFIT_ISA's `value` (None: the detected one)."""
    if value is None or value.strip() == "":
        return detected
    name = value.strip().lower()
    if name not in LEVELS:
        raise ValueError(f"ARCHFIT_ISA must be one of {sorted(LEVELS)}, got {value!r}")
    if LEVELS[name] > LEVELS[detected]:
        raise ValueError(f"ARCHFIT_ISA={value!r} asks for an instruction set this CPU "
                         f"cannot run (it runs {detected!r} at most)")
    return name


#: The level every kernel module uses in this process.
ISA = _choose(os.environ.get("ARCHFIT_ISA"), DETECTED)
LEVEL = LEVELS[ISA]
archfit_isa_adopt(LEVEL)


def paths():
    """Every level this CPU can run, lowest first (the paths the tests exercise)."""
    return [name for name, level in LEVELS.items() if level <= LEVELS[DETECTED]]


def flushes_to_zero():
    """Whether the calling thread's floating-point mode flushes subnormal
    numbers to zero (for the tests: archfit's kernels must leave it as found)."""
    return bool(archfit_fp_flushes(archfit_fp_mode()))


def set_flush_to_zero(bint on):
    """Set or clear flush-to-zero on the calling thread; returns the previous
    setting (for the tests)."""
    cdef unsigned long long mode = archfit_fp_mode()
    if on:
        archfit_fp_enter()
    else:
        archfit_fp_set(archfit_fp_without_flush(mode))
    return bool(archfit_fp_flushes(mode))


def worker_flags(int threads):
    """Whether each of `threads` OpenMP threads flushes subnormal numbers to
    zero, read inside one parallel region (for the tests: OpenMP reuses its
    threads, so this sees the threads archfit's kernels ran on)."""
    cdef int flags[64]
    cdef int t, n = max(1, min(threads, 64))
    for t in range(n):
        flags[t] = -1
    with nogil, parallel(num_threads=n):
        flags[threadid()] = archfit_fp_flushes(archfit_fp_mode())
    return [bool(flags[t]) for t in range(n) if flags[t] >= 0]
