"""When servers are listed and started: only when needed, a few at a time.

A server's cached listing is *fresh* while it is younger than the ``ttlMs``
the server gave with it, else than ``refresh_hours`` (config), and the
server's config entry is unchanged.  ``serve`` starts no fresh server: the
cache answers for it.  Stale or unknown servers are listed in the
background, :data:`LIST_AT_ONCE` at a time, each on a connection that is
closed once listed unless a call took it meanwhile (``Pool.list_tools``).
A server started for a call whose listing is older than
:data:`RELIST_CONNECTED_AFTER` is listed again in the background.  After
``search_tools`` answers, the servers of its top results are started
(warm-up), so the call that follows a model turn finds them ready.

Threading contract: :meth:`Listings.start` runs on the settle thread,
:meth:`Listings.connected` on a connecting thread (a pool callback) and
:meth:`Listings.warm_up` on a worker thread; none blocks, each only starts
background threads.  The object holds no mutable state of its own.
"""

from __future__ import annotations

from ..base import log
from ..knowledge.catalog import CACHED

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Iterable

    from ..base.config import Config
    from ..knowledge.catalog import Catalog, Tool
    from ..knowledge.servercache import ServerCache
    from ..upstream.pool import Pool
    from ..upstream.session import Upstream

# Servers listed at the same time in the background: each start costs a process and its memory.
LIST_AT_ONCE = 4
# A server connected for a call is listed again when its listing is older than this.
RELIST_CONNECTED_AFTER = 3600.0
# Warm-up starts the servers of this many distinct servers among search_tools' results.
WARM_SERVERS = 2


class Listings:
    def __init__(self, config: Config, catalog: Catalog, pool: Pool, known: ServerCache) -> None:
        self.config = config
        self.catalog = catalog
        self.pool = pool
        self.known = known

    def fresh(self, server: str) -> bool:
        """Whether *server*'s cached listing can stand without starting it."""
        if not self.known.fresh(server, self.config.refresh_hours * 3600):
            return False
        # The count says whether there are tools to have; the tool cache must have them.
        return self.known.tool_counts().get(server) == 0 or self.catalog.state(server) == CACHED

    def start(self) -> list[threading.Thread]:
        """List in the background every server whose listing is stale; the fresh ones stand as cached."""
        fresh = [s for s in self.catalog.servers if self.fresh(s)]
        stale = [s for s in self.catalog.servers if s not in fresh]
        self.catalog.assume_current(fresh)
        log.info("listing %d of %d servers in the background (the others' listings are fresh)",
                 len(stale), len(self.catalog.servers))  # fmt: skip
        return self.catalog.refresh(self.pool.list_tools, stale, at_once=LIST_AT_ONCE)

    def connected(self, conn: Upstream) -> None:
        """A pool callback: a server started for a call is listed again if its listing is old."""
        if self.pool.listing_only(conn.name):
            return  # started to be listed: that listing is under way
        age = self.known.listing_age(conn.name)
        if age is None or age > RELIST_CONNECTED_AFTER:
            self.catalog.refresh(self.pool.list_tools, [conn.name])

    def warm_up(self, tools: Iterable[Tool]) -> list[str]:
        """Start the first :data:`WARM_SERVERS` distinct servers of *tools* that are not running; returns them."""
        if not self.config.warm_up:
            return []
        servers: list[str] = []
        for tool in tools:
            if tool.server not in servers:
                servers.append(tool.server)
            if len(servers) == WARM_SERVERS:
                break
        started = [s for s in servers if not self.pool.connected(s) and self.pool.may_start(s)]
        for server in started:
            log.info("%s: warming up (a search found its tools)", server)
            self.pool.warm(server)
        return started
