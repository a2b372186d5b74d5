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
import os
import threading
import time

from ..base import jsonrpc, log
from ..base.jsonrpc import RPCError
from ..upstream.session import CallContext, Cancellation, Cancelled, Handlers, UpstreamError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from typing import Protocol

    from .metatools import MetaTools

    class Upstreams(Protocol):
        """What a client's relay tells the upstreams (the pool, or a shared mcpzip's hub)."""

        def set_client_capabilities(self, offered: dict) -> list[str]: ...
        def set_log_level(self, level: str) -> None: ...
        def broadcast(self, method: str) -> None: ...
    from ..upstream.session import Upstream

# MCP logging levels, least to most severe (syslog's).
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
# Requests an upstream may make of the client, and the client capability each needs.
CLIENT_FEATURES = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
# A person may take a while to answer an elicitation; not forever.
CLIENT_ANSWER_TIMEOUT = 600.0
# The requestState of a call mcpzip holds open for a modern client.
HELD_PREFIX = "mcpzip-held-"
# The key and requestState of mcpzip's own question to a modern client: its roots.
ROOTS_KEY = ROOTS_STATE = "mcpzip-roots"
# A burst of tools/list_changed (server-everything sends five as it starts)
# is answered by one listing this long after the first of them.
RELIST_SETTLE = 0.2
# A server's re-listing: waiting out the burst, running, or running with
# another change heard since it started (one more listing follows).
_DUE, _RUNNING, _AGAIN = "due", "running", "again"


class _ClientCall:
    __slots__ = ("event", "response")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.response: dict | None = None


class _Held:
    """An upstream call held open while a modern client answers its server's questions.

    A modern client takes no requests, so a legacy upstream's request during
    the call becomes an ``input_required`` result; the client's retry, with
    ``inputResponses`` and this call's ``requestState``, carries the answers
    back to the upstream, which never knew the call was interrupted.
    """

    __slots__ = ("state", "server", "context", "events", "replies")

    def __init__(self, state: str, server: str, context: CallContext) -> None:
        self.state = state
        self.server = server
        self.context = context  # what the upstream call runs with
        # ("ask", key, method, params) | ("done", result) | ("error", exception)
        import queue  # here, not at the top: it imports heapq, which serve's start-up does without

        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.replies: dict[str, _ClientCall] = {}


class Relay:
    def __init__(self, send: Callable[[dict], None], metatools: MetaTools,
                 other_notifications: Callable[[str, dict], dict | None] | None = None,
                 upstreams: Upstreams | None = None) -> None:  # fmt: skip
        """Messages for the client go out through *send*.

        *other_notifications* is told (server, message) of the upstream
        notifications the relay does not handle itself (resource and prompt
        changes: aggregate.py) and returns what a legacy session's client is
        to hear, if anything.
        """
        self.send = send
        self._other_notifications = other_notifications
        self.metatools = metatools
        # Where the client's capabilities and log level go: the pool itself,
        # or, when mcpzip serves several clients, what they add up to.
        self.upstreams: Upstreams = metatools.pool if upstreams is None else upstreams
        self.client_capabilities: dict = {}
        # Only a legacy session lets a server send the client requests.
        self.can_ask = False
        self.log_level: str | None = None
        self._ids = itertools.count(1)
        self._calls: dict[str, _ClientCall] = {}
        self._forwarded: dict[tuple[str, Any], Cancellation] = {}
        self._held: dict[str, _Held] = {}  # by requestState
        self._relisting: dict[str, str] = {}  # server -> _DUE | _RUNNING | _AGAIN
        # A modern client cannot be asked between its calls: its roots, once
        # it gave them, answer every upstream; until then an upstream's
        # roots/list waits for the client's next call.
        self._roots: dict | None = None
        self._roots_waiting: list[_ClientCall] = []
        self._lock = threading.Lock()  # guards _calls, _forwarded, _held, _relisting, _roots, _roots_waiting

    def handlers(self) -> Handlers:
        return Handlers(on_request=self.upstream_request, on_notification=self.upstream_notification)

    # -- the client ------------------------------------------------------------

    def client_ready(self, capabilities: dict, legacy: bool) -> None:
        """Record what the client can do; upstreams are offered the same."""
        self.client_capabilities = capabilities
        self.can_ask = legacy
        offered = {k: v for k, v in capabilities.items() if k in ("sampling", "elicitation", "roots")}
        # A legacy server told less at its handshake (the client's initialize
        # came late) is connected again and listed again: some list tools
        # only for a client that can do sampling.
        for server in self.upstreams.set_client_capabilities(offered):
            self._tools_changed(server)

    def supports(self, method: str, params: dict) -> bool:
        """Whether the client declared what *method* needs (in either era)."""
        feature = CLIENT_FEATURES.get(method)
        declared = self.client_capabilities.get(feature) if feature else None
        if not isinstance(declared, dict):
            return False
        if method == "elicitation/create" and params.get("mode") == "url":
            return isinstance(declared.get("url"), dict)
        return True

    def may_ask(self) -> bool:
        """Whether the client declared anything a server could ask it for."""
        return any(isinstance(self.client_capabilities.get(f), dict) for f in CLIENT_FEATURES.values())

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
        self.upstreams.set_log_level(level)

    def roots_changed(self) -> None:
        self.upstreams.broadcast("notifications/roots/list_changed")

    # -- upstreams --------------------------------------------------------------

    def request_input(self, method: str, params: dict, cancellation: Cancellation | None = None) -> Any:
        """Ask the client for what a server needs (sampling, elicitation, roots)."""
        if method not in CLIENT_FEATURES:
            raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method}")
        if not self.supports(method, params):
            feature = CLIENT_FEATURES[method]
            raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"the client connected to mcpzip did not declare {feature}, "
                                                     f"which {method} needs")  # fmt: skip
        if not self.can_ask:
            raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"the client connected to mcpzip speaks the modern protocol: "
                                                     f"it can be asked {method} only during a call of one of your tools")  # fmt: skip
        return self.ask(method, params, cancellation)

    def upstream_request(self, upstream: Upstream, message: dict) -> Any:
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        key = (upstream.name, message["id"])
        cancellation = Cancellation()
        with self._lock:
            self._forwarded[key] = cancellation
        method = message["method"]
        try:
            modern_roots = not self.can_ask and method == "roots/list" and self.supports(method, params)
            with self._lock:
                roots = self._roots if modern_roots else None
            if roots is not None:
                return roots
            held = None if self.can_ask else self._held_call(upstream.name)
            if held is not None and self.supports(method, params):
                result = self._ask_through(held, f"{upstream.name}-{message['id']}", method, params, cancellation)
                if modern_roots:
                    self._learn_roots(result)
                return result
            if modern_roots:
                return self._wait_for_roots(cancellation)
            return self.request_input(method, params, cancellation)
        finally:
            with self._lock:
                self._forwarded.pop(key, None)

    # -- a modern client's roots ----------------------------------------------------

    def roots_round(self, context: CallContext) -> dict | None:
        """For a modern client's ``tools/call``: ask for its roots when an upstream waits for them.

        Returns an ``input_required`` result asking ``roots/list``, or None to
        go on with the call.  The client's retry carries the answer (under
        :data:`ROOTS_STATE`): it is taken here and the call goes on.
        """
        if context.request_state == ROOTS_STATE:
            answer = (context.input_responses or {}).get(ROOTS_KEY)
            context.request_state = context.input_responses = None
            if isinstance(answer, dict):
                self._learn_roots(answer)
            return None
        with self._lock:
            wanted = bool(self._roots_waiting) and self._roots is None
        if not wanted or context.request_state is not None or not self.supports("roots/list", {}):
            return None  # (a retry of another round carries answers that must go on first)
        return {"resultType": "input_required", "inputRequests": {ROOTS_KEY: {"method": "roots/list", "params": {}}},
                "requestState": ROOTS_STATE}  # fmt: skip

    def _learn_roots(self, result: Any) -> None:
        with self._lock:
            self._roots = result
            waiting, self._roots_waiting = self._roots_waiting, []
        for slot in waiting:
            slot.response = {"result": result}
            slot.event.set()

    def _wait_for_roots(self, cancellation: Cancellation) -> Any:
        """Hold an upstream's ``roots/list`` until the modern client's next call brings its roots."""
        slot = _ClientCall()
        with self._lock:
            if self._roots is not None:
                return self._roots
            self._roots_waiting.append(slot)
        cancellation.on_cancel(lambda _reason: slot.event.set())
        if not slot.event.wait(CLIENT_ANSWER_TIMEOUT) or slot.response is None:
            with self._lock:
                if slot in self._roots_waiting:
                    self._roots_waiting.remove(slot)
            raise RPCError(jsonrpc.REQUEST_TIMEOUT, "the client made no call in time to be asked roots/list")
        return slot.response["result"]

    # -- held calls (modern clients) ----------------------------------------------

    def run_held(self, server: str, call: Callable[[CallContext], dict], context: CallContext) -> dict:
        """Run an upstream call for a modern client, pausing it for the client's input.

        Returns the call's result, or an ``input_required`` result when the
        upstream asked the client something; the client's retry (with this
        module's ``requestState``) resumes the same call.
        """
        state = context.request_state
        if state and state.startswith(HELD_PREFIX):
            with self._lock:
                held = self._held.get(state)
            if held is None:
                raise UpstreamError("its requestState is unknown or has expired; call the tool again")
            answers = context.input_responses or {}
            for key in [k for k in held.replies if k in answers]:
                slot = held.replies.pop(key)
                slot.response = {"result": answers[key]}
                slot.event.set()
        else:
            inner = CallContext(on_progress=context.on_progress, input_responses=context.input_responses,
                                request_state=context.request_state)  # fmt: skip
            # Unguessable: with several clients, only the one holding it may resume the call.
            held = _Held(f"{HELD_PREFIX}{os.urandom(16).hex()}", server, inner)
            with self._lock:
                self._held[held.state] = held

            def run() -> None:
                try:
                    held.events.put(("done", call(inner)))
                except BaseException as e:  # handed to the waiting request thread
                    held.events.put(("error", e))

            t = threading.Thread(target=run, name=f"mcpzip-{server}-held")
            t.daemon = True
            t.start()

        def withdraw(reason: str) -> None:
            held.context.cancellation.cancel(reason)
            held.events.put(("error", Cancelled(reason)))

        context.cancellation.on_cancel(withdraw)
        event = held.events.get()
        if event[0] == "ask":
            _, key, method, params = event
            return {"resultType": "input_required", "inputRequests": {key: {"method": method, "params": params}},
                    "requestState": held.state}  # fmt: skip
        with self._lock:
            self._held.pop(held.state, None)
        if event[0] == "error":
            raise event[1]
        return event[1]

    def _held_call(self, server: str) -> _Held | None:
        """The newest call held for *server*: the one its request belongs to."""
        with self._lock:
            found = [h for h in self._held.values() if h.server == server]
        return found[-1] if found else None

    def _ask_through(self, held: _Held, key: str, method: str, params: dict, cancellation: Cancellation) -> Any:
        slot = _ClientCall()
        held.replies[key] = slot
        cancellation.on_cancel(lambda _reason: slot.event.set())
        held.events.put(("ask", key, method, params))
        if not slot.event.wait(CLIENT_ANSWER_TIMEOUT):
            # The client never came back: the call it held is abandoned.
            with self._lock:
                self._held.pop(held.state, None)
            held.context.cancellation.cancel("the client did not answer in time")
            raise RPCError(jsonrpc.REQUEST_TIMEOUT, f"the client did not answer {method} in time")
        if slot.response is None:
            raise RPCError(jsonrpc.REQUEST_TIMEOUT, f"{method} was cancelled")
        return slot.response["result"]

    def upstream_notification(self, upstream: Upstream, message: dict) -> None:
        method = message["method"]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if method == "notifications/tools/list_changed":
            self._tools_changed(upstream.name)
        elif method == "notifications/message":
            self._forward_log(upstream.name, params)
        elif method == "notifications/cancelled":
            with self._lock:
                cancellation = self._forwarded.get((upstream.name, params.get("requestId")))
            if cancellation is not None:
                cancellation.cancel(str(params.get("reason") or f"cancelled by {upstream.name}"))
        elif self._other_notifications is not None:
            forward = self._other_notifications(upstream.name, message)
            if forward is not None and self.can_ask:  # only a legacy session hears of these
                self.send(forward)

    def _tools_changed(self, server: str) -> None:
        """List *server* again: once per burst of changes, and once more for changes heard during it."""
        with self._lock:
            state = self._relisting.get(server)
            if state is not None:
                if state == _RUNNING:
                    self._relisting[server] = _AGAIN
                return
            self._relisting[server] = _DUE
        t = threading.Thread(target=self._relist, args=(server,), name=f"mcpzip-{server}-relist")
        t.daemon = True
        t.start()

    def _relist(self, server: str) -> None:
        while True:
            time.sleep(RELIST_SETTLE)  # the rest of the burst arrives meanwhile
            with self._lock:
                self._relisting[server] = _RUNNING
            log.info("%s: its tool list changed; listing it again", server)
            for t in self.metatools.relist(server):
                t.join()
            with self._lock:
                if self._relisting[server] != _AGAIN:
                    del self._relisting[server]
                    return
                self._relisting[server] = _DUE

    def _forward_log(self, server: str, params: dict) -> None:
        level = params.get("level")
        if self.log_level is None or level not in LOG_LEVELS:
            return
        if LOG_LEVELS.index(level) < LOG_LEVELS.index(self.log_level):
            return
        logger = params.get("logger")
        forwarded = {"level": level, "logger": f"{server}/{logger}" if logger else server, "data": params.get("data")}
        self.send(jsonrpc.notification("notifications/message", forwarded))
