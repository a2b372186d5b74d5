"""A hostile (or merely sloppy) client against the shared mcpzip: ``serve --http`` and the ``serve --shared`` relay.

Every request gets exactly one answer, the shared mcpzip keeps serving, and a
client's mistake never puts a traceback in its log.
"""

from __future__ import annotations

import json
import os
import re
import signal
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
        f"DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\n"
        f"Mcp-Session-Id: unknown\r\nContent-Length: {len(smuggled)}\r\n\r\n",
        f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n",
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


def test_bodies_chunked_cut_short_or_with_a_bad_length_get_a_clear_answer(front):
    session = open_session(front)
    top = head(front, session).replace(b"\r\n\r\n", b"\r\n")  # no Content-Length; headers still open
    chunked = top + b"Transfer-Encoding: chunked\r\n\r\n"
    # A chunked body is read (it was refused with 411, and then its chunks were read as requests).
    pieces = [b'{"jsonrpc": "2.0",', b' "id": 8, "method": "ping"}']
    got = talk(front, chunked + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nX-T: 1\r\n\r\n")
    assert b" 200 " in got.split(b"\r\n")[0] and got.endswith(b'{"jsonrpc":"2.0","id":8,"result":{}}\n')
    for data, status, words in [
        (chunked + b"zz\r\n{}\r\n0\r\n\r\n", b" 400 ", b"a chunk of the body has no valid size"),
        (chunked + b"ffffffffff\r\n{}", b" 413 ", b"Payload Too Large"),
        (top + b"Transfer-Encoding: gzip\r\n\r\n{}", b" 501 ", b"Not Implemented: Transfer-Encoding 'gzip'"),
        (top + b"Content-Length: -1\r\n\r\n{}", b" 400 ", b"Bad Request: a negative Content-Length"),
        (top + b"\r\n{}", b" 411 ", b"Length Required"),
    ]:
        got = talk(front, data, until_closed=True)
        assert got.count(b"HTTP/1.1 ") == 1 and status in got.split(b"\r\n")[0] and words in got, data
    # A body cut short (the client closed its side) is answered, not waited for.
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as s:
        s.sendall(top + b"Content-Length: 100\r\n\r\n{}")
        s.shutdown(socket.SHUT_WR)
        got = b"".join(iter(lambda: s.recv(65536), b""))
    assert b" 400 " in got.split(b"\r\n")[0] and b"the body ended after 2 of its 100 bytes" in got
    assert ping_works(front, session)


def test_a_request_that_stalls_holds_its_thread_only_until_the_arrival_bound():
    from mcpzip.downstream.httpfront import HttpFront

    server = HttpFront("127.0.0.1", 0, "s3cret", None, None, None, idle_minutes=5, max_body=4096,
                       status=lambda: {"pid": 0}, arrival_seconds=0.5)  # fmt: skip
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    try:
        auth = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer s3cret\r\n".encode()
        stalled = [auth + b"Content-Length: 100\r\n\r\n{}", auth[:20], b"P", b""] * 5  # a body, a head, a byte, nothing
        socks = []
        for data in stalled:  # each sends at once: the bound for beginning a request is 0.5 s too
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            socks[-1].sendall(data)
        # Slowloris: a byte every 50 ms, never a whole head.
        trickle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        trickle.setblocking(False)
        started = time.monotonic()
        answer = b""
        for byte in (auth + b"X-Slow: " + b"a" * 1000):
            try:
                trickle.send(bytes([byte]))
                answer += trickle.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                break
            if answer:
                break
            time.sleep(0.05)  # the client's pace is what is tested
        assert answer and time.monotonic() - started < 5
        trickle.setblocking(True)
        while True:
            piece = trickle.recv(65536)
            if not piece:
                break
            answer += piece
        assert b" 408 " in answer.split(b"\r\n")[0] and b"did not arrive whole" in answer
        for s, data in zip(socks, stalled):
            got = s.recv(65536)
            if data:
                assert b" 408 " in got.split(b"\r\n")[0] and b"did not arrive whole within 0.5 s" in got, (data, got)
            else:
                assert got == b""  # closed: a connection that never begins a request holds no thread for long
            s.close()
        trickle.close()

        def handlers() -> list:
            return [t for t in threading.enumerate() if "process_request" in t.name]

        deadline = time.monotonic() + 10
        while handlers() and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded poll for the handler threads to end
        assert not handlers()
    finally:
        server.stop()
        serving.join(10)


def test_sessions_are_capped_with_a_clear_503_and_a_closed_one_makes_room(front):
    MAX_SESSIONS = 256  # noqa: N806  (docs/sharing.md)
    sessions = [open_session(front) for _ in range(MAX_SESSIONS)]
    status, headers, body = front.post(initialize())
    assert status == 503 and headers.get("Retry-After") == "60"
    assert f"Service Unavailable: {MAX_SESSIONS} client sessions are open".encode() in body
    assert ping_works(front, sessions[0])  # the open ones go on
    assert talk(front, (f"DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\n"
                        f"Mcp-Session-Id: {sessions[1]}\r\nContent-Length: 0\r\n\r\n").encode()).startswith(b"HTTP/1.1 200")  # fmt: skip
    assert open_session(front)


def test_abandoned_streams_leave_no_thread_behind(front):
    session = open_session(front)

    def threads() -> int:
        return len(os.listdir(f"/proc/{front.proc.pid}/task"))

    before = threads()
    get = (f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\n"
           f"Accept: text/event-stream\r\nMcp-Session-Id: {session}\r\n\r\n").encode()  # fmt: skip
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", front.port), timeout=10) as s:
            s.sendall(get)
            assert s.recv(65536).startswith(b"HTTP/1.1 200")  # the stream is open
    deadline = time.monotonic() + 5  # an open stream looks for its client every second
    while threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)  # bounded poll for the stream threads to end
    assert threads() <= before  # each held its thread until a keepalive failed (15 to 30 s)
    assert ping_works(front, session)


# -- the relay (serve --shared) ------------------------------------------------------------------------


@pytest.fixture
def relay_config(tmp_path):
    config = write_config(tmp_path / "cfg", {"fx": fixture_server("fx")}, shared_idle_minutes=5)
    yield config
    kill_everything_of(config)


def test_the_relay_answers_every_line_a_client_gets_wrong_and_goes_on(relay_config, mcpzip):
    client = mcpzip(relay_config, args=("--shared",))
    client.initialize()
    junk = [b"hello", b"[" * 100_000, b"[1, 2]", b'"x"', b'{"jsonrpc": "2.0", "id": [1], "method": "ping"}']
    for line in junk:
        client.send_raw(line + b"\n")  # 100,000 [ ended the relay with a RecursionError
    assert client.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "still here"}}) == "still here"
    errors = [client.stray.get(timeout=10) for _ in junk]
    assert [e["error"]["code"] for e in errors] == [-32700, -32700, -32600, -32600, -32600]
    assert client.stray.empty() and "Traceback" not in client.stderr
    assert client.close() == 0


def test_calls_running_when_the_shared_mcpzip_dies_get_one_error_each(relay_config, mcpzip):
    from test_sharing import shared_pids

    client = mcpzip(relay_config, args=("--shared",))
    client.initialize()
    slow = {"name": "execute_tool", "arguments": {"name": "fx__progress", "arguments": {"steps": 100, "ms": 100}}}
    ids = [client.start_request("tools/call", {**slow, "_meta": {"progressToken": f"t{i}"}}) for i in range(2)]
    running = {client.notifications.get(timeout=20)["params"]["progressToken"] for _ in range(6)}
    assert running == {"t0", "t1"}  # both calls are under way in the shared mcpzip
    [pid] = shared_pids(relay_config)
    os.kill(pid, signal.SIGKILL)
    for rid in ids:  # were never answered
        assert "the shared mcpzip went away during this request" in client.response(rid)["error"]["message"]
    assert client.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "again"}}) == "again"
    assert client.close() == 0
    answers = [json.loads(line)["id"] for line in client.raw_lines if b'"method"' not in line]
    assert answers.count(ids[0]) == 1 and answers.count(ids[1]) == 1  # exactly once


def test_the_relay_answers_a_line_over_max_message_bytes_by_its_id_without_holding_it(tmp_path, mcpzip):
    config = write_config(tmp_path / "cfg", {"fx": fixture_server("fx")}, shared_idle_minutes=5, max_message_bytes=65536)
    try:
        client = mcpzip(config, args=("--shared",))
        client.initialize()
        params = {"x": "a" * 100_000}
        size = len(json.dumps({"jsonrpc": "2.0", "id": 77, "method": "ping", "params": params})) + 1
        answer = client.response(client.start_request("ping", params, id=77))  # was answered with id null
        assert answer["error"]["message"] == (f"Invalid Request: the message is {size} bytes, "
                                              "more than max_message_bytes (65536)")  # fmt: skip
        assert client.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "x"}}) == "x"
        assert client.close() == 0
    finally:
        kill_everything_of(config)


# -- fuzzing --------------------------------------------------------------------------------------------


def test_random_post_bodies_get_one_answer_each_and_the_shared_mcpzip_keeps_serving(tmp_path):
    """Hypothesis posts the client fuzzer's shapes and bytes (fixed seed; MCPZIP_FUZZ_EXAMPLES runs more)."""
    from hypothesis import HealthCheck, given, seed, settings

    import test_fuzz_client as fuzz
    from mcpzip.base import jsonrpc

    config = write_config(tmp_path / "cfg", {"fx": fixture_server("fx")}, shared_idle_minutes=5,
                          call_timeout_seconds=fuzz.CALL_TIMEOUT)  # fmt: skip
    front = Front(config)
    try:
        session = open_session(front)
        fresh = iter(range(10**9))

        @seed(20261204)
        @settings(max_examples=int(os.environ.get("MCPZIP_FUZZ_EXAMPLES", "300")), deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(body=fuzz.lines, with_session=fuzz.st.integers(0, 5))
        def example(body: bytes, with_session: int) -> None:
            status, answer = post_raw(front, body, session if with_session else None)
            assert status in (200, 202, 400, 404, 409, 413), (status, answer)
            try:
                kind = jsonrpc.kind(jsonrpc.decode(body))
            except ValueError:
                kind = "not JSON"
            if with_session and kind in ("invalid", "not JSON"):
                assert status == 400, (status, answer)  # said to be accepted, and its error dropped
            if status == 202:
                assert answer == b"" and kind in ("notification", "response")
            else:
                message = json.loads(answer)  # always one JSON-RPC message, never a page of HTML
                assert message["jsonrpc"] == "2.0" and ("result" in message) != ("error" in message)
            rid = f"fresh-{next(fresh)}"
            status, answer = post_raw(front, json.dumps({"jsonrpc": "2.0", "id": rid, "method": "ping"}).encode(), session)
            assert status == 200 and json.loads(answer) == {"jsonrpc": "2.0", "id": rid, "result": {}}

        example()
        assert front.post(initialize())[0] == 200
    finally:
        front.stop()
        kill_everything_of(config)
    assert "Traceback" not in front.stderr_text


# -- clients that share the stateless session, and sessions that end -------------------------------------


MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


def test_two_stateless_clients_may_use_the_same_id_at_once(front):
    def sleep(ms: int) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": ms}}, "_meta": MODERN_META}}).encode()

    answers: dict = {}
    slow = threading.Thread(target=lambda: answers.update(a=post_raw(front, sleep(1500))))
    slow.start()
    time.sleep(0.3)  # not synchronisation: B's id 1 must be refused neither way, whichever comes first
    answers["b"] = post_raw(front, sleep(10))  # was 409 "id already in use" (before that: A never answered)
    slow.join(20)
    for who, ms in (("a", 1500), ("b", 10)):
        status, body = answers[who]
        assert status == 200, (who, body)
        message = json.loads(body)
        assert message["id"] == 1 and message["result"]["content"][0]["text"] == f"slept {ms} ms"


def test_a_call_whose_session_ends_still_gets_one_answer_on_its_stream(front):
    session = open_session(front)
    call = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": 3000}}}}).encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", front.port), timeout=20) as s:
        s.sendall(head(front, session, len(call)).replace(b"Accept: application/json", b"Accept: text/event-stream") + call)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")  # the stream is open: the call runs
        delete = (f"DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\n"
                  f"Mcp-Session-Id: {session}\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip
        assert talk(front, delete).startswith(b"HTTP/1.1 200")
        got = b""
        while not got.endswith(b"0\r\n\r\n"):
            piece = s.recv(65536)
            assert piece, got
            got += piece
    events = [json.loads(line[6:]) for line in got.split(b"\n") if line.startswith(b"data: ")]
    assert events == [{"jsonrpc": "2.0", "id": 7, "error": {"code": -32603, "message": "Internal error: the session ended"}}]


def test_a_client_that_writes_fast_and_leaves_mid_calls_gets_every_answer_once(relay_config, mcpzip):
    client = mcpzip(relay_config, args=("--shared",))
    client.initialize()
    calls = [{"jsonrpc": "2.0", "id": f"c{i}", "method": "tools/call", "params": {"name": "execute_tool", "arguments": {
        "name": "fx__sleep" if i % 10 == 0 else "fx__echo", "arguments": {"ms": 300, "text": str(i)}}}} for i in range(300)]
    client.send_raw(b"".join(json.dumps(c).encode() + b"\n" for c in calls))  # all at once, then stdin closes
    assert client.close(timeout=30) == 0  # answers owed had their drain time
    answered = [json.loads(line)["id"] for line in client.raw_lines[1:]]
    assert sorted(answered) == sorted(c["id"] for c in calls)  # each exactly once
    assert "Traceback" not in client.stderr


def test_progress_of_a_stateless_call_reaches_only_its_own_stream(front):
    def streamed(body: bytes) -> bytes:
        data = head(front, None, len(body)).replace(b"Accept: application/json", b"Accept: application/json, text/event-stream")
        return _stream(front, data + body)

    a = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "execute_tool", "arguments": {"name": "fx__progress", "arguments": {"steps": 4, "ms": 300}},
        "_meta": {**MODERN_META, "progressToken": "A's token"}}}).encode()  # fmt: skip
    b = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": 2000}}, "_meta": MODERN_META}}).encode()
    got: dict = {}
    threads = [threading.Thread(target=lambda k=k, body=body: got.update({k: streamed(body)})) for k, body in (("a", a), ("b", b))]
    for t in threads:
        t.start()
        time.sleep(0.2)  # B's call starts after A's: the newest stream, where A's progress went
    for t in threads:
        t.join(30)
    assert got["a"].count(b"notifications/progress") == 4  # A got none of its own progress
    assert b"A's token" not in got["b"]  # B was shown all of it


def _stream(front: Front, data: bytes) -> bytes:
    """Send one request; its whole event stream (up to the chunked body's end)."""
    with socket.create_connection(("127.0.0.1", front.port), timeout=20) as s:
        s.sendall(data)
        got = b""
        while not got.endswith(b"0\r\n\r\n"):
            piece = s.recv(65536)
            if not piece:
                break
            got += piece
        return got


def test_the_session_of_stateless_clients_cannot_be_named_read_or_ended(front):
    ping = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": MODERN_META}}).encode()
    assert post_raw(front, ping)[0] == 200  # the stateless session exists now
    auth = f"Host: 127.0.0.1:{front.port}\r\nAuthorization: Bearer {front.secret}\r\nMcp-Session-Id: modern\r\n"
    # Its backlog holds what no single stateless client could be told: no stream may read it.
    assert talk(front, f"GET /mcp HTTP/1.1\r\n{auth}Accept: text/event-stream\r\n\r\n".encode()).startswith(b"HTTP/1.1 404")
    assert talk(front, f"DELETE /mcp HTTP/1.1\r\n{auth}Content-Length: 0\r\n\r\n".encode()).startswith(b"HTTP/1.1 404")
    assert post_raw(front, b'{"jsonrpc": "2.0", "id": 4, "method": "ping"}', "modern")[0] == 404
