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

Threading contract: ``send`` may be called from any thread.  Each request
is POSTed on a thread of its own, so a slow answer never holds up another;
``send`` returns once the server has accepted the request (or after
:data:`ACCEPT_WAIT`), and raises :class:`TransportClosed` when it was refused
before being processed (unreachable, needs authorization, session gone), so
the caller may retry.  Messages are delivered from those threads and from
the standalone stream's thread.
"""

from __future__ import annotations

import base64
import json
import re
import threading

from .. import auth
from ...base import jsonrpc, log, protocol, web
from .base import Transport, TransportClosed
from .remote import STREAM_TIMEOUT, RemoteTransport

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    import requests

    from ..auth.authorizer import Authorizer
    from ...base.config import ServerConfig
    from .base import OnClose, OnMessage

ACCEPT = "application/json, text/event-stream"
# How long ``send`` waits to learn whether the server took a request.
ACCEPT_WAIT = 5.0
DEFAULT_RETRY = 1.0
MAX_RETRY = 30.0
MAX_RESUMES = 5
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
    """One request in flight: its acceptance, and its response stream for cancelling."""

    __slots__ = ("message", "id", "lock", "accepted", "refusal", "returned", "response", "answered", "cancelled")

    def __init__(self, message: dict) -> None:
        self.message = message
        self.id = message["id"]
        self.lock = threading.Lock()
        self.accepted = threading.Event()
        self.refusal: TransportClosed | None = None
        self.returned = False
        self.response: requests.Response | None = None
        self.answered = False
        self.cancelled = False


class HttpTransport(RemoteTransport):
    """Streamable HTTP; *fallback* makes the transport to hand over to for a legacy HTTP+SSE server."""

    def __init__(self, server: ServerConfig, auth_dir: str | None = None, auth_flow: str = auth.NEVER,
                 on_authorized: Any = None, fallback: Callable[[], Transport] | None = None) -> None:  # fmt: skip
        super().__init__(server, auth_dir, auth_flow, on_authorized)
        self._fallback = fallback
        self._on_message: OnMessage | None = None
        self._on_close: OnClose | None = None
        self._lock = threading.Lock()
        self._session_id: str | None = None
        self._protocol_version: str | None = None
        self._retry = DEFAULT_RETRY
        self._exchanges: dict[Any, _Exchange] = {}
        self._stop = threading.Event()
        self._closed = False
        self._ended = False  # on_close has been called
        self._listener: threading.Thread | None = None
        self._listen_response: requests.Response | None = None
        self._delegate: Transport | None = None

    # -- contract ---------------------------------------------------------------

    def start(self, on_message: OnMessage, on_close: OnClose) -> None:
        self._open()
        self._on_message, self._on_close = on_message, on_close
        if self.url in _sse_urls:
            self._use_sse()

    def send(self, message: dict) -> None:
        if self._delegate is not None:
            self._delegate.send(message)
            return
        if self._closed or self._ended:
            raise TransportClosed("the connection is closed")
        if "method" in message and "id" in message:
            self._send_request(message)
            return
        method = message.get("method")
        modern = _modern_version(message) is not None
        if method == "notifications/cancelled":
            params = message.get("params") or {}
            self._cancel(params.get("requestId"))
            if modern:
                return  # closing the response stream is the modern cancel
        response = self._post(message, stream=False, timeout=web.SHORT_TIMEOUT)
        status = response.status_code
        response.close()
        if status >= 400:
            log.debug("%s: the server answered HTTP %s to %s", self.name, status, method or "a response")
        elif method == "notifications/initialized":
            self._start_listening()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            exchanges = list(self._exchanges.values())
        self._stop.set()
        if self._delegate is not None:
            self._delegate.close()
        for exchange in exchanges:
            web.abort(exchange.response)
        web.abort(self._listen_response)
        if self._session_id and self._http is not None:
            try:
                headers = self._base_headers(None, accept=ACCEPT)
                headers.update(self._headers_auth())
                self._http.delete(self.url, headers=headers, timeout=(5.0, 5.0))
            except Exception as e:  # the session dies with the server's timeout anyway
                log.debug("%s: DELETE of the session failed: %s", self.name, type(e).__name__)
        if self._listener is not None and self._listener is not threading.current_thread():
            self._listener.join(timeout=2.0)
        if self._http is not None:
            self._http.close()

    # -- headers --------------------------------------------------------------------

    def _base_headers(self, message: dict | None, accept: str) -> dict:
        headers = {"Accept": accept}
        if message is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self.server.headers)
        if self._session_id:
            headers["Mcp-Session-Id"] = self._session_id
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
        elif self._protocol_version:
            headers["MCP-Protocol-Version"] = self._protocol_version
        return headers

    # -- POST ---------------------------------------------------------------------------

    def _post(self, message: dict, stream: bool, timeout: Any) -> requests.Response:
        body = jsonrpc.encode(message)
        had_session = self._session_id is not None
        response = self._send_authorized("POST", self.url, self._base_headers(message, ACCEPT),
                                   data=body, stream=stream, timeout=timeout)  # fmt: skip
        sid = response.headers.get("Mcp-Session-Id")
        if sid and not self._session_id and message.get("method") == "initialize":
            self._session_id = sid
        if had_session and _session_unknown(response):
            self._session_gone(response.status_code)
            raise TransportClosed(f"the server ended the session (HTTP {response.status_code})")
        log.debug("%s: POST %s -> HTTP %s", self.name, message.get("method") or "response", response.status_code)
        return response

    def _session_gone(self, status: int) -> None:
        with self._lock:
            if self._ended or self._closed:
                return
            self._ended = True
            self._session_id = None  # gone: nothing to DELETE
        # A restarted server: the pool starts a new session on the next call.
        log.info("%s: the server no longer knows this session (HTTP %s); a new one starts on the next request",
                 self.name, status)  # fmt: skip
        self._stop.set()
        web.abort(self._listen_response)
        if self._on_close is not None:
            self._on_close("the server ended the session")

    def _send_request(self, message: dict) -> None:
        exchange = _Exchange(message)
        with self._lock:
            self._exchanges[exchange.id] = exchange
        t = threading.Thread(target=self._run_exchange, args=(exchange,), name=f"mcpzip-{self.name}-post")
        t.daemon = True
        t.start()
        exchange.accepted.wait(ACCEPT_WAIT)
        with exchange.lock:
            exchange.returned = True
            refusal = exchange.refusal
        if refusal is not None:
            raise refusal

    def _run_exchange(self, exchange: _Exchange) -> None:
        try:
            try:
                response = self._post(exchange.message, stream=True, timeout=STREAM_TIMEOUT)
            except TransportClosed as e:
                self._refuse(exchange, e)
                return
            exchange.response = response
            status = response.status_code
            if status >= 400 and self._try_sse_fallback(exchange, response):
                exchange.accepted.set()
                return
            exchange.accepted.set()
            self._consume(exchange, response)
        except Exception as e:  # never let a reader thread die silently
            if not self._closed:
                log.debug("%s: exchange failed: %r", self.name, e)
                self._answer_error(exchange, f"the exchange with the server failed ({type(e).__name__})")
        finally:
            with self._lock:
                self._exchanges.pop(exchange.id, None)

    def _refuse(self, exchange: _Exchange, error: TransportClosed) -> None:
        with exchange.lock:
            if not exchange.returned:
                exchange.refusal = error
                exchange.accepted.set()
                return
        # ``send`` has returned already: the request gets an error answer instead.
        self._answer_error(exchange, str(error))

    def _answer_error(self, exchange: _Exchange, text: str, code: int = jsonrpc.INTERNAL_ERROR, data: Any = None) -> None:
        if exchange.answered or exchange.cancelled or self._closed:
            return
        exchange.answered = True
        self._deliver(jsonrpc.error(exchange.id, code, text, data))

    def _deliver(self, message: Any, exchange: _Exchange | None = None) -> None:
        if exchange is not None and isinstance(message, dict) and message.get("id") == exchange.id and (
            "result" in message or "error" in message
        ):
            exchange.answered = True
            if exchange.message.get("method") == "initialize" and isinstance(message.get("result"), dict):
                version = message["result"].get("protocolVersion")
                if isinstance(version, str) and version in protocol.LEGACY_VERSIONS:
                    self._protocol_version = version
        if self._on_message is not None:
            self._on_message(message)

    # -- responses ------------------------------------------------------------------------

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
        body = _json_body(response)
        for message in body if isinstance(body, list) else [body]:
            if isinstance(message, dict):
                self._deliver(message, exchange)
        if not exchange.answered:
            self._answer_error(exchange, "the server's answer is not a JSON-RPC response")

    def _read_stream(self, exchange: _Exchange, response: requests.Response) -> None:
        last_id = self._pump(response, exchange)
        resumes = 0
        while not exchange.answered and not exchange.cancelled and not self._stop.is_set():
            if last_id is None or resumes >= MAX_RESUMES:
                self._answer_error(exchange, "the server closed the response stream without answering")
                return
            resumes += 1
            # Resume where the stream broke, after the delay the server asked for.
            if self._stop.wait(self._retry):
                return
            try:
                response = self._get_stream(last_id)
            except TransportClosed as e:
                self._answer_error(exchange, f"could not resume the response stream: {e}")
                return
            if response is None:
                self._answer_error(exchange, "the server closed the response stream and does not allow resuming it")
                return
            exchange.response = response
            last_id = self._pump(response, exchange, stop_when_answered=True) or last_id

    def _pump(self, response: requests.Response, exchange: _Exchange | None, stop_when_answered: bool = False) -> str | None:
        """Deliver the events of *response* until it ends; return the last event id."""
        last_id = None
        try:
            for event in web.sse_events(response):
                if event.id:
                    last_id = event.id
                if event.retry and str(event.retry).isdigit():
                    self._retry = min(int(event.retry) / 1000.0, MAX_RETRY)
                for item in self._event_messages(event):
                    self._deliver(item, exchange)
                if stop_when_answered and exchange is not None and exchange.answered:
                    break
        except Exception as e:  # the connection broke, or close() aborted it
            if not self._stop.is_set():
                log.debug("%s: event stream ended: %s", self.name, type(e).__name__)
        finally:
            response.close()
        return last_id

    def _cancel(self, request_id: Any) -> None:
        with self._lock:
            exchange = self._exchanges.get(request_id)
        if exchange is not None:
            exchange.cancelled = True
            web.abort(exchange.response)

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
            if self._session_id and _session_unknown(response):
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
        last_id: str | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                response = self._get_stream(last_id)
            except TransportClosed as e:
                failures += 1
                log.debug("%s: standalone stream unavailable: %s", self.name, e)
                if failures > MAX_RESUMES or self._stop.wait(min(self._retry * 2**failures, MAX_RETRY)):
                    return
                continue
            if response is None:
                return  # the server offers no standalone stream (405)
            failures = 0
            self._listen_response = response
            last_id = self._pump(response, None) or last_id
            self._listen_response = None
            if self._stop.wait(self._retry):
                return

    # -- legacy HTTP+SSE fallback ---------------------------------------------------------------

    def _try_sse_fallback(self, exchange: _Exchange, response: requests.Response) -> bool:
        if exchange.message.get("method") != "initialize" or self._session_id:
            return False
        if response.status_code not in (400, 404, 405):
            return False
        body = _json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("code") in MODERN_ERRORS:
            return False
        log.debug("%s: initialize answered HTTP %s; trying the legacy HTTP+SSE transport", self.name, response.status_code)
        try:
            self._use_sse()
        except TransportClosed as e:
            log.debug("%s: not an HTTP+SSE server either: %s", self.name, e)
            self._delegate = None
            return False
        _sse_urls.add(self.url)
        assert self._delegate is not None
        try:
            self._delegate.send(exchange.message)
        except TransportClosed as e:
            self._answer_error(exchange, str(e))
        return True

    def _use_sse(self) -> None:
        if self._fallback is None:
            raise TransportClosed("the server does not speak Streamable HTTP")
        delegate = self._fallback()
        delegate.start(self._on_message or (lambda m: None), self._on_close or (lambda r: None))
        self._delegate = delegate


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
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None
    finally:
        response.close()
