"""Whole tool results kept for the model to read later, bounded in memory and on disk.

When a result is cut to the budget (``results.py``), what was not shown is
kept here under an id nobody can guess (``secrets.token_urlsafe``).  Small
pieces stay in memory, up to :data:`MEMORY_LIMIT` in total; a piece larger
than :data:`FILE_THRESHOLD` goes to a private temporary file instead, up to
:data:`DISK_LIMIT` in total.  Either way the least recently used pieces leave
first; the files are removed when mcpzip closes (or, failing that, at exit).

Each piece belongs to the client that caused it (*owner*): another client
asking for the same id is told it does not exist, exactly as for an id that
never did.
"""

from __future__ import annotations

import os
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MEMORY_LIMIT = 64 * 1024 * 1024
FILE_THRESHOLD = 8 * 1024 * 1024
DISK_LIMIT = 1024 * 1024 * 1024
# Ids of evicted pieces remembered, so that their error can say "expired".
FORGOTTEN_KEPT = 1000


class ResultGone(Exception):
    """The id names no piece this client may read (never was, another's, or evicted)."""

    def __init__(self, key: str, expired: bool) -> None:
        super().__init__(key)
        self.key = key
        self.expired = expired  # it existed for this client and was evicted


class Piece:
    """One kept piece: text (UTF-8 bytes) or one content item (JSON bytes), with what it is."""

    __slots__ = ("owner", "kind", "size", "data", "path", "info")

    def __init__(self, owner: str, kind: str, data: bytes, info: dict) -> None:
        self.owner = owner
        self.kind = kind  # "text" or "item"
        self.size = len(data)
        self.data: bytes | None = data
        self.path: str | None = None  # set when the bytes live in a file instead
        self.info = info  # what the notes say about it (budget, type, mime type...)

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Bytes *start*..*end* of the piece (all by default)."""
        end = self.size if end is None else min(end, self.size)
        if self.data is not None:
            return self.data[start:end]
        with open(self.path, "rb") as f:  # type: ignore[arg-type]
            f.seek(start)
            return f.read(max(0, end - start))


class ResultStore:
    """Pieces by id, least recently used out first.

    Threading: every method may be called from any worker thread at once.
    ``_lock`` guards ``_pieces``, ``_in_memory``, ``_on_disk``, ``_forgotten``,
    ``_directory`` and ``_closed``; file writes happen under it too (a piece is
    readable only once complete).  :meth:`Piece.read` runs outside the lock: an
    evicted file stays readable through a file already open.
    """

    def __init__(self, memory_limit: int = MEMORY_LIMIT, file_threshold: int = FILE_THRESHOLD,
                 disk_limit: int = DISK_LIMIT, directory: str | None = None) -> None:  # fmt: skip
        """*directory*: where the temporary folder goes (the system's default when None)."""
        self.memory_limit = memory_limit
        self.file_threshold = file_threshold
        self.disk_limit = disk_limit
        self._parent = directory
        self._lock = threading.Lock()
        # Dicts keep insertion order: a piece read is moved to the end, so the
        # first is the least recently used.
        self._pieces: dict[str, Piece] = {}
        self._in_memory = 0
        self._on_disk = 0
        self._forgotten: dict[str, str] = {}  # evicted id -> its owner, oldest first
        self._directory: str | None = None
        self._closed = False

    def put(self, owner: str, kind: str, data: bytes, info: dict) -> str:
        """Keep *data* for *owner*; returns its id.  Pieces too big to keep at all raise ValueError."""
        import secrets

        piece = Piece(owner, kind, data, info)
        to_disk = piece.size > self.file_threshold
        limit = self.disk_limit if to_disk else self.memory_limit
        if piece.size > limit:
            raise ValueError(f"a piece of {piece.size} bytes is larger than the store ({limit} bytes)")
        key = secrets.token_urlsafe(16)  # 128 random bits
        with self._lock:
            if self._closed:
                raise ValueError("the result store is closed")
            if to_disk:
                self._make_room(piece.size, on_disk=True)
                self._write_file(key, piece)
                self._on_disk += piece.size
            else:
                self._make_room(piece.size, on_disk=False)
                self._in_memory += piece.size
            self._pieces[key] = piece
        return key

    def get(self, owner: str, key: str) -> Piece:
        """The piece *key* of *owner*; raises :class:`ResultGone` (with ``expired`` set) otherwise."""
        with self._lock:
            piece = self._pieces.get(key)
            if piece is not None and piece.owner == owner:
                self._pieces[key] = self._pieces.pop(key)  # now the most recently used
                return piece
            expired = self._forgotten.get(key) == owner
        raise ResultGone(key, expired)

    def usage(self) -> tuple[int, int, int]:
        """(pieces, bytes in memory, bytes on disk): for tests and benchmarks."""
        with self._lock:
            return len(self._pieces), self._in_memory, self._on_disk

    def close(self) -> None:
        """Forget every piece and remove the temporary files; safe to call twice."""
        with self._lock:
            self._closed = True
            self._pieces.clear()
            self._in_memory = self._on_disk = 0
            directory, self._directory = self._directory, None
        if directory is not None:
            _remove_tree(directory)

    # -- under the lock ------------------------------------------------------

    def _make_room(self, size: int, on_disk: bool) -> None:
        used = self._on_disk if on_disk else self._in_memory
        limit = self.disk_limit if on_disk else self.memory_limit
        for key in list(self._pieces):
            if used + size <= limit:
                return
            piece = self._pieces[key]
            if (piece.path is not None) != on_disk:
                continue
            used -= piece.size
            self._evict(key)

    def _evict(self, key: str) -> None:
        piece = self._pieces.pop(key)
        if piece.path is not None:
            self._on_disk -= piece.size
            _unlink(piece.path)
        else:
            self._in_memory -= piece.size
        self._forgotten[key] = piece.owner
        while len(self._forgotten) > FORGOTTEN_KEPT:
            del self._forgotten[next(iter(self._forgotten))]

    def _write_file(self, key: str, piece: Piece) -> None:
        if self._directory is None:
            import atexit
            import tempfile

            self._directory = tempfile.mkdtemp(prefix="mcpzip-results-", dir=self._parent)  # mode 0700
            # close() removes it; this covers an exit that skips close().
            atexit.register(_remove_tree, self._directory)
        path = os.path.join(self._directory, key)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(piece.data)  # type: ignore[arg-type]
        except BaseException:
            _unlink(path)
            raise
        piece.path, piece.data = path, None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_tree(directory: Any) -> None:
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
