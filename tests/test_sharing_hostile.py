"""A hostile (or merely sloppy) client against the shared mcpzip: ``serve --http`` and the ``serve --shared`` relay.

Every request gets exactly one answer, the shared mcpzip keeps serving, and a
client's mistake never puts a traceback in its log.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time

import pytest

from conftest import fixture_server, write_config
from test_sharing import Front, initialize, kill_everything_of


@pytest.fixture
def front(tmp_path):
    config = write_config(tmp_path / "cfg", {"fx": fixture_server("fx")}, shared_idle_minutes=5)
    started = Front(config)
    yield started
    started.stop()
    kill_everything_of(config)


def talk(front: Front, data: bytes, timeout: float = 10, until_closed: bool = False) -> bytes:
    """Send raw bytes on a new connection; what came back once one whole answer (or, *until_closed*, everything) arrived."""
    with socket.create_connection(("127.0.0.1", front.port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                piece = s.recv(65536)
            except socket.timeout:
                break
            if not piece:
                break
            got += piece
            if not until_closed and _whole(got):
                break
        return got


def _whole(got: bytes) -> bool:
    head, sep, body = got.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length: (\d+)", head)
    return bool(sep) and m is not None and len(body) >= int(m.group(1))


def head(front: Front, session: str | None = None, length: int | None = None, extra: str = "") -> bytes:
    lines = [f"POST /mcp HTTP/1.1", f"Host: 127.0.0.1:{front.port}", f"Authorization: Bearer {front.secret}",
             "Content-Type: application/json", "Accept: application/json"]  # fmt: skip
    if session:
        lines.append(f"Mcp-Session-Id: {session}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def post_raw(front: Front, body: bytes, session: str | None = None) -> tuple[int, bytes]:
    got = talk(front, head(front, session, len(body)) + body)
    status = int(got.split(b" ", 2)[1])
    return status, got.partition(b"\r\n\r\n")[2]


def open_session(front: Front) -> str:
    status, headers, _ = front.post(initialize())
    assert status == 200
    return headers["Mcp-Session-Id"]


def ping_works(front: Front, session: str, rid: int = 99) -> bool:
    status, body = post_raw(front, json.dumps({"jsonrpc": "2.0", "id": rid, "method": "ping"}).encode(), session)
    return status == 200 and json.loads(body) == {"jsonrpc": "2.0", "id": rid, "result": {}}


# -- bodies -----------------------------------------------------------------------------------------


NOT_MESSAGES = [
    (b"[1, 2]", b"batches are not supported"),
    (b'[{"jsonrpc": "2.0", "id": 5, "method": "ping"}]', b"batches are not supported"),
    (b'"just a string"', b"not a JSON-RPC 2.0 message"),
    (b"null", b"not a JSON-RPC 2.0 message"),
    (b'{"jsonrpc": "2.0", "id": [1], "method": "ping"}', b"not a JSON-RPC 2.0 message"),
    (b'{"jsonrpc": "2.0", "id": {"a": 1}, "result": {}}', b"not a JSON-RPC 2.0 message"),
    (b'{"id": 3, "method": "ping"}', b"not a JSON-RPC 2.0 message"),
]


def test_a_body_that_is_no_message_gets_a_clear_400_in_a_session(front):
    session = open_session(front)
    for body, words in NOT_MESSAGES:
        status, answer = post_raw(front, body, session)
        assert status == 400 and words in answer, body  # was 202 Accepted, and the error dropped
        assert json.loads(answer)["error"]["code"] == -32600
        assert ping_works(front, session)


def test_a_second_request_with_an_id_in_use_is_refused_and_the_first_still_gets_its_answer(front):
    session = open_session(front)
    slow = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": 800}}}}  # fmt: skip
    first: dict = {}
    t = threading.Thread(target=lambda: first.update(answer=post_raw(front, json.dumps(slow).encode(), session)))
    t.start()
    deadline = time.monotonic() + 10
    # Repeated until the slow call is in flight: only then is id 5 in use.
    while True:
        status, answer = post_raw(front, b'{"jsonrpc": "2.0", "id": 5, "method": "ping"}', session)
        if status == 409 or time.monotonic() > deadline:
            break
    assert status == 409 and b"id already in use" in answer
    t.join(15)
    status, answer = first["answer"]  # was never answered: the ping's exchange took its place
    assert status == 200 and json.loads(answer)["result"]["content"][0]["text"] == "slept 800 ms"


def test_a_refused_body_is_never_read_as_the_next_request(front):
    session = open_session(front)
    smuggled = (f"DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\n"
                f"Mcp-Session-Id: {session}\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip
    for refused in (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nContent-Length: {len(smuggled)}\r\n\r\n",  # no secret
        f"POST /elsewhere HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nContent-Length: {len(smuggled)}\r\n\r\n",
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\n"
        f"Content-Length: x{len(smuggled)}\r\n\r\n",
    ):
        got = talk(front, refused.encode() + smuggled, until_closed=True)
        assert got.count(b"HTTP/1.1 ") == 1, got  # one answer: the body was not served as a request
    assert ping_works(front, session)  # the smuggled DELETE never ended the session


def test_a_client_that_resets_its_connection_leaves_no_traceback(front):
    session = open_session(front)
    for data in (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1", b""):
        s = socket.create_connection(("127.0.0.1", front.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
        s.sendall(data)
        s.close()
    assert ping_works(front, session)
    front.stop()
    assert "Traceback" not in front.stderr_text


def test_host_names_are_compared_without_regard_to_case(front):
    session = open_session(front)
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    for host, want in ((f"LOCALHOST:{front.port}", b" 200 "), (f"LocalHost:{front.port}", b" 200 "),
                       ("127.0.0.1", b" 403 "), (f"localhost.:{front.port}", b" 403 ")):  # fmt: skip
        data = head(front, session, len(body)).replace(f"Host: 127.0.0.1:{front.port}".encode(), f"Host: {host}".encode())
        assert want in talk(front, data + body).split(b"\r\n")[0], host
