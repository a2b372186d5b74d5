"""The C allocator, told that mcpzip is many idle threads rather than a parallel program.

glibc's malloc is tuned for threads that allocate in parallel: each new
thread that allocates gets an arena of its own (up to eight per core), and
each time a large block is freed it raises the size below which blocks come
from an arena instead of their own mapping, keeping up to twice that size
free in the arena for later.  mcpzip runs a reader thread per stdio upstream,
and they never allocate in parallel (the GIL), but each reads listings of
hundreds of kilobytes: with 37 live upstreams replaying real catalogs the
arenas held about 8 MB that no thread would use again
(``benchmarks/live_upstreams.py --catalog``).

:func:`tune` caps the arenas and keeps glibc's starting mmap threshold fixed,
so a large line goes back to the system as soon as it has been read.  It is
called before the first upstream starts: glibc fixes its arena limit when a
ninth arena is needed, so it must come before many threads exist.  Settings
a user gives glibc through its environment variables win; other C libraries
are left alone.
"""

from __future__ import annotations

import os
import sys

# From glibc's <malloc.h>.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENAS = 2  # the main arena, and one for the rare allocations made without the GIL (TLS, DNS)
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept instead of raised
# Variables by which a user (or a test) tunes glibc's malloc; any of them set means theirs wins.
USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")

_tuned: bool | None = None  # None until tune() first ran: then whether it changed anything


def tune() -> bool:
    """Apply the settings above once per process; True if glibc took them.

    Cheap after the first call.  Thread-safe: two first calls at once make the
    same two ``mallopt`` calls twice, which is harmless.
    """
    global _tuned
    if _tuned is None:
        _tuned = _apply()
    return _tuned


def _apply() -> bool:
    if not sys.platform.startswith("linux") or any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False  # musl and others: their mallopt means something else, or nothing
        import ctypes  # about 1.5 ms, paid when the first upstream starts, not at start-up

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, ValueError, AttributeError):
        return False
    # mallopt returns 1 on success, 0 when it refused the value.
    return bool(mallopt(M_ARENA_MAX, ARENAS)) & bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
