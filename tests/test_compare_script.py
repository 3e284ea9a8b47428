"""benchmarks/compare.py --quick must run without error; peers that are not installed
are reported as missing. benchmarks/side_by_side.py and tabular.py must run too. (Speed itself is
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
    assert record["results"]["train"]["W3-bfloat16"]["archfit"]["rate"] > 0
    for workload in ("W1 64-32-10", "W2 784-256-128-10", "W3 1024-2048-2048-10", "W4 8-64-64-1",
                     "W2-float64", "W2-bfloat16", "W3-bfloat16"):
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


TABLES = Path(__file__).parent.parent / "benchmarks" / "tables.py"


@pytest.mark.skipif(not TABLES.exists(), reason="needs the source tree")
def test_the_performance_page_shows_the_newest_records(tmp_path):
    # the page's tables are the records' (one source for each figure) ...
    result = subprocess.run([sys.executable, str(TABLES), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # ... the newest per CPU and script, with archfit's ratio to each peer
    import json
    sys.path.insert(0, str(TABLES.parent))
    try:
        import tables
    finally:
        sys.path.remove(str(TABLES.parent))

    def record(name, date, model, path, results, script="compare.py --quick"):
        (tmp_path / name).write_text(json.dumps({
            "date": date, "commit": "0123456789", "command": f"python benchmarks/{script}",
            "cpu": {"model": model, "flags": [], "cores": 2}, "kernel_path": path,
            "results": results}))

    old = {"train": {"W1": {"archfit": {"rate": 100.0}, "jax": {"rate": 50.0}}}}
    new = {"train": {"W1": {"archfit": {"rate": 300.0}, "jax": {"rate": 100.0},
                            "numpy": None}}}
    record("a.json", "2026-01-01T00:00:00", "CPU A", "avx2", old)
    record("b.json", "2026-01-02T00:00:00", "CPU A", "avx2", new)
    record("c.json", "2026-01-01T00:00:00", "CPU B", "avx512",
           {"W5": {"archfit": 10.0, "torch": 4.0}}, script="layers.py")
    (tmp_path / "older-schema.json").write_text(json.dumps({"cpu_model": "X", "results": {}}))
    text = tables.tables(str(tmp_path))
    assert "**CPU A, kernel path `avx2`**" in text and "**CPU B, kernel path `avx512`**" in text
    assert "| W1 | 300 | 100 | jax 3.00× |" in text and "| W1 | 100 |" not in text
    assert "| W5 | 10 | 4 | torch 2.50× |" in text and "record `b.json`" in text
    page = f"before\n{tables.BEGIN}\nstale\n{tables.END}\nafter\n"
    assert tables.page_with_tables(page, "fresh") == \
        f"before\n{tables.BEGIN}\nfresh\n{tables.END}\nafter\n"
    with pytest.raises(ValueError, match="no markers"):
        tables.page_with_tables("no markers here", "x")

    # docs/tabular.md: the newest complete run holding every model, per CPU
    def tabular(name, date, complete, archfit_rmse, models=tables._tabular_module().MODELS,
                sets=("concrete", "digits")):
        (tmp_path / name).write_text(json.dumps({
            "date": date, "commit": "0123456789", "command": "python benchmarks/tabular.py",
            "cpu": {"model": "CPU A", "flags": [], "cores": 2}, "kernel_path": "avx2",
            "seeds": 2, "complete": complete,
            "mean_rank": {m: 1.0 + i for i, m in enumerate(models)},
            "results": {sets[0]: {m: {
                "0": {"metric": archfit_rmse if m == "archfit" else 5.0, "seconds": 2.0},
                "1": ({"timed_out": 60.0} if m == "tabm" else
                      {"metric": archfit_rmse if m == "archfit" else 5.0, "seconds": 20.0})}
                for m in models},
                sets[1]: {m: {"0": {"metric": 0.97 if m == "archfit" else 0.98,
                                     "seconds": 1.0 if m == "archfit" else 10.0}}
                           for m in models}}}))
    tabular("t1.json", "2026-01-03T00:00:00", True, 4.0)
    tabular("t2.json", "2026-01-04T00:00:00", False, 3.0)             # stopped early
    tabular("t3.json", "2026-01-05T00:00:00", True, 2.0, models=("archfit", "lightgbm"))
    text = tables.tabular_tables(str(tmp_path))
    assert "record `t1.json`" in text and "t2.json" not in text and "t3.json" not in text
    # a timed-out seed is left out of the means; archfit's gap to the best other model
    assert ("| concrete | RMSE | 4.000 | 5.000 | 5.000 | 5.000 | 5.000 (1 of 2 seeds) | -20.0% "
            "RMSE |") in text
    assert "| digits | accuracy | 0.9700 | 0.9800 |" in text and "| -1.0 points |" in text
    assert "| concrete | 11.0 | 11.0 | 11.0 | 11.0 | > 31.0 | 1.000 | < 0.355 |" in text
    assert "| digits | 1.0 | 10.0 | 10.0 | 10.0 | 10.0 | 0.100 | 0.100 |" in text
    assert "| mean rank | | 1.00 | 2.00 | 3.00 | 4.00 | 5.00 | |" in text
    assert "Held out" not in text
    # a run on the held-out tables: its own table, whichever models it ran,
    # and never in place of the development tables
    tabular("t4.json", "2026-01-06T00:00:00", True, 0.25, models=("archfit", "lightgbm"),
            sets=("sacramento", "hpc"))
    text = tables.tabular_tables(str(tmp_path))
    assert "record `t1.json`" in text and "record `t4.json`" in text
    assert text.index("t1.json") < text.index("Held out") < text.index("t4.json")
    assert "| sacramento | RMSE | 0.250 | — | 5.000 | — | — | -95.0% RMSE |" in text
    assert "| hpc | accuracy | 0.9700 | — | 0.9800 | — | — | -1.0 points |" in text


def test_tabular_writes_one_record_that_grows_with_each_data_set(tmp_path):
    # archfit alone on two bundled tables, one seed: one record, rewritten
    # after each data set and complete after the last
    import json
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "tabular.py"
    result = subprocess.run([sys.executable, str(script), "--models", "archfit", "--datasets",
                             "breast_cancer,diabetes", "--seeds", "1", "--results",
                             str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    records = list(tmp_path.glob("*-tabular.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["complete"] is True
    assert set(record["results"]) == {"breast_cancer", "diabetes"}
    assert record["results"]["diabetes"]["archfit"]["0"]["metric"] < 70
