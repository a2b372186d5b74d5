"""Streamable HTTP under concurrency: a restarted server's new session takes over cleanly from
many calls at once, and close() stops a standing stream that is reconnecting."""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import clean_env, write_config

pytest.importorskip("mcp")
pytest.importorskip("requests")

CALLS = 200


def _traces(server) -> list[tuple[str, str]]:
    return [tuple(line.split()[1:3]) for line in server.stderr_lines if line.startswith("TRACE ")]


@pytest.mark.parametrize("answer", ["404", "400"])
def test_many_calls_while_the_server_restarts_take_one_new_session(tmp_path, mcpzip, peer, answer):
    args = ("--legacy-only", "--trace-sessions") + (("--session-400",) if answer == "400" else ())
    server = peer(*args)
    config = write_config(tmp_path, {"remote": {"type": "http", "url": server.url("/mcp")}})
    proc = mcpzip(config, clean_env(MCPZIP_LOG="info"))
    proc.initialize()
    assert proc.execute("remote__echo", {"text": "warm"})["content"][0]["text"] == "warm"
    old_sessions = {sid for method, sid in _traces(server) if sid != "-"}
    assert len(old_sessions) == 1
    restarted = server.restarted()
    try:
        ids = [proc.start_request("tools/call", {"name": "execute_tool", "arguments": {
            "name": "remote__echo", "arguments": {"text": f"call {i}"}}}) for i in range(CALLS)]  # fmt: skip
        for i, request_id in enumerate(ids):
            response = proc.response(request_id, timeout=60)
            assert "result" in response, response
            result = response["result"]
            assert not result.get("isError"), (result, proc.stderr)
            assert result["content"][0]["text"] == f"call {i}"
        # Exactly one answer each: nothing more arrived for any id, nothing for ids never sent.
        for request_id in ids:
            with pytest.raises(queue.Empty):
                proc._responses[request_id].get_nowait()
        assert proc.stray.empty()
        traces = _traces(restarted)
        initializes = [n for n, (method, sid) in enumerate(traces) if method == "POST" and sid == "-"]
        assert len(initializes) == 1, traces  # one new session for all 200 calls
        stale_after = [t for t in traces[initializes[0] + 1 :] if t[1] in old_sessions]
        assert stale_after == [], f"{len(stale_after)} requests on the old session after the new initialize"
        assert f"remote: the server no longer knows this session (HTTP {answer})" in proc.stderr
    finally:
        restarted.stop()
    assert proc.close() == 0


class _ReconnectingServer:
    """A Streamable HTTP server whose standing stream ends at once, and whose second GET is
    answered only after the client has sent DELETE: close() then meets a listener that is
    opening a new stream."""

    def __init__(self) -> None:
        self.second_get = threading.Event()
        self.deleted = threading.Event()
        self.finish = threading.Event()
        self.gets = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if message.get("method") != "initialize":
                    self.send_response(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {
                    "protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "f", "version": "0"}}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Mcp-Session-Id", "session-1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_GET(self) -> None:
                fake.gets += 1
                if fake.gets >= 2:
                    fake.second_get.set()
                    fake.deleted.wait(10)  # the listener is mid-reconnect when close() runs
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"retry: 10\ndata:\n\n")
                self.wfile.flush()
                if fake.gets >= 2:
                    fake.finish.wait(30)  # a stream that stays open

            def do_DELETE(self) -> None:
                fake.deleted.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mcp"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.finish.set()
        self.deleted.set()
        self.server.shutdown()
        self.server.server_close()


def test_close_during_a_listener_reconnect_returns_in_time_and_leaves_no_thread():
    from mcpzip.base.config import ServerConfig
    from mcpzip.upstream.transports.http import LISTENER_JOIN, HttpTransport

    fake = _ReconnectingServer()
    try:
        transport = HttpTransport(ServerConfig(name="fake", type="http", url=fake.url))
        answers: queue.Queue = queue.Queue()
        transport.start(answers.put, lambda reason: None)
        transport.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
        assert answers.get(timeout=10)["id"] == 1
        transport.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert fake.second_get.wait(10), "the standing stream did not reconnect"
        started = time.monotonic()
        transport.close()
        took = time.monotonic() - started
        listener = transport._listener
        assert listener is not None
        listener.join(LISTENER_JOIN)  # what close() itself allows; then it must be gone
        assert not listener.is_alive(), "close() left the listener blocked on the stream it had just opened"
        assert took < LISTENER_JOIN + 1.0
        assert not [t for t in threading.enumerate() if t.name.startswith("mcpzip-fake")]
        transport.close()  # a second close does nothing
    finally:
        fake.stop()


LIMIT = 100_000


@pytest.mark.parametrize("args, kind", [
    (("--legacy-only", "--json-response"), "http"),  # one JSON body per answer
    (("--legacy-only",), "http"),  # an event stream per answer
    ((), "http"),  # modern requests
    (("--transport", "sse"), "sse"),  # every answer on the one legacy stream
], ids=["json-body", "response-stream", "modern", "legacy-sse"])  # fmt: skip
def test_an_answer_over_max_message_bytes_fails_that_call_only(tmp_path, mcpzip, peer, args, kind):
    server = peer(*args)
    url = server.url("/sse" if kind == "sse" else "/mcp")
    config = write_config(tmp_path, {"remote": {"type": kind, "url": url}}, max_message_bytes=LIMIT)
    proc = mcpzip(config, clean_env(MCPZIP_LOG="info"))
    proc.initialize()
    assert proc.execute("remote__big", {"size": LIMIT // 4})["content"][0]["text"] == "x" * (LIMIT // 4)
    started = time.monotonic()
    result = proc.execute("remote__big", {"size": LIMIT * 3}, timeout=30)
    assert result["isError"]
    assert "larger than max_message_bytes (100000 bytes)" in result["content"][0]["text"]
    assert time.monotonic() - started < 10  # answered at once, not after the call's timeout
    # The same connection goes on serving.
    assert proc.execute("remote__echo", {"text": "still here"})["content"][0]["text"] == "still here"
    assert "remote: connection lost" not in proc.stderr
    assert proc.close() == 0
