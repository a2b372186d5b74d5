"""Writing files that other processes read: atomically, with the right mode."""

from __future__ import annotations

import os


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
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
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
