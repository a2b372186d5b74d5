"""A remote upstream over Streamable HTTP.

Each message is POSTed to the server URL; the answer is a JSON body or a
server-sent-event stream that may carry notifications and server requests
before the response.  The transport keeps the ``Mcp-Session-Id`` the server
assigns, sends ``MCP-Protocol-Version`` once a legacy session is initialized
(and, for modern requests, the version, ``Mcp-Method`` and ``Mcp-Name`` of
each request), opens the standalone GET stream where the server offers one,
resumes a response stream that ends early (``Last-Event-ID``, after the
server's ``retry`` delay), and deletes the session on close.

When the server refuses ``initialize`` with 400, 404 or 405 and no modern
error, it is a legacy HTTP+SSE server: the transport hands over to
:class:`~.sse.SseTransport` and remembers that for the URL.

The work is split three ways, as ``sseclient-py`` splits its own:
:class:`_Exchange` owns one request from POST to answer;
:class:`~.remote.EventStream` reads a stream of events (resumption, the
server's ``retry``, the message size limit); :class:`HttpTransport` keeps
what is left — the session and the headers.

Threading contract: ``send`` may be called from any thread.  Each request
is POSTed on a thread of its own, so a slow answer never holds up another;
``send`` returns once the server has accepted the request (or after
:data:`ACCEPT_WAIT`), and raises :class:`TransportClosed` when it was refused
before being processed (unreachable, needs authorization, session gone), so
the caller may retry.  Messages are delivered from those threads and from
the standalone stream's thread.  ``close`` may be called from any thread,
any number of times.
"""

from __future__ import annotations

import base64
import json
import re
import threading

from .. import auth
from ...base import jsonrpc, log, protocol, web
from ...base.config import DEFAULT_MAX_MESSAGE_BYTES
from .base import Transport, TransportClosed
from .remote import STREAM_TIMEOUT, EventStream, RemoteTransport, too_large_answer, too_large_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    import requests

    from ...base.config import ServerConfig
    from .base import OnClose, OnMessage

ACCEPT = "application/json, text/event-stream"
# How long ``send`` waits to learn whether the server took a request.
ACCEPT_WAIT = 5.0
MAX_RESUMES = 5
# How long close() waits for the standing stream's thread to end, and for
# POSTs on a session the server forgot to be answered.
LISTENER_JOIN = 2.0
SENDING_WAIT = 2.0
# The most of an HTTP error's body that is read (for its JSON-RPC error).
ERROR_BODY_BYTES = 65536
MODERN_ERRORS = (-32020, -32021, -32022)
NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_HEADER_SAFE = re.compile(r"^[\x20-\x7e]*$")
# How servers word a 400 for a session they do not know (after a restart).
_SESSION_UNKNOWN = re.compile(r"session.{0,20}\b(not found|unknown|invalid|expired|no longer)|"
                              r"(no valid|unknown|invalid|expired) session", re.IGNORECASE)  # fmt: skip

_sse_urls: set[str] = set()  # servers found to speak the legacy HTTP+SSE transport


def header_value(value: str) -> str:
    """A body value mirrored into a header, base64-wrapped when it would not survive as is."""
    if _HEADER_SAFE.match(value) and value == value.strip() and not value.startswith("=?base64?"):
        return value
    return "=?base64?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


class _Exchange:
    """One request from POST to answer.

    Threading contract: made by the thread that calls ``send``, which then
    waits on :attr:`accepted` and calls :meth:`returned`; run on its own
    POST thread; :meth:`cancel` may come from any thread.  ``_lock`` guards
    the fields below it; :attr:`stream` is the response stream, read by the
    POST thread only and resumed when it breaks.
    """

    def __init__(self, message: dict, limit: int) -> None:
        self.message = message
        self.id = message["id"]
        self.accepted = threading.Event()  # send() may return: accepted, refused, or handed over
        self.stream = EventStream(limit)
        self._lock = threading.Lock()
        self._returned = False  # send() has returned: a refusal must become an error answer
        self._refusal: TransportClosed | None = None
        self._answered = False
        self._cancelled = False

    def refuse(self, error: TransportClosed) -> bool:
        """Hand *error* to ``send`` to raise; False when ``send`` has returned already."""
        with self._lock:
            if self._returned:
                return False
            self._refusal = error
        self.accepted.set()
        return True

    def returned(self) -> TransportClosed | None:
        """``send`` returns now; the refusal it must raise, if any."""
        with self._lock:
            self._returned = True
            return self._refusal

    def claim_answer(self) -> bool:
        """True once: for the one answer this request gets (none after cancelling)."""
        with self._lock:
            if self._answered or self._cancelled:
                return False
            self._answered = True
            return True

    @property
    def finished(self) -> bool:
        with self._lock:
            return self._answered or self._cancelled

    def cancel(self) -> None:
        """The caller gave up: stop reading (closing the stream is the modern cancel)."""
        with self._lock:
            self._cancelled = True
        self.stream.stop()


class HttpTransport(RemoteTransport):
    """Streamable HTTP; *fallback* makes the transport to hand over to for a legacy HTTP+SSE server."""

    def __init__(self, server: ServerConfig, auth_dir: str | None = None, auth_flow: str = auth.NEVER,
                 on_authorized: Any = None, fallback: Callable[[], Transport] | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:  # fmt: skip
        super().__init__(server, auth_dir, auth_flow, on_authorized, max_message_bytes)
        self._fallback = fallback
        self._on_message: OnMessage | None = None
        self._on_close: OnClose | None = None
        self._listen_stream = EventStream(max_message_bytes)  # the standing GET stream
        self._lock = threading.Lock()
        # Guarded by _lock: the session, and everything close() must reach.
        self._session_id: str | None = None
        self._protocol_version: str | None = None  # a legacy session's, sent on every request
        self._exchanges: dict[Any, _Exchange] = {}
        self._closed = False
        self._ended = False  # the server forgot the session (on_close is told once: _gone_reported)
        self._listener: threading.Thread | None = None
        self._delegate: Transport | None = None  # the legacy HTTP+SSE transport, once handed over
        self._sending = 0  # POSTs whose answer has not begun: they may still reach the server
        self._all_sent = threading.Condition(self._lock)  # notified when _sending drops to 0
        # Set once on_close has been told the session is gone: a request refused
        # for that reason waits for it, so that the caller's retry finds the
        # session closed and starts a new one instead of trying this one again.
        self._gone_reported = threading.Event()

    # -- contract ---------------------------------------------------------------

    def start(self, on_message: OnMessage, on_close: OnClose) -> None:
        self._open()
        self._on_message, self._on_close = on_message, on_close
        if self.url in _sse_urls:
            self._use_sse()

    def send(self, message: dict) -> None:
        with self._lock:
            delegate = self._delegate
        if delegate is not None:
            delegate.send(message)
            return
        self._check_usable()
        if "method" in message and "id" in message:
            self._send_request(message)
            return
        method = message.get("method")
        if method == "notifications/cancelled":
            params = message.get("params") or {}
            self._cancel(params.get("requestId"))
            if _modern_version(message) is not None:
                return  # closing the response stream is the modern cancel
        response = self._post(message, stream=True, timeout=web.SHORT_TIMEOUT)
        status = response.status_code
        _json_body(response)  # read (a little at most) so that the connection is reused
        if status >= 400:
            log.debug("%s: the server answered HTTP %s to %s", self.name, status, method or "a response")
        elif method == "notifications/initialized":
            self._start_listening()

    def close(self) -> None:
        """Shut down in named steps; a second call (from any thread) does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # step 1: no new request, stream or listener from now on
            exchanges = list(self._exchanges.values())
            delegate, session_id = self._delegate, self._session_id
        self._stop_streams(exchanges)  # step 2
        if delegate is not None:
            delegate.close()
        self._end_session(session_id)  # step 3
        self._wait_sent()  # step 4
        self._join_listener()  # step 5
        if self._http is not None:  # step 6
            self._http.close()

    def _stop_streams(self, exchanges: list[_Exchange]) -> None:
        """Abort every stream being read; one its reader is opening right now is closed when it arrives."""
        self._listen_stream.stop()
        for exchange in exchanges:
            exchange.stream.stop()

    def _end_session(self, session_id: str | None) -> None:
        if not session_id or self._http is None:
            return
        try:
            headers = {"Accept": ACCEPT, **self.server.headers, "Mcp-Session-Id": session_id}
            headers.update(self._headers_auth())
            self._http.delete(self.url, headers=headers, timeout=(5.0, 5.0), stream=True).close()
        except Exception as e:  # the session dies with the server's timeout anyway
            log.debug("%s: DELETE of the session failed: %s", self.name, type(e).__name__)

    def _wait_sent(self) -> None:
        """After the server forgot the session, wait (bounded) until no POST on it can still arrive.

        The pool closes a dead connection before starting the next one, so no
        request carries the old session id once the new session has begun.
        """
        with self._lock:
            if self._ended:
                self._all_sent.wait_for(lambda: self._sending == 0, timeout=SENDING_WAIT)

    def _join_listener(self) -> None:
        with self._lock:
            listener = self._listener
        if listener is not None and listener is not threading.current_thread():
            listener.join(timeout=LISTENER_JOIN)

    # -- headers --------------------------------------------------------------------

    def _check_usable(self) -> None:
        """Raise :class:`TransportClosed` once the transport is closed or its session gone."""
        with self._lock:
            closed, ended = self._closed, self._ended
        if ended and not closed:
            self._gone_reported.wait(ACCEPT_WAIT)  # see _session_gone
        if closed or ended:
            raise TransportClosed("the connection is closed")

    def _base_headers(self, message: dict | None, accept: str, sending: bool = False) -> dict:
        """Headers for a request on this session; :class:`TransportClosed` once it is closed or gone.

        *sending*: count the request in ``_sending`` (the caller uncounts it).
        """
        with self._lock:
            usable = not (self._closed or self._ended)
            if usable:
                session_id, protocol_version = self._session_id, self._protocol_version
                self._sending += sending
        if not usable:
            self._check_usable()  # raises, once a gone session has been reported
            raise TransportClosed("the connection is closed")
        headers = {"Accept": accept}
        if message is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self.server.headers)
        if session_id:
            headers["Mcp-Session-Id"] = session_id
        version = _modern_version(message) if message is not None else None
        if version is not None:
            method = message.get("method") if message else None
            headers["MCP-Protocol-Version"] = version
            if isinstance(method, str):
                headers["Mcp-Method"] = method
                key = NAME_PARAMS.get(method)
                value = (message.get("params") or {}).get(key) if key else None
                if isinstance(value, str):
                    headers["Mcp-Name"] = header_value(value)
        elif protocol_version:
            headers["MCP-Protocol-Version"] = protocol_version
        return headers

    # -- the session --------------------------------------------------------------------

    def _post(self, message: dict, stream: bool, timeout: Any) -> requests.Response:
        headers = self._base_headers(message, ACCEPT, sending=True)
        try:
            response = self._send_authorized("POST", self.url, headers, data=jsonrpc.encode(message),
                                             stream=stream, timeout=timeout)  # fmt: skip
        finally:
            with self._lock:
                self._sending -= 1
                if not self._sending:
                    self._all_sent.notify_all()
        sid = response.headers.get("Mcp-Session-Id")
        if sid and message.get("method") == "initialize":
            with self._lock:
                self._session_id = self._session_id or sid
        if "Mcp-Session-Id" in headers and _session_unknown(response):
            self._session_gone(response.status_code)
            raise TransportClosed(f"the server ended the session (HTTP {response.status_code})")
        log.debug("%s: POST %s -> HTTP %s", self.name, message.get("method") or "response", response.status_code)
        return response

    def _session_gone(self, status: int) -> None:
        """The server forgot the session: end it once, and return only once on_close has been told."""
        with self._lock:
            closed, first = self._closed, not self._ended
            self._ended = True
            self._session_id = None  # gone: nothing to DELETE
        if closed:
            return  # closed on purpose: nobody to tell
        if not first:
            self._gone_reported.wait(ACCEPT_WAIT)  # another thread is telling on_close
            return
        # A restarted server: the pool starts a new session on the next call.
        log.info("%s: the server no longer knows this session (HTTP %s); a new one starts on the next request",
                 self.name, status)  # fmt: skip
        self._listen_stream.stop()
        try:
            if self._on_close is not None:
                self._on_close("the server ended the session")
        finally:
            self._gone_reported.set()

    def _note_version(self, message: dict) -> None:
        version = message["result"].get("protocolVersion") if isinstance(message.get("result"), dict) else None
        if isinstance(version, str) and version in protocol.LEGACY_VERSIONS:
            with self._lock:
                self._protocol_version = version

    # -- one exchange -----------------------------------------------------------------------

    def _send_request(self, message: dict) -> None:
        exchange = _Exchange(message, self.max_message_bytes)
        self._check_usable()
        with self._lock:
            self._exchanges[exchange.id] = exchange
        t = threading.Thread(target=self._run_exchange, args=(exchange,), name=f"mcpzip-{self.name}-post")
        t.daemon = True
        t.start()
        exchange.accepted.wait(ACCEPT_WAIT)
        refusal = exchange.returned()
        if refusal is not None:
            raise refusal

    def _run_exchange(self, exchange: _Exchange) -> None:
        try:
            try:
                response = self._post(exchange.message, stream=True, timeout=STREAM_TIMEOUT)
            except TransportClosed as e:
                if not exchange.refuse(e):  # send() has returned: answer instead
                    self._answer_error(exchange, str(e))
                return
            handed_over = response.status_code >= 400 and self._try_sse_fallback(exchange, response)
            exchange.accepted.set()
            if not handed_over:
                self._consume(exchange, response)
        except Exception as e:  # never let a reader thread die silently
            log.debug("%s: exchange failed: %r", self.name, e)
            self._answer_error(exchange, f"the exchange with the server failed ({type(e).__name__})")
        finally:
            with self._lock:
                self._exchanges.pop(exchange.id, None)

    def _answer_error(self, exchange: _Exchange, text: str, code: int = jsonrpc.INTERNAL_ERROR, data: Any = None) -> None:
        with self._lock:
            closed = self._closed  # the session fails every call itself
        if not closed and exchange.claim_answer():
            self._emit(jsonrpc.error(exchange.id, code, text, data))

    def _deliver(self, message: Any, exchange: _Exchange | None = None) -> None:
        if exchange is not None and _is_response_to(message, exchange.id):
            if not exchange.claim_answer():
                return  # answered already, or cancelled: one answer per request
            if exchange.message.get("method") == "initialize":
                self._note_version(message)
        self._emit(message)

    def _emit(self, message: Any) -> None:
        if self._on_message is not None:
            self._on_message(message)

    def _consume(self, exchange: _Exchange, response: requests.Response) -> None:
        status = response.status_code
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if status >= 400:
            body = _json_body(response)
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and isinstance(error.get("code"), int):
                # A JSON-RPC error in an HTTP error (a modern server's 400s, for
                # instance): answer the request with it, under its own id.
                self._answer_error(exchange, str(error.get("message") or f"HTTP {status}"), error["code"], error.get("data"))
            else:
                self._answer_error(exchange, f"the server answered HTTP {status}")
            return
        if kind == "text/event-stream":
            self._read_stream(exchange, response)
            return
        if status == 202 or kind != "application/json":
            response.close()
            if status != 202:
                self._answer_error(exchange, f"the server answered with unexpected content ({kind or 'none'})")
            return  # 202: the answer will come on the standalone stream
        try:
            body = _parse(web.read_body(response, self.max_message_bytes))
        except web.MessageTooLarge as e:
            self._answer_error(exchange, too_large_text(e, "answer"))
            return
        for message in body if isinstance(body, list) else [body]:
            if isinstance(message, dict):
                self._deliver(message, exchange)
        if not exchange.finished:
            self._answer_error(exchange, "the server's answer is not a JSON-RPC response")

    def _read_stream(self, exchange: _Exchange, response: requests.Response) -> None:
        """Read the response stream until the answer, resuming it (``Last-Event-ID``) when it breaks."""
        stream = exchange.stream
        resumes = 0
        while stream.attach(response):
            self._pump(stream, response, exchange)
            if exchange.finished or stream.stopped:
                return
            if stream.last_id is None or resumes >= MAX_RESUMES:
                self._answer_error(exchange, "the server closed the response stream without answering")
                return
            resumes += 1
            if stream.wait_retry():  # the delay the server asked for; stopped meanwhile
                return
            try:
                response = self._get_stream(stream.last_id)
            except TransportClosed as e:
                self._answer_error(exchange, f"could not resume the response stream: {e}")
                return
            if response is None:
                self._answer_error(exchange, "the server closed the response stream and does not allow resuming it")
                return

    def _pump(self, stream: EventStream, response: requests.Response, exchange: _Exchange | None) -> None:
        """Deliver the events of *response* until it ends (or, for an exchange, until answered)."""
        events = stream.events(response)
        try:
            for event in events:
                if isinstance(event, web.MessageTooLarge):
                    self._drop(event, exchange)
                else:
                    for item in self._event_messages(event):
                        self._deliver(item, exchange)
                if exchange is not None and exchange.finished:
                    return
        except Exception as e:  # the connection broke, or close() aborted it
            if not stream.stopped:
                log.debug("%s: event stream ended: %s", self.name, type(e).__name__)
        finally:
            events.close()

    def _drop(self, error: web.MessageTooLarge, exchange: _Exchange | None) -> None:
        """A message over the limit: an error for the call it belonged to; the stream goes on."""
        answer = too_large_answer(error, "answer")
        if exchange is not None and (answer is None or answer["id"] == exchange.id):
            self._answer_error(exchange, too_large_text(error, "answer"))
        elif answer is not None:
            self._emit(answer)
        else:
            log.warning("%s: dropped a message from the server larger than max_message_bytes (%d bytes)",
                        self.name, error.size)  # fmt: skip

    def _cancel(self, request_id: Any) -> None:
        with self._lock:
            exchange = self._exchanges.get(request_id)
        if exchange is not None:
            exchange.cancel()

    # -- the standalone GET stream ----------------------------------------------------------

    def _get_stream(self, last_event_id: str | None = None) -> requests.Response | None:
        """GET the server's event stream; None when it offers none."""
        headers = self._base_headers(None, accept="text/event-stream")
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = self._send_authorized("GET", self.url, headers, stream=True, timeout=STREAM_TIMEOUT)
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code != 200 or kind != "text/event-stream":
            log.debug("%s: GET stream -> HTTP %s (%s)", self.name, response.status_code, kind or "no content type")
            if "Mcp-Session-Id" in headers and _session_unknown(response):
                self._session_gone(response.status_code)
            response.close()
            return None
        return response

    def _start_listening(self) -> None:
        with self._lock:
            if self._listener is not None or self._closed:
                return
            self._listener = threading.Thread(target=self._listen, name=f"mcpzip-{self.name}-listen")
            self._listener.daemon = True
        self._listener.start()

    def _listen(self) -> None:
        """Receive server-initiated messages; reconnect after the server's ``retry`` delay."""
        stream = self._listen_stream
        failures = 0
        while not stream.stopped:
            try:
                response = self._get_stream(stream.last_id)
            except TransportClosed as e:
                failures += 1
                log.debug("%s: standalone stream unavailable: %s", self.name, e)
                if failures > MAX_RESUMES or stream.wait_retry(2**failures):
                    return
                continue
            if response is None or not stream.attach(response):
                return  # no standalone stream (405), or closed while it was being opened
            failures = 0
            self._pump(stream, response, None)
            if stream.wait_retry():
                return

    # -- legacy HTTP+SSE fallback ---------------------------------------------------------------

    def _try_sse_fallback(self, exchange: _Exchange, response: requests.Response) -> bool:
        with self._lock:
            has_session = self._session_id is not None
        if exchange.message.get("method") != "initialize" or has_session:
            return False
        if response.status_code not in (400, 404, 405):
            return False
        body = _json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("code") in MODERN_ERRORS:
            return False
        log.debug("%s: initialize answered HTTP %s; trying the legacy HTTP+SSE transport", self.name, response.status_code)
        try:
            delegate = self._use_sse()
        except TransportClosed as e:
            log.debug("%s: not an HTTP+SSE server either: %s", self.name, e)
            return False
        _sse_urls.add(self.url)
        try:
            delegate.send(exchange.message)
        except TransportClosed as e:
            self._answer_error(exchange, str(e))
        return True

    def _use_sse(self) -> Transport:
        if self._fallback is None:
            raise TransportClosed("the server does not speak Streamable HTTP")
        delegate = self._fallback()
        delegate.start(self._on_message or (lambda m: None), self._on_close or (lambda r: None))
        with self._lock:
            closed = self._closed
            if not closed:
                self._delegate = delegate
        if closed:  # close() ran meanwhile and could not reach it
            delegate.close()
            raise TransportClosed("the connection is closed")
        return delegate


def _is_response_to(message: Any, request_id: Any) -> bool:
    return isinstance(message, dict) and message.get("id") == request_id and ("result" in message or "error" in message)


def _modern_version(message: dict | None) -> str | None:
    if not isinstance(message, dict):
        return None
    version = protocol.meta_of(message.get("params")).get(protocol.META_PROTOCOL_VERSION)
    return version if isinstance(version, str) else None


def _session_unknown(response: requests.Response) -> bool:
    """Whether *response* says the session it was sent on no longer exists (a restarted server).

    The specification's answer is 404; servers built on the TypeScript SDK
    answer 400 "Bad Request: No valid session ID provided" instead.  The
    body is read (and the response closed) only for those two statuses.
    """
    status = response.status_code
    if status == 404:
        response.close()
        return True
    if status != 400:
        return False
    body = _json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    text = str(error.get("message") or "") if isinstance(error, dict) else ""
    return _SESSION_UNKNOWN.search(text) is not None


def _json_body(response: requests.Response) -> Any:
    """The JSON of a short body (an HTTP error's, a notification's), or None; read once, then remembered."""
    if not hasattr(response, "_mcpzip_json"):
        try:
            body = _parse(web.read_body(response, ERROR_BODY_BYTES))
        except Exception:  # too large, or the connection broke: no usable body
            body = None
        response._mcpzip_json = body  # type: ignore[attr-defined]
    return response._mcpzip_json  # type: ignore[attr-defined]


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None
