"""Extension modules of archfit; all static metadata lives in pyproject.toml.

Environment switches read at build time:

ARCHFIT_DEBUG=1
    Cython bounds and initialisation checks on, ``-O0 -g`` instead of ``-O3``.
ARCHFIT_NO_OPENMP=1
    Build without OpenMP: every kernel then runs on one thread (besides
    BLAS's own). OpenMP is used when the compiler accepts it.
ARCHFIT_SANITIZE=1
    The debug build plus AddressSanitizer and UndefinedBehaviorSanitizer
    (``-fsanitize=address,undefined``), where the compiler supports them. Run
    Python with the sanitizer runtime preloaded, e.g.
    ``LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0``.
ARCHFIT_EMULATE_AVX512=1
    For tests on a CPU without AVX-512 (x86-64, GCC or Clang): the AVX-512
    kernel bodies run on AVX2+FMA with the 512-bit intrinsics emulated lane
    by lane (avx512_emulation.h), and the CPU reports the AVX-512 level. Much
    slower, built at -O2; build it in a folder of its own (the test suite's
    serial build).
"""
import os
import subprocess
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# Internal kernel modules (csrc/archfit/_kernels/NAME.pyx -> archfit._kernels.NAME), then the
# public Cython API (src/archfit/kernels.pyx -> archfit.kernels, declared in kernels.pxd).
KERNELS = ["_cpu", "_blas", "_random", "_elementwise", "_optimizers", "_layers", "_plan", "_passes",
           "_training", "_prediction", "_hashing", "_labels", "_files"]
SOURCES = {f"archfit._kernels.{name}": f"csrc/archfit/_kernels/{name}.pyx" for name in KERNELS}
SOURCES["archfit.kernels"] = "src/archfit/kernels.pyx"

SANITIZE = os.environ.get("ARCHFIT_SANITIZE", "0") not in ("", "0")
EMULATE_AVX512 = os.environ.get("ARCHFIT_EMULATE_AVX512", "0") not in ("", "0")
DEBUG = SANITIZE or os.environ.get("ARCHFIT_DEBUG", "0") not in ("", "0")

# One table of per-compiler flags (Thinc's habit): MSVC takes different spellings.
COMPILE_ARGS = {
    "msvc": {"release": ["/O2"], "debug": ["/Od", "/Zi"]},
    # -fno-math-errno: sqrt need not set errno, so loops calling it can vectorise.
    # -falign-functions=64: a function's loops then sit at the same offsets
    # within 64-byte fetch windows whatever code precedes it, so an unrelated
    # edit cannot slow a kernel (benchmarks/RESULTS.md has the case that did).
    "other": {"release": ["-O3", "-fno-math-errno", "-falign-functions=64"], "debug": ["-O0", "-g"]},
}
compiler = "msvc" if sys.platform == "win32" else "other"
compile_args = COMPILE_ARGS[compiler]["debug" if DEBUG else "release"]
link_args = []
# A module's own flags. -fno-trapping-math: a float comparison may not trap, so
# the clamps of gelu.h's erf and exp become vector selects and its loops vectorise
# (the arithmetic, and so every result, is the same).
MODULE_ARGS = {"archfit._kernels._elementwise": ["-fno-trapping-math"]} if compiler == "other" \
    else {}


def _openmp_flags():
    """The compiler's OpenMP flag, or None when it has no OpenMP (Apple clang)."""
    if os.environ.get("ARCHFIT_NO_OPENMP", "0") not in ("", "0"):
        return None
    if compiler == "msvc":
        return "/openmp"
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            subprocess.run([cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp")],
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return None
    return "-fopenmp"


if EMULATE_AVX512 and compiler == "other" and not DEBUG:
    # at -O3 GCC takes minutes over the emulated registers' structs; -O2 seconds
    compile_args = ["-O2" if arg == "-O3" else arg for arg in compile_args]

OPENMP = _openmp_flags()
if OPENMP:
    compile_args = compile_args + [OPENMP]
    if compiler != "msvc":
        link_args = link_args + [OPENMP]
if SANITIZE and compiler == "other":
    sanitizers = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                  "-fno-sanitize-recover=undefined"]
    # -O0 as the debug build: -O1 compiles the large generated C several times
    # slower, more than the kernel suite saves at run time
    compile_args = ["-O0", "-g"] + sanitizers + ([OPENMP] if OPENMP else [])
    link_args = sanitizers + ([OPENMP] if OPENMP else [])

# Compile the modules side by side: the build is most of a fresh install's time.
# (Cython's translation uses processes, so only where they fork.)
JOBS = os.cpu_count() or 1
TRANSLATE_JOBS = JOBS if sys.platform.startswith("linux") else 0

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        module,
        [source],
        extra_compile_args=compile_args + MODULE_ARGS.get(module, []),
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        + ([("ARCHFIT_AVX512_EMULATED", "1")] if EMULATE_AVX512 else []),
        include_dirs=["csrc/archfit/_kernels", numpy.get_include()],   # vecmat.h, numpy's C API
    )
    for module, source in SOURCES.items()
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["csrc", "src"],   # archfit._kernels.*, archfit/kernels.pxd
        compiler_directives=directives,
        # Rebuild when the debug switch flips, even if sources are unchanged.
        force=DEBUG,
        nthreads=TRANSLATE_JOBS,
    ),
    options={"build_ext": {"parallel": JOBS}},
)
