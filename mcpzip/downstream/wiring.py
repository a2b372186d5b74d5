"""The one place where mcpzip's objects are built and connected.

Each object gets its collaborators through its constructor, or through a
registration method where two of them need each other (an upstream's
messages reach the relay that needs the pool).  The graph ``serve`` runs::

    ServerCache ─┬─> Pool ──(handle_upstream_messages)──> Relay.handlers()
                 │     ├──(when_connected)──> Listings.connected, Aggregator.connected (resources on)
                 │     └──(when_authorized)─> MetaTools.relist
                 ├─> Catalog (counts_hint; on_update = MetaTools.listed -> ServerCache.record_tools)
                 └─> Listings(config, Catalog, Pool, ServerCache)
    MetaTools(config, Catalog, Pool, Results(ResultStore), Listings)
    Output(stdout) ──> Relay(send, MetaTools, other_notifications = Aggregator)
    Server(MetaTools, Relay, Aggregator, stdin, Output, on_settled = Listings.start)

Terminal commands (``list``, ``search``, ``call``) use only the top part,
:func:`open_tools`.
"""

from __future__ import annotations

import os

from ..knowledge.catalog import Catalog
from ..knowledge.servercache import ServerCache
from ..upstream.pool import Pool
from .aggregate import Aggregator
from .listings import Listings
from .metatools import MetaTools
from .relay import Relay
from .results import Results
from .resultstore import ResultStore
from .server import Output, Server

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from ..base.config import Config
    from .clients import ClientHub, SplitPool
    from .httpfront import HttpFront, SessionOutput
    from .sharing import Place


def open_tools(config: Config, auth_flow: str = "never", result_budget: int | None = None,
               split: bool = False) -> MetaTools:  # fmt: skip
    """The meta-tools over *config*'s servers (the tool cache is read on first use).

    *auth_flow* ``"background"`` lets a remote server that needs a sign-in
    start one by itself; its tools are listed once it completes.
    *result_budget* (the command line's ``--max-bytes``) cuts every result
    to that many bytes and keeps nothing to read later; None: the config's.
    *split* (a shared mcpzip) gives each client its own instance of the
    servers marked ``"shared": false``.
    """
    known = ServerCache(config.servers_cache_path, config.servers)
    known.load()
    pool: Pool | SplitPool = Pool(config, known, auth_flow=auth_flow)
    if split:
        from .clients import SplitPool  # only a shared mcpzip splits: not on the stdio serve path

        pool = SplitPool(pool, lambda: Pool(config, known, auth_flow=auth_flow))
    # Each listing is remembered with what the server's tools are about (MetaTools.listed -> ServerCache.record_tools).
    catalog = Catalog(config.servers, config.cache_path, counts_hint=known.tool_counts(),
                      on_update=lambda server, count: tools.listed(server, count))  # fmt: skip
    results = Results(ResultStore() if result_budget is None else None)
    listings = Listings(config, catalog, pool, known)
    tools = MetaTools(config, catalog, None, pool, results=results, result_budget=result_budget, listings=listings)
    # A completed sign-in makes that server's tools listable: list it.
    pool.when_authorized(tools.relist)
    return tools


def build_server(config: Config, stdin: IO[bytes], stdout: IO[bytes]) -> Server:
    """Everything ``serve`` runs for one client on *stdin*/*stdout*, connected."""
    tools = open_tools(config, auth_flow="background")
    # A server started for a call is listed again when its listing is old.
    tools.pool.when_connected(tools.listings.connected)
    output = Output(stdout)
    # Resources, prompts and completions of the upstreams.
    aggregate = Aggregator(config, tools.pool)
    if aggregate.enabled:
        tools.pool.when_connected(aggregate.connected)
    relay = Relay(output.send, tools, other_notifications=aggregate.on_upstream_notification)
    tools.pool.handle_upstream_messages(relay.handlers())
    # Once the client is set up: list the servers whose cached listing is stale.
    return Server(tools, relay, aggregate, stdin, output, on_settled=tools.listings.start,
                  max_message_bytes=config.max_message_bytes)  # fmt: skip


def build_front(config: Config, host: str, port: int, secret: str,
                place: Place | None = None) -> tuple[HttpFront, MetaTools]:  # fmt: skip
    """The shared mcpzip (``serve --http``): one set of tools, one session per client; close the tools after."""
    # Not at the top: http.server's imports would slow every stdio serve's start.
    from .clients import ClientHub
    from .httpfront import HttpFront

    tools = open_tools(config, auth_flow="background", split=True)
    split = tools.pool
    aggregate = Aggregator(config, split)
    hub = ClientHub(split, on_leave=split.drop)
    split.for_each_pool(lambda pool: _listen(pool, hub, aggregate))

    def new_session(client: str, output: SessionOutput) -> Server:
        """One client's relay and server over the shared tools."""
        relay = Relay(output.send, tools, other_notifications=aggregate.on_upstream_notification,
                      upstreams=hub.for_client(client))  # fmt: skip
        hub.join(client, relay)
        return Server(tools, relay, aggregate, None, output, max_message_bytes=config.max_message_bytes, client=client)

    def status() -> dict:
        return {"pid": os.getpid(), "servers": sorted(c.name for c in tools.pool.connections())}

    front = HttpFront(host, port, secret, new_session, hub, place, config.shared_idle_minutes,
                      config.max_message_bytes, status)  # fmt: skip
    # One client's handshake is not the moment to wait for: list the stale servers now.
    tools.pool.when_connected(tools.listings.connected)
    tools.listings.start()
    return front, tools


def _listen(pool: Pool, hub: ClientHub, aggregate: Aggregator) -> None:
    """Register a shared mcpzip's listeners with *pool* (the shared one, or a client's own)."""
    if aggregate.enabled:
        pool.when_connected(aggregate.connected)
    pool.handle_upstream_messages(hub.handlers())
