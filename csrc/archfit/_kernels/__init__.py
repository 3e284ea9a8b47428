"""Compiled kernels of archfit.

Each module has a ``.pxd`` that other Cython code may ``cimport``:

``_blas``         row-major GEMM over ``scipy.linalg.cython_blas``
``_random``       a small counter-seeded generator, shuffling and dropout masks
``_elementwise``  activations, output heads and losses (fused loops)
``_optimizers``   parameter updates over a half-open slice of the flat buffer
``_network``      forward, backward, ``loss_and_grad`` and the one-call epoch

Kernels trust their input: the Python layer validates everything first.
"""
