"""Run independent fits in parallel.

Kernels release the GIL, so threads run fits truly in parallel within one
process. When joblib is installed, its ``Parallel`` is used so that a user's
``joblib.parallel_config(backend="dask")`` (or ray, ...) sends the same fits to
a cluster; otherwise a thread pool. BLAS is limited to ``blas_threads`` per fit
so that parallel fits do not oversubscribe the cores.
"""
from __future__ import annotations

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


def with_blas_threads(fn: Callable[[T], R], blas_threads: int) -> Callable[[T], R]:
    """``fn`` run under a BLAS thread limit (set in whichever process runs it)."""
    return _Limited(fn, blas_threads)


class _Limited:
    # a class, not a closure, so that the task pickles for process-based backends
    def __init__(self, fn, blas_threads):
        self.fn, self.blas_threads = fn, blas_threads

    def __call__(self, task):
        from threadpoolctl import threadpool_info, threadpool_limits
        current = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
        if current and current != {self.blas_threads}:
            with threadpool_limits(limits=self.blas_threads, user_api="blas"):
                return self.fn(task)
        return self.fn(task)


def parallel_map(fn: Callable[[T], R], tasks: Iterable[T], n_jobs: int,
                 on_result: Callable[[R], None] | None = None) -> list[R]:
    """``[fn(t) for t in tasks]``, in order, on ``n_jobs`` workers."""
    tasks = list(tasks)
    results: list[R] = []
    try:
        import joblib
    except ImportError:
        joblib = None
    if joblib is not None and n_jobs != 1 or joblib is not None and _joblib_configured(joblib):
        parallel = joblib.Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
        for result in parallel(joblib.delayed(fn)(t) for t in tasks):
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results
    if n_jobs == 1:
        for t in tasks:
            results.append(fn(t))
            if on_result is not None:
                on_result(results[-1])
        return results
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        for result in pool.map(fn, tasks):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _joblib_configured(joblib) -> bool:
    """True inside ``joblib.parallel_config(backend=...)`` naming a backend."""
    backend, _ = joblib.parallel.get_active_backend()
    return type(backend).__name__ not in ("LokyBackend", "SequentialBackend",
                                          "ThreadingBackend")
