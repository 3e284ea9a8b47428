"""Refuse allocations the machine cannot hold, before making them.

Linux overcommits memory: a huge ``np.empty`` can succeed and the process is
then killed when the pages are touched. archfit checks every large allocation
(θ, the training state, scratch buffers) against the memory available and
raises ``MemoryError`` naming what needed it instead.
"""
from __future__ import annotations

import os

_GIB = 2.0**30


def available_bytes() -> int | None:
    """Memory available to allocate now (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def reserve(nbytes: int, what: str) -> None:
    """Raise ``MemoryError`` if ``nbytes`` exceed the memory available."""
    if nbytes < 64 * 2**20:       # small: not worth a system call
        return
    available = available_bytes()
    if available is not None and nbytes > available:
        raise MemoryError(f"not enough memory for {what}: {nbytes / _GIB:.1f} GiB needed, "
                          f"{available / _GIB:.1f} GiB available")
