import os

import numpy as np
import pytest

import archfit as af

# The kernel suite and the hostile-input suite run in a subprocess (see
# test_isolated.py), so that a crash in compiled code fails a test instead of
# taking the test runner down. They are collected only inside that subprocess.
if os.environ.get("ARCHFIT_ISOLATED") != "1":
    collect_ignore = ["kernels", "hostile"]

DTYPES = ["float32", "float64"]
# Agreement expected between a kernel and the float64 NumPy reference.
RTOL = {"float32": 2e-5, "float64": 1e-12}
ATOL = {"float32": 2e-6, "float64": 1e-12}


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


@pytest.fixture
def no_tqdm(monkeypatch):
    """tqdm cannot be imported: progress is reported as lines."""
    import builtins
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == "tqdm":
            raise ImportError("no tqdm here")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", refuse)


@pytest.fixture(scope="session")
def digits():
    from archfit.datasets import load_digits
    X, y = load_digits()
    return X / 16.0, y


def assert_close(actual, expected, dtype, scale=1.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale)
