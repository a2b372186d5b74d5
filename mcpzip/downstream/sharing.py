"""One mcpzip for all of a user's clients: where the shared one is, starting it, and the relay to it.

``serve --http`` is the shared mcpzip; ``serve --shared`` is what a client's
config runs: a small stdio ↔ HTTP relay that finds the shared mcpzip of its
config, starts one (detached) if none runs, and passes every message through.
If the shared mcpzip goes away, the relay starts it again, replays the
client's ``initialize`` and retries the message: the client never notices.

The shared mcpzip of a config keeps its files in ``shared/`` beside it
(0700): ``secret`` (the bearer secret every request must carry, 0600,
created on first start), ``state.json`` (its port and pid), ``lock`` (so two
clients starting at once start one) and ``log`` (its stderr).

Threading contract of :class:`StdioRelay`: :meth:`~StdioRelay.run` reads
stdin and posts each message on the calling thread; each request's answer is
read on a thread of its own (answers may leave out of order, as from
``serve``); the server's own messages arrive on one listening thread.
``_out_lock`` keeps lines whole on stdout, ``_lock`` guards the session.
"""

from __future__ import annotations

import _thread
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time

import mcpzip

from ..base import files, jsonrpc, log
from ..base.config import DEFAULT_MAX_MESSAGE_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SECRET_BYTES = 32
# How long a relay waits for a shared mcpzip it started to take connections.
START_TIMEOUT = 20.0
CONNECT_TIMEOUT = 5.0
# Answers still owed when the client closes stdin get this long.
DRAIN_SECONDS = 5.0
ACCEPT = "application/json, text/event-stream"


class SharingError(Exception):
    """The shared mcpzip cannot be reached or started; the message says why."""


class Place:
    """The files of the shared mcpzip of one config."""

    def __init__(self, config_path: str) -> None:
        self.config_path = os.path.abspath(config_path)
        self.dir = os.path.join(os.path.dirname(self.config_path), "shared")
        self.secret_path = os.path.join(self.dir, "secret")
        self.state_path = os.path.join(self.dir, "state.json")
        self.lock_path = os.path.join(self.dir, "lock")
        self.log_path = os.path.join(self.dir, "log")

    def ensure_dir(self) -> None:
        files.ensure_dir(self.dir, 0o700)

    def secret(self) -> str:
        """The bearer secret, created (0600, never readable by others) on first use.

        Made whole in a file of its own, then linked into place: a client
        starting at the same moment finds either no secret or all of it, and
        the first link wins.
        """
        found = self.existing_secret()
        if found is not None:
            return found
        self.ensure_dir()
        fd, temporary = tempfile.mkstemp(prefix=".secret-", dir=self.dir)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(SECRET_BYTES) + "\n")
            try:
                os.link(temporary, self.secret_path)
            except FileExistsError:
                pass  # another client made it first: theirs it is
        finally:
            os.unlink(temporary)
        found = self.existing_secret()
        if found is None:
            raise SharingError(f"cannot read {self.secret_path}; delete it and start again")
        return found

    def existing_secret(self) -> str | None:
        """The bearer secret if one was made (nothing is created)."""
        try:
            with open(self.secret_path, encoding="ascii") as f:
                return f.read().strip() or None
        except OSError:
            return None

    def read_state(self) -> dict | None:
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):
            return None
        ok = isinstance(state, dict) and isinstance(state.get("port"), int) and isinstance(state.get("pid"), int)
        return state if ok else None

    def write_state(self, port: int) -> None:
        self.ensure_dir()
        data = json.dumps({"port": port, "pid": os.getpid(), "version": mcpzip.__version__}).encode()
        files.write_atomic(self.state_path, data, 0o600)

    def clear_state(self) -> None:
        """Forget the state file, if it is this process's."""
        state = self.read_state()
        if state is not None and state["pid"] == os.getpid():
            try:
                os.unlink(self.state_path)
            except OSError:
                pass


# -- finding or starting the shared mcpzip ------------------------------------------------


def running(place: Place, secret: str) -> dict | None:
    """The state of the shared mcpzip when it answers, else None."""
    state = place.read_state()
    if state is None:
        return None
    try:
        status = _get_status(state["port"], secret)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    return {**state, **status} if status.get("pid") == state["pid"] else None


def ensure_running(place: Place, secret: str) -> dict:
    """The state of the shared mcpzip of *place*, started first when none answers."""
    found = running(place, secret)
    if found is not None:
        return found
    import fcntl

    place.ensure_dir()
    with open(place.lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second client starting now waits here, then finds ours
        found = running(place, secret)
        if found is not None:
            return found
        child = _start(place)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = running(place, secret)
            if found is not None:
                return found
            if child.poll() is not None:
                break
            time.sleep(0.05)  # polling a file another process writes; bounded by START_TIMEOUT
    raise SharingError(f"the shared mcpzip did not start; its log is {place.log_path}")


def _start(place: Place) -> subprocess.Popen:
    root = os.path.dirname(os.path.dirname(os.path.abspath(mcpzip.__file__)))
    code = "import sys; sys.path.insert(0, sys.argv.pop(1)); from mcpzip.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, root, "serve", "--http", "127.0.0.1:0", "--config", place.config_path]
    log_fd = os.open(place.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        log.info("starting the shared mcpzip (log %s)", place.log_path)
        # Its own session: it outlives the client that started it, and a
        # signal to that client's process group does not reach it.
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_fd,
                                start_new_session=True, close_fds=True)  # fmt: skip
    finally:
        os.close(log_fd)


def _get_status(port: int, secret: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT)
    try:
        conn.request("GET", "/status", headers={"Authorization": f"Bearer {secret}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        status = json.loads(body)
        if not isinstance(status, dict):
            raise ValueError("not an object")
        return status
    finally:
        conn.close()


# -- the relay ------------------------------------------------------------------------------


_NOT_OWED = object()  # _answer: no client request waits for this answer


# An answer as the shared mcpzip writes it (compact, "id" before "result" or
# "error"); its requests and notifications have a "method" there.  Matched
# on the head of an event only: a result may be megabytes.
_ANSWER_HEAD = re.compile(rb'\{"jsonrpc":"2\.0","id":(?:-?\d+|"(?:[^"\\]|\\.)*"),"(?:result|error)":')


def _is_answer(data: bytes) -> bool:
    return _ANSWER_HEAD.match(data, 0, 1024) is not None


class _Gone(Exception):
    """The shared mcpzip (or our session in it) is gone; the message was not taken."""


class StdioRelay:
    """stdin/stdout of one client ↔ the shared mcpzip's Streamable HTTP endpoint.

    Messages are delivered in the order the client wrote them: each is posted
    only once the shared mcpzip has taken the one before (a request's answer
    headers come once it is accepted), so a cancellation never overtakes the
    request it cancels.  Answers are read on threads of their own.
    """

    def __init__(self, place: Place, stdin, stdout, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:  # noqa: ANN001
        """A line longer than *max_message_bytes* is answered here, never held whole."""
        self.place = place
        self.max_message_bytes = max_message_bytes
        self.stdin = stdin
        self.stdout = stdout
        self.secret = place.secret()
        self._out_lock = threading.Lock()  # keeps each line whole on stdout
        self._lock = threading.Lock()  # guards _session, _listener, _owed and _idle
        self._all_answered = threading.Condition(self._lock)  # _owed fell to 0
        self._port: int | None = None  # written on the stdin thread only
        self._session: str | None = None
        self._initialize: bytes | None = None  # replayed after a restart; stdin thread only
        self._listener: threading.Thread | None = None
        self._owed = 0  # answers being read
        self._idle: list[http.client.HTTPConnection] = []  # kept-alive connections, free for the next post

    def run(self) -> int:
        self._port = ensure_running(self.place, self.secret)["port"]
        limit = self.max_message_bytes
        for line, size in jsonrpc.read_lines(self.stdin, limit):
            if size > limit:  # answered here, as serve does, never sent on
                log.warning("refused a message of %d bytes from the client (max_message_bytes is %d)", size, limit)
                self._write(jsonrpc.encode(jsonrpc.too_long(line, size, limit)))
            elif line.strip():
                self._dispatch(line)
        self._finish()
        return 0

    def _dispatch(self, line: bytes) -> None:
        try:
            message = jsonrpc.decode(line)  # never a RecursionError, however deep
        except ValueError:
            message = None
        is_request = isinstance(message, dict) and "method" in message and "id" in message
        if is_request and message.get("method") == "initialize":
            self._initialize = line
        try:
            conn, response = self._deliver(line)
        except (_Gone, SharingError) as e:
            self._refuse(message, str(e))
            return
        if not is_request:
            self._answer(conn, response)
            return
        with self._lock:
            self._owed += 1
        # A bare thread: threading.Thread.start() waits for the thread to run,
        # which every call would pay for.
        _thread.start_new_thread(self._answer, (conn, response, True, message["id"]))

    def _deliver(self, line: bytes) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """POST *line* until the shared mcpzip has taken it, reconnecting once if it is gone."""
        try:
            return self._post(line)
        except _Gone:
            self._reconnect()
            return self._post(line)

    def _post(self, line: bytes) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        with self._lock:
            session = self._session
            reused = self._idle.pop() if self._idle else None
        headers = {"Content-Type": "application/json", "Accept": ACCEPT, "Authorization": f"Bearer {self.secret}"}
        if session:
            headers["Mcp-Session-Id"] = session
        try:
            conn, response = self._send(reused, line, headers)
        except OSError:
            if reused is None:
                raise
            # A kept-alive connection the server had closed meanwhile: a new one.
            conn, response = self._send(None, line, headers)
        if response.status == 404:
            response.read()
            conn.close()
            raise _Gone("the shared mcpzip no longer knows this session")
        new_session = response.getheader("Mcp-Session-Id")
        if new_session:
            self._opened(new_session)
        return conn, response

    def _send(self, conn: http.client.HTTPConnection | None, line: bytes,
              headers: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:  # fmt: skip
        fresh = conn is None
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=CONNECT_TIMEOUT)
        try:
            conn.request("POST", "/mcp", body=line, headers=headers)
            conn.sock.settimeout(None)  # a call may take as long as its own timeout says
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            if fresh:
                raise _Gone(f"the shared mcpzip is not answering ({e})") from e
            raise OSError(str(e)) from e

    def _answer(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, show: bool = True,
                owed: Any = _NOT_OWED) -> None:  # fmt: skip
        """Copy what comes back to stdout (not a replay's own answer: *show* false).

        *owed* is the id of the client's request this is the answer to
        (counted in _owed): when the shared mcpzip goes away before the answer
        came, the client gets an error in its place, so that every request
        has exactly one answer.
        """
        answered = False
        try:
            kind = (response.getheader("Content-Type") or "").split(";")[0].strip()
            if kind == "text/event-stream":
                for data in _events(response):
                    if show or b'"method"' in data:
                        self._write(data)
                    answered = answered or _is_answer(data)
            else:
                body = response.read().strip()
                if show and body and response.status != 202:
                    self._write(body)
                    answered = True
        except (OSError, http.client.HTTPException) as e:
            log.warning("the shared mcpzip broke off an answer: %s", e)
            conn.close()
        finally:
            if owed is not _NOT_OWED and not answered:
                self._fail(owed, "the shared mcpzip went away during this request; it starts again with the next message")
            with self._lock:
                if owed is not _NOT_OWED:
                    self._owed -= 1
                    self._all_answered.notify_all()
                if response.isclosed() and not response.will_close and conn.sock is not None:
                    self._idle.append(conn)  # read to its end: free for the next message
                else:
                    conn.close()

    def _opened(self, session: str) -> None:
        with self._lock:
            changed = session != self._session
            self._session = session
            if changed or self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._listen, args=(self._port, session),
                                                  name="mcpzip-shared-listen", daemon=True)  # fmt: skip
                self._listener.start()

    def _listen(self, port: int, session: str) -> None:
        """The server's messages outside any request (changed lists, log messages), until the session ends."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT)
        try:
            conn.request("GET", "/mcp", headers={"Accept": "text/event-stream", "Mcp-Session-Id": session,
                                                 "Authorization": f"Bearer {self.secret}"})  # fmt: skip
            conn.sock.settimeout(None)
            response = conn.getresponse()
            if response.status == 200:
                for data in _events(response):
                    self._write(data)
        except (OSError, http.client.HTTPException):
            pass  # the next message notices and reconnects
        finally:
            conn.close()

    def _reconnect(self) -> None:
        """Find (or start) the shared mcpzip again and open a session like the old one."""
        log.info("the shared mcpzip went away; reconnecting")
        with self._lock:
            self._session = None
        self._port = ensure_running(self.place, self.secret)["port"]
        if self._initialize is None:
            return
        try:
            # The answer to a replayed initialize is not the client's to see.
            self._answer(*self._post(self._initialize), show=False)
            self._answer(*self._post(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'), show=False)
        except _Gone as e:
            raise SharingError(str(e)) from e

    def _refuse(self, message: object, reason: str) -> None:
        if isinstance(message, dict) and "method" in message and "id" in message:
            self._fail(message["id"], reason)
        else:
            log.warning("%s", reason)

    def _fail(self, rid: Any, reason: str) -> None:
        """The one answer to request *rid*: an error saying *reason*."""
        self._write(jsonrpc.encode(jsonrpc.error(rid, jsonrpc.INTERNAL_ERROR, f"Internal error: {reason}")))
        log.warning("%s", reason)

    def _write(self, data: bytes) -> None:
        with self._out_lock:
            try:
                self.stdout.write(data.replace(b"\n", b"") + b"\n")
                self.stdout.flush()
            except (OSError, ValueError):
                pass  # the client is gone

    def _finish(self) -> None:
        """Answers still owed get :data:`DRAIN_SECONDS`; then the session is ended."""
        with self._lock:
            self._all_answered.wait_for(lambda: self._owed == 0, DRAIN_SECONDS)
            session = self._session
        if self._port and session:
            conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=CONNECT_TIMEOUT)
            try:
                conn.request("DELETE", "/mcp", headers={"Mcp-Session-Id": session, "Authorization": f"Bearer {self.secret}"})
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()


def _events(response: http.client.HTTPResponse):  # noqa: ANN202
    """The ``data`` of each event of a server-sent event stream (the only field mcpzip sends)."""
    data: list[bytes] = []
    for raw in iter(response.readline, b""):
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield b"\n".join(data)
            data = []
        elif line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
    if data:
        yield b"\n".join(data)
