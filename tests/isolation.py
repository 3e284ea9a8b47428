"""Builds and suites the isolated tests share: a suite run in a subprocess (a
crash there fails one test instead of taking the runner down), and archfit
built with other switches in a folder of its own."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def run_suite(path, env_extra=None, timeout=900):
    env = dict(os.environ, ARCHFIT_ISOLATED="1", **(env_extra or {}))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-x", str(path)], capture_output=True, text=True, timeout=timeout,
                            cwd=ROOT, env=env)
    tail = (result.stdout[-3000:] + "\n" + result.stderr[-3000:]).strip()
    assert result.returncode >= 0, f"the suite crashed with signal {-result.returncode}:\n{tail}"
    assert result.returncode == 0, tail
    assert " passed" in result.stdout.splitlines()[-1], tail
    return result.stdout


def sanitizer_runtime():
    cc = shutil.which("gcc")
    if cc is None or sys.platform != "linux":
        return None
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        found = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True,
                               text=True).stdout.strip()
        if not os.path.isabs(found) or not os.path.exists(found):
            return None
        libs.append(found)
    return " ".join(libs)


def build_site(tmp_path_factory, name, build_env):
    """archfit's Python files plus kernels built with `build_env`, in a folder of its own."""
    pytest.importorskip("Cython")
    work = tmp_path_factory.mktemp(name)
    shutil.copy(ROOT / "setup.py", work)
    shutil.copy(ROOT / "pyproject.toml", work)
    built = shutil.ignore_patterns("*.c", "*.so", "__pycache__")
    shutil.copytree(ROOT / "csrc", work / "csrc", ignore=built)
    shutil.copytree(ROOT / "src", work / "src", ignore=built)
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--parallel", "2",
                            "--build-lib", str(work / "lib"), "--build-temp", str(work / "tmp")],
                           cwd=work, env=dict(os.environ, **build_env), capture_output=True,
                           text=True, timeout=1200)
    assert build.returncode == 0, build.stderr[-3000:]
    site = work / "site"
    shutil.copytree(work / "src" / "archfit", site / "archfit")
    shutil.copytree(work / "lib" / "archfit", site / "archfit", dirs_exist_ok=True)
    shutil.copy(ROOT / "csrc" / "archfit" / "_kernels" / "__init__.py",
                site / "archfit" / "_kernels" / "__init__.py")
    return site


def emulates_avx512():
    """Whether the serial build emulates AVX-512: on an x86-64 CPU with AVX2
    and FMA but no AVX-512 (with AVX-512 the default suite runs that path)."""
    from archfit import kernels
    return kernels.DETECTED == "avx2"
