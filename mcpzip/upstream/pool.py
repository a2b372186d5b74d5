"""Connections to the upstream servers: made on first use, shared, reaped when idle.

Threading contract: every method may be called from any thread.  Connecting
to one server holds only that server's lock, so a slow server never delays
calls to the others, and many calls share one connection concurrently.
"""

from __future__ import annotations

import threading
import time

from ..base import allocator, log, protocol
from . import transports
from ..knowledge.servercache import ServerCache, about_line
from .session import Handlers, NotSent, Upstream, UpstreamError


class StartBackoff(UpstreamError):
    """A server whose last start failed is not started again yet; *retry_in* seconds are left."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    from ..base.config import Config, ServerConfig
    from .session import CallContext

    T = TypeVar("T")

CONNECT_TIMEOUT = 30.0
# After a failed start, a server is not started again for this long, doubling
# with each failure up to the maximum; calls meanwhile fail at once.
RETRY_FIRST = 5.0
RETRY_MAX = 300.0
REAP_INTERVAL_MAX = 60.0
# A connection replaced while calls were in flight is closed once they are
# done, or after this long.
RETIRE_WAIT = 600.0


class Pool:
    """The upstream connections of one config.

    Collaborators come in through the constructor; callbacks are registered
    with :meth:`handle_upstream_messages`, :meth:`when_connected` and
    :meth:`when_authorized` before the first connection is made.
    """

    def __init__(self, config: Config, known: ServerCache | None = None, client_capabilities: dict | None = None,
                 auth_flow: str = "never") -> None:  # fmt: skip
        """*known*: what each server declared last time (read from ``cache/servers.json`` when not given)."""
        self.config = config
        # Changed in place only (set_client_capabilities): every connection shares this dict.
        self.client_capabilities: dict = dict(client_capabilities or {})
        # For http/sse upstreams: where tokens live, whether a sign-in may
        # start by itself ("background" in serve, "never" elsewhere), and
        # whom to tell when one completes.
        self.transport_options = {"auth_dir": config.auth_dir, "auth_flow": auth_flow, "on_authorized": self._authorized,
                                  "max_message_bytes": config.max_message_bytes}  # fmt: skip
        # What each server declared last time (era, capabilities), kept
        # across runs: the era spares a probe, the capabilities let mcpzip
        # declare its own before anything is connected.
        if known is None:
            known = ServerCache(config.servers_cache_path, config.servers)
            known.load()
        self.known = known
        # One lock per server serialises its connecting (held while it
        # starts, so a slow server never delays the others).  Lock order:
        # a server's lock, then _lock; never the other way round.
        self._connect_locks = {name: threading.Lock() for name in config.servers}
        # _lock guards every field below it.
        self._lock = threading.Lock()
        self._handlers = Handlers()  # what upstream requests and notifications reach
        self._on_connect: list[Callable[[Upstream], None]] = []
        self._on_authorized: list[Callable[[str], None]] = []
        self._log_level: str | None = None  # the client's, passed on to every upstream
        self._conns: dict[str, Upstream] = {}
        self._connecting: dict[str, Upstream] = {}
        self._retiring: set[Upstream] = set()  # replaced, closed when their calls are done
        # Servers whose last start failed: (failures in a row, when the next start may be, why).
        self._failed: dict[str, tuple[int, float, str]] = {}
        self._eras: dict[str, str] = known.eras()
        # Servers whose connection must outlive idleness (a client waits for
        # resource updates from them).
        self._pinned: set[str] = set()
        # Servers connected only to be listed: closed once listed, unless a call took the connection meanwhile.
        self._listing_only: set[str] = set()
        self._call_expected: set[str] = set()  # a call waits for their listing: keep the connection
        self._reaper: threading.Thread | None = None
        # Set once, under _lock, by close(); waited on by the reaper.
        self._closed = threading.Event()

    # -- registration (before the first connection) ---------------------------------

    def handle_upstream_messages(self, handlers: Handlers) -> None:
        """Where what upstreams send on their own (requests, notifications) goes."""
        with self._lock:
            self._handlers = handlers

    def when_connected(self, callback: Callable[[Upstream], None]) -> None:
        """Call *callback* with each new connection, on the connecting thread, before it is handed out."""
        with self._lock:
            self._on_connect.append(callback)

    def when_authorized(self, callback: Callable[[str], None]) -> None:
        """Call *callback* with a server's name when a sign-in to it completes."""
        with self._lock:
            self._on_authorized.append(callback)

    def _authorized(self, name: str) -> None:
        with self._lock:
            self._failed.pop(name, None)  # the failure was the missing sign-in: no reason to wait now
            callbacks = list(self._on_authorized)
        for callback in callbacks:
            callback(name)

    # -- connections ---------------------------------------------------------------

    def get(self, name: str, timeout: float = CONNECT_TIMEOUT, for_listing: bool = False) -> Upstream:
        """The live connection to *name*, connecting (or reconnecting) if needed.

        *for_listing*: the connection is wanted only to list tools; one made
        for that is closed once listed (:meth:`list_tools`) unless a call
        (any other ``get``) takes it meanwhile.
        """
        server = self.config.servers.get(name)
        if server is None:
            raise UpstreamError(f"no server named {name!r} in the config")
        conn = self._live(name, claim=not for_listing)
        if conn is not None:
            return conn
        self._check_backoff(name)
        lock = self._connect_locks[name]
        if not lock.acquire(timeout=timeout):
            raise UpstreamError(f"timed out waiting for {name} to start")
        try:
            conn = self._live(name, claim=not for_listing)
            if conn is not None:
                return conn
            self._check_backoff(name)  # a start that failed while this call waited for the lock
            try:
                conn = self._connect(server, timeout, for_listing)
            except UpstreamError as e:
                self._note_failure(name, str(e))
                raise
            with self._lock:
                self._failed.pop(name, None)
            return conn
        finally:
            lock.release()

    def connected(self, name: str) -> bool:
        """Whether *name* has a live connection (its handshake is done)."""
        return self._live(name) is not None

    def may_start(self, name: str) -> bool:
        """False while *name* waits out the pause after a failed start (its backoff)."""
        failed = self.last_failure(name)
        return failed is None or failed[1] <= 0

    def warm(self, name: str) -> None:
        """Start *name* in the background, as for a call, so that the call finds it ready."""

        def start() -> None:
            try:
                self.get(name)
            except UpstreamError as e:
                log.info("%s: warming up failed: %s", name, e)

        t = threading.Thread(target=start, name=f"mcpzip-warm-{name}")
        t.daemon = True
        t.start()

    def expect_call(self, name: str) -> None:
        """A call to *name* waits for its listing: the connection that lists it is to stay for the call."""
        with self._lock:
            self._call_expected.add(name)
            self._listing_only.discard(name)

    def listing_only(self, name: str) -> bool:
        """Whether *name*'s connection was made only to list its tools (and no call has used it)."""
        with self._lock:
            return name in self._listing_only

    def last_failure(self, name: str) -> tuple[str, float] | None:
        """Why *name*'s last start failed and the seconds until the next may be (0: now); None if it did not."""
        with self._lock:
            failed = self._failed.get(name)
        return (failed[2], max(0.0, failed[1] - time.monotonic())) if failed else None

    def _check_backoff(self, name: str) -> None:
        with self._lock:
            failed = self._failed.get(name)
        if failed is not None and time.monotonic() < failed[1]:
            left = failed[1] - time.monotonic()
            raise StartBackoff(f"{failed[2]}; mcpzip tries again in {left:.0f} s", left)

    def _note_failure(self, name: str, reason: str) -> None:
        with self._lock:
            if self._closed.is_set():
                return  # shutting down is no failure of the server
            count = self._failed.get(name, (0, 0.0, ""))[0] + 1
            delay = min(RETRY_FIRST * 2 ** (count - 1), RETRY_MAX)
            self._failed[name] = (count, time.monotonic() + delay, reason)
        log.info("%s: start failed %d time%s in a row; next attempt in %.0f s", name, count, "s" if count > 1 else "", delay)

    def _live(self, name: str, claim: bool = False) -> Upstream | None:
        """*name*'s connection if it is up and knows what the client can do (else a new one is due).

        *claim*: a call is about to use it, so it is no longer only for listing.
        """
        with self._lock:
            conn = self._conns.get(name)
            if claim:
                self._listing_only.discard(name)  # a call uses it now: it stays
                self._call_expected.discard(name)
        return conn if conn is not None and conn.alive and conn.offers(self.client_capabilities) else None

    def _connect(self, server: ServerConfig, timeout: float, for_listing: bool = False) -> Upstream:
        """Start *server* (its connect lock held); the new connection is handed out only once ready."""
        name = server.name
        with self._lock:
            old = self._conns.pop(name, None)
        if old is not None and old.alive:
            log.info("%s: connecting again to offer the client's capabilities (a legacy server hears them once)", name)
            self._retire(old)
        elif old is not None:
            old.close()  # reap what is left of the dead one
        with self._lock:
            handlers, log_level, era = self._handlers, self._log_level, self._eras.get(name)
        allocator.tune()  # before the reader threads of many upstreams exist
        conn = Upstream(server, transports.create(server, **self.transport_options), handlers, self.client_capabilities)
        conn.log_level = log_level
        started = time.monotonic()
        with self._lock:
            # Visible to close() while it connects: a shutdown mid-start
            # must still stop the process.  (Checked under the lock that
            # close() takes, so no start slips in after it.)
            if self._closed.is_set():
                raise UpstreamError("mcpzip is shutting down")
            self._connecting[name] = conn
        try:
            try:
                conn.connect(timeout, era)
            except transports.TransportClosed as e:
                raise UpstreamError(f"cannot start server {name}: {e}") from e
            except Exception as e:  # UpstreamError, an RPCError from the handshake, or a timeout
                raise UpstreamError(f"server {name} failed to start: {e}") from e
        except BaseException:
            with self._lock:
                self._connecting.pop(name, None)
            raise
        log.info("%s: connected (%s, %.0f ms)", name, conn.protocol_version, (time.monotonic() - started) * 1000)
        with self._lock:
            if conn.era:
                self._eras[name] = conn.era
            # Set before the callbacks run, so they can tell (listing_only).
            listing_only = for_listing and name not in self._call_expected
            (self._listing_only.add if listing_only else self._listing_only.discard)(name)
            callbacks = list(self._on_connect)
        self.known.record(name, conn.era, conn.protocol_version, conn.capabilities,
                          about=about_line(conn.instructions, conn.server_info))  # fmt: skip
        for callback in callbacks:
            callback(conn)
        with self._lock:
            # Connecting until it is a connection: set_client_capabilities
            # finds it in one of the two at every moment.
            self._connecting.pop(name, None)
            closing = self._closed.is_set()
            if not closing:
                self._conns[name] = conn
        if closing:
            conn.close()
            raise UpstreamError("mcpzip is shutting down")
        conn.listen()
        self._start_reaper()
        return conn

    def list_tools(self, name: str, timeout: float) -> list[dict]:
        """*name*'s tools; a connection made only for this is closed right after."""
        started = time.monotonic()
        deadline = started + timeout

        def listing(conn: Upstream) -> list[dict]:
            tools, ttl_ms = conn.list_tools(max(0.001, deadline - time.monotonic()))
            self.known.record_listing(name, ttl_ms, conn.offered if conn.era == protocol.LEGACY else None)
            return tools

        try:
            return self._through_sign_in(
                name, started, deadline, lambda: self._on_connection(name, timeout, listing, for_listing=True),
                lambda: self._on_connection(name, _left(deadline), listing, for_listing=True))  # fmt: skip
        finally:
            self._close_if_listing_only(name)

    def _close_if_listing_only(self, name: str) -> None:
        with self._lock:
            conn = self._conns.get(name)
            if conn is None or name not in self._listing_only or name in self._pinned or conn.in_flight:
                return
            self._listing_only.discard(name)
            del self._conns[name]
        log.info("%s: listed; closing the connection no call is using", name)
        conn.close()

    def call_tool(self, server: str, tool: str, arguments: dict, timeout: float | None,
                  context: CallContext | None = None) -> dict:  # fmt: skip
        started = time.monotonic()
        deadline = started + timeout if timeout else None
        connect_timeout = min(timeout, CONNECT_TIMEOUT) if timeout else CONNECT_TIMEOUT
        return self._through_sign_in(
            server, started, deadline,
            lambda: self._on_connection(server, connect_timeout, lambda conn: conn.call_tool(tool, arguments, timeout, context)),
            lambda: self._on_connection(server, min(_left(deadline) or CONNECT_TIMEOUT, CONNECT_TIMEOUT),
                                        lambda conn: conn.call_tool(tool, arguments, _left(deadline), context)),
        )  # fmt: skip

    def _through_sign_in(self, name: str, started: float, deadline: float | None, first: Callable[[], T],
                         again: Callable[[], T]) -> T:  # fmt: skip
        """*first*; if it failed before anything was sent while a sign-in to *name* is under way,
        wait for the sign-in (until *deadline*) and, once it succeeded, *again*."""
        try:
            return first()
        except UpstreamError as e:
            if not _unsent(e) or not self._signed_in_meanwhile(name, started, deadline):
                raise
        log.info("%s: signed in; trying again", name)
        return again()

    def signing_in(self, name: str) -> bool:
        """Whether a sign-in to *name* (a browser window) is under way."""
        authorizer = self._authorizer(name)
        return authorizer is not None and authorizer.signing_in()

    def _signed_in_meanwhile(self, name: str, since: float, deadline: float | None) -> bool:
        authorizer = self._authorizer(name)
        if authorizer is None:
            return False
        if authorizer.signing_in():
            log.info("%s: waiting for the sign-in in the browser", name)
        return authorizer.wait_for_sign_in(_left(deadline), since)

    def _authorizer(self, name: str) -> Any:
        from . import auth  # light: the OAuth machinery is in its submodules

        server = self.config.servers.get(name)
        if server is None or server.type == "stdio" or self.transport_options["auth_flow"] != auth.BACKGROUND:
            return None  # only serve signs in by itself
        return auth.existing(server, self.config.auth_dir)

    def _on_connection(self, name: str, connect_timeout: float, action: Callable[[Upstream], T],
                       for_listing: bool = False) -> T:  # fmt: skip
        try:
            return action(self.get(name, connect_timeout, for_listing))
        except NotSent:
            # Closed under us (idle reaping, a crash between calls): the
            # request never left, so one retry on a fresh connection is safe.
            return action(self.get(name, connect_timeout, for_listing))

    def declared(self, name: str) -> dict | None:
        """*name*'s capabilities: live when connected, else as remembered; None if never seen."""
        conn = self._live(name)
        if conn is not None:
            return conn.capabilities
        return self.known.capabilities(name)

    def era(self, name: str) -> str | None:
        """The protocol era *name* speaks (or spoke last time), if known."""
        with self._lock:
            return self._eras.get(name)

    def pin(self, name: str, pinned: bool = True) -> None:
        """Keep (or stop keeping) *name*'s connection open while idle."""
        with self._lock:
            (self._pinned.add if pinned else self._pinned.discard)(name)

    def connections(self) -> list[Upstream]:
        with self._lock:
            return list(self._conns.values())

    def set_client_capabilities(self, capabilities: dict) -> list[str]:
        """What the client can do, offered to upstreams from now on.

        Modern upstreams read it from every request; a legacy upstream heard
        it at its handshake, so its next use connects it again.  Returns the
        servers connected (or connecting) that have yet to hear it, and the
        legacy servers not connected whose last listing was made for a
        client that could do something else: their tools are to be listed again.
        """
        if capabilities == self.client_capabilities:
            return []
        # Changed in place: every connection shares this one dict, so even
        # one being made right now sees the change.
        for key in [k for k in self.client_capabilities if k not in capabilities]:
            del self.client_capabilities[key]
        self.client_capabilities.update(capabilities)
        with self._lock:
            conns = list(self._conns.values()) + list(self._connecting.values())
        told_less = [c.name for c in conns if c.era != protocol.MODERN and not c.offers(self.client_capabilities)]
        connected = {c.name for c in conns}
        listed_for_other = [name for name in self.config.servers
                            if name not in connected and self.known.listed_for_other(name, self.client_capabilities)]  # fmt: skip
        return told_less + listed_for_other

    def _retire(self, conn: Upstream) -> None:
        """Close *conn*, replaced by a new connection, once the calls it carries are done."""
        with self._lock:
            self._retiring.add(conn)

        def run() -> None:
            deadline = time.monotonic() + RETIRE_WAIT
            while conn.in_flight and time.monotonic() < deadline and not self._closed.is_set():
                time.sleep(0.05)  # rare, and short: a call or two finishing
            conn.close()
            with self._lock:
                self._retiring.discard(conn)

        t = threading.Thread(target=run, name=f"mcpzip-{conn.name}-retire")
        t.daemon = True
        t.start()

    def set_log_level(self, level: str) -> None:
        """Pass the client's logging level on, now and to later connections."""
        with self._lock:
            self._log_level = level
        self._each_connection(lambda conn: conn.set_log_level(level))

    def broadcast(self, method: str, params: dict | None = None) -> None:
        """Send a notification to every connected legacy upstream."""

        def notify(conn: Upstream) -> None:
            if conn.era == protocol.LEGACY:
                try:
                    conn.notify(method, params)
                except UpstreamError:
                    pass

        self._each_connection(notify)

    def _each_connection(self, action: Callable[[Upstream], None]) -> None:
        # Off the caller's thread: one slow upstream must not hold the client up.
        for conn in self.connections():
            t = threading.Thread(target=action, args=(conn,), name=f"mcpzip-{conn.name}-update")
            t.daemon = True
            t.start()

    def close(self) -> None:
        """Close every connection, all at once, and stop reaping."""
        with self._lock:
            self._closed.set()
            conns = list(self._conns.values()) + list(self._connecting.values()) + list(self._retiring)
            self._conns = {}
        threads = [threading.Thread(target=c.close, name=f"mcpzip-close-{c.name}") for c in conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # -- idle reaping -------------------------------------------------------------

    def _start_reaper(self) -> None:
        idle = self.config.idle_timeout_minutes * 60
        if idle <= 0:
            return
        with self._lock:
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, args=(idle,), name="mcpzip-reaper")
                self._reaper.daemon = True
                self._reaper.start()

    def _reap(self, idle: float) -> None:
        interval = min(idle / 2, REAP_INTERVAL_MAX)
        while not self._closed.wait(interval):
            now = time.monotonic()
            with self._lock:
                stale = [c for c in self._conns.values()
                         if c.in_flight == 0 and now - c.last_used > idle and c.name not in self._pinned]  # fmt: skip
                for c in stale:
                    del self._conns[c.name]
            for c in stale:
                log.info("%s: closing after %.0f idle minutes", c.name, idle / 60)
                c.close()


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.001, deadline - time.monotonic())


def _unsent(error: UpstreamError) -> bool:
    """Whether *error* means the request never reached the server (a refused or failed start, a closed connection)."""
    return isinstance(error, (NotSent, StartBackoff)) or isinstance(error.__cause__, (NotSent, transports.TransportClosed))
