"""Suites that exercise compiled code directly run in a subprocess: a crash there
fails one test here instead of taking the runner down. The kernel suite also
runs against a build with AddressSanitizer and UndefinedBehaviorSanitizer
(test_sanitized_build.py) and against one without OpenMP
(test_serial_build.py)."""
import os
import subprocess
import sys

import pytest

from isolation import TESTS, run_suite


def test_kernel_suite():
    run_suite(TESTS / "kernels")


@pytest.mark.parametrize("path", ["portable", "avx2", "avx512", "avx512_bf16", "amx"])
def test_kernel_suite_on_every_instruction_set_path(path):
    # ARCHFIT_ISA forces a lower path than the CPU's best; the whole kernel
    # suite (NumPy reference, finite differences, bits across threads) must
    # hold on each path the CPU can run
    from archfit import kernels
    if path not in kernels.isa_paths():
        pytest.skip(f"this CPU cannot run the {path} path (it runs {kernels.DETECTED} at most)")
    if path == kernels.ISA:
        pytest.skip(f"{path} is the path the default kernel suite runs")
    run_suite(TESTS / "kernels", {"ARCHFIT_ISA": path})    # test_cpu.py checks the path


def test_an_instruction_set_the_cpu_cannot_run_is_refused():
    from archfit import kernels
    for value, message in (("sse9", "ARCHFIT_ISA must be one of"),
                           *((("amx", "cannot run"),) if kernels.DETECTED != "amx" else ())):
        result = subprocess.run([sys.executable, "-c", "import archfit"], capture_output=True,
                                text=True, timeout=120, env=dict(os.environ, ARCHFIT_ISA=value))
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_hostile_input_suite():
    pytest.importorskip("hypothesis")
    run_suite(TESTS / "hostile")
