"""The C allocator, told that mcpzip is many mostly idle threads rather than a parallel program.

glibc's malloc suits threads that allocate in parallel: each thread gets an
arena of its own (up to eight per core), and each large block freed raises
the size below which blocks stay in an arena, with up to twice that kept
free there.  mcpzip's threads never allocate in parallel (the GIL), but a
reader thread per stdio upstream reads lines of up to megabytes, and each
arena kept what its largest line had needed.

:func:`tune` allows two arenas and fixes both thresholds: a block of 256 KiB
or more is mapped on its own and goes back to the system when freed, and up
to 1 MiB stays free at the top of an arena for the next request (smaller
values make every large answer map and fault in its memory anew).  The
figures are in benchmarks/README.md.  It runs before the first upstream
starts, because glibc fixes its arena limit once a ninth arena is needed.
Settings a user gives glibc through its environment variables win; other C
libraries are left alone.
"""

from __future__ import annotations

import os
import sys

from . import log

# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENAS = 2  # the main arena, and one for the rare allocations made without the GIL (TLS, DNS)
MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 1024 * 1024
# Variables by which a user (or a test) tunes glibc's malloc; any of them set means theirs wins.
USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")

_tuned: bool | None = None  # None until tune() first ran: then whether it changed anything


def tune() -> bool:
    """Apply the settings above once per process; True if glibc took them.

    Cheap after the first call.  Thread-safe: two first calls at once make the
    same ``mallopt`` calls twice, which is harmless.
    """
    global _tuned
    if _tuned is None:
        _tuned = _apply()
        if _tuned:
            log.debug("malloc tuned: %d arenas, blocks from %d KiB mapped alone, at most %d KiB kept free",
                      ARENAS, MMAP_THRESHOLD // 1024, TRIM_THRESHOLD // 1024)  # fmt: skip
        else:
            log.debug("malloc left as it is (not glibc, or set by the environment)")
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
    settings = ((M_ARENA_MAX, ARENAS), (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all([bool(mallopt(option, value)) for option, value in settings])
