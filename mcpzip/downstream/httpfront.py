"""mcpzip over Streamable HTTP for all of a user's clients (``serve --http``).

One pool, one catalog, one OAuth store; one :class:`~.server.Server` and one
:class:`~.relay.Relay` per client session, so each client's capabilities,
requests, cancellations, log level and notifications stay its own (the
:class:`~.clients.ClientHub` routes what upstreams say).

Both eras, as over stdio: an ``initialize`` opens a legacy session (its id in
``Mcp-Session-Id``); a request carrying the modern ``_meta`` is served
statelessly, by one session all modern requests share.  A request's answer
is a JSON body, or, when the client accepts one, an event stream that also
carries the progress, log messages and requests for the client that arise
while it runs.  ``GET`` opens a session's stream for everything else;
``DELETE`` ends a session.

Who may connect: the server binds loopback only, checks ``Host`` and
``Origin`` on every request (a web page cannot reach it through DNS
rebinding) and requires the bearer secret kept in ``shared/secret`` (0600).
docs/sharing.md has the security model.

Threading contract: ``ThreadingHTTPServer`` serves each HTTP request on a
thread of its own; sessions are created and found under ``_lock``; a
session's :class:`SessionOutput` is called from any thread.
"""

from __future__ import annotations

import collections
import hmac
import http.server
import queue
import secrets
import select
import socket
import threading
import time

from ..base import jsonrpc, log, protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from .clients import ClientHub
    from .server import Server
    from .sharing import Place

    NewSession = Callable[[str, "SessionOutput"], Server]

PATH = "/mcp"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Messages for a session that has no stream open are kept, up to this many.
BACKLOG = 1000
# An open stream gets a comment this often, so a client that went away is noticed.
KEEPALIVE_SECONDS = 15.0
# An open stream looks this often whether its client closed the connection,
# so an abandoned stream's thread ends within about this long.
STREAM_CHECK_SECONDS = 1.0
# A request's head and body must arrive within this long of its first byte: a
# client that stalls (or sends a byte at a time) holds a thread no longer.
ARRIVAL_SECONDS = 30.0
# Live client sessions at most; one more is refused with 503 until one ends
# (DELETE) or expires (shared_idle_minutes).
MAX_SESSIONS = 256
MODERN_CLIENT = "modern"  # the session all stateless (modern) requests share


class _Exchange:
    """One request waiting for its answer, and (for a stream) the messages that come before it."""

    __slots__ = ("id", "reply_id", "token", "stream", "messages")

    def __init__(self, rid: Any, stream: bool, reply_id: Any, token: Any = None) -> None:
        self.id = rid  # the id the session's server knows the request by
        self.reply_id = reply_id  # the id the client gave it
        self.token = token  # its progress token, if it has one
        self.stream = stream
        self.messages: queue.SimpleQueue = queue.SimpleQueue()

    def reply(self, message: dict | None) -> dict:
        """The answer as the client gets it: under its own id; an error when the session ended first."""
        if message is None:
            return jsonrpc.error(self.reply_id, jsonrpc.INTERNAL_ERROR, "Internal error: the session ended")
        return message if message.get("id") == self.reply_id else {**message, "id": self.reply_id}


class SessionOutput:
    """Where a session's outgoing messages go: the request they answer, an open stream, or the backlog."""

    def __init__(self, several_clients: bool = False) -> None:
        """*several_clients*: the session serves the stateless requests of every modern client."""
        self.several_clients = several_clients
        self._lock = threading.Lock()  # guards _waiting, _streams and _backlog
        self._backlog_ready = threading.Condition(self._lock)  # the backlog got a message, or closed
        self._waiting: dict[Any, _Exchange] = {}
        self._streams: list[_Exchange] = []  # open event streams of requests, newest last
        self._backlog: collections.deque = collections.deque(maxlen=BACKLOG)
        self.closed = False

    def expect(self, rid: Any, stream: bool, reply_id: Any, token: Any = None) -> _Exchange | None:
        """The exchange an answer to *rid* will reach; None while another request of this session has that id."""
        exchange = _Exchange(rid, stream, reply_id, token)
        with self._lock:
            if rid in self._waiting:
                return None  # taking it over would leave the first request without its answer
            self._waiting[rid] = exchange
            if stream:
                self._streams.append(exchange)
        return exchange

    def forget(self, exchange: _Exchange) -> None:
        with self._lock:
            if self._waiting.get(exchange.id) is exchange:
                del self._waiting[exchange.id]
            if exchange in self._streams:
                self._streams.remove(exchange)

    def send(self, message: dict) -> None:
        with self._lock:
            if "method" not in message:
                exchange = self._waiting.pop(message.get("id"), None)
                if exchange is None:
                    log.debug("an answer for a request nobody waits for was dropped")
                    return
            else:
                exchange = self._stream_for(message)
                if exchange is None:
                    self._backlog.append(message)
                    self._backlog_ready.notify_all()
                    return
        exchange.messages.put(message)

    def _stream_for(self, message: dict) -> _Exchange | None:
        """The open stream a message of the server's belongs on, or None (the backlog's); under _lock.

        Progress goes to the request whose token it carries.  Anything else
        goes to the newest request (the likeliest cause) -- except where
        requests of several clients are in flight: nobody can tell whose it
        is, and it must not reach a client it may not concern.
        """
        if not self._streams:
            return None
        params = message.get("params")
        if message.get("method") == "notifications/progress" and isinstance(params, dict):
            token = params.get("progressToken")
            owners = [e for e in self._streams if e.token is not None and e.token == token]
            if len(owners) == 1:
                return owners[0]
        if self.several_clients and len(self._waiting) > 1:
            return None
        return self._streams[-1]

    def next_unrequested(self, timeout: float) -> dict | None:
        """A message for the session's own stream, or None after *timeout* (or once closed)."""
        with self._lock:
            self._backlog_ready.wait_for(lambda: self._backlog or self.closed, timeout)
            return self._backlog.popleft() if self._backlog and not self.closed else None

    def unget(self, message: dict) -> None:
        """*message* could not be written to the stream that took it: it is the next one out."""
        with self._lock:
            self._backlog.appendleft(message)
            self._backlog_ready.notify_all()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._backlog_ready.notify_all()
            waiting = list(self._waiting.values())
        for exchange in waiting:
            exchange.messages.put(None)  # ends the wait: no answer will come


class _ModernIds:
    """The ids of stateless requests in flight, which every modern client sends into one shared session.

    Each request gets an id of its own there, so that two clients' ``id: 1``
    never meet; its answer goes back under the client's id.  A cancellation
    is passed on only when its ``requestId`` names exactly one request in
    flight: when several clients use that id, nobody can tell whose it is,
    and a cancel must never touch another client's call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _count, _inner and _outer
        self._count = 0
        self._inner: dict[Any, list[str]] = {}  # a client's id -> the session's ids of its requests in flight
        self._outer: dict[str, Any] = {}  # the session's id -> the client's

    def inward(self, message: Any, kind: str, body: bytes) -> bytes | None:
        """The body to pass on (*message*'s ids rewritten), or None when it is to be dropped."""
        if kind == "request":
            with self._lock:
                self._count += 1
                inner = f"modern-{self._count}"
                self._inner.setdefault(message["id"], []).append(inner)
                self._outer[inner] = message["id"]
            message["id"] = inner
            return jsonrpc.encode(message)
        if kind == "notification" and message["method"] == "notifications/cancelled":
            params = message.get("params")
            rid = params.get("requestId") if isinstance(params, dict) else None
            with self._lock:
                found = self._inner.get(rid, ()) if jsonrpc.valid_id(rid) else ()
            if len(found) != 1:
                log.debug("a stateless cancellation that names no single request in flight was dropped")
                return None
            message["params"] = {**params, "requestId": found[0]}
            return jsonrpc.encode(message)
        return body

    def done(self, inner: str) -> None:
        with self._lock:
            outer = self._outer.pop(inner, None)
            inners = self._inner.get(outer, [])
            if inner in inners:
                inners.remove(inner)
            if not inners:
                self._inner.pop(outer, None)


class _Session:
    __slots__ = ("id", "server", "output", "last_seen", "listening")

    def __init__(self, sid: str, server: Server, output: SessionOutput) -> None:
        self.id = sid
        self.server = server
        self.output = output
        self.last_seen = time.monotonic()
        self.listening = 0  # open GET streams


class HttpFront:
    """The shared mcpzip: sessions over one set of tools, behind loopback, Host/Origin and bearer checks."""

    def __init__(self, host: str, port: int, secret: str, new_session: NewSession, hub: ClientHub,
                 place: Place | None, idle_minutes: float, max_body: int,
                 status: Callable[[], dict], arrival_seconds: float = ARRIVAL_SECONDS,
                 max_sessions: int = MAX_SESSIONS) -> None:  # fmt: skip
        self._secret = f"Bearer {secret}".encode()
        self._new_session = new_session
        self._hub = hub
        self._place = place
        self._idle = idle_minutes * 60
        self._max_body = max_body
        self._status = status
        self.arrival_seconds = arrival_seconds
        self.max_sessions = max_sessions
        self._lock = threading.Lock()  # guards _sessions, _last_client and each session's listening and last_seen
        self._sessions: dict[str, _Session] = {}
        self._last_client = time.monotonic()
        self._stopping = threading.Event()
        self._arriving_lock = threading.Lock()  # guards _arriving
        self._arriving: dict[_Handler, float] = {}  # handler -> when its request must have arrived whole
        self.modern_ids = _ModernIds()
        self.httpd = _Httpd((host.strip("[]"), port), _Handler, self)
        self.port = self.httpd.server_address[1]

    # -- running -----------------------------------------------------------------

    def serve_forever(self) -> None:
        if self._place is not None:
            self._place.write_state(self.port)
        log.info("serving MCP on http://127.0.0.1:%d%s", self.port, PATH)
        threading.Thread(target=self._watch_idle, name="mcpzip-shared-idle", daemon=True).start()
        threading.Thread(target=self._watch_arrivals, name="mcpzip-shared-arrivals", daemon=True).start()
        try:
            self.httpd.serve_forever(poll_interval=0.5)
        finally:
            self._close_sessions()
            self.httpd.server_close()
            if self._place is not None:
                self._place.clear_state()

    def stop(self) -> None:
        """Stop serving; call from another thread than :meth:`serve_forever` (``shutdown`` waits for it)."""
        if not self._stopping.is_set():
            self._stopping.set()
            threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    def _watch_idle(self) -> None:
        """Drop sessions unused for the idle time; stop when no client is left for as long."""
        while not self._stopping.wait(min(5.0, max(0.2, self._idle / 4))):
            now = time.monotonic()
            with self._lock:
                stale = [s for s in self._sessions.values() if not s.listening and now - s.last_seen > self._idle]
                for session in stale:
                    del self._sessions[session.id]
                if self._sessions:
                    self._last_client = now
                quiet = not self._sessions and now - self._last_client > self._idle
            for session in stale:
                self._end(session)
            if quiet:
                log.info("no client for %.0f s: the shared mcpzip stops", self._idle)
                self.stop()
                return

    def arriving(self, handler: _Handler, starts: bool) -> None:
        """*handler*'s request started to arrive (it must be whole within ARRIVAL_SECONDS), or has arrived."""
        with self._arriving_lock:
            if starts:
                self._arriving[handler] = time.monotonic() + self.arrival_seconds
            else:
                self._arriving.pop(handler, None)

    def _watch_arrivals(self) -> None:
        """Stop reading requests that did not arrive in time; their handlers answer 408 and close."""
        while not self._stopping.wait(min(1.0, self.arrival_seconds / 4)):
            now = time.monotonic()
            with self._arriving_lock:
                late = [h for h, deadline in self._arriving.items() if deadline < now]
                for handler in late:
                    del self._arriving[handler]
            for handler in late:
                handler.overdue = True
                try:
                    handler.connection.shutdown(socket.SHUT_RD)  # the blocked read returns what came
                except OSError:
                    pass  # already gone

    def _close_sessions(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            self._end(session)

    def _end(self, session: _Session) -> None:
        session.output.close()
        session.server.drain(0)
        self._hub.leave(session.id)

    # -- sessions ----------------------------------------------------------------

    def open_session(self, sid: str | None = None) -> _Session | None:
        """A new session; None when max_sessions are open."""
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                return None
        sid = sid or secrets.token_urlsafe(24)
        output = SessionOutput(several_clients=sid == MODERN_CLIENT)
        session = _Session(sid, self._new_session(sid, output), output)
        with self._lock:
            self._sessions[sid] = session
            self._last_client = time.monotonic()
        return session

    def session(self, sid: str, modern: bool = False) -> _Session | None:
        """The session a client's ``Mcp-Session-Id`` names (never the stateless one, shared by every modern client)."""
        if (sid == MODERN_CLIENT) != modern:
            return None
        with self._lock:
            found = self._sessions.get(sid)
            if found is not None:
                found.last_seen = self._last_client = time.monotonic()
            return found

    def modern_session(self) -> _Session | None:
        return self.session(MODERN_CLIENT, modern=True) or self.open_session(MODERN_CLIENT)

    def close_session(self, sid: str) -> bool:
        if sid == MODERN_CLIENT:
            return False  # every stateless client's: none may end it
        with self._lock:
            session = self._sessions.pop(sid, None)
        if session is not None:
            self._end(session)
        return session is not None

    def listening(self, session: _Session, change: int) -> None:
        """A stream of *session* opened (+1) or closed (-1); a session with one open never expires."""
        with self._lock:
            session.listening += change
            session.last_seen = time.monotonic()

    def clients(self) -> int:
        with self._lock:
            return sum(1 for sid in self._sessions if sid != MODERN_CLIENT)

    def status(self) -> dict:
        return {**self._status(), "clients": self.clients()}

    # -- checks ------------------------------------------------------------------

    def refusal(self, headers: Any) -> tuple[int, str] | None:
        """Why a request may not go on (status, message), or None.

        Host and Origin stop a web page that a DNS rebinding points at us;
        the secret stops every other local program and user.
        """
        host = (headers.get("Host") or "").lower()  # host names are case-insensitive
        if host not in {f"{name}:{self.port}" for name in LOOPBACK_HOSTS}:
            return 403, "Forbidden: the Host header must name this loopback server"
        origin = headers.get("Origin")
        if origin is not None and origin.lower() not in {f"http://{name}:{self.port}" for name in LOOPBACK_HOSTS}:
            return 403, "Forbidden: requests from web pages of another origin are refused"
        offered = (headers.get("Authorization") or "").encode("utf-8", "replace")
        if not hmac.compare_digest(offered, self._secret):
            return 401, "Unauthorized: send the bearer secret of this mcpzip (shared/secret beside the config)"
        return None

    @property
    def max_body(self) -> int:
        return self._max_body


class _Httpd(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple, handler: type, front: HttpFront) -> None:
        self.front = front
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line in the log, not socketserver's traceback: a client that goes away is no error of ours."""
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("http: a connection broke off: %r", error)
        else:
            log.error("http: serving a request failed: %r", error)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Even a request line cut short is answered with a status line and headers (HTTP/0.9 has neither).
    default_request_version = "HTTP/1.1"
    # Answers leave in several small writes on a kept-alive connection; with
    # Nagle's algorithm the last one would wait for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Httpd
    # A connection that sends nothing is closed after this long.
    timeout = 600
    overdue = False  # set when the request did not arrive within ARRIVAL_SECONDS
    served = False  # a request was answered on this connection

    def handle_one_request(self) -> None:
        """One request, which must arrive whole within ARRIVAL_SECONDS of its first byte.

        A new connection must begin its first request within ARRIVAL_SECONDS
        too; only a connection that has been served may wait (``timeout``)
        for its next.
        """
        front = self.server.front
        try:
            if not self.served:
                self.connection.settimeout(front.arrival_seconds)
            if not self.rfile.peek(1):  # a kept-alive connection waits here for its next request
                self.close_connection = True
                return
        except OSError:
            self.close_connection = True
            return
        if not self.served:
            self.connection.settimeout(self.timeout)
        front.arriving(self, True)
        try:
            super().handle_one_request()
        finally:
            front.arriving(self, False)
            self.served = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line or header), as JSON like every other answer."""
        if self.overdue:
            self._late()
            return
        self.close_connection = True
        text = message or self.responses.get(code, ("Error",))[0]
        self._json(code, jsonrpc.error(None, jsonrpc.INVALID_REQUEST, f"{code} {text}"))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("http: " + format, *args)

    # -- verbs -------------------------------------------------------------------

    def do_POST(self) -> None:
        front = self._checked()
        if front is None:
            return
        body = self._body(front)
        front.arriving(self, False)  # what follows (a long call) may take its time
        if body is None:
            return
        try:
            message = jsonrpc.decode(body)
        except ValueError:
            self._json(400, jsonrpc.error(None, jsonrpc.PARSE_ERROR, "Parse error: the body is not valid JSON"))
            return
        session, new = self._session_for(front, message)
        if session is None:
            return
        kind = jsonrpc.kind(message)
        if kind == "invalid":
            # Nothing would answer it on this request (the session's server
            # answers requests only): the error is this request's answer.
            text = "Invalid Request: batches are not supported" if isinstance(message, list) else \
                "Invalid Request: not a JSON-RPC 2.0 message"
            self._json(400, jsonrpc.error(_id_of(message), jsonrpc.INVALID_REQUEST, text))
            return
        reply_id = message.get("id")
        if session.id == MODERN_CLIENT:
            body = front.modern_ids.inward(message, kind, body)
            if body is None:
                self._empty(202)  # a cancellation that names no single request of this client's
                return
        if kind != "request":
            session.server.receive(body)
            self._empty(202)
            return
        streaming = "text/event-stream" in (self.headers.get("Accept") or "")
        token = protocol.meta_of(message.get("params")).get("progressToken")
        exchange = session.output.expect(message["id"], streaming, reply_id, token if jsonrpc.valid_id(token) else None)
        if exchange is None:
            self._json(409, jsonrpc.error(message["id"], jsonrpc.INVALID_REQUEST, "Invalid Request: id already in use"))
            return
        try:
            session.server.receive(body)
            extra = {"Mcp-Session-Id": session.id} if new else {}
            if streaming:
                self._stream_answer(exchange, extra)
            else:
                self._json_answer(exchange, extra)
        finally:
            session.output.forget(exchange)
            if session.id == MODERN_CLIENT:
                front.modern_ids.done(message["id"])

    def do_GET(self) -> None:
        front = self._checked(allow_status=True)
        if front is None:
            return
        self._unread_body()  # a GET has none to read
        if self.path == "/status":
            self._json(200, front.status())
            return
        front.arriving(self, False)  # a stream stays open as long as it likes
        sid = self.headers.get("Mcp-Session-Id")
        if not sid:
            self._json(405, jsonrpc.error(None, jsonrpc.INVALID_REQUEST, "Method Not Allowed: GET needs a session"),
                       {"Allow": "POST, DELETE"})  # fmt: skip
            return
        session = front.session(sid)
        if session is None:
            self._json(404, jsonrpc.error(None, jsonrpc.INVALID_REQUEST, "Session not found"))
            return
        self._start_stream({})
        front.listening(session, +1)
        try:
            self._stream_session(session.output)
        finally:
            front.listening(session, -1)

    def _stream_session(self, output: SessionOutput) -> None:
        """The session's own messages, until it ends or the client closes the connection."""
        quiet = 0.0
        while not output.closed:
            message = output.next_unrequested(STREAM_CHECK_SECONDS)
            try:
                if message is not None:
                    self._chunk(_event(message))
                    quiet = 0.0
                    continue
                if self._client_left():
                    break
                quiet += STREAM_CHECK_SECONDS
                if quiet >= KEEPALIVE_SECONDS:
                    self._chunk(b": keepalive\n\n")
                    quiet = 0.0
            except OSError:
                if message is not None:
                    output.unget(message)  # for the session's next stream: nothing is lost
                break
        else:
            try:
                self._chunk(b"", last=True)
                return
            except OSError:
                pass
        self.close_connection = True  # the client went away

    def _client_left(self) -> bool:
        """True once the client closed its end (nothing else is read while a stream is open)."""
        try:
            if not select.select([self.connection], [], [], 0)[0]:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_DELETE(self) -> None:
        front = self._checked()
        if front is None:
            return
        self._unread_body()  # a DELETE has none to read
        ended = front.close_session(self.headers.get("Mcp-Session-Id") or "")
        self._empty(200 if ended else 404)

    # -- pieces ------------------------------------------------------------------

    def _checked(self, allow_status: bool = False) -> HttpFront | None:
        front = self.server.front
        if self.overdue:
            self._late()
            return None
        if self.path != PATH and not (allow_status and self.path == "/status"):
            self._unread_body()
            self._json(404, jsonrpc.error(None, jsonrpc.INVALID_REQUEST, f"Not Found: MCP is served at {PATH}"))
            return None
        refusal = front.refusal(self.headers)
        if refusal is not None:
            status, text = refusal
            extra = {"WWW-Authenticate": 'Bearer realm="mcpzip"'} if status == 401 else {}
            self._unread_body()
            self._json(status, jsonrpc.error(None, jsonrpc.INVALID_REQUEST, text), extra)
            return None
        return front

    def _unread_body(self) -> None:
        """A request answered without reading its body ends the connection.

        Left on it, the body would be read as the next request: the client
        would get two answers to one request (or a crafted body would be
        served as a request of its own).
        """
        if self.headers.get("Transfer-Encoding") or (self.headers.get("Content-Length") or "0").strip() != "0":
            self.close_connection = True

    def _body(self, front: HttpFront) -> bytes | None:
        """The request's body, or None once the reason it cannot be had is answered."""
        coding = self.headers.get("Transfer-Encoding")
        if coding is not None:  # it overrides any Content-Length (RFC 9112 6.3)
            if coding.strip().lower() != "chunked":
                return self._bad_body(501, f"Not Implemented: Transfer-Encoding {coding[:40]!r} (send chunked or a Content-Length)")
            return self._chunked_body(front.max_body)
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            return self._bad_body(411, "Length Required: send a Content-Length (or chunked Transfer-Encoding)")
        if length < 0:
            return self._bad_body(400, "Bad Request: a negative Content-Length")
        if length > front.max_body:
            return self._bad_body(413, f"Payload Too Large: at most {front.max_body} bytes (max_message_bytes)")
        body = self.rfile.read(length)
        if len(body) < length:
            return self._short_body(f"the body ended after {len(body)} of its {length} bytes")
        return body

    def _chunked_body(self, limit: int) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        while True:
            digits = self.rfile.readline(1026).split(b";")[0].strip()
            if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
                return self._short_body("a chunk of the body has no valid size")
            length = int(digits, 16)
            size += length
            if size > limit:
                return self._bad_body(413, f"Payload Too Large: at most {limit} bytes (max_message_bytes)")
            if length == 0:
                break
            parts.append(self.rfile.read(length))
            if len(parts[-1]) < length or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                return self._short_body("a chunk of the body ended early")
        for _ in range(100):  # trailer fields, up to the empty line
            if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                return b"".join(parts)
        return self._short_body("the body's trailer does not end")

    def _bad_body(self, status: int, text: str) -> None:
        self._unread_body()
        self._json(status, jsonrpc.error(None, jsonrpc.INVALID_REQUEST, text))
        return None

    def _short_body(self, what: str) -> None:
        """The body did not arrive whole: cut off by the client, or not within ARRIVAL_SECONDS."""
        self.close_connection = True
        if self.overdue:
            self._late()
        else:
            self._json(400, jsonrpc.error(None, jsonrpc.INVALID_REQUEST, f"Bad Request: {what}"))
        return None

    def _late(self) -> None:
        self.close_connection = True
        self._json(408, jsonrpc.error(None, jsonrpc.INVALID_REQUEST,
                                      f"Request Timeout: the request did not arrive whole within {self.server.front.arrival_seconds:g} s"))  # fmt: skip

    def _session_for(self, front: HttpFront, message: Any) -> tuple[_Session | None, bool]:
        sid = self.headers.get("Mcp-Session-Id")
        if sid:
            session = front.session(sid)
            if session is None:
                self._json(404, jsonrpc.error(_id_of(message), jsonrpc.INVALID_REQUEST, "Session not found"))
            return session, False
        if isinstance(message, dict) and message.get("method") == "initialize" and "id" in message:
            return self._or_full(message, front.open_session()), True
        meta = protocol.meta_of(message.get("params")) if isinstance(message, dict) else {}
        if protocol.META_PROTOCOL_VERSION in meta:
            return self._or_full(message, front.modern_session()), False
        self._json(400, jsonrpc.error(_id_of(message), jsonrpc.INVALID_REQUEST,
                                      "Bad Request: No valid session ID provided"))  # fmt: skip
        return None, False

    def _or_full(self, message: dict, session: _Session | None) -> _Session | None:
        if session is None:
            self._json(503, jsonrpc.error(_id_of(message), jsonrpc.INTERNAL_ERROR,
                                          f"Service Unavailable: {self.server.front.max_sessions} client sessions are open, the most "
                                          "a shared mcpzip keeps; end one (DELETE) or wait for idle ones to expire"),
                       {"Retry-After": "60"})  # fmt: skip
        return session

    def _stream_answer(self, exchange: _Exchange, extra: dict) -> None:
        self._start_stream(extra)
        try:
            while True:
                message = exchange.messages.get()
                last = message is None or "method" not in message
                # The answer and the stream's end in one write; the connection stays for the next request.
                self._chunk(_event(exchange.reply(message) if last else message), last)
                if last:
                    return
        except OSError:
            self.close_connection = True
            log.debug("a client left before its answer was written")

    def _json_answer(self, exchange: _Exchange, extra: dict) -> None:
        while True:
            message = exchange.messages.get()
            if message is None or "method" not in message:
                break
        self._json(503 if message is None else 200, exchange.reply(message), extra)

    def _start_stream(self, extra: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        # Chunked, so that the connection outlives the stream: a client's next
        # request skips a new connection (and this server a new thread).
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()

    def _chunk(self, data: bytes, last: bool = False) -> None:
        """One chunk of a chunked body (none when empty); *last* ends the body."""
        out = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
        self.wfile.write(out + (b"0\r\n\r\n" if last else b""))
        self.wfile.flush()

    def _json(self, status: int, message: Any, extra: dict | None = None) -> None:
        data = jsonrpc.encode(message)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _event(message: dict) -> bytes:
    return b"event: message\ndata: " + jsonrpc.encode(message).rstrip(b"\n") + b"\n\n"


def _id_of(message: Any) -> Any:
    rid = message.get("id") if isinstance(message, dict) else None
    return rid if jsonrpc.valid_id(rid) else None
