"""benchmarks/compare.py --quick must run without error; peers that are not installed
are reported as missing. (Speed itself is never asserted.)"""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "compare.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="needs the source tree")
def test_compare_quick_runs():
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for workload in ("W1 64-32-10", "W2 784-256-128-10", "W3 1024-2048-2048-10", "W4 8-64-64-1",
                     "W2-float64"):
        assert workload in out, workload
    for text in ("µs per 1-sample call", "samples/s at batch 4096", "64 independent W1 fits",
                 "GEMM rate"):
        assert text in out, text
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "missing" in out
