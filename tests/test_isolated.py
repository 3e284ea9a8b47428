"""Suites that exercise compiled code directly run in a subprocess: a crash there
fails one test here instead of taking the runner down. The kernel suite also runs
against a build with AddressSanitizer and UndefinedBehaviorSanitizer."""
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


def test_kernel_suite():
    run_suite(TESTS / "kernels")


@pytest.mark.parametrize("path", ["portable", "avx2", "avx512"])
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
                           *((("avx512", "cannot run"),) if kernels.DETECTED != "avx512" else ())):
        result = subprocess.run([sys.executable, "-c", "import archfit"], capture_output=True,
                                text=True, timeout=120, env=dict(os.environ, ARCHFIT_ISA=value))
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_hostile_input_suite():
    pytest.importorskip("hypothesis")
    run_suite(TESTS / "hostile")


# ---- the sanitised build -----------------------------------------------------------------------
def _sanitizer_runtime():
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


def _build_site(tmp_path_factory, name, build_env):
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


@pytest.fixture(scope="module")
def sanitized_site(tmp_path_factory):
    """archfit with its kernels built by ``ARCHFIT_SANITIZE=1``, in a folder of its own."""
    runtime = _sanitizer_runtime()
    if runtime is None:
        pytest.skip("gcc with AddressSanitizer and UndefinedBehaviorSanitizer is not available")
    if not (ROOT / "setup.py").exists():
        pytest.skip("the sanitised build needs the source tree")
    site = _build_site(tmp_path_factory, "sanitized", {"ARCHFIT_SANITIZE": "1"})
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


# ---- the build without OpenMP, with AVX-512 emulated where the CPU lacks it ---------------------
def _emulates_avx512():
    """Whether the serial build emulates AVX-512: on an x86-64 CPU with AVX2
    and FMA but no AVX-512 (with AVX-512 the default suite runs that path)."""
    from archfit import kernels
    return kernels.DETECTED == "avx2"


@pytest.fixture(scope="module")
def serial_site(tmp_path_factory):
    """archfit built with ``ARCHFIT_NO_OPENMP=1``: what a compiler without OpenMP
    gives; on a CPU without AVX-512 also with ``ARCHFIT_EMULATE_AVX512=1``, so
    that the kernel suite runs the AVX-512 bodies (emulated on AVX2). One build
    for both keeps the suite's time down."""
    if not (ROOT / "setup.py").exists():
        pytest.skip("the serial build needs the source tree")
    env = {"ARCHFIT_NO_OPENMP": "1"}
    if _emulates_avx512():
        env["ARCHFIT_EMULATE_AVX512"] = "1"
    return {"PYTHONPATH": str(_build_site(tmp_path_factory, "serial", env))}


def test_serial_build_has_no_openmp_and_passes_the_kernel_suite(serial_site):
    probe = ("import archfit, archfit.kernels\n"
             "from archfit._kernels import _cpu\n"
             "assert archfit.__file__.startswith(%r), archfit.__file__\n"
             "print(any('libgomp' in line for line in open('/proc/self/maps')))\n"
             "print(archfit.kernels.ISA, _cpu.EMULATED)\n"
             % serial_site["PYTHONPATH"])
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=dict(os.environ, **serial_site), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    openmp, isa = result.stdout.strip().splitlines()
    if os.path.exists("/proc/self/maps"):
        assert openmp == "False"
    if _emulates_avx512():     # the AVX-512 bodies are what the suite below runs
        assert isa == "avx512 True", isa
    run_suite(TESTS / "kernels", serial_site)


# Fits and predictions whose products take every kernel: small GEMMs (a small
# network), packed training and packed prediction (784-256-128-10, batches of
# 128 cut into shards), one sample (vecmat); each prints a digest of its bits.
_BITS_PROBE = """
import hashlib, numpy as np, archfit as af
from archfit.kernels import ISA
rng = np.random.default_rng(0)
for sizes, batch, dtype in (((20, 64, 32, 3), 16, "float32"), ((784, 256, 128, 10), 128, "float32"),
                            ((784, 256, 128, 10), 128, "float64")):
    X = rng.normal(size=(1024, sizes[0]))
    y = rng.integers(0, sizes[-1], 1024)
    layers = [af.Dense(s, "relu") for s in sizes[1:-1]] + [af.Dense(sizes[-1])]
    model = af.Model(af.Architecture(sizes[0], layers, "softmax"), dtype)
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=2, batch_size=batch, seed=1))
    out = np.concatenate([fitted.parameters.ravel(), fitted.predict_proba(X).ravel(),
                          fitted.predict_proba(X[:1]).ravel()])
    print(ISA, sizes, dtype, hashlib.sha256(out.tobytes()).hexdigest())
"""


def test_the_avx512_and_avx2_paths_give_the_same_bits(serial_site):
    # every product is one FMA chain in the same order on both paths, and the
    # Adam builds contract nothing: whole fits and predictions agree bit for
    # bit (on an AVX-512 CPU the real bodies, elsewhere the emulated ones)
    from archfit import kernels
    if kernels.DETECTED != "avx512" and not _emulates_avx512():
        pytest.skip(f"neither AVX-512 nor its emulation runs here ({kernels.DETECTED})")
    runs = {}
    for isa in ("avx512", "avx2"):
        result = subprocess.run([sys.executable, "-c", _BITS_PROBE], capture_output=True,
                                text=True, timeout=600,
                                env=dict(os.environ, **serial_site, ARCHFIT_ISA=isa))
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 3 and all(line.startswith(isa + " ") for line in lines), lines
        runs[isa] = [line.split(" ", 1)[1] for line in lines]
    assert runs["avx512"] == runs["avx2"]
