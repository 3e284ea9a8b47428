"""One thread budget for archfit's kernels and BLAS together.

A fit (or a prediction) may use ``n_threads`` threads; when that is None, as
many as BLAS is currently allowed: the machine's cores by default, fewer inside
``threadpoolctl.threadpool_limits`` or :func:`archfit._parallel.fit_in_parallel`
(one per fit). When archfit's own kernels split the work over several threads,
each of them calls BLAS single-threaded, so the cores are never oversubscribed;
otherwise BLAS gets the whole budget for its large products.
"""
from __future__ import annotations

import contextlib
import os
import threading

_lock = threading.Lock()
_blas = None
_counters = None


def _blas_controller():
    # Scanning the loaded libraries costs milliseconds; do it once. Reading or
    # setting a thread count on the result afterwards costs microseconds.
    global _blas
    if _blas is None:
        with _lock:
            if _blas is None:
                from threadpoolctl import ThreadpoolController
                _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def _thread_counters():
    # The libraries' own get-num-threads functions, found once (threadpoolctl's
    # lookup handles symbol prefixes); calling one then costs ~0.2 µs, which
    # matters on the one-sample prediction path.
    global _counters
    if _counters is None:
        counters = []
        for lib in _blas_controller().lib_controllers:
            symbol = getattr(lib, "_get_symbol", None)
            direct = None
            if symbol is not None and getattr(lib, "threading_layer", None) != "openmp":
                try:
                    direct = symbol("openblas_get_num_threads")
                except Exception:       # another BLAS: use threadpoolctl's public call
                    direct = None
            counters.append(direct if direct is not None else lib.get_num_threads)
        _counters = counters
    return _counters


def budget(n_threads: int | None) -> int:
    """Threads available: `n_threads`, or BLAS's current limit when None."""
    if n_threads is not None:
        return n_threads
    low = 0
    for count in _thread_counters():
        c = count()
        if c and (low == 0 or c < low):
            low = c
    return low or os.cpu_count() or 1


def blas_limit(n_threads: int | None):
    """Context limiting BLAS to `n_threads` (no change for None)."""
    if n_threads is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=n_threads)


def split(n_threads: int | None, parts: int) -> tuple[int, contextlib.AbstractContextManager]:
    """Threads for work cut into `parts` pieces, and the BLAS limit to hold meanwhile.

    With more than one thread, BLAS runs single-threaded inside each; with one,
    BLAS keeps the budget (or its own default when `n_threads` is None).
    """
    threads = min(budget(n_threads), max(1, parts))
    if threads > 1:
        return threads, blas_limit(1)
    return 1, blas_limit(n_threads)
