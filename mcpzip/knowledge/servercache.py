"""What each upstream declared when last connected, kept in ``cache/servers.json``.

mcpzip must answer ``initialize`` before it has connected to anything, yet
the capabilities it declares depend on what its upstreams offer, and its
instructions give each server's tool count, which would otherwise mean
parsing the whole tool cache first; knowing a server's protocol era spares
the next start a ``server/discover`` probe.  All are learned when a server
is connected or listed, and remembered here across runs.

The file is a cache: written atomically (mode 0644) whenever what a server
declares changes, read tolerantly (a damaged file or entry is ignored), and
never required.  Its shape::

    {"servers": {"name": {"era": "legacy", "protocolVersion": "2025-11-25",
                          "capabilities": {...}, "tools": 12, "config": 123456,
                          "about": "first sentence of its instructions",
                          "topics": ["issues", "pull requests"], "bytes": 9876,
                          "listed": 1767225600.0, "ttl": 3600.0, "offered": {}}}}

``listed`` is when the server's tools were last listed (seconds since the
epoch), ``ttl`` how long the server said that listing stays good (its
``ttlMs``, in seconds), if it said, and ``offered`` what a legacy server had
been told the client can do when it listed (some list tools only for a
client that can do sampling).

``config`` is a keyed hash of how the server is started or reached: an
entry for a server whose config entry changed since is ignored.  Keyed (with
``servers.json.key``, 32 random bytes readable by the user alone), because
args and URLs may hold secrets and this file is readable by everyone: an
unkeyed checksum would confirm a guessed token.

Threading contract: every method may be called from any thread.
"""

from __future__ import annotations

import threading
import time

from ..base import jsontext, log, protocol
from ..base.files import ensure_dir, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..base.config import ServerConfig


ABOUT_CHARS = 160


class ServerCache:
    def __init__(self, path: str | None, servers: dict[str, ServerConfig]) -> None:
        self.path = path
        self.servers = list(servers)
        key = _hash_key(path)
        self._prints = {name: _fingerprint(server, key) for name, server in servers.items()}
        self._entries: dict[str, dict] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the file; a missing or damaged one leaves the cache empty."""
        if not self.path:
            return
        try:
            with open(self.path, "rb") as f:
                data = jsontext.loads(f.read())
            servers = data.get("servers") if isinstance(data, dict) else None
            if not isinstance(servers, dict):
                raise ValueError("no servers object")
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.warning("server cache %s is unreadable (%s); it will be rebuilt", self.path, e)
            return
        entries = {}
        for name, entry in servers.items():
            if name in self._prints and isinstance(entry, dict) and entry.get("config") == self._prints[name]:
                entries[name] = _clean(entry, self._prints[name])
        with self._lock:
            self._entries = entries

    def eras(self) -> dict[str, str]:
        """The era each server spoke last time, for servers where it is known."""
        with self._lock:
            return {name: e["era"] for name, e in self._entries.items() if "era" in e}

    def capabilities(self, name: str) -> dict | None:
        """What *name* declared last time, or None when it was never seen."""
        with self._lock:
            entry = self._entries.get(name)
        return entry.get("capabilities") if entry else None

    def about(self, name: str) -> str:
        """The one line *name* said about itself (instructions, or serverInfo), or ""."""
        with self._lock:
            entry = self._entries.get(name)
        return entry.get("about", "") if entry else ""

    def tool_counts(self) -> dict[str, int]:
        """How many tools each server listed last time, where known."""
        with self._lock:
            return {name: e["tools"] for name, e in self._entries.items() if "tools" in e}

    def record(self, name: str, era: str | None, version: str | None, capabilities: dict, about: str = "") -> None:
        """Remember what *name* declared on connecting; the file is rewritten only on a change."""
        self._merge(name, {"era": era, "protocolVersion": version, "capabilities": capabilities, "about": about})

    def record_tools(self, name: str, count: int, topics: list[str] | None = None, size: int | None = None) -> None:
        """Remember how many tools *name* listed, what they are about and the bytes of their definitions.

        The next start's instructions say so at once, and ``tools_mode`` auto
        knows whether the tools fit its budget without reading the tool cache.
        """
        fields: dict = {"tools": count, "listed": time.time()}
        if topics is not None:
            fields["topics"] = topics
        if size is not None:
            fields["bytes"] = size
        self._merge(name, fields)

    def definition_bytes(self) -> dict[str, int]:
        """The bytes of each server's tool definitions (as listed directly), where known."""
        with self._lock:
            return {name: e["bytes"] for name, e in self._entries.items() if "bytes" in e}

    def record_listing(self, name: str, ttl_ms: float | None, offered: dict | None) -> None:
        """Remember how long *name* said its listing stays good (None: it did not say), and
        what a legacy server had been told the client can do when it listed (None: modern)."""
        self._merge(name, {"ttl": None if ttl_ms is None else ttl_ms / 1000, "offered": offered})

    def listed_for_other(self, name: str, capabilities: dict) -> bool:
        """Whether *name*'s last listing was made for a client that could do something else (legacy servers)."""
        with self._lock:
            offered = self._entries.get(name, {}).get("offered")
        return offered is not None and offered != capabilities

    def listing_age(self, name: str) -> float | None:
        """Seconds since *name* was last listed, or None when unknown (or its config changed)."""
        with self._lock:
            listed = self._entries.get(name, {}).get("listed")
        return None if listed is None else max(0.0, time.time() - listed)

    def fresh(self, name: str, default_seconds: float) -> bool:
        """Whether *name*'s last listing is still good: younger than its ttl, else *default_seconds*."""
        with self._lock:
            entry = self._entries.get(name, {})
        listed, ttl = entry.get("listed"), entry.get("ttl")
        if listed is None or "tools" not in entry:
            return False
        age = time.time() - listed
        return 0 <= age < (default_seconds if ttl is None else ttl)

    def topics(self, name: str) -> list[str]:
        """What *name*'s tools were about when last listed ("issues", "pull requests"…), or []."""
        with self._lock:
            entry = self._entries.get(name)
        return list(entry.get("topics", ())) if entry else []

    def _merge(self, name: str, fields: dict) -> None:
        with self._lock:
            entry = _clean({**self._entries.get(name, {}), **fields}, self._prints.get(name))
            if self._entries.get(name) == entry:
                return
            self._entries[name] = entry
            snapshot = {n: self._entries[n] for n in self.servers if n in self._entries}
            if not self.path:
                return
            data = jsontext.dumps({"servers": snapshot}, separators=(",", ": "), indent=1, sort_keys=True).encode()
            try:
                write_atomic(self.path, data, 0o644, dir_mode=0o755)  # cache/, as the catalog keeps it
            except OSError as e:
                log.warning("could not write server cache %s: %s", self.path, e.strerror or e)


def about_line(instructions: object, server_info: object) -> str:
    """One line a server gives about itself: the first sentence of its instructions, else its serverInfo
    description or title (a bare name says nothing)."""
    info = server_info if isinstance(server_info, dict) else {}
    for text in (instructions, info.get("description"), info.get("title")):
        if isinstance(text, str) and text.strip():
            line = " ".join(log.strip_controls(text).split())  # the server's words: one line, no control codes
            end = line.find(". ")
            line = line[: end + 1] if 0 < end < ABOUT_CHARS else line
            return line if len(line) <= ABOUT_CHARS else line[: ABOUT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return ""


KEY_BYTES = 32


def _hash_key(path: str | None) -> bytes:
    """The key of the config hashes: ``{path}.key``, made on first use; random for this run without a file."""
    import os

    if not path:
        return os.urandom(KEY_BYTES)
    key_path = path + ".key"
    try:
        with open(key_path, "rb") as f:
            key = f.read()
        if len(key) == KEY_BYTES:
            return key
    except OSError:
        pass
    key = os.urandom(KEY_BYTES)
    try:
        ensure_dir(os.path.dirname(key_path))
        # Created private and whole by one process (write_atomic's tempfile costs start-up time).
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:  # another process made it meanwhile, or no place for it: hashes for this run only
        log.debug("could not create %s: %s", key_path, e.strerror or e)
        return key
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _fingerprint(server: ServerConfig, key: bytes) -> str:
    # A keyed hash, not a copy nor a plain checksum: args and urls may hold
    # secrets, and the file is world-readable.
    try:
        from _blake2 import blake2b  # the C module behind hashlib's, without hashlib's import cost
    except ImportError:
        from hashlib import blake2b

    what = jsontext.dumps([server.type, server.command, server.args, server.cwd, server.url], ensure_ascii=True)
    return blake2b(what.encode(), key=key, digest_size=16).hexdigest()


def _clean(entry: dict, fingerprint: str | None) -> dict:
    """Only the fields this module understands, each of the right type."""
    out: dict = {"config": fingerprint}
    if entry.get("era") in (protocol.LEGACY, protocol.MODERN):
        out["era"] = entry["era"]
    if isinstance(entry.get("protocolVersion"), str):
        out["protocolVersion"] = entry["protocolVersion"]
    caps = entry.get("capabilities")
    out["capabilities"] = caps if isinstance(caps, dict) else {}
    size = entry.get("bytes")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        out["bytes"] = size
    topics = entry.get("topics")
    if isinstance(topics, list) and topics and all(isinstance(t, str) for t in topics):
        out["topics"] = [t[:40] for t in topics[:8]]
    if isinstance(entry.get("about"), str) and entry["about"]:
        out["about"] = entry["about"][:ABOUT_CHARS]
    tools = entry.get("tools")
    if isinstance(tools, int) and not isinstance(tools, bool) and tools >= 0:
        out["tools"] = tools
    for key in ("listed", "ttl"):
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e12:
            out[key] = float(value)
    if isinstance(entry.get("offered"), dict):
        out["offered"] = entry["offered"]
    return out
