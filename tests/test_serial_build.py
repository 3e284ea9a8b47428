"""The build without OpenMP (what a compiler without it gives), with AVX-512
emulated where the CPU lacks it: the kernel suite on that build, and the same
bits on the AVX-512 and AVX2 paths."""
import os
import subprocess
import sys

import pytest

from isolation import ROOT, TESTS, build_site, emulates_avx512, run_suite


@pytest.fixture(scope="module")
def serial_site(tmp_path_factory):
    """archfit built with ``ARCHFIT_NO_OPENMP=1``: what a compiler without OpenMP
    gives; on a CPU without AVX-512 also with ``ARCHFIT_EMULATE_AVX512=1``, so
    that the kernel suite runs the AVX-512 bodies (emulated on AVX2). One build
    for both keeps the suite's time down."""
    if not (ROOT / "setup.py").exists():
        pytest.skip("the serial build needs the source tree")
    env = {"ARCHFIT_NO_OPENMP": "1"}
    if emulates_avx512():
        env["ARCHFIT_EMULATE_AVX512"] = "1"
    return {"PYTHONPATH": str(build_site(tmp_path_factory, "serial", env))}


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
    if emulates_avx512():     # the AVX-512 bodies are what the suite below runs
        assert isa == "amx True", isa     # AVX512_BF16 and AMX emulated too
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
    if kernels.DETECTED not in ("avx512", "avx512_bf16", "amx") and not emulates_avx512():
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
