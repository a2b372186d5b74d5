"""mcpzip as an MCP server: JSON-RPC over stdin/stdout, both protocol eras.

The main thread reads lines and never blocks on a request: each request is
handed to a small pool of worker threads, so a slow ``execute_tool`` never
delays a ``search_tools``.  Answers may leave out of order; the writer's lock
keeps every message on a line of its own.

Threading contract — four kinds of thread meet here:

- the *reading thread* (the one calling :meth:`Server.serve_forever`) runs
  ``handle_line``, ``_accept``, ``_notification`` and, for
  :data:`QUICK_METHODS`, ``_serve``/``dispatch``; it blocks only on
  ``Server._lock`` (held briefly), the output's lock, and at the end in
  :meth:`Server.drain`;
- *worker threads* (:class:`Workers`) run ``_serve``/``dispatch`` for every
  other request and may block on anything a request waits for: an upstream,
  a first listing, the client's answer to a relayed request;
- *upstream reader threads* reach the client through the relay
  (notifications, progress, relayed requests), i.e. :meth:`Output.send`;
- the *settle thread* runs :meth:`Server.settled` once, unless a request did.

:meth:`Output.send` is called from all of them; it blocks only on the
output's lock while a line is written.

Eras are decided per request.  An ``initialize`` request opens a legacy
session; a request whose ``_meta`` names a protocol version is served
statelessly under that (modern) version, with ``resultType`` on every result.
"""

from __future__ import annotations

import _thread
import threading

try:
    from _queue import SimpleQueue  # what queue.SimpleQueue is, without the heapq that queue imports (start-up)
except ImportError:  # not CPython
    from queue import SimpleQueue

from .. import __version__
from ..base import jsonrpc, log, protocol
from ..base.config import DEFAULT_MAX_MESSAGE_BYTES
from .aggregate import Aggregator
from ..base.jsonrpc import RPCError
from .metatools import MetaTools, UnknownMetaTool
from .relay import LOG_LEVELS, Relay
from ..upstream.session import CallContext, Cancelled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Callable

SERVER_INFO = {"name": "mcpzip", "version": __version__}
MAX_WORKERS = 64
# After stdin closes, answers still owed get this long before being cancelled.
DRAIN_SECONDS = 5.0
# The three meta-tools never change; clients may cache the list this long.
TOOLS_TTL_MS = 3_600_000
# Answered on the reading thread: they never wait on anything, and the
# handshake is answered sooner without a thread hand-off per message.
QUICK_METHODS = frozenset({"initialize", "ping", "server/discover", "tools/list"})
# Background work waits for the client to be set up, but never longer than this.
SETTLE_SECONDS = 1.0


class Workers:
    """Runs submitted callables on up to *limit* threads, started on demand.

    Like ``socketserver.ThreadingMixIn`` but bounded and reusing its threads;
    ``concurrent.futures`` would cost more start-up time than it saves.
    :meth:`submit` is called from the reading thread and never blocks.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._jobs: SimpleQueue = SimpleQueue()
        self._lock = threading.Lock()  # guards _threads and _idle_threads
        self._threads = 0
        self._idle_threads = 0  # threads waiting for a job that none has been promised to

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle_threads == 0 and self._threads < self._limit
            if start:
                self._threads += 1
            else:
                self._idle_threads -= 1
        self._jobs.put(job)
        if start:
            t = threading.Thread(target=self._work, name=f"mcpzip-worker-{self._threads}")
            t.daemon = True
            t.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception as e:  # a failing job must not take its thread down
                log.error("request handler failed: %r", e)
            # An idle thread keeps nothing of its last request: its closure
            # holds the request and, through it, the answer (a result can be large).
            job = None
            with self._lock:
                self._idle_threads += 1


class _Request:
    """A request being served: its id, era and the means to cancel it."""

    __slots__ = ("id", "method", "params", "version", "context")

    def __init__(self, message: dict, version: str | None, client: str = "") -> None:
        self.id = message["id"]
        self.method: str = message["method"]
        params = message.get("params")
        self.params = params if isinstance(params, dict) else {}
        self.version = version  # a modern version, or None for legacy
        self.context = CallContext(client=client)


class Output:
    """The client's side of stdout: whole messages, one per line, from any thread."""

    def __init__(self, stdout: IO[bytes]) -> None:
        self._writer = jsonrpc.Writer(stdout)  # its lock keeps each message whole

    def send(self, message: dict) -> None:
        try:
            self._writer.write(message)
        except jsonrpc.Unencodable as e:
            # Still one answer per request: the result is replaced by an error.
            log.error("a message could not be serialised: %s", e)
            rid = message.get("id")
            if "method" not in message and jsonrpc.valid_id(rid):
                self.send(jsonrpc.error(rid, jsonrpc.INTERNAL_ERROR, "Internal error: the answer could not be serialised"))
        except (OSError, ValueError):
            log.debug("stdout is closed; dropped a message")


class Server:
    """Serves one client over a pair of binary streams until the input ends.

    Built, with its collaborators, by :func:`mcpzip.downstream.wiring.build_server`.
    """

    def __init__(self, metatools: MetaTools, relay: Relay, aggregate: Aggregator, stdin: IO[bytes] | None,
                 output: Output, on_settled: Callable[[], None] | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, client: str = "") -> None:  # fmt: skip
        """*on_settled* runs once, when the client has its tools (see :meth:`settled`).

        A line longer than *max_message_bytes* is refused, never held whole.
        *client* names the client in a shared mcpzip (its calls and kept
        results are its own); a stdio mcpzip has one client, ``""``.
        """
        self.client = client
        self.metatools = metatools
        self.max_message_bytes = max_message_bytes
        self.relay = relay
        self.aggregate = aggregate  # resources, prompts and completions of the upstreams
        self.stdin = stdin
        self.send = output.send
        self.workers = Workers(MAX_WORKERS)
        # Written on the reading thread (initialize), read there only.
        self.client_info: dict = {}
        self.legacy_version: str | None = None
        self._lock = threading.Lock()  # guards every field below
        self._answered = threading.Condition(self._lock)  # an answer was written (drain waits)
        self._inflight: dict[Any, _Request] = {}
        self._writing = 0  # answers taken out of _inflight but not yet written
        self._on_settled = on_settled
        self._tools_sent: list | None = None  # the last tools/list answer (tools_mode auto/direct, pinned)
        metatools.watch_listing(self)

    # -- the read loop ------------------------------------------------------

    def serve_forever(self) -> None:
        """Read and dispatch messages until stdin closes, then drain answers."""
        stop = threading.Event()
        if self._on_settled is not None:
            # threading.Thread.start() waits for the new thread to run, which
            # a busy machine makes the handshake pay for; this does not wait.
            _thread.start_new_thread(self._settle_later, (stop,))
        limit = self.max_message_bytes
        try:
            for line, size in jsonrpc.read_lines(self.stdin, limit):
                if size > limit:
                    log.warning("refused a message of %d bytes from the client (max_message_bytes is %d)", size, limit)
                    self.send(jsonrpc.too_long(line, size, limit))
                elif line.strip():
                    self.receive(line)
        finally:
            stop.set()
        log.debug("stdin closed")
        self.drain(DRAIN_SECONDS)

    def _settle_later(self, stop: threading.Event) -> None:
        if not stop.wait(SETTLE_SECONDS):
            self.settled()

    def settled(self) -> None:
        """Run the *on_settled* job, once.

        The job (the background refresh of every upstream) competes with the
        client's first requests for the interpreter, so it waits until the
        client has its tools: after the first ``tools/list`` answer, when a
        ``tools/call`` arrives, or after :data:`SETTLE_SECONDS`, whichever
        comes first.
        """
        with self._lock:
            job, self._on_settled = self._on_settled, None
        if job is not None:
            job()

    def receive(self, line: bytes) -> None:
        """:meth:`handle_line`, with any failure answered (if it was a request) and logged, never raised.

        One bad line must not cost the client the session: whatever goes
        wrong is this message's problem only.
        """
        try:
            self.handle_line(line)
        except Exception as e:
            log.error("handling a message failed: %r", e)
            rid = _request_id(line)
            if rid is not None:
                with self._lock:
                    owed = rid not in self._inflight
                if owed:
                    self.send(jsonrpc.error(rid, jsonrpc.INTERNAL_ERROR, f"Internal error: {type(e).__name__}"))

    def handle_line(self, line: bytes) -> None:
        try:
            message = jsonrpc.decode(line)
        except ValueError as e:
            detail = "it is nested too deeply" if "nested too deeply" in str(e) else "the line is not valid JSON"
            self.send(jsonrpc.error(None, jsonrpc.PARSE_ERROR, f"Parse error: {detail}"))
            return
        if isinstance(message, list):
            # MCP dropped JSON-RPC batches; say so instead of guessing.
            self.send(jsonrpc.error(None, jsonrpc.INVALID_REQUEST, "Invalid Request: batches are not supported"))
            return
        kind = jsonrpc.kind(message)
        if kind == "request":
            self._accept(message)
        elif kind == "notification":
            self._notification(message)
        elif kind == "response":
            self.relay.on_response(message)
        elif isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message):
            # A response is never answered, not even a malformed one (JSON-RPC 2.0 §5).
            log.debug("ignored a response from the client with an unusable id")
        else:
            rid = message.get("id") if isinstance(message, dict) and jsonrpc.valid_id(message.get("id")) else None
            self.send(jsonrpc.error(rid, jsonrpc.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message"))

    def _accept(self, message: dict) -> None:
        meta = protocol.meta_of(message.get("params"))
        version = meta.get(protocol.META_PROTOCOL_VERSION)
        if version is not None and message["method"] != "initialize":
            error = _check_modern(meta, version)
            if error is not None:
                self.send(jsonrpc.error(message["id"], error.code, error.message, error.data))
                return
            if self.legacy_version is None:
                # Stateless: what the latest request says is what the client is.
                self.relay.client_ready(meta[protocol.META_CLIENT_CAPABILITIES], legacy=False)
                level = meta.get(protocol.META_LOG_LEVEL)
                if level is not None and level != self.relay.log_level:
                    self.relay.set_level(level)
        request = _Request(message, version if message["method"] != "initialize" else None, self.client)
        with self._lock:
            if request.id in self._inflight:
                self.send(jsonrpc.error(request.id, jsonrpc.INVALID_REQUEST, "Invalid Request: id already in use"))
                return
            self._inflight[request.id] = request
        if request.method in QUICK_METHODS:
            self._serve(request)  # cannot block: a hand-off to a worker would cost more than the answer
        else:
            self.workers.submit(lambda: self._serve(request))

    def _serve(self, request: _Request) -> None:
        try:
            result = self.dispatch(request)
            reply = jsonrpc.result(request.id, self._finish(request, result))
        except Cancelled:
            reply = None  # the client withdrew it: no answer is owed
        except RPCError as e:
            reply = jsonrpc.error(request.id, e.code, e.message, e.data)
        except Exception as e:
            log.error("%s failed: %r", request.method, e)
            reply = jsonrpc.error(request.id, jsonrpc.INTERNAL_ERROR, f"Internal error: {type(e).__name__}")
        # The id is freed before the answer leaves (a client may reuse it as
        # soon as it has the answer); drain() also waits for the write.
        with self._lock:
            self._inflight.pop(request.id, None)
            cancelled = request.context.cancellation.cancelled
            self._writing += 1
        try:
            if reply is not None and not cancelled:
                self.send(reply)
        finally:
            with self._lock:
                self._writing -= 1
                self._answered.notify_all()
        if request.method == "tools/list":
            self.settled()

    def _finish(self, request: _Request, result: dict) -> dict:
        """*result* in the shape of the request's era, whatever era its upstream spoke."""
        if request.version is None:
            return _legacy_shape(result)
        result = dict(result)
        result.setdefault("resultType", "complete")
        # The client's server is mcpzip, also when an upstream's result says otherwise.
        meta = dict(result.get("_meta") or {})
        meta[protocol.META_SERVER_INFO] = SERVER_INFO
        result["_meta"] = meta
        return result

    # -- notifications --------------------------------------------------------

    def _notification(self, message: dict) -> None:
        method = message["method"]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if method == "notifications/cancelled":
            rid = params.get("requestId")
            if not jsonrpc.valid_id(rid):
                log.debug("ignored a cancellation without a usable requestId")
                return
            with self._lock:
                request = self._inflight.get(rid)
            if request is not None and request.method != "initialize":
                reason = params.get("reason")
                request.context.cancellation.cancel(str(reason) if reason else "cancelled by the client")
        elif method == "notifications/roots/list_changed":
            self.relay.roots_changed()
        elif method not in ("notifications/initialized", "notifications/progress"):
            log.debug("ignored notification %s", method)

    # -- requests ----------------------------------------------------------------

    def dispatch(self, request: _Request) -> dict:
        method, params = request.method, request.params
        if method == "initialize":
            return self._initialize(params)
        if method == "ping":
            return {}
        if method == "server/discover":
            return self._discover()
        if method == "tools/list":
            tools = self.metatools.listing()
            with self._lock:
                self._tools_sent = tools
            result: dict = {"tools": tools}
            if request.version is not None:
                result.update(ttlMs=0 if self._listing_can_change() else TOOLS_TTL_MS, cacheScope="public")
            return result
        if method == "tools/call":
            self.settled()
            return self._call_tool(request)
        if method == "logging/setLevel":
            self.relay.set_level(params.get("level"))
            return {}
        if self.aggregate.handles(method):
            return self.aggregate.request(method, params, request.version is not None, request.context)
        raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method}", method)

    def _listing_can_change(self) -> bool:
        return self.metatools.config.tools_mode != "meta" or bool(self.metatools.config.pinned)

    def listing_changed(self) -> None:
        """A server was listed: a legacy client whose tool list is now out of date is told to list again."""
        with self._lock:
            sent = self._tools_sent
        if sent is None or self.legacy_version is None or not self._listing_can_change():
            return
        now = self.metatools.listing()
        with self._lock:
            if now == self._tools_sent:
                return
            self._tools_sent = now
        self.send(jsonrpc.notification("notifications/tools/list_changed"))

    def capabilities(self, modern: bool = False) -> dict:
        caps: dict = {"tools": {"listChanged": self._listing_can_change()}, "logging": {}}
        caps.update(self.aggregate.capabilities(modern))
        return caps

    def _initialize(self, params: dict) -> dict:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise RPCError(jsonrpc.INVALID_PARAMS, "Invalid params: initialize needs a protocolVersion string")
        version = requested if requested in protocol.LEGACY_VERSIONS else protocol.LATEST_LEGACY
        caps = params.get("capabilities")
        info = params.get("clientInfo")
        self.relay.client_ready(caps if isinstance(caps, dict) else {}, legacy=True)
        self.client_info = info if isinstance(info, dict) else {}
        self.legacy_version = version
        log.info("client %s speaks %s", self.client_info.get("name", "?"), version)
        return {
            "protocolVersion": version,
            "capabilities": self.capabilities(),
            "serverInfo": SERVER_INFO,
            "instructions": self.metatools.instructions(),
        }

    def _discover(self) -> dict:
        return {
            "supportedVersions": list(protocol.MODERN_VERSIONS + protocol.LEGACY_VERSIONS),
            "capabilities": self.capabilities(modern=True),
            "instructions": self.metatools.instructions(),
            "ttlMs": 0,
            "cacheScope": "public",
        }

    def _call_tool(self, request: _Request) -> dict:
        name = request.params.get("name")
        if not isinstance(name, str):
            raise RPCError(jsonrpc.INVALID_PARAMS, "Invalid params: tools/call needs a tool name")
        arguments = request.params.get("arguments")
        context = request.context
        token = protocol.meta_of(request.params).get("progressToken")
        if token is not None and not jsonrpc.valid_id(token):
            log.debug("ignored a progressToken that is neither a string nor an integer")
        elif token is not None:
            context.on_progress = lambda params: self.send(jsonrpc.notification(
                "notifications/progress", {**params, "progressToken": token}))  # fmt: skip
        if request.version is not None:
            responses, state = request.params.get("inputResponses"), request.params.get("requestState")
            context.input_responses = responses if isinstance(responses, dict) else None
            context.request_state = state if isinstance(state, str) else None
            asked = self.relay.roots_round(context)
            if asked is not None:
                return asked  # an upstream waits for the client's roots: asked first, the call follows
            if self.relay.may_ask():
                context.run_held = self.relay.run_held
        elif self.relay.can_ask:
            # Not a closure over the context, which holds it: that cycle would keep
            # the call's answer (which may be large) until the cyclic collector runs.
            cancellation = context.cancellation
            context.ask = lambda method, params: self.relay.request_input(method, params, cancellation)
        try:
            return self.metatools.call(name, arguments, context)
        except UnknownMetaTool as e:
            raise RPCError(
                jsonrpc.INVALID_PARAMS, f"Unknown tool: {name} (this server has search_tools, describe_tool, "
                "execute_tool and the tools its tools/list names)",
            ) from e

    # -- shutting down ------------------------------------------------------------

    def drain(self, seconds: float) -> None:
        """Give requests in flight *seconds* to finish and be answered, then cancel the rest."""
        with self._lock:
            self._answered.wait_for(lambda: not self._inflight and not self._writing, seconds)
            left = list(self._inflight.values())
        for request in left:
            request.context.cancellation.cancel("mcpzip is shutting down")


def _request_id(line: bytes) -> Any:
    """The id of the request on *line*, or None when there is none to answer."""
    try:
        message = jsonrpc.decode(line)
    except Exception:
        return None
    return message["id"] if jsonrpc.kind(message) == "request" else None


def _check_modern(meta: dict, version: Any) -> RPCError | None:
    """The error a modern request's envelope deserves, or None when it is fine."""
    if not isinstance(version, str):
        return RPCError(jsonrpc.INVALID_PARAMS, f"Invalid params: {protocol.META_PROTOCOL_VERSION} must be a string")
    if version not in protocol.MODERN_VERSIONS:
        return RPCError(
            jsonrpc.UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            {"supported": list(protocol.MODERN_VERSIONS + protocol.LEGACY_VERSIONS), "requested": version},
        )
    if not isinstance(meta.get(protocol.META_CLIENT_CAPABILITIES), dict):
        return RPCError(
            jsonrpc.INVALID_PARAMS,
            f"Invalid params: params._meta is missing {protocol.META_CLIENT_CAPABILITIES}",
        )
    if protocol.META_LOG_LEVEL in meta and meta[protocol.META_LOG_LEVEL] not in LOG_LEVELS:
        return RPCError(
            jsonrpc.INVALID_PARAMS, f"Invalid params: {protocol.META_LOG_LEVEL} must be one of {', '.join(LOG_LEVELS)}"
        )
    return None


# Result fields of the modern era only (a complete result says nothing else).
_MODERN_RESULT_KEYS = ("resultType", "ttlMs", "cacheScope")


def _legacy_shape(result: dict) -> dict:
    """A modern upstream's result as a legacy client expects it: what only the modern era has, removed.

    The rest is left as the upstream sent it, in its order, so a legacy
    client sees what a direct call would have shown it.
    """
    meta = result.get("_meta")
    modern_meta = isinstance(meta, dict) and protocol.META_SERVER_INFO in meta
    if not modern_meta and not any(key in result for key in _MODERN_RESULT_KEYS):
        return result
    shaped = {k: v for k, v in result.items() if k not in _MODERN_RESULT_KEYS}
    if result.get("resultType", "complete") != "complete":
        shaped["resultType"] = result["resultType"]  # no legacy result: left for the client to see
    if modern_meta:
        rest = {k: v for k, v in meta.items() if k != protocol.META_SERVER_INFO}
        if rest:
            shaped["_meta"] = rest
        else:
            del shaped["_meta"]
    return shaped
