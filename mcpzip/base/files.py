"""Writing files that other processes read: atomically, with the right mode."""

from __future__ import annotations

import os

# write_atomic's temporary files start with this.
TEMP_PREFIX = ".tmp-"
# A temporary file older than this belongs to no write still running (a write
# takes milliseconds; another mcpzip writing now has a fresh one): it was left
# by a process killed mid-write.
STALE_TEMP_SECONDS = 600.0


# Directories mcpzip creates above the one it needs (a new config's folder): private.
PARENT_MODE = 0o700


class ForeignDirectory(PermissionError):
    """One of mcpzip's own directories belongs to another user."""


def ensure_dir(path: str, mode: int = 0o755, ours: bool = False) -> None:
    """Create *path* if needed: missing parents private, the leaf with *mode* (whatever the umask).

    *ours*: the directory is mcpzip's alone (``auth/``, ``cache/``).  Then, on
    every use, one that another user owns is refused (raises
    :class:`ForeignDirectory`: they could swap the files in it), and a loose
    mode is set back to *mode*.
    """
    if not os.path.isdir(path):
        _make_dirs(path, mode)
        return
    if ours and hasattr(os, "getuid"):
        st = os.stat(path)
        if st.st_uid != os.getuid():
            raise ForeignDirectory(
                f"{path} belongs to another user (uid {st.st_uid}), who could change the files mcpzip keeps there; "
                "remove it, or use a config in a directory of your own"
            )
        if st.st_mode & 0o777 != mode:
            os.chmod(path, mode)


def _make_dirs(path: str, mode: int) -> None:
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.isdir(parent):
        _make_dirs(parent, PARENT_MODE)
    try:
        os.mkdir(path, mode)
    except FileExistsError:  # another process made it meanwhile
        if not os.path.isdir(path):
            raise
        return
    os.chmod(path, mode)  # mkdir's mode is filtered by the umask


def write_atomic(path: str, data: bytes, mode: int, dir_mode: int | None = None) -> None:
    """Write *data* to *path* via a temporary file and a rename.

    *dir_mode*: the folder is one of mcpzip's own, kept at that mode and
    refused when another user owns it (see :func:`ensure_dir`).

    The temporary file is created private and given *mode* before any byte is
    written, so a secret never sits in a file more readable than it should
    be; concurrent writers (two mcpzip processes) each rename a complete file,
    so a reader sees the old content or the new, never a mixture.
    """
    import tempfile  # only writers pay for it

    directory = os.path.dirname(path) or "."
    if dir_mode is None:
        ensure_dir(directory, PARENT_MODE)  # made private if it has to be made (a new config's folder)
    else:  # a directory of mcpzip's own
        ensure_dir(directory, dir_mode, ours=True)
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
