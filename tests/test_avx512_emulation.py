"""The AVX-512 kernel bodies, checked on any CPU with AVX2 and FMA.

On a CPU with AVX-512 the whole kernel suite runs on that path
(test_isolated.py). Everywhere else the 512-bit bodies would go untested, so
tests/emulation/avx512_emulation.c compiles them from the library's own
headers with the _mm512_ intrinsics emulated lane by lane and checks every
product against the AVX2 body bit for bit and against a long-double
reference, over shapes that cross every block edge; the serial build
(test_serial_build.py) runs the whole kernel suite on the emulated path too.
The Adam update's AVX-512 build is plain C that the compiler vectorises; what
must hold there is that it contracts nothing into an FMA, which its assembly
shows.
"""
import platform
import re
import shutil
import subprocess

import pytest

from isolation import ROOT

KERNELS = ROOT / "csrc" / "archfit" / "_kernels"
EMULATION = ROOT / "tests" / "emulation"


# GCC, and Clang where it is installed (the AVX-512 Adam build differs between them)
COMPILERS = ["gcc", "clang"]


def _compiler(name):
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"the AVX-512 bodies are x86-64 code; this machine is {platform.machine()}")
    # the plain name, else the newest versioned one (Debian's clang-14)
    candidates = [name] + [f"{name}-{v}" for v in range(30, 10, -1)]
    found = next((path for path in map(shutil.which, candidates) if path), None)
    if not found:
        pytest.skip(f"{name} is not installed")
    return found


@pytest.mark.parametrize("compiler", COMPILERS)
def test_avx512_bodies_match_avx2_under_emulation(tmp_path, compiler):
    cc = _compiler(compiler)
    from archfit import kernels
    if kernels.DETECTED == "portable":
        pytest.skip("the emulation runs on AVX2 and FMA, which this CPU lacks")
    binary = tmp_path / "avx512_emulation"
    build = subprocess.run([cc, "-O2", "-Wall", "-Wno-unused-function", f"-I{KERNELS}",
                            str(EMULATION / "avx512_emulation.c"),
                            "-o", str(binary), "-lm"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "checks passed" in run.stdout, run.stdout[-3000:]
    assert int(run.stdout.split()[0]) > 5000       # every shape of the harness ran


def _function(assembly, name):
    """The instructions of one function in `gcc -S` output."""
    match = re.search(rf"^{name}:[^\n]*\n(.*?)\n\s*\.size\s+{name},", assembly, re.S | re.M)
    assert match, f"{name} not found in the assembly"
    return match.group(1)


@pytest.mark.parametrize("compiler", COMPILERS)
def test_the_avx512_adam_update_contracts_nothing_into_an_fma(tmp_path, compiler):
    # AVX-512F has FMA instructions, and GCC and Clang contract a * b + c into
    # one by default; the update would then round differently from the other paths
    cc = _compiler(compiler)
    source = tmp_path / "adam.c"
    source.write_text('#include "adam.h"\n'
                      "void* builds[] = {(void*)archfit_adam_f32_avx512,"
                      " (void*)archfit_adam_f64_avx512};\n")
    asm = tmp_path / "adam.s"
    # the release flags of setup.py
    build = subprocess.run([cc, "-O3", "-fno-math-errno", "-S", f"-I{KERNELS}", str(source),
                            "-o", str(asm)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    text = asm.read_text()
    for name in ("archfit_adam_f32_avx512", "archfit_adam_f64_avx512"):
        body = _function(text, name)
        assert "zmm" in body, f"{name} is not a 512-bit build"
        assert "vfmadd" not in body and "vfmsub" not in body and "vfnmadd" not in body, name
