"""Writing files that other processes read: atomically, with the right mode."""

from __future__ import annotations

import os

# write_atomic's temporary files start with this.
TEMP_PREFIX = ".tmp-"
# A temporary file older than this belongs to no write still running (a write
# takes milliseconds; another mcpzip writing now has a fresh one): it was left
# by a process killed mid-write.
STALE_TEMP_SECONDS = 600.0


def ensure_dir(path: str, mode: int = 0o755) -> None:
    """Create *path* (and parents) if needed; a new leaf directory gets *mode*."""
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)  # makedirs' mode is filtered by the umask


def write_atomic(path: str, data: bytes, mode: int) -> None:
    """Write *data* to *path* via a temporary file and a rename.

    The temporary file is created private and given *mode* before any byte is
    written, so a secret never sits in a file more readable than it should
    be; concurrent writers (two mcpzip processes) each rename a complete file,
    so a reader sees the old content or the new, never a mixture.
    """
    import tempfile  # only writers pay for it

    directory = os.path.dirname(path) or "."
    ensure_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_stale_temporaries(directory: str, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete the temporary files of writes killed mid-way in *directory*; returns how many."""
    import time

    removed = 0
    try:
        entries = os.scandir(directory)
    except OSError:
        return 0  # no such directory yet: nothing was ever written there
    with entries:
        cutoff = time.time() - older_than
        for entry in entries:
            try:
                if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False) \
                        and entry.stat(follow_symlinks=False).st_mtime < cutoff:  # fmt: skip
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                pass  # removed by another mcpzip meanwhile, or not ours to remove
    return removed
