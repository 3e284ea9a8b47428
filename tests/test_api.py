"""The public surface: names from DESIGN.md, documented, typed, versioned."""
import inspect
from importlib import resources

import archfit as af
from archfit import distributions

DESIGN_NAMES = ["Architecture", "Dense", "Model", "Hyperparameters", "FitModel", "fit", "select",
                "load", "holdout"]


def test_design_names_are_exported():
    for name in DESIGN_NAMES:
        assert name in af.__all__ and hasattr(af, name), name
    assert isinstance(af.__version__, str) and af.__version__.count(".") == 2


def _public_members(obj):
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            yield name, member.fget
        elif isinstance(member, (classmethod, staticmethod)):
            yield name, member.__func__
        elif callable(member):
            yield name, member


def test_every_public_name_has_a_docstring():
    from archfit import sklearn as adapters
    objects = [getattr(af, n) for n in af.__all__ if n != "__version__"]
    objects += [adapters.MLPClassifier, adapters.MLPRegressor]
    objects += [getattr(distributions, n) for n in ("Uniform", "LogUniform", "IntUniform", "Choice")]
    missing = []
    for obj in objects:
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(getattr(obj, "__name__", repr(obj)))
        if inspect.isclass(obj):
            for name, member in _public_members(obj):
                if not (inspect.getdoc(member) or "").strip():
                    missing.append(f"{obj.__name__}.{name}")
    assert missing == []


def test_package_is_typed():
    assert resources.files("archfit").joinpath("py.typed").is_file()
    hints = inspect.get_annotations(af.fit)
    assert "return" in hints and "model" in hints


def test_cython_interface_ships():
    # the public Cython API, and the internal declarations it is built on
    assert resources.files("archfit").joinpath("kernels.pxd").is_file()
    kernels = resources.files("archfit._kernels")
    for name in ("_blas", "_elementwise", "_optimizers", "_random", "_plan", "_passes",
                 "_training", "_prediction"):
        assert kernels.joinpath(f"{name}.pxd").is_file(), name


def test_import_leaves_scipy_linalg_alone():
    # BLAS comes from scipy.linalg.cython_blas, but scipy.linalg's package (NumPy's
    # f2py, numpy.ma, SciPy's array API layer) is most of an import's time: loading
    # archfit must not import it, and importing it later must still work
    import subprocess
    import sys
    script = ("import sys, archfit\n"
              "heavy = [m for m in ('scipy.linalg', 'numpy.f2py', 'numpy.ma', "
              "'scipy._lib._array_api') if m in sys.modules]\n"
              "assert not heavy, heavy\n"
              "assert 'scipy.linalg.cython_blas' not in sys.modules\n"
              "import numpy as np, scipy.linalg, scipy.linalg.cython_blas\n"
              "assert hasattr(scipy.linalg.cython_blas, '__pyx_capi__')\n"
              "assert np.allclose(scipy.linalg.blas.dgemm(1.0, np.eye(3), np.ones((3, 2))), 1)\n"
              "from sklearn.utils import _cython_blas\n"
              "X, y = np.random.default_rng(0).normal(size=(50, 4)), np.arange(50) % 2\n"
              "fitted = archfit.fit(archfit.Model(archfit.Architecture(4, [archfit.Dense(2)],"
              " 'softmax')), X, y, archfit.Hyperparameters(epochs=2))\n"
              "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
