"""The instruction set archfit's kernels use: detected once, here.

``ARCHFIT_ISA`` (``avx512``, ``avx2`` or ``portable``), read once when archfit
is imported, forces a lower path than the CPU could run, so that the tests can
run every path the CPU supports. A level above what the CPU can run is an
error, as is an unknown name: silently running another path would make a test
that asked for it meaningless.
"""
import os

from archfit._kernels._cpu cimport (archfit_isa_detect, archfit_isa_adopt,
                                    ARCHFIT_ISA_PORTABLE, ARCHFIT_ISA_AVX2, ARCHFIT_ISA_AVX512)

#: The levels by name, lowest first.
LEVELS = {"portable": ARCHFIT_ISA_PORTABLE, "avx2": ARCHFIT_ISA_AVX2,
          "avx512": ARCHFIT_ISA_AVX512}
_NAMES = {level: name for name, level in LEVELS.items()}

#: The highest level this CPU can run.
DETECTED = _NAMES[archfit_isa_detect()]


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
