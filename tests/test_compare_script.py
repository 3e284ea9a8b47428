"""benchmarks/compare.py --quick must run without error; peers that are not installed
are reported as missing. benchmarks/side_by_side.py must run too. (Speed itself is
never asserted.)"""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "compare.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="needs the source tree")
def test_compare_quick_runs(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--record-dir",
                             str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    # every run leaves a record: when, which code and machine, the command, the figures
    import json
    (record_path,) = tmp_path.glob("*-compare-quick.json")
    record = json.loads(record_path.read_text())
    assert {"date", "commit", "command", "cpu", "kernel_path", "results"} <= set(record)
    assert "--quick" in record["command"] and record["cpu"]["model"]
    assert record["results"]["train"]["W1"]["archfit"]["rate"] > 0
    for workload in ("W1 64-32-10", "W2 784-256-128-10", "W3 1024-2048-2048-10", "W4 8-64-64-1",
                     "W2-float64"):
        assert workload in out, workload
    for text in ("µs per 1-sample call", "samples/s at batch 4096", "64 independent W1 fits",
                 "2 processes", "GEMM rate", "archfit's kernel path", "instruction sets:",
                 "converged", "jax", "4096x784 @ 784x256", "archfit ÷ best peer"):
        assert text in out, text
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "missing" in out


SIDE_BY_SIDE = Path(__file__).parent.parent / "benchmarks" / "side_by_side.py"


@pytest.mark.skipif(not SIDE_BY_SIDE.exists(), reason="needs the source tree")
def test_side_by_side_runs_a_build_against_a_copy_of_itself(tmp_path):
    # the installed build against a copy of its own package (another folder,
    # another worker process): training (sharded, packed operands on AVX2) and
    # prediction run, give the same bits, print a ratio
    import shutil
    import archfit
    from archfit import _kernels
    copy = tmp_path / "archfit"
    shutil.copytree(Path(archfit.__file__).parent, copy)
    if not (copy / "_kernels").exists():        # an editable install keeps them apart
        shutil.copytree(Path(_kernels.__file__).parent, copy / "_kernels")
    for extra in (["--epochs", "4"], ["--predict", "300"]):
        result = subprocess.run([sys.executable, str(SIDE_BY_SIDE), str(tmp_path),
                                 "--sizes", "60,256,128,4", "--batch-size", "160", *extra],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "x the other (median of" in result.stdout and "bits differ" not in result.stdout
