"""The kernel suite against a build with AddressSanitizer and
UndefinedBehaviorSanitizer, and the control that shows the sanitizers catch
an out-of-bounds read."""
import os
import subprocess
import sys

import pytest

from isolation import ROOT, TESTS, build_site, run_suite, sanitizer_runtime


@pytest.fixture(scope="module")
def sanitized_site(tmp_path_factory):
    """archfit with its kernels built by ``ARCHFIT_SANITIZE=1``, in a folder of its own."""
    runtime = sanitizer_runtime()
    if runtime is None:
        pytest.skip("gcc with AddressSanitizer and UndefinedBehaviorSanitizer is not available")
    if not (ROOT / "setup.py").exists():
        pytest.skip("the sanitised build needs the source tree")
    site = build_site(tmp_path_factory, "sanitized", {"ARCHFIT_SANITIZE": "1"})
    return {"PYTHONPATH": str(site), "LD_PRELOAD": runtime,
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}


def test_sanitized_build_catches_an_out_of_bounds_read(sanitized_site):
    # The control: bypass validation and hand a kernel a bias shorter than the rows
    # (sizes above numpy's small-buffer cache, so the read runs past a malloc block).
    probe = ("import numpy as np, archfit, archfit._kernels._elementwise as e\n"
             "assert archfit.__file__.startswith(%r), archfit.__file__\n"
             "Z = np.zeros((2, 2000)); A = np.zeros((2, 2000))\n"
             "e.forward_activation(Z, np.zeros(1500), A, 'relu')\n"
             % sanitized_site["PYTHONPATH"])
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=dict(os.environ, **sanitized_site), timeout=300)
    assert result.returncode != 0 and "AddressSanitizer" in result.stderr, result.stderr[-2000:]


def test_kernel_suite_under_sanitizers(sanitized_site):
    output = run_suite(TESTS / "kernels", sanitized_site)
    assert "passed" in output
