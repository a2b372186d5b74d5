"""Every upstream tool, kept in memory and in a cache file beside the config.

The catalog answers at once from what it last knew and is brought up to date
in the background: each server is listed on its own thread, bounded in time,
and a server that fails keeps its cached tools (partial merge).  It knows how
to ask for a listing only through the *lister* it is given, so it stays
independent of transports and of the protocol spoken downstream.

Threading contract: all methods may be called from any thread; one lock
guards the catalog's state, and none of its methods holds it while reading
or writing the file or calling out.  Readers get immutable snapshots;
``version`` increases with every change so derived data (the search index)
knows when to rebuild.  ``wait_for``, ``flush`` and a first read that finds
another thread reading the file block; nothing else does.
"""

from __future__ import annotations

import collections
import marshal
import threading

from ..base import jsontext, listing, log
from ..base.files import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable

    Lister = Callable[[str, float], "list[dict]"]

SEPARATOR = "__"
CACHE_DIR_MODE = 0o755  # cache/ holds nothing secret, but only its owner may change it
# MCP's tool names: [A-Za-z0-9_.-]{1,128} (checked by hand: ``re`` costs start-up time).
TOOL_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
MAX_TOOL_NAME = 128
LIST_TIMEOUT = 30.0

# A server's listing state.
PENDING, CACHED, LISTED, FAILED = "pending", "cached", "listed", "failed"
# Whether the cache file has been read.
UNREAD, READING, READ = "unread", "reading", "read"


class Tool:
    """One upstream tool: *definition* is exactly what the upstream sent.

    The definition is kept packed by :mod:`marshal` rather than as the dicts
    it was decoded into, which cost about five times the memory (the 495
    tools of benchmarks/data/ALL.json: 3.4 MB of dicts, 0.6 MB packed), while
    only a search's results, describe_tool, execute_tool's check and the
    cache file read it.  Each read unpacks a fresh copy (a few microseconds
    for a typical tool) that the caller may change.  Immutable.
    """

    __slots__ = ("server", "name", "_packed")

    def __init__(self, server: str, name: str, definition: dict) -> None:
        """Raises ``ValueError`` for a definition nested too deeply to pack."""
        set_field = object.__setattr__
        set_field(self, "server", server)
        set_field(self, "name", name)
        set_field(self, "_packed", marshal.dumps(definition))

    @property
    def definition(self) -> dict:
        return marshal.loads(self._packed)

    @property
    def prefixed(self) -> str:
        return f"{self.server}{SEPARATOR}{self.name}"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Tool is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tool):
            return NotImplemented
        return (self.server, self.name) == (other.server, other.name) and (
            self._packed == other._packed or self.definition == other.definition)  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.server, self.name))

    def __repr__(self) -> str:
        return f"Tool(server={self.server!r}, name={self.name!r}, definition={self.definition!r})"


def split_name(prefixed: str) -> tuple[str, str] | None:
    """``a__b__c`` -> ``("a", "b__c")``: the server name never holds ``__``."""
    server, sep, tool = prefixed.partition(SEPARATOR)
    if not sep or not server or not tool:
        return None
    return server, tool


class Catalog:
    """The tools of every configured server.

    The cache file is read on first use, not at construction: parsing a large
    one is the slowest part of start-up, and the client's first answers need
    only the tool counts, which *counts_hint* (kept in ``cache/servers.json``)
    can give.  Every method reads the file first if it has not been read.

    *on_update* is told (server, tool count) after each listing, e.g. to keep
    the hint; it runs on the listing thread, outside the catalog's lock.
    """

    def __init__(self, servers: Iterable[str], cache_path: str | None = None,
                 counts_hint: dict[str, int] | None = None,
                 on_update: Callable[[str, int], None] | None = None) -> None:  # fmt: skip
        # Fixed at construction, read without the lock.
        self.servers = list(servers)
        self.cache_path = cache_path
        self.counts_hint = counts_hint or {}
        self._on_update = on_update
        # One lock guards every field below it; each condition is named for
        # what its waiters wait on (as in queue.Queue).
        self._lock = threading.Lock()
        self._cache_read = threading.Condition(self._lock)  # _load reached READ
        self._listed = threading.Condition(self._lock)  # a server left PENDING
        self._file_current = threading.Condition(self._lock)  # nothing left to write (flush)
        self._load = UNREAD  # UNREAD -> READING (by one thread) -> READ
        self._version = 0  # + 1 on every change of _by_server
        self._closing = False  # mcpzip is shutting down: failed listings are expected then
        self._by_server: dict[str, list[Tool]] = {}
        self._state: dict[str, str] = {name: PENDING for name in self.servers}
        self._errors: dict[str, str] = {}
        self._dirty = False  # a change the cache file does not have, and no write has started on
        self._writing = False  # one thread is writing the cache file (it writes until not _dirty)
        self._snapshot: tuple[int, list[Tool], dict[str, Tool]] = (0, [], {})
        self._had_cache = False  # the cache file gave tools: searches need not wait for listings

    # -- reading ---------------------------------------------------------

    def pending(self) -> list[str]:
        """The servers with no tools to show yet: neither cached, listed nor failed."""
        self._ensure_loaded()
        with self._lock:
            return [s for s in self.servers if self._state[s] == PENDING]

    def had_cache(self) -> bool:
        """Whether the cache file gave tools to answer from."""
        self._ensure_loaded()
        with self._lock:
            return self._had_cache

    @property
    def version(self) -> int:
        """Increases with every change, so derived data (the search index) knows when to rebuild."""
        with self._lock:
            return self._version

    def tools(self) -> list[Tool]:
        return self._current()[1]

    @property
    def loaded(self) -> bool:
        """Whether the cache file has been read (what needs the tools and not only their counts waits for that)."""
        with self._lock:
            return self._load == READ

    def get(self, prefixed: str) -> Tool | None:
        return self._current()[2].get(prefixed)

    def server_tools(self, server: str) -> list[Tool]:
        self._ensure_loaded()
        with self._lock:
            return list(self._by_server.get(server, ()))

    def counts(self) -> dict[str, int]:
        with self._lock:
            if self._load != READ and all(name in self.counts_hint for name in self.servers):
                return {name: self.counts_hint[name] for name in self.servers}
        self._ensure_loaded()
        with self._lock:
            return {name: len(self._by_server.get(name, ())) for name in self.servers}

    def state(self, server: str) -> str:
        self._ensure_loaded()
        with self._lock:
            return self._state.get(server, PENDING)

    def error(self, server: str) -> str | None:
        with self._lock:
            return self._errors.get(server)

    def _current(self) -> tuple[int, list[Tool], dict[str, Tool]]:
        self._ensure_loaded()
        with self._lock:
            if self._snapshot[0] != self._version:
                tools = [t for name in self.servers for t in self._by_server.get(name, ())]
                self._snapshot = (self._version, tools, {t.prefixed: t for t in tools})
            return self._snapshot

    def wait_for(self, servers: Iterable[str] | None = None, timeout: float = LIST_TIMEOUT) -> bool:
        """Block until each server has tools to show or has failed to list.

        Returns False when *timeout* ran out first.  A server whose tools came
        from the cache counts as ready: the cache is good enough to answer.
        """
        self._ensure_loaded()
        with self._lock:
            wanted = [s for s in (self.servers if servers is None else servers) if s in self._state]
            return self._listed.wait_for(lambda: all(self._state[s] != PENDING for s in wanted), timeout)

    # -- changing --------------------------------------------------------

    def update(self, server: str, definitions: list[dict], save: bool = True) -> None:
        """Replace *server*'s tools with a fresh listing."""
        self._ensure_loaded()  # else a later first read would put the old tools back
        definitions, problems = listing.normalise("tools", definitions)
        if problems:
            log.warning("%s: its tool list has fields of the wrong type (%s); they were dropped or made text",
                        server, listing.summary(problems))  # fmt: skip
        tools = []
        seen = set()
        for d in definitions:
            name = d.get("name")
            if not isinstance(name, str) or not name or name in seen:
                log.warning("%s: ignored a tool without a usable name", server)
                continue
            if len(name) > MAX_TOOL_NAME or not TOOL_NAME_CHARS.issuperset(name):
                # A newline in a name would add lines of its own to search_tools' answer.
                log.warning("%s: refused tool %r: MCP tool names are 1-128 of A-Z a-z 0-9 _ . -", server, name)
                continue
            try:
                tool = Tool(server, name, d)
            except ValueError:  # nested deeper than the decoder allowed: marshal's limit differs
                log.warning("%s: refused tool %r: its definition is nested too deeply", server, name)
                continue
            seen.add(name)
            tools.append(tool)
        with self._lock:
            self._by_server[server] = tools
            self._state[server] = LISTED
            self._errors.pop(server, None)
            self._version += 1
            self._listed.notify_all()
            write = save and bool(self.cache_path) and self._mark_dirty()
        if self._on_update is not None:
            self._on_update(server, len(tools))
        if write:
            self._write_until_current()

    def flush(self, timeout: float) -> bool:
        """Wait until every listing taken in so far is in the cache file; False on timeout."""
        with self._lock:
            return self._file_current.wait_for(lambda: not self._dirty and not self._writing, timeout)

    def mark_failed(self, server: str, reason: str) -> None:
        """Record a failed listing; cached tools, if any, stay."""
        self._ensure_loaded()
        with self._lock:
            self._errors[server] = reason
            if self._state.get(server) == PENDING:
                self._state[server] = FAILED
            self._listed.notify_all()

    def begin_closing(self) -> None:
        """mcpzip is shutting down: listings cut short from now on are no news for the user."""
        with self._lock:
            self._closing = True

    def assume_current(self, servers: Iterable[str]) -> None:
        """Take *servers*' cached listings (even empty ones) as current: nothing waits for them to be listed."""
        self._ensure_loaded()
        with self._lock:
            for name in servers:
                if self._state.get(name) == PENDING:
                    self._state[name] = CACHED
            self._listed.notify_all()

    def refresh(self, lister: Lister, servers: Iterable[str] | None = None, timeout: float = LIST_TIMEOUT,
                at_once: int = 0) -> list[threading.Thread]:  # fmt: skip
        """List *servers* (default: all) in the background; returns the threads doing it.

        Each server on its own thread, or with *at_once*, that many threads
        taking the servers in turn (each start costs a process and its memory).
        """
        names = list(self.servers if servers is None else servers)
        due = collections.deque(names)  # each thread takes the next server when done with one (popleft is atomic)
        count = len(names) if at_once <= 0 else min(at_once, len(names))
        threads = []
        for i in range(count):
            t = threading.Thread(target=self._refresh_due, args=(lister, due, timeout), name=f"mcpzip-list-{i + 1}")
            t.daemon = True
            t.start()
            threads.append(t)
        return threads

    def _refresh_due(self, lister: Lister, due: collections.deque[str], timeout: float) -> None:
        while True:
            try:
                server = due.popleft()
            except IndexError:
                return
            self._refresh_one(lister, server, timeout)

    def _refresh_one(self, lister: Lister, server: str, timeout: float) -> None:
        try:
            definitions = lister(server, timeout)
        except Exception as e:
            with self._lock:
                closing = self._closing
            # A listing cut short by shutting down is no news for the user.
            (log.debug if closing else log.warning)("%s: could not list tools: %s", server, e)
            self.mark_failed(server, str(e))
            return
        self.update(server, definitions)
        log.info("%s: %d tools", server, len(definitions))

    # -- the cache file ----------------------------------------------------
    #
    # The file has the reference mcpzip's shape (a JSON array of entries with
    # ``name``, ``server_name``, ``original_name``, ``description``,
    # ``input_schema`` and ``compact_params``), so either implementation can
    # read the other's cache.  The rest of an upstream's definition (title,
    # outputSchema, annotations, ...) rides along under its own keys.

    def _ensure_loaded(self) -> None:
        self.load()

    def load(self) -> bool:
        """Fill the catalog from the cache file unless done already; False when there was none.

        One thread reads the file (outside the lock: it is slow); others
        calling meanwhile wait until it is in, so none sees a half-read catalog.
        """
        with self._lock:
            if self._load == READING:
                self._cache_read.wait_for(lambda: self._load == READ)
            if self._load == READ:
                return False
            self._load = READING
        by_server: dict[str, list[Tool]] = {}
        found = dropped = False
        try:
            found, by_server, dropped = self._read_cache()
        finally:
            with self._lock:
                for name, tools in by_server.items():
                    self._by_server[name] = tools
                    self._state[name] = CACHED
                if by_server:
                    self._version += 1
                    self._had_cache = True
                    self._listed.notify_all()
                self._load = READ
                self._cache_read.notify_all()
        if dropped:
            # Servers removed from the config lose their tools now, not only
            # after a refresh that may never succeed.
            self.save()
        return found

    def _read_cache(self) -> tuple[bool, dict[str, list[Tool]], bool]:
        """(whether there was a file, its tools by server, whether entries were dropped)."""
        path = self.cache_path
        if not path:
            return False, {}, False
        try:
            with open(path, "rb") as f:
                entries = jsontext.loads(f.read())
            if not isinstance(entries, list):
                raise ValueError("not a JSON array")
        except FileNotFoundError:
            return False, {}, False
        except (OSError, ValueError) as e:
            log.warning("tool cache %s is unreadable (%s); it will be rebuilt", path, e)
            return False, {}, False
        by_server: dict[str, list[Tool]] = {}
        dropped = False
        for entry in entries:
            tool = _from_entry(entry)
            if tool is None or tool.server not in self._state:
                dropped = True
                continue
            by_server.setdefault(tool.server, []).append(tool)
        return True, by_server, dropped

    def save(self) -> None:
        """Write the cache atomically: a reader sees the old file or the new one."""
        if not self.cache_path:
            return
        self._ensure_loaded()
        with self._lock:
            write = self._mark_dirty()
        if write:
            self._write_until_current()

    def _mark_dirty(self) -> bool:
        """(Under the lock.) Note a change to write; True when the caller is to write it."""
        self._dirty = True
        if self._writing:
            return False  # the thread writing now writes once more before it stops
        self._writing = True
        return True

    def _write_until_current(self) -> None:
        # One writer at a time, each write from a snapshot taken after the
        # last change it saw: an older snapshot never lands after a newer one,
        # and changes that arrive during a write share the next one.
        try:
            while True:
                with self._lock:
                    if not self._dirty:
                        break
                    self._dirty = False
                    tools = [t for name in self.servers for t in self._by_server.get(name, ())]
                self._write(tools)
        finally:
            with self._lock:
                self._writing = False
                self._file_current.notify_all()

    def _write(self, tools: list[Tool]) -> None:
        path = self.cache_path
        try:
            # One entry at a time: each tool's unpacked definition is garbage
            # before the next is unpacked, so writing never holds the whole
            # catalog as dicts.  The same bytes as dumps() of the sorted list.
            entries = (jsontext.dumps(_to_entry(t)) for t in sorted(tools, key=lambda t: t.prefixed))
            data = jsontext.utf8(f"[{','.join(entries)}]")  # an upstream's lone surrogate is replaced, not fatal
            write_atomic(path, data, 0o644, dir_mode=CACHE_DIR_MODE)
        except ValueError as e:  # a definition nested too deeply to write
            log.warning("could not write tool cache %s: %s", path, e)
        except OSError as e:
            log.warning("could not write tool cache %s: %s", path, e.strerror or e)


# Keys of a cache entry that are not copies of the upstream's own fields.
_ENTRY_KEYS = ("name", "server_name", "original_name", "description", "input_schema", "compact_params")


def _to_entry(tool: Tool) -> dict:
    d = tool.definition
    entry = {
        "name": tool.prefixed,
        "server_name": tool.server,
        "original_name": tool.name,
        "description": d.get("description") or "",
        "input_schema": d.get("inputSchema"),
        "compact_params": compact_params(d.get("inputSchema")),
    }
    for key, value in d.items():
        if key not in ("name", "description", "inputSchema") and key not in entry:
            entry[key] = value
    return entry


def _from_entry(entry: object) -> Tool | None:
    if not isinstance(entry, dict):
        return None
    server, name = entry.get("server_name"), entry.get("original_name")
    if not isinstance(server, str) or not isinstance(name, str) or not name or not TOOL_NAME_CHARS.issuperset(name):
        return None
    definition: dict = {"name": name}
    if entry.get("description"):
        definition["description"] = entry["description"]
    schema = entry.get("input_schema")
    definition["inputSchema"] = schema if isinstance(schema, dict) else {"type": "object"}
    for key, value in entry.items():
        if key not in _ENTRY_KEYS:
            definition[key] = value
    (definition,), _ = listing.normalise("tools", [definition])  # a hand-edited or foreign cache
    try:
        return Tool(server, name, definition)
    except ValueError:  # nested too deeply to keep
        return None


def compact_params(schema: object, limit: int = 0) -> str:
    """``channel:string*, text:string`` — each parameter with its type, ``*`` if required.

    Required parameters come first, each group in the schema's own order.
    With *limit*, at most that many are shown and the rest are counted.
    """
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return ""
    props = schema["properties"]
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    names = [n for n in props if n in required] + [n for n in props if n not in required]
    parts = [f"{n}:{_type_name(props[n])}{'*' if n in required else ''}" for n in names]
    if limit and len(parts) > limit:
        parts = parts[:limit] + [f"+{len(parts) - limit} more"]
    return ", ".join(parts)


def _type_name(prop: object) -> str:
    if not isinstance(prop, dict):
        return "any"
    kind = prop.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k != "null"] or kind
        kind = named[0] if named else None
    if isinstance(kind, str):
        return kind
    for key in ("anyOf", "oneOf"):
        options = prop.get(key)
        if isinstance(options, list):
            kinds = [_type_name(o) for o in options]
            named = [k for k in kinds if k not in ("null", "any")]
            if named:
                return named[0]
    if "enum" in prop:
        return "enum"
    return "any"
