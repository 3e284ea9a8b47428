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
