"""Keep the server's memory flat under steady intake (glibc's allocator only).

Every ingest makes the in-memory cube stale, and its rebuild allocates and frees arrays of
tens of MB, again and again, from several threads. glibc raises its mmap threshold each time
such an array is freed, after which the next ones are carved from per-thread heap arenas that
fragment and are seldom given back: bench_load saw the server's RSS climb by ~200 MB in a
minute of intake. A fixed threshold (and few arenas) keeps each big array in a mapping of its
own, returned to the system when freed (measured: flat within a few MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8


def release_big_allocations() -> bool:
    """Fix glibc's mmap threshold at 128 KiB and use at most 2 arenas; False when the C
    library is not glibc (nothing to do)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, 128 * 1024)) and bool(mallopt(M_ARENA_MAX, 2))
