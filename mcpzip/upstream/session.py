"""One MCP client session with one upstream server, over any transport.

:class:`Upstream` speaks the upstream's protocol era (found by probing once,
then remembered by the pool), matches responses to requests so that many
calls can be in flight at once, enforces per-call deadlines and tells the
server when a call is abandoned.

Threading contract: :meth:`Upstream.request` and the methods built on it may
be called from any number of threads; messages from the server arrive on
the transport's thread and only ever wake waiters or invoke the callbacks
given in :class:`Handlers`.
"""

from __future__ import annotations

import itertools
import threading
import time

from .. import __version__
from ..base import jsonrpc, log, protocol
from ..base.jsonrpc import RPCError
from ..base.records import dataclass, field
from .transports.base import TransportClosed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from ..base.config import ServerConfig
    from .transports.base import Transport

CLIENT_INFO = {"name": "mcpzip", "version": __version__}
# A legacy server may ignore ``server/discover`` instead of refusing it; this
# bounds how long a silent probe can delay the fallback to ``initialize``.
DISCOVER_TIMEOUT = 5.0
# Modern errors other than "unsupported version": positive evidence of a
# modern server that will not accept this client (header mismatch, a client
# capability it requires).
HEADER_MISMATCH, MISSING_CAPABILITY = -32020, -32021
MODERN_REFUSALS = (HEADER_MISMATCH, MISSING_CAPABILITY)
LOG_LEVEL_TIMEOUT = 10.0
LISTEN_RETRY = 1.0
# Progress keeps a call alive, but never past this multiple of its timeout.
PROGRESS_MAX_FACTOR = 10
# Requests from one server (sampling, elicitation, roots) answered at once;
# each holds a thread while the client thinks, so more are refused at once.
MAX_SERVER_REQUESTS = 16


class UpstreamError(Exception):
    """A call could not be completed; the message is fit for the model."""


class CallTimeout(UpstreamError):
    pass


class NotSent(UpstreamError):
    """The connection was gone before the request left: retrying is safe."""


class Cancelled(Exception):
    """The downstream client withdrew the request."""


class Cancellation:
    """A flag a downstream request can raise to abandon its upstream call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[str], None]] = []
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def cancel(self, reason: str = "cancelled by the client") -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(reason)

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            if self.reason is None:
                self._callbacks.append(callback)
                return
        callback(self.reason)


@dataclass
class CallContext:
    """What a downstream request brings to the upstream call it causes."""

    cancellation: Cancellation = field(default_factory=Cancellation)
    # Which client asked ("" for the one client of a stdio mcpzip): kept
    # results are readable only by the client they were cut for.
    client: str = ""
    # Called with the params of each ``notifications/progress`` the upstream
    # sends for this call (its progressToken is ours, not the client's).
    on_progress: Callable[[dict], None] | None = None
    # A modern client's retry of an ``input_required`` result: passed on.
    input_responses: dict | None = None
    request_state: str | None = None
    # Asks the client for input (method, params) -> result, where the client
    # can be asked (legacy sessions); None makes ``input_required`` results
    # go back to the client as they are.
    ask: Callable[[str, dict], Any] | None = None
    # For a modern client that may be asked for input: runs the upstream call
    # (server, call, this context) so that a legacy upstream's requests
    # become ``input_required`` rounds (relay.Relay.run_held).
    run_held: Callable[[str, Callable[[CallContext], dict], CallContext], dict] | None = None


@dataclass
class Handlers:
    """Callbacks for what an upstream says on its own initiative."""

    # (upstream, request message) -> result; raise RPCError to refuse.
    on_request: Callable[[Upstream, dict], Any] | None = None
    # (upstream, notification message)
    on_notification: Callable[[Upstream, dict], None] | None = None


class _Pending:
    __slots__ = ("event", "response", "failure", "on_progress", "deadline_extended", "client")

    def __init__(self, on_progress: Callable[[dict], None] | None, client: str = "") -> None:
        self.event = threading.Event()
        self.response: dict | None = None
        self.failure: str | None = None
        self.on_progress = on_progress
        self.deadline_extended = 0.0
        self.client = client  # who asked (CallContext.client)


class Upstream:
    """A connected MCP client session; create it with :meth:`connect`."""

    def __init__(self, server: ServerConfig, transport: Transport, handlers: Handlers | None = None,
                 client_capabilities: dict | None = None) -> None:  # fmt: skip
        self.server = server
        self.name = server.name
        self.transport = transport
        self.handlers = handlers or Handlers()
        self.client_capabilities = {} if client_capabilities is None else client_capabilities
        # What a legacy server was told at its handshake: it keeps that for the session.
        self.offered: dict | None = None
        self.era: str | None = None
        self.protocol_version: str | None = None
        # The version ``initialize`` offers: the newest, unless the server listed fewer.
        self.legacy_offer = protocol.LATEST_LEGACY
        self.server_info: dict = {}
        self.instructions = ""  # what the server says about itself, if anything
        self.capabilities: dict = {}
        self.log_level: str | None = None  # the client's, passed on
        self.last_used = time.monotonic()
        self.closed_reason: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[Any, _Pending] = {}
        self._answering = 0  # the server's requests being answered
        self._refused = 0  # ... and refused, because too many were
        self._lock = threading.Lock()  # guards _pending, _answering and _refused

    # -- lifecycle --------------------------------------------------------

    def connect(self, timeout: float, era: str | None = None) -> None:
        """Start the transport and agree on an era (probing unless *era* is known).

        This follows the specification's backward-compatibility rule for
        stdio: probe with ``server/discover``; a result or a recognised modern
        error means modern, anything else (including silence) means legacy.
        """
        deadline = time.monotonic() + timeout  # for the whole exchange, not each step

        def left() -> float:
            return max(0.001, deadline - time.monotonic())

        self.transport.start(self._on_message, self._on_close)
        try:
            probe_timeout = timeout if era == protocol.MODERN else min(timeout, DISCOVER_TIMEOUT)
            if era == protocol.LEGACY or not self._discover(probe_timeout):
                try:
                    self._initialize(left())
                except RPCError as e:
                    # A probe that timed out on a slow starter may still have
                    # locked the server modern; it then refuses the handshake.
                    if e.code != jsonrpc.UNSUPPORTED_PROTOCOL_VERSION or not self._discover(left()):
                        raise
        except CallTimeout as e:
            self.close()
            raise CallTimeout(f"timed out after {timeout:g}s{self.transport.stall_hint()}") from e
        except BaseException:
            self.close()
            raise

    def _discover(self, timeout: float) -> bool:
        """Try the modern era; False means: use ``initialize`` (at :attr:`legacy_offer`).

        As the specification's stdio rule asks: a ``DiscoverResult`` or a
        modern error (-32020/-32021/-32022) identifies a modern server, which
        mcpzip then never treats as legacy unless it lists a legacy version
        mcpzip speaks; any other error, or silence, identifies a legacy server.
        """
        self.era, self.protocol_version = protocol.MODERN, protocol.LATEST_MODERN
        try:
            result = self.request("server/discover", {}, timeout, cancel_on_timeout=False)
        except RPCError as e:
            if e.code in MODERN_REFUSALS:
                # A modern server that cannot serve us as we are (a capability
                # it requires, a header it disputes): falling back would not help.
                raise UpstreamError(_refusal(e)) from e
            if e.code == jsonrpc.UNSUPPORTED_PROTOCOL_VERSION:
                supported = e.data.get("supported") if isinstance(e.data, dict) else None
                self.legacy_offer = _common_legacy(supported, e.message)
                log.debug("%s: modern versions refused; using initialize at %s", self.name, self.legacy_offer)
                return False
            log.debug("%s: server/discover refused (%s); using initialize", self.name, e.code)
            return False
        except CallTimeout:
            log.debug("%s: no answer to server/discover; using initialize", self.name)
            return False
        finally:
            self.era = None
        supported = result.get("supportedVersions") if isinstance(result, dict) else None
        if not isinstance(supported, list):
            return False  # not a DiscoverResult: a legacy server that answers anything
        mutual = [v for v in protocol.MODERN_VERSIONS if v in supported]
        if not mutual:
            # A server that speaks none of our modern versions: its legacy
            # handshake, if it offers one we speak; else there is nothing to say.
            self.legacy_offer = _common_legacy(supported, "server/discover")
            return False
        self.era, self.protocol_version = protocol.MODERN, mutual[-1]
        self.capabilities = result.get("capabilities") or {}
        self.server_info = protocol.meta_of(result).get(protocol.META_SERVER_INFO) or {}
        self.instructions = result.get("instructions") if isinstance(result.get("instructions"), str) else ""
        log.debug("%s: modern era (%s)", self.name, self.protocol_version)
        return True

    def _initialize(self, timeout: float) -> None:
        self.era = protocol.LEGACY
        offered = dict(self.client_capabilities)
        params = {"protocolVersion": self.legacy_offer, "capabilities": offered, "clientInfo": CLIENT_INFO}
        result = self.request("initialize", params, timeout)
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if version not in protocol.LEGACY_VERSIONS:
            # The legacy rule: a client that does not speak the server's choice disconnects.
            raise UpstreamError(
                f"the server answered initialize with protocol version {version!r}, which mcpzip does not speak "
                f"(mcpzip speaks {', '.join(protocol.SUPPORTED_VERSIONS)})"
            )
        self.protocol_version = version
        self.capabilities = result.get("capabilities") or {}
        self.server_info = result.get("serverInfo") or {}
        self.offered = offered
        self.instructions = result.get("instructions") if isinstance(result.get("instructions"), str) else ""
        self.notify("notifications/initialized")
        log.debug("%s: legacy era (%s)", self.name, version)
        if self.log_level:
            self.set_log_level(self.log_level)

    def offers(self, capabilities: dict) -> bool:
        """Whether the server knows the client can do *capabilities*.

        A modern server reads them from every request; a legacy one heard
        them once, at its handshake, and only a new session tells it more.
        """
        return self.era != protocol.LEGACY or self.offered == capabilities

    @property
    def alive(self) -> bool:
        return self.closed_reason is None

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def callers(self) -> set[str]:
        """The clients with a request to this server in flight (a shared mcpzip routes by them)."""
        with self._lock:
            return {p.client for p in self._pending.values()}

    def close(self) -> None:
        self._fail_all("the connection was closed")
        self.transport.close()

    def _on_close(self, reason: str) -> None:
        log.warning("%s: connection lost: %s", self.name, reason)
        self._fail_all(reason)

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            if self.closed_reason is None:
                self.closed_reason = reason
            pending, self._pending = self._pending, {}
        for p in pending.values():
            p.failure = reason
            p.event.set()

    # -- requests -----------------------------------------------------------

    def request(self, method: str, params: dict | None = None, timeout: float | None = None,
                context: CallContext | None = None, cancel_on_timeout: bool = True) -> Any:  # fmt: skip
        """Send a request and wait for its result.

        Raises :class:`RPCError` when the server answers with an error,
        :class:`CallTimeout` after *timeout* seconds (``None``: no limit),
        :class:`Cancelled` when *context* is cancelled and
        :class:`UpstreamError` when the connection fails.  A call abandoned by
        timeout or cancellation is cancelled on the server too.
        """
        if self.closed_reason is not None:
            raise NotSent(self.closed_reason)
        request_id = next(self._ids)
        pending = _Pending(context.on_progress if context else None, context.client if context else "")
        if pending.on_progress is not None:
            params = protocol.with_meta(params, {"progressToken": request_id})
        if self.era == protocol.MODERN:
            params = protocol.with_meta(params, self._modern_meta())
        with self._lock:
            self._pending[request_id] = pending
        self.last_used = time.monotonic()
        try:
            self.transport.send(jsonrpc.request(request_id, method, params))
        except TransportClosed as e:
            with self._lock:
                self._pending.pop(request_id, None)
            raise NotSent(str(e) or "the connection is closed") from e
        if context is not None:
            context.cancellation.on_cancel(lambda _reason: pending.event.set())
        try:
            self._wait(pending, timeout, context)
        except (CallTimeout, Cancelled) as e:
            self._abandon(request_id, str(e), notify=cancel_on_timeout)
            raise
        finally:
            self.last_used = time.monotonic()
        if pending.failure is not None:
            raise UpstreamError(pending.failure)
        response = pending.response or {}
        if "error" in response:
            err = response["error"] if isinstance(response["error"], dict) else {}
            raise RPCError(err.get("code", jsonrpc.INTERNAL_ERROR), str(err.get("message", "error")), err.get("data"))
        return response.get("result")

    def _wait(self, pending: _Pending, timeout: float | None, context: CallContext | None) -> None:
        start = time.monotonic()
        hard_limit = None if timeout is None else start + timeout * PROGRESS_MAX_FACTOR
        while True:
            if context is not None and context.cancellation.cancelled:
                raise Cancelled(context.cancellation.reason)
            if timeout is None:
                left = None
            else:
                # Each progress notification restarts the clock, up to a hard limit.
                deadline = max(start, pending.deadline_extended) + timeout
                if hard_limit is not None:
                    deadline = min(deadline, hard_limit)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CallTimeout(f"timed out after {timeout:g}s")
            if pending.event.wait(left):
                if pending.response is not None or pending.failure is not None:
                    return
                # Woken by progress or cancellation.  Clear, then look again:
                # a response set just before the clear must not be missed.
                pending.event.clear()
                if pending.response is not None or pending.failure is not None:
                    return

    def _abandon(self, request_id: Any, reason: str, notify: bool = True) -> None:
        with self._lock:
            self._pending.pop(request_id, None)
        if not notify:
            return
        try:
            self.notify("notifications/cancelled", {"requestId": request_id, "reason": reason})
        except UpstreamError:
            pass

    def notify(self, method: str, params: dict | None = None) -> None:
        if self.era == protocol.MODERN:
            params = protocol.with_meta(params, self._modern_meta())
        try:
            self.transport.send(jsonrpc.notification(method, params))
        except TransportClosed as e:
            raise UpstreamError(str(e) or "the connection is closed") from e

    def _modern_meta(self) -> dict:
        meta = {
            protocol.META_PROTOCOL_VERSION: self.protocol_version or protocol.LATEST_MODERN,
            protocol.META_CLIENT_INFO: CLIENT_INFO,
            protocol.META_CLIENT_CAPABILITIES: self.client_capabilities,
        }
        if self.log_level:
            meta[protocol.META_LOG_LEVEL] = self.log_level
        return meta

    def set_log_level(self, level: str) -> None:
        """Ask for log messages at *level* and above (legacy: ``logging/setLevel``)."""
        self.log_level = level
        if self.era == protocol.LEGACY and "logging" in self.capabilities:
            try:
                self.request("logging/setLevel", {"level": level}, LOG_LEVEL_TIMEOUT)
            except (UpstreamError, RPCError) as e:
                log.debug("%s: logging/setLevel failed: %s", self.name, e)
        # Modern servers get the level in every request's _meta.

    def listen(self) -> None:
        """Hear about changed lists from a modern server, for as long as it is connected.

        The modern era sends list-changed notifications only on a
        ``subscriptions/listen`` stream; legacy servers send them unasked.
        """
        wanted = {
            key: True
            for key, feature in (("toolsListChanged", "tools"), ("promptsListChanged", "prompts"),
                                 ("resourcesListChanged", "resources"))  # fmt: skip
            if isinstance(self.capabilities.get(feature), dict) and self.capabilities[feature].get("listChanged")
        }
        if self.era != protocol.MODERN or not wanted:
            return

        def run() -> None:
            while self.alive:
                try:
                    self.request("subscriptions/listen", {"notifications": wanted})
                except (UpstreamError, RPCError) as e:
                    log.debug("%s: subscriptions/listen ended: %s", self.name, e)
                    if isinstance(e, RPCError):
                        return  # not supported after all
                time.sleep(LISTEN_RETRY)  # a stream ended by the server: open it again, gently

        t = threading.Thread(target=run, name=f"mcpzip-{self.name}-listen")
        t.daemon = True
        t.start()

    # -- MCP methods ------------------------------------------------------------

    def list_tools(self, timeout: float) -> tuple[list[dict], float | None]:
        """(every tool, the ``ttlMs`` a modern server gave with it or None), following ``nextCursor`` pages within one deadline."""
        deadline = time.monotonic() + timeout
        tools: list[dict] = []
        cursor = None
        seen = set()
        ttl_ms = None
        while True:
            params = {"cursor": cursor} if cursor else {}
            result = self.request("tools/list", params, max(0.001, deadline - time.monotonic()))
            page = result.get("tools") if isinstance(result, dict) else None
            if not isinstance(page, list):
                raise UpstreamError("tools/list answered without a tools list")
            tools.extend(t for t in page if isinstance(t, dict))
            ttl = result.get("ttlMs")
            if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and 0 <= ttl < 1e15:
                ttl_ms = ttl if ttl_ms is None else min(ttl_ms, ttl)  # the whole list is as good as its shortest-lived page
            cursor = result.get("nextCursor")
            if not cursor or not isinstance(cursor, str) or cursor in seen:
                return tools, ttl_ms
            seen.add(cursor)

    def call_tool(self, name: str, arguments: dict, timeout: float | None, context: CallContext | None = None) -> dict:
        params: dict = {"name": name, "arguments": arguments}
        if context is not None and context.input_responses is not None:
            params["inputResponses"] = context.input_responses
        if context is not None and context.request_state is not None:
            params["requestState"] = context.request_state
        result = self.request("tools/call", params, timeout, context)
        if not isinstance(result, dict):
            raise UpstreamError("tools/call answered with something that is not a result object")
        return result

    # -- messages from the server ---------------------------------------------

    def _on_message(self, message: Any) -> None:
        kind = jsonrpc.kind(message)
        if kind == "response":
            with self._lock:
                pending = self._pending.pop(message["id"], None)
            if pending is not None:
                pending.response = message
                pending.event.set()
            return
        if kind == "notification":
            self._on_notification(message)
            return
        if kind == "request":
            with self._lock:
                busy = self._answering >= MAX_SERVER_REQUESTS
                if not busy:
                    self._answering += 1
            if busy:
                self._refuse_busy(message)
                return
            # Answered off the reader thread: the answer may need the client.
            t = threading.Thread(target=self._answer, args=(message,), name=f"mcpzip-{self.name}-request")
            t.daemon = True
            t.start()
            return
        log.debug("%s: ignored a message that is not JSON-RPC 2.0", self.name)

    def _on_notification(self, message: dict) -> None:
        method = message["method"]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if method == "notifications/progress":
            with self._lock:
                pending = self._pending.get(params.get("progressToken"))
            if pending is not None:
                pending.deadline_extended = time.monotonic()
                pending.event.set()  # wakes the waiter to recompute its deadline
                if pending.on_progress is not None:
                    pending.on_progress(params)
            return
        if method == "notifications/message":
            log.info("[%s] %s", self.name, params.get("data"))
        if self.handlers.on_notification is not None:
            self.handlers.on_notification(self, message)

    def _refuse_busy(self, message: dict) -> None:
        with self._lock:
            self._refused += 1
            first = self._refused == 1
        # Warned once per connection: a flood of requests must not flood the log too.
        (log.warning if first else log.debug)("%s: refused %s: %d of its requests are already waiting for the client",
                                              self.name, message["method"], MAX_SERVER_REQUESTS)  # fmt: skip
        reply = jsonrpc.error(message["id"], jsonrpc.INTERNAL_ERROR,
                              f"mcpzip answers at most {MAX_SERVER_REQUESTS} requests from one server at a time; "
                              "try again when one has been answered")  # fmt: skip
        try:
            self.transport.send(reply)
        except TransportClosed:
            pass

    def _answer(self, message: dict) -> None:
        try:
            self._answer_one(message)
        finally:
            with self._lock:
                self._answering -= 1

    def _answer_one(self, message: dict) -> None:
        method = message["method"]
        try:
            if method == "ping":
                result: Any = {}
            elif self.handlers.on_request is not None:
                result = self.handlers.on_request(self, message)
            else:
                raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"method not supported by this client: {method}")
            reply = jsonrpc.result(message["id"], result)
        except RPCError as e:
            reply = jsonrpc.error(message["id"], e.code, e.message, e.data)
        except Exception as e:
            log.error("%s: failed to answer %s: %r", self.name, method, e)
            reply = jsonrpc.error(message["id"], jsonrpc.INTERNAL_ERROR, "internal error")
        try:
            self.transport.send(reply)
        except TransportClosed:
            pass


def _common_legacy(supported: Any, source: str) -> str:
    """The newest legacy version in *supported* that mcpzip speaks; UpstreamError when none."""
    if not isinstance(supported, list):
        raise UpstreamError(
            f"the server refused protocol version {protocol.LATEST_MODERN} ({source}) without listing the versions "
            f"it speaks; mcpzip speaks {', '.join(protocol.SUPPORTED_VERSIONS)}"
        )
    common = [v for v in protocol.LEGACY_VERSIONS if v in supported]
    if not common:
        theirs = ", ".join(str(v) for v in supported) or "none"
        raise UpstreamError(
            f"the server speaks protocol versions {theirs}; mcpzip speaks {', '.join(protocol.SUPPORTED_VERSIONS)}: "
            "no version in common"
        )
    return common[-1]


def _refusal(error: RPCError) -> str:
    """What a modern server's refusal of mcpzip's request means, for the user."""
    if error.code == MISSING_CAPABILITY:
        required = error.data.get("requiredCapabilities") if isinstance(error.data, dict) else None
        names = ", ".join(sorted(required)) if isinstance(required, dict) and required else "not named"
        return f"the server requires client capabilities mcpzip does not offer ({names}): {error.message}"
    return f"the server refused mcpzip's request ({error.code}: {error.message})"
