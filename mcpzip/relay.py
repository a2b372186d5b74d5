"""What upstreams say on their own initiative, relayed to the client and back.

Upstreams send notifications (progress, log messages, changed tool lists,
cancellations) and, in the legacy era, requests for the client
(``sampling/createMessage``, ``elicitation/create``, ``roots/list``).  The
:class:`Relay` decides what reaches the client and maps ids both ways, so an
upstream's request id never collides with the client's or another
upstream's.  It answers locally whatever the client cannot take.

Threading contract: every method may be called from any thread; requests
to the client block their caller (an upstream's request thread) until the
client answers, the upstream withdraws the request, or the session ends.
"""

from __future__ import annotations

import itertools
import threading

from . import jsonrpc, log
from .jsonrpc import RPCError
from .upstream import Cancellation, Handlers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from .metatools import MetaTools
    from .upstream import Upstream

# MCP logging levels, least to most severe (syslog's).
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
# Requests an upstream may make of the client, and the client capability each needs.
CLIENT_FEATURES = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
# A person may take a while to answer an elicitation; not forever.
CLIENT_ANSWER_TIMEOUT = 600.0


class _ClientCall:
    __slots__ = ("event", "response")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.response: dict | None = None


class Relay:
    def __init__(self, send: Callable[[dict], None], metatools: MetaTools) -> None:
        self.send = send
        self.metatools = metatools
        self.client_capabilities: dict = {}
        # Only a legacy session lets a server send the client requests.
        self.can_ask = False
        self.log_level: str | None = None
        self._ids = itertools.count(1)
        self._calls: dict[str, _ClientCall] = {}
        self._forwarded: dict[tuple[str, Any], Cancellation] = {}
        self._lock = threading.Lock()
        # Told of the upstream notifications the relay does not handle itself
        # (resource and prompt changes: aggregate.py).
        self.on_other_notification: Callable[[Upstream, dict], None] | None = None

    def handlers(self) -> Handlers:
        return Handlers(on_request=self.upstream_request, on_notification=self.upstream_notification)

    # -- the client ------------------------------------------------------------

    def client_ready(self, capabilities: dict, legacy: bool) -> None:
        """Record what the client can do; upstreams are offered the same."""
        self.client_capabilities = capabilities
        self.can_ask = legacy
        offered = {k: v for k, v in capabilities.items() if k in ("sampling", "elicitation", "roots")}
        self.metatools.pool.set_client_capabilities(offered)

    def supports(self, method: str, params: dict) -> bool:
        feature = CLIENT_FEATURES.get(method)
        declared = self.client_capabilities.get(feature) if feature else None
        if not self.can_ask or not isinstance(declared, dict):
            return False
        if method == "elicitation/create" and params.get("mode") == "url":
            return isinstance(declared.get("url"), dict)
        return True

    def ask(self, method: str, params: dict, cancellation: Cancellation | None = None) -> Any:
        """Send the client a request and wait for its result (raises RPCError)."""
        rid = f"mcpzip-{next(self._ids)}"
        call = _ClientCall()
        with self._lock:
            self._calls[rid] = call
        self.send(jsonrpc.request(rid, method, params))

        def withdraw(reason: str) -> None:
            self.send(jsonrpc.notification("notifications/cancelled", {"requestId": rid, "reason": reason}))
            call.event.set()

        if cancellation is not None:
            cancellation.on_cancel(withdraw)
        try:
            if not call.event.wait(CLIENT_ANSWER_TIMEOUT):
                withdraw("no answer in time")
                raise RPCError(jsonrpc.REQUEST_TIMEOUT, f"the client did not answer {method} in time")
        finally:
            with self._lock:
                self._calls.pop(rid, None)
        response = call.response
        if response is None:
            raise RPCError(jsonrpc.REQUEST_TIMEOUT, f"{method} was cancelled")
        if "error" in response:
            err = response["error"] if isinstance(response["error"], dict) else {}
            raise RPCError(err.get("code", jsonrpc.INTERNAL_ERROR), str(err.get("message", "error")), err.get("data"))
        return response.get("result")

    def on_response(self, message: dict) -> None:
        """A response from the client to one of our requests."""
        with self._lock:
            call = self._calls.get(message.get("id"))
        if call is None:
            log.debug("a response from the client matched no request")
            return
        call.response = message
        call.event.set()

    def set_level(self, level: Any) -> None:
        if level not in LOG_LEVELS:
            raise RPCError(jsonrpc.INVALID_PARAMS, f"Invalid params: level must be one of {', '.join(LOG_LEVELS)}")
        self.log_level = level
        self.metatools.pool.set_log_level(level)

    def roots_changed(self) -> None:
        self.metatools.pool.broadcast("notifications/roots/list_changed")

    # -- upstreams --------------------------------------------------------------

    def request_input(self, method: str, params: dict, cancellation: Cancellation | None = None) -> Any:
        """Ask the client for what a server needs (sampling, elicitation, roots)."""
        if method not in CLIENT_FEATURES:
            raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method}")
        if not self.supports(method, params):
            raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"the client connected to mcpzip does not support {method}")
        return self.ask(method, params, cancellation)

    def upstream_request(self, upstream: Upstream, message: dict) -> Any:
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        key = (upstream.name, message["id"])
        cancellation = Cancellation()
        with self._lock:
            self._forwarded[key] = cancellation
        try:
            return self.request_input(message["method"], params, cancellation)
        finally:
            with self._lock:
                self._forwarded.pop(key, None)

    def upstream_notification(self, upstream: Upstream, message: dict) -> None:
        method = message["method"]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if method == "notifications/tools/list_changed":
            log.info("%s: its tool list changed; listing it again", upstream.name)
            self.metatools.relist(upstream.name)
        elif method == "notifications/message":
            self._forward_log(upstream.name, params)
        elif method == "notifications/cancelled":
            with self._lock:
                cancellation = self._forwarded.get((upstream.name, params.get("requestId")))
            if cancellation is not None:
                cancellation.cancel(str(params.get("reason") or f"cancelled by {upstream.name}"))
        elif self.on_other_notification is not None:
            self.on_other_notification(upstream, message)

    def _forward_log(self, server: str, params: dict) -> None:
        level = params.get("level")
        if self.log_level is None or level not in LOG_LEVELS:
            return
        if LOG_LEVELS.index(level) < LOG_LEVELS.index(self.log_level):
            return
        logger = params.get("logger")
        forwarded = {"level": level, "logger": f"{server}/{logger}" if logger else server, "data": params.get("data")}
        self.send(jsonrpc.notification("notifications/message", forwarded))
