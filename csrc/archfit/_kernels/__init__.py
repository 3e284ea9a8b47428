"""Compiled kernels of archfit: the internals behind ``archfit.kernels``.

The public Cython API is ``archfit/kernels.pxd`` (module ``archfit.kernels``);
these modules are its implementation, each with a ``.pxd`` for the others:

``_cpu``          the one instruction-set decision (``ARCHFIT_ISA``), adopted by all
``_plan``         how a fit or a prediction runs: shards, blocks, chunks, threads, memory
``_passes``       forward and backward passes over rows of a batch
``_training``     the one-call epoch: shuffle, gather, passes, update
``_prediction``   predictions and the full-data loss and gradient
``_blas``         row-major GEMM (BLAS, or archfit's small and packed kernels)
``_elementwise``  activations, output heads and losses (fused loops)
``_optimizers``   parameter updates over a half-open slice of the flat buffer
``_random``       a small counter-seeded generator, shuffling and dropout masks

Kernels trust their input: the Python layer validates everything first.
"""


def _load_cython_blas():
    """Make ``scipy.linalg.cython_blas`` importable without ``scipy.linalg``.

    The modules that ``cimport`` BLAS import ``scipy.linalg.cython_blas`` when
    they load, and Python imports its parent package first: ``scipy.linalg``,
    which pulls in NumPy's f2py, ``numpy.ma`` and SciPy's array API layer, most
    of ``import archfit``'s time. The extension itself needs none of that, so
    it is loaded here from its file under its own name; once the kernels have
    taken its function pointers the entry is removed again, so that a later
    ``import scipy.linalg`` (by the user, scikit-learn, ...) imports it the
    usual way and gets this same module object.
    """
    import importlib.machinery
    import importlib.util
    import os
    import sys

    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "scipy.linalg" in sys.modules:
        return None
    try:
        import scipy
    except ImportError:
        return None
    folder = os.path.join(os.path.dirname(scipy.__file__), "linalg")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "cython_blas" + suffix)
        if os.path.exists(path):
            break
    else:
        return None     # an unusual layout: the ordinary import will do
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        return None
    return name


def _release_cython_blas(name):
    """Undo ``_load_cython_blas``'s entry, once the kernels hold BLAS."""
    import sys
    if name is not None:
        sys.modules.pop(name, None)


_blas_name = _load_cython_blas()
try:
    from archfit._kernels import _blas  # noqa: E402,F401  (takes BLAS's function pointers)
finally:
    _release_cython_blas(_blas_name)
    del _blas_name
