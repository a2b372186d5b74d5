"""``mcpzip login`` and ``mcpzip logout``.

``login`` asks each server whether it accepts what mcpzip holds (no token,
or the stored one, refreshed first when expired).  A server that answers
401 gets a refresh, and only when that fails the browser flow; one line per
server says how it ended.
"""

from __future__ import annotations

import sys

from ...base import jsonrpc, log, protocol, web
from ...base.config import public_url
from .base import FOREGROUND, AuthError
from .store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    import requests

    from ...base.config import Config, ServerConfig
    from .authorizer import Authorizer

PROBE = jsonrpc.request(0, "initialize", {
    "protocolVersion": protocol.LATEST_LEGACY,
    "capabilities": {},
    "clientInfo": {"name": "mcpzip", "version": "login"},
})  # fmt: skip


def remote_servers(config: Config, names: list[str]) -> list[ServerConfig]:
    """The named servers (all remote ones when *names* is empty); raises ValueError naming a bad one."""
    if not names:
        return [s for s in config.servers.values() if s.type in ("http", "sse") and not s.headers]
    chosen = []
    for name in names:
        server = config.servers.get(name)
        if server is None:
            known = ", ".join(sorted(config.servers)) or "none"
            raise ValueError(f"no server named {name!r} in {config.path} (servers: {known})")
        if server.type not in ("http", "sse"):
            raise ValueError(f"server {name} is a {server.type} server; only http and sse servers sign in")
        chosen.append(server)
    return chosen


def probe(http: requests.Session, server: ServerConfig, authorization: str | None) -> tuple[int, str | None]:
    """(HTTP status, WWW-Authenticate) of a first request to *server*."""
    import requests

    headers = {"Accept": "text/event-stream"} if server.type == "sse" else {
        "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}  # fmt: skip
    headers.update(server.headers)
    if authorization:
        headers["Authorization"] = authorization
    try:
        if server.type == "sse":
            response = http.get(server.url, headers=headers, stream=True, timeout=web.SHORT_TIMEOUT)
        else:
            response = http.post(server.url, data=jsonrpc.encode(PROBE), headers=headers, stream=True,
                                 timeout=web.SHORT_TIMEOUT)  # fmt: skip
    except requests.RequestException as e:
        raise AuthError(f"server {server.name}: cannot reach {public_url(server.url)} ({web.describe_error(e)})") from None
    status, challenge = response.status_code, response.headers.get("WWW-Authenticate")
    session = response.headers.get("Mcp-Session-Id")
    response.close()
    if session:  # the probe opened a session: end it
        headers["Mcp-Session-Id"] = session
        try:
            http.delete(server.url, headers=headers, timeout=(5.0, 5.0))
        except requests.RequestException:
            pass
    return status, challenge


def _refused(status: int, challenge: str | None) -> bool:
    return status == 401 or (status == 403 and "insufficient_scope" in (challenge or ""))


def login_one(server: ServerConfig, authorizer: Authorizer) -> str:
    """Sign in to *server* if it needs it; the line to print; raises :class:`AuthError`."""
    if server.headers:
        return f"{server.name}: uses the headers in the config; OAuth is off for it"
    web.check_url(server.url, f"server {server.name}")
    sent = authorizer.header()
    status, challenge = probe(authorizer.http, server, sent)
    if not _refused(status, challenge):
        return f"{server.name}: already authorized" if sent else f"{server.name}: no authorization needed"
    authorizer.refused(sent, status, challenge)
    sent = authorizer.header()
    status, challenge = probe(authorizer.http, server, sent)
    if _refused(status, challenge):
        raise AuthError(f"server {server.name} still refuses the new token (HTTP {status})")
    return f"{server.name}: authorized (tokens in {authorizer.store.token_path(server.url)})"


def login(config: Config, names: list[str]) -> int:
    from . import for_server

    try:
        servers = remote_servers(config, names)
    except ValueError as e:
        print(f"mcpzip: error: {e}", file=sys.stderr)
        return 1
    if not servers:
        print("mcpzip: no http or sse servers without headers in the config; nothing to sign in to", file=sys.stderr)
        return 0
    failed = 0
    for server in servers:
        try:
            line = login_one(server, for_server(server, config.auth_dir, FOREGROUND))
        except (AuthError, web.InsecureURL) as e:
            failed += 1
            print(log.shown(f"mcpzip: error: {e}"), file=sys.stderr)
            continue
        print(line, flush=True)
    return 1 if failed else 0


def logout(config: Config, name: str) -> int:
    try:
        (server,) = remote_servers(config, [name])
    except ValueError as e:
        print(f"mcpzip: error: {e}", file=sys.stderr)
        return 1
    store = Store(config.auth_dir)
    if store.forget_token(server.url):
        print(f"{name}: signed out (tokens deleted from {store.token_path(server.url)})")
    else:
        print(f"{name}: no stored tokens")
    return 0
