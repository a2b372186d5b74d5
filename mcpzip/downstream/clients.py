"""Several clients over one pool: what each upstream says reaches the client it belongs to.

A shared mcpzip (``serve --http``) has one :class:`~.relay.Relay` per client
and one pool for all of them.  :class:`ClientHub` is the pool's only
listener and decides, for every message an upstream sends on its own
initiative, whose it is:

* a request for the client (sampling, elicitation, roots) and a log message
  belong to the client whose call the upstream is serving; when calls of
  several clients are in flight on that upstream, nobody can tell, and a
  request is refused rather than shown to a client it may not concern;
* a changed tool list is the catalog's, shared by all, and listed once;
* resource and prompt changes go to every client (a subscription is the
  upstream's, shared by all).

Upstreams are offered what any client can do (so a server lists its
sampling tools), and each client's relay refuses what its own client did not
declare.  The log level sent upstream is the most verbose any client asked
for; each relay filters to its own client's level.

Threading contract: every method may be called from any thread; ``_lock``
guards the tables of clients, capabilities and levels.
"""

from __future__ import annotations

import threading

from ..base import jsonrpc, log
from ..base.jsonrpc import RPCError
from ..upstream.session import Handlers
from .relay import LOG_LEVELS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from ..upstream.pool import Pool
    from ..upstream.session import CallContext, Upstream
    from .relay import Relay


class ClientHub:
    def __init__(self, pool: Pool | SplitPool, on_leave: Callable[[str], None] | None = None) -> None:
        """*on_leave* is told of each client that leaves (its own server instances stop)."""
        self.pool = pool
        self._on_leave = on_leave
        self._lock = threading.Lock()  # guards _relays, _offered and _levels
        self._relays: dict[str, Relay] = {}
        self._offered: dict[str, dict] = {}  # client -> the capabilities it lets upstreams use
        self._levels: dict[str, str] = {}  # client -> its log level

    def handlers(self) -> Handlers:
        return Handlers(on_request=self.upstream_request, on_notification=self.upstream_notification)

    # -- clients -----------------------------------------------------------------

    def join(self, client: str, relay: Relay) -> None:
        with self._lock:
            self._relays[client] = relay

    def leave(self, client: str) -> None:
        with self._lock:
            self._relays.pop(client, None)
            self._offered.pop(client, None)
            self._levels.pop(client, None)
        if self._on_leave is not None:
            self._on_leave(client)

    def clients(self) -> int:
        with self._lock:
            return len(self._relays)

    def for_client(self, client: str) -> _ClientUpstreams:
        """What the relay of *client* uses in place of the pool."""
        return _ClientUpstreams(self, client)

    def set_client_capabilities(self, client: str, offered: dict) -> list[str]:
        with self._lock:
            self._offered[client] = offered
            union: dict = {}
            for capabilities in self._offered.values():
                for key, value in capabilities.items():
                    union.setdefault(key, value)
        return self.pool.set_client_capabilities(union)

    def set_log_level(self, client: str, level: str) -> None:
        with self._lock:
            self._levels[client] = level
            most = min(self._levels.values(), key=LOG_LEVELS.index)
        self.pool.set_log_level(most)

    # -- upstreams ---------------------------------------------------------------

    def upstream_request(self, upstream: Upstream, message: dict) -> Any:
        relay = self._owner(upstream)
        if relay is None:
            raise RPCError(
                jsonrpc.METHOD_NOT_FOUND,
                f"mcpzip serves several clients and cannot tell which one {message.get('method')} is for "
                "(ask during a tool call)",
            )
        return relay.upstream_request(upstream, message)

    def upstream_notification(self, upstream: Upstream, message: dict) -> None:
        method = message.get("method")
        if method == "notifications/message":
            relay = self._owner(upstream)
            if relay is not None:
                relay.upstream_notification(upstream, message)
            else:
                log.debug("%s: a log message during no single client's call was not forwarded", upstream.name)
            return
        with self._lock:
            relays = list(self._relays.values())
        if method == "notifications/tools/list_changed":
            relays = relays[:1]  # the catalog is shared: one listing serves every client
        for relay in relays:
            relay.upstream_notification(upstream, message)

    def _owner(self, upstream: Upstream) -> Relay | None:
        """The relay of the one client the upstream is busy for, or of the only client there is."""
        callers = upstream.callers()
        with self._lock:
            if len(callers) == 1:
                return self._relays.get(next(iter(callers)))
            if not callers and len(self._relays) == 1:
                return next(iter(self._relays.values()))
        return None


class _ClientUpstreams:
    """The pool as one client's relay sees it (the :class:`~.relay.Upstreams` protocol)."""

    def __init__(self, hub: ClientHub, client: str) -> None:
        self._hub = hub
        self._client = client

    def set_client_capabilities(self, offered: dict) -> list[str]:
        return self._hub.set_client_capabilities(self._client, offered)

    def set_log_level(self, level: str) -> None:
        self._hub.set_log_level(self._client, level)

    def broadcast(self, method: str) -> None:
        self._hub.pool.broadcast(method)


class SplitPool:
    """The pool as a shared mcpzip's meta-tools see it: ``"shared": false`` servers run once per client.

    A server that keeps per-session state (a browser's tabs and cookies)
    must not carry one client's state into another's calls: each client gets
    a private :class:`~mcpzip.upstream.pool.Pool` for such servers, made by
    *make_private*, closed when the client leaves.  Everything else, listing
    included, goes to the one shared pool.
    """

    def __init__(self, pool: Pool, make_private: Callable[[], Pool]) -> None:
        self._pool = pool
        self._make_private = make_private
        self._lock = threading.Lock()  # guards _private, _setup, _capabilities and _level
        self._private: dict[str, Pool] = {}  # client -> its own instances
        self._setup: list[Callable[[Pool], None]] = []
        # What every pool is told, so that a client's pool made later is told too.
        self._capabilities: dict = {}
        self._level: str | None = None

    def for_each_pool(self, setup: Callable[[Pool], None]) -> None:
        """Run *setup* on the shared pool now and on each client's own pool when it is made."""
        with self._lock:
            self._setup.append(setup)
        setup(self._pool)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)  # what is not about calls is the shared pool's

    def call_tool(self, server: str, tool: str, arguments: dict, timeout: float | None,
                  context: CallContext | None = None) -> dict:  # fmt: skip
        return self._for(server, context).call_tool(server, tool, arguments, timeout, context)

    def _for(self, server: str, context: CallContext | None) -> Pool:
        config = self._pool.config.servers.get(server)
        if config is None or config.shared or context is None or not context.client:
            return self._pool
        with self._lock:
            private = self._private.get(context.client)
            if private is None:
                private = self._private[context.client] = self._make_private()
                for setup in self._setup:
                    setup(private)
                private.set_client_capabilities(self._capabilities)
                if self._level is not None:
                    private.set_log_level(self._level)
        return private

    def _all(self) -> list[Pool]:
        with self._lock:
            return [self._pool, *self._private.values()]

    def set_client_capabilities(self, capabilities: dict) -> list[str]:
        with self._lock:
            self._capabilities = capabilities
        return [name for pool in self._all() for name in pool.set_client_capabilities(capabilities)]

    def set_log_level(self, level: str) -> None:
        with self._lock:
            self._level = level
        for pool in self._all():
            pool.set_log_level(level)

    def broadcast(self, method: str, params: dict | None = None) -> None:
        for pool in self._all():
            pool.broadcast(method, params)

    def connections(self) -> list[Upstream]:
        return [conn for pool in self._all() for conn in pool.connections()]

    def drop(self, client: str) -> None:
        """The client left: its own instances stop."""
        with self._lock:
            private = self._private.pop(client, None)
        if private is not None:
            private.close()

    def close(self) -> None:
        with self._lock:
            private, self._private = list(self._private.values()), {}
        for pool in private:
            pool.close()
        self._pool.close()
