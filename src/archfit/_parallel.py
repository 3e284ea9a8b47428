"""Run independent fits in parallel.

Kernels release the GIL, so threads run fits truly in parallel within one
process. When joblib is installed, its ``Parallel`` is used so that a user's
``joblib.parallel_config(backend="dask")`` (or ray, ...) sends the same fits to
a cluster; otherwise a thread pool. BLAS is limited to one thread per fit so
that parallel fits do not oversubscribe the cores.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

from archfit._validation import check_int

T = TypeVar("T")
R = TypeVar("R")


def effective_n_jobs(n_jobs: int | None) -> int:
    """scikit-learn's convention: None → 1, -1 → every core, -2 → all but one, ..."""
    if n_jobs is None:
        return 1
    n_jobs = check_int(n_jobs, "n_jobs")
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0 (use None or 1 for serial, -1 for all cores)")
    cores = os.cpu_count() or 1
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def fit_in_parallel(fn: Callable[[T], R], tasks: Iterable[T], n_jobs: int,
                    on_result: Callable[[R], None] | None = None) -> list[R]:
    """:func:`parallel_map` of fits, each with one BLAS thread.

    The limit is set once here for this process's threads; a task that runs in
    another process (a dask or ray worker) sets it there itself.
    """
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        return parallel_map(_OneBlasThread(fn), tasks, n_jobs, on_result)


class _OneBlasThread:
    # a class, not a closure, so that the task pickles for process-based backends
    def __init__(self, fn):
        self.fn, self.pid = fn, os.getpid()

    def __call__(self, task):
        if os.getpid() == self.pid:   # limited already by fit_in_parallel
            return self.fn(task)
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            return self.fn(task)


def parallel_map(fn: Callable[[T], R], tasks: Iterable[T], n_jobs: int,
                 on_result: Callable[[R], None] | None = None) -> list[R]:
    """``[fn(t) for t in tasks]``, in order, on ``n_jobs`` workers."""
    tasks = list(tasks)
    try:
        import joblib
    except ImportError:
        joblib = None
    with contextlib.ExitStack() as stack:
        if joblib is not None and (n_jobs != 1 or _joblib_configured(joblib)):
            parallel = joblib.Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
            outputs = parallel(joblib.delayed(fn)(t) for t in tasks)
        elif n_jobs == 1:
            outputs = map(fn, tasks)
        else:
            outputs = stack.enter_context(ThreadPoolExecutor(max_workers=n_jobs)).map(fn, tasks)
        results: list[R] = []
        for result in outputs:
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _joblib_configured(joblib) -> bool:
    """True inside ``joblib.parallel_config(backend=...)`` naming a backend."""
    backend, _ = joblib.parallel.get_active_backend()
    return type(backend).__name__ not in ("LokyBackend", "SequentialBackend",
                                          "ThreadingBackend")
