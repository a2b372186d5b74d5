"""Ways of carrying JSON-RPC messages to an upstream server.

:mod:`.base` states the contract every transport keeps; :func:`create` picks
the transport for a server.  ``http`` and ``sse`` pull in third-party
libraries, so they are imported only when a server of that type is used.
"""

from __future__ import annotations

from .base import Transport, TransportClosed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ...base.config import ServerConfig

__all__ = ["Transport", "TransportClosed", "create"]


def create(server: ServerConfig, **options: Any) -> Transport:
    """A new, unstarted transport for *server*."""
    limit = options.pop("max_message_bytes", None)
    if server.type == "stdio":
        from .stdio import StdioTransport

        return StdioTransport(server, **({"max_message_bytes": limit} if limit else {}))
    if limit:
        options["max_message_bytes"] = limit  # the remote transports take the rest of the options too
    if server.type == "http":
        from .http import HttpTransport

        # A server that refuses Streamable HTTP may speak the legacy HTTP+SSE
        # transport; the choice is made here so that neither module imports the other.
        return HttpTransport(server, fallback=lambda: _sse(server, options), **options)
    if server.type == "sse":
        return _sse(server, options)
    raise ValueError(f"unknown transport type {server.type!r}")


def _sse(server: ServerConfig, options: dict) -> Transport:
    from .sse import SseTransport

    return SseTransport(server, **options)
