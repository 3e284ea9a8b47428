"""One thread budget for archfit's kernels and BLAS together.

A fit (or a prediction) may use ``n_threads`` threads; when that is None, as
many as BLAS is currently allowed - the machine's cores by default, fewer inside
``threadpoolctl.threadpool_limits`` or :func:`archfit._parallel.fit_in_parallel`
(one per fit) - and never more than the cores this process may run on: its
CPU affinity (``taskset``, a container's cpuset) and its cgroup's CPU quota
(a container's ``--cpus``), where threads beyond them only wait for a core.
archfit's own kernels share the work among their threads, each calling BLAS
single-threaded; BLAS runs on one thread even when archfit's kernels run on
one, since OpenBLAS splits a product by its thread count and the bits would
then depend on it. A fit's epochs follow the cores the process actually gets
(``EpochThreads``).

Waiting threads spin as OpenMP and OpenBLAS make them by default: bounded
spinning (GOMP_SPINCOUNT=1000, then sleep) kept a busy machine's two-thread
steps near one thread's time but slowed an idle machine's steps, every
step's fork and join then waking sleeping threads (benchmarks/RESULTS.md).
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time

# Imported with archfit, not in a fit's first steps: its module makes
# dataclasses by exec, and a Ctrl-C landing there would surface as a
# RuntimeError (Python 3.11 wraps what __set_name__ raises), and under
# `python -m` mark the process as killed by Ctrl-C however it was handled.
from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_blas = None
_counters = None
_reader = None


def _after_fork_in_child():
    # (GNU OpenMP cannot start a team in a forked child once the parent used
    # one; the kernels' plans then give one thread there: team.h.)
    # The child has only the forking thread: a one-BLAS-thread section that
    # another parent thread was inside is not the child's, so its lock and
    # depth start afresh (BLAS's limit stays whatever the parent had set).
    global _one_lock, _one_depth, _one_saved
    _one_lock = threading.Lock()
    _one_depth = 0
    _one_saved = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _blas_controller():
    # Scanning the loaded libraries costs milliseconds; do it once. Reading or
    # setting a thread count on the result afterwards costs microseconds.
    global _blas
    if _blas is None:
        with _lock:
            if _blas is None:
                _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def _counts_and_setters():
    # Each BLAS library's own get- and set-num-threads functions, found once
    # (threadpoolctl's lookup handles symbol prefixes). Calling them directly
    # is cheap enough for the one-sample prediction path; and setting
    # directly bypasses threadpoolctl's rule that only one Python thread may
    # change OpenBLAS's limits, which would silently ignore archfit's fits
    # and predictions running on other threads.
    global _counters
    if _counters is None:
        counters = []
        for lib in _blas_controller().lib_controllers:
            symbol = getattr(lib, "_get_symbol", None)
            get = put = None
            if (symbol is not None and lib.internal_api == "openblas"
                    and getattr(lib, "threading_layer", None) != "openmp"):
                try:
                    get = symbol("openblas_get_num_threads")
                    put = symbol("openblas_set_num_threads")
                except Exception:
                    get = put = None
            counters.append((get or lib.get_num_threads, put or lib.set_num_threads))
        _counters = counters
    return _counters


def _lowest_limit():
    # BLAS's lowest thread limit (0 when no library has one): through the
    # raw addresses of the get-num-threads functions found above when all
    # are plain C functions (a fraction of a microsecond; through ctypes, a
    # visible share of every one-sample prediction), else through the
    # callables.
    global _reader
    if _reader is None:
        import ctypes
        getters = [get for get, _ in _counts_and_setters()]
        if getters and all(isinstance(get, ctypes._CFuncPtr) for get in getters):
            from archfit._kernels._blas import lowest_thread_limit
            addresses = tuple(ctypes.cast(get, ctypes.c_void_p).value for get in getters)
            _reader = functools.partial(lowest_thread_limit, addresses)
        else:
            def _reader():
                counts = [c for c in (get() for get in getters) if c]
                return min(counts, default=0)
    return _reader()


def cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The CPUs' worth of time this process's cgroup may use (its quota over
    its period), or None when it has no quota; cgroup v2 (``cpu.max``) or v1
    (``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us``)."""
    def read(name):
        try:
            with open(os.path.join(root, name)) as f:
                return f.read().split()
        except (OSError, UnicodeDecodeError):
            return None
    fields = read("cpu.max")
    if fields and len(fields) == 2:
        quota, period = fields
    else:
        quota, period = (read("cpu/cpu.cfs_quota_us") or [""])[0], \
            (read("cpu/cpu.cfs_period_us") or [""])[0]
    try:
        quota, period = float(quota), float(period)
    except ValueError:
        return None                     # "max", missing or unreadable: no quota
    return quota / period if quota > 0 and period > 0 else None


@functools.lru_cache(maxsize=1)
def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by its
    cgroup's CPU quota (rounded up), at least 1. Read once."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def budget(n_threads: int | None) -> int:
    """Threads available: `n_threads`, or BLAS's current limit when None (at
    most the usable cores)."""
    if n_threads is not None:
        return n_threads
    return min(_lowest_limit() or os.cpu_count() or 1, usable_cores())


def blas_limit(n_threads: int | None):
    """Context limiting BLAS to `n_threads` (no change for None)."""
    if n_threads is None:
        return contextlib.nullcontext()
    if n_threads == 1:
        return _one_blas_thread()
    return _blas_controller().limit(limits=n_threads)


_one_lock = threading.Lock()
_one_depth = 0
_one_saved: list = []


@contextlib.contextmanager
def _one_blas_thread():
    # BLAS's thread count is process-wide. Sections that need it at one thread
    # may overlap on several threads (concurrent predictions and fits): the
    # first to enter sets it, the last to leave restores it, so none of them
    # sees it change underneath and it is not left at one afterwards.
    global _one_depth, _one_saved
    with _one_lock:
        if _one_depth == 0:
            libs = _counts_and_setters()
            _one_saved = [count() for count, _ in libs]
            for _, put in libs:
                put(1)
        _one_depth += 1
    try:
        yield
    finally:
        with _one_lock:
            _one_depth -= 1
            if _one_depth == 0:
                for (_, put), n in zip(_counts_and_setters(), _one_saved):
                    if n:
                        put(n)


class EpochThreads:
    """How many threads each epoch of a fit runs on, when other work may hold a core.

    All of ``threads`` while the process gets the cores they ask for. When an
    epoch's CPU time falls short of its wall time on that many cores by more
    than ``SHORTFALL`` of a core (another process holds one: a step's threads
    then wait for the one that is not running), the next epoch runs on one
    thread; one thread is kept when it was faster by more than ``MARGIN``,
    and each later trial of the other count comes after 2, 4, 8, ... epochs
    (at most ``MAX_WAIT``), as the machine changes. Any thread count gives
    the same bits, so a fit's result does not depend on these choices, only
    its time.

    ``clock`` and ``cpu_clock`` (seconds of wall time and of this process's
    CPU time, every thread's) are for the tests.
    """

    SHORTFALL = 0.4
    MARGIN = 0.05       # one thread is kept when faster by more than this share
    MAX_WAIT = 32

    def __init__(self, threads: int, clock=time.perf_counter, cpu_clock=time.process_time):
        self.full = max(1, int(threads))
        self.now = self.full
        self._clock, self._cpu_clock = clock, cpu_clock
        self._seconds: dict[int, float] = {}
        self._trial = False         # this epoch tries the count the last one did not run
        self._wait = 0              # epochs until the other count is tried again
        self._backoff = 2
        self._start = self._cpu = 0.0

    def begin(self) -> int:
        """Start timing an epoch; returns its thread count."""
        self._start, self._cpu = self._clock(), self._cpu_clock()
        return self.now

    def end(self) -> None:
        """The epoch begun last is done: choose the next one's thread count."""
        wall = self._clock() - self._start
        cpu = self._cpu_clock() - self._cpu
        ran = self.now
        self._seconds[ran] = wall
        if self.full == 1 or wall <= 0:
            return
        if self._trial:
            self._trial = False
            one, full = self._seconds.get(1, math.inf), self._seconds.get(self.full, math.inf)
            if one < (1.0 - self.MARGIN) * full:
                # one thread is faster: keep it, and try all of them again later
                self.now, self._wait = 1, self._backoff
                self._backoff = min(2 * self._backoff, self.MAX_WAIT)
            else:
                self.now = self.full
                if ran == 1:        # a false alarm: wait longer before the next trial
                    self._wait = self._backoff
                    self._backoff = min(2 * self._backoff, self.MAX_WAIT)
                else:               # the machine has its cores back
                    self._wait, self._backoff = 0, 2
            return
        self._wait -= 1
        if ran == self.full:
            if cpu < (ran - self.SHORTFALL) * wall and self._wait <= 0:
                self.now, self._trial = 1, True
        elif self._wait <= 0:
            self.now, self._trial = self.full, True
