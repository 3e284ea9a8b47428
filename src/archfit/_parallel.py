"""Run independent fits in parallel.

Kernels release the GIL, so threads run fits truly in parallel within one
process. When joblib is installed, its ``Parallel`` is used so that a user's
``joblib.parallel_config(backend="dask")`` (or ray, ...) sends the same fits to
a cluster; otherwise a thread pool. BLAS is limited to one thread per fit so
that parallel fits do not oversubscribe the cores.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

from archfit._validation import check_int
from archfit.kernels import cancel_fits

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


def external_backend() -> bool:
    """True inside ``joblib.parallel_config(backend=...)`` naming a backend
    other than threads or loky (dask, ray): work then goes to its workers."""
    try:
        import joblib
    except ImportError:
        return False
    return _joblib_configured(joblib)


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
    pool = None
    in_threads = not (joblib is not None and _joblib_configured(joblib))
    if in_threads:
        fn = _Stoppable(fn)
    if joblib is not None and (n_jobs != 1 or _joblib_configured(joblib)):
        parallel = joblib.Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
        outputs = parallel(joblib.delayed(fn)(t) for t in tasks)
    elif n_jobs == 1:
        outputs = map(fn, tasks)
    else:
        pool = ThreadPoolExecutor(max_workers=n_jobs)
        outputs = pool.map(fn, tasks)
    results: list[R] = []
    try:
        for result in outputs:
            results.append(result)
            if on_result is not None:
                on_result(result)
    except KeyboardInterrupt:
        # Ctrl-C reaches the main thread only: start no more fits, and stop
        # the ones running in other threads at their next mini-batch
        if in_threads:
            fn.stop(lambda: pool.shutdown(wait=False, cancel_futures=True) if pool is not None
                    else getattr(outputs, "close", lambda: None)())
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return results


class _Stoppable:
    """A task function that can be stopped: once ``stop`` is called, tasks not
    yet begun raise KeyboardInterrupt, and running fits are cancelled
    (``archfit.kernels.cancel_fits``) until all have returned."""

    def __init__(self, fn):
        self.fn, self.running, self.stopped = fn, 0, False
        self.changed = threading.Condition()

    def __call__(self, task):
        with self.changed:
            if self.stopped:
                raise KeyboardInterrupt("cancelled: the main thread was interrupted")
            self.running += 1
        try:
            return self.fn(task)
        finally:
            with self.changed:
                self.running -= 1
                self.changed.notify_all()

    def __reduce__(self):
        # in another process (a loky, dask or ray worker): the task function alone
        return (_same, (self.fn,))

    def stop(self, drop_pending) -> None:
        with self.changed:
            self.stopped = True
        cancel_fits(True)
        try:
            drop_pending()
            with self.changed:
                self.changed.wait_for(lambda: self.running == 0)
        finally:
            cancel_fits(False)


def _same(fn):
    return fn


def _joblib_configured(joblib) -> bool:
    """True inside ``joblib.parallel_config(backend=...)`` naming a backend."""
    backend, _ = joblib.parallel.get_active_backend()
    return type(backend).__name__ not in ("LokyBackend", "SequentialBackend",
                                          "ThreadingBackend")
