"""The bfloat16 bodies the CPU may lack (VDPBF16PS, AMX tiles), checked on any
x86-64 CPU with AVX2 and FMA: tests/emulation/bf16_emulation.c compiles
bf16.h with both instructions emulated as the Intel SDM defines them and
checks every body, the plain C and widened AVX2 ones too, against a scalar
reference that rounds each operand to bfloat16 (by frexp and rint, not the
header's code), bit for bit, over shapes that cross every block edge. On a
CPU that has the instructions, the kernel suite (tests/kernels/test_bf16.py)
runs the real ones."""
import platform
import shutil
import subprocess

import pytest

from isolation import ROOT

KERNELS = ROOT / "csrc" / "archfit" / "_kernels"
HARNESS = ROOT / "tests" / "emulation" / "bf16_emulation.c"


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_bf16_bodies_match_the_reference_under_emulation(tmp_path, compiler):
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"the bodies are x86-64 code; this machine is {platform.machine()}")
    candidates = [compiler] + [f"{compiler}-{v}" for v in range(30, 10, -1)]
    cc = next((path for path in map(shutil.which, candidates) if path), None)
    if cc is None:
        pytest.skip(f"{compiler} is not installed")
    binary = tmp_path / "bf16_emulation"
    build = subprocess.run([cc, "-O2", "-Wall", "-Wno-unused-function", f"-I{KERNELS}",
                            str(HARNESS), "-o", str(binary), "-lm"],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "checks passed" in run.stdout, run.stdout[-3000:]
    assert int(run.stdout.split()[0]) > 100000       # every shape and body ran
