"""The benchmark record: every run of a script that produces figures writes one
JSON file to benchmarks/results/ with when it ran, which code, which machine
and kernel path, the command, and the figures (compare.py, layers.py,
contention.py)."""
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
# The vector instruction sets a record names, when the CPU reports them.
FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
         "amx_tile", "amx_bf16")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The vector instruction sets this CPU reports (x86 Linux), or []."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return []
    return [f for f in FLAGS if f in flags]


def commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=HERE, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write(name: str, script: str, figures: dict, folder: str = RESULTS, argv=None,
          path: str | None = None, **extra) -> str:
    """Write a record of this run of `script` (its figures, and `extra`
    fields) as ``{date}-{name}.json`` in `folder`, or over `path` (a run's
    record written again as it grows); returns its path."""
    from archfit.kernels import DETECTED, ISA
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    args = list(sys.argv[1:] if argv is None else argv)
    record = {"date": date, "commit": commit(),
              "command": " ".join(["python", f"benchmarks/{script}"] + args),
              "cpu": {"model": cpu_model(), "flags": cpu_flags(), "cores": os.cpu_count()},
              "kernel_path": ISA, "detected": DETECTED, **extra, "results": figures}
    os.makedirs(folder, exist_ok=True)
    if path is None:
        path = os.path.join(folder,
                            f"{date[:19].replace(':', '').replace('T', '-')}-{name}.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    return path
