"""The instruction-set path: the one ARCHFIT_ISA asks for is the one every kernel takes."""
import os

import numpy as np

import archfit as af
from archfit import kernels
from archfit._kernels import _cpu


def test_the_path_asked_for_is_the_path_taken():
    asked = os.environ.get("ARCHFIT_ISA", "").strip().lower()
    assert kernels.ISA == (asked or kernels.DETECTED)
    assert kernels.ISA in kernels.isa_paths() and kernels.isa_paths()[0] == "portable"
    assert _cpu.LEVEL == _cpu.LEVELS[kernels.ISA]


def test_the_portable_path_packs_nothing():
    # the packed GEMM is an AVX2 kernel: on the portable path every product
    # goes to BLAS or the portable loops, and plans say so
    model = af.Model(af.Architecture(300, [af.Dense(130, "relu"), af.Dense(7)], "softmax"))
    packs = model._kernel.prediction_plan(np.float32, 1000)["packed"]
    assert packs == (kernels.ISA != "portable")


def test_choosing_a_path_checks_its_name():
    assert _cpu._choose(None, "avx2") == "avx2"
    assert _cpu._choose(" Portable ", "avx2") == "portable"
    for bad, message in (("sse9", "must be one of"), ("avx512", "cannot run")):
        try:
            _cpu._choose(bad, "avx2")
        except ValueError as e:
            assert message in str(e) and "ARCHFIT_ISA" in str(e)
        else:
            raise AssertionError(f"{bad!r} was accepted")
