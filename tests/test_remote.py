"""Remote upstreams over Streamable HTTP and HTTP+SSE, against the official SDK server on 127.0.0.1."""

from __future__ import annotations

import base64
import time

import pytest
from conftest import clean_env, run_cli, write_config

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _check_calls(proc) -> None:
    """Tools are found, and results come back exactly as the server made them."""
    proc.initialize()
    found = proc.text("search_tools", {"query": "weather structured"})
    assert "remote__weather" in found
    weather = proc.execute("remote__weather", {"city": "Oslo"})
    assert weather["content"] == [
        {"type": "text", "text": "Oslo: 21.5C"},
        {"type": "image", "data": PNG, "mimeType": "image/png"},
    ]
    assert weather["structuredContent"] == {"city": "Oslo", "temp_c": 21.5}
    assert not weather.get("isError")
    picture = proc.execute("remote__picture", {"caption": "dot"})
    image = [c for c in picture["content"] if c["type"] == "image"][0]
    assert base64.b64decode(image["data"]) == base64.b64decode(PNG)
    assert proc.execute("remote__echo", {"text": "héllo"})["content"][0]["text"] == "héllo"


@pytest.mark.parametrize(
    "args, era",
    [
        ((), "2026-07-28"),  # dual-era server: the modern probe wins
        (("--legacy-only",), "2025-11-25"),  # refuses modern requests: initialize, session
        (("--legacy-only", "--json-response"), "2025-11-25"),  # JSON bodies instead of event streams
    ],
    ids=["modern", "legacy-sse-responses", "legacy-json-responses"],
)
def test_streamable_http(tmp_path, mcpzip, peer, args, era):
    server = peer(*args)
    config = write_config(tmp_path, {"remote": {"type": "http", "url": server.url("/mcp")}})
    proc = mcpzip(config, clean_env(MCPZIP_LOG="debug"))
    _check_calls(proc)
    assert f"remote: connected ({era}" in proc.stderr
    assert proc.close() == 0
    if era != "2026-07-28":
        # The legacy session was ended with a DELETE when mcpzip stopped.
        assert "Terminating session" in server.stderr


def test_legacy_sse_transport(tmp_path, mcpzip, peer):
    server = peer("--transport", "sse")
    config = write_config(tmp_path, {"remote": {"type": "sse", "url": server.url("/sse")}})
    proc = mcpzip(config)
    _check_calls(proc)
    assert proc.close() == 0


def test_http_url_of_an_sse_server_falls_back_to_sse(tmp_path, mcpzip, peer):
    server = peer("--transport", "sse")
    config = write_config(tmp_path, {"remote": {"type": "http", "url": server.url("/sse")}})
    proc = mcpzip(config, clean_env(MCPZIP_LOG="debug"))
    _check_calls(proc)
    assert "trying the legacy HTTP+SSE transport" in proc.stderr
    assert proc.close() == 0


def test_headers_are_sent_and_turn_oauth_off(tmp_path, peer):
    server = peer("--oauth")
    config = write_config(tmp_path, {"remote": {"type": "http", "url": server.url("/mcp"),
                                                "headers": {"Authorization": "Bearer not-a-real-token"}}})  # fmt: skip
    result = run_cli("call", "remote__echo", '{"text": "x"}', "--config", str(config),
                     env=clean_env(MCPZIP_LOG="debug", HOME=str(tmp_path)))  # fmt: skip
    assert result.returncode == 1
    assert "refused the request with the headers in the config (HTTP 401)" in result.stderr
    assert "not-a-real-token" not in result.stderr
    assert server.stats()["registrations"] == 0  # no OAuth attempted
    assert not (tmp_path / "auth").exists()


@pytest.mark.parametrize("url", ["http://example.com/mcp", "http://10.0.0.1:8080/mcp"])
def test_plain_http_is_refused_for_remote_hosts(tmp_path, url):
    config = write_config(tmp_path, {"remote": {"type": "http", "url": url}})
    started = time.monotonic()
    result = run_cli("list", "--config", str(config))
    assert result.returncode == 1
    assert "refusing plain http://" in result.stdout + result.stderr
    assert time.monotonic() - started < 10  # refused before any connection attempt


def test_unreachable_server_is_a_clear_tool_error(tmp_path, mcpzip):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(tmp_path, {"remote": {"type": "http", "url": f"http://127.0.0.1:{port}/mcp"}})
    proc = mcpzip(config)
    proc.initialize()
    result = proc.execute("remote__echo", {"text": "x"})
    assert result["isError"]
    # The cause itself: which address could not be reached, and how.
    assert f"server remote failed to start: cannot reach http://127.0.0.1:{port}/mcp (connection refused or lost)" in (
        result["content"][0]["text"])
    assert proc.close() == 0


def _wait_for(predicate, proc, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)  # waiting on another process's output: no event to block on


def _legacy_session(tmp_path, mcpzip, peer):
    server = peer("--legacy-only")
    config = write_config(tmp_path, {"remote": {"type": "http", "url": server.url("/mcp")}})
    proc = mcpzip(config, clean_env(MCPZIP_LOG="info"))
    proc.initialize()
    return server, proc


def test_standalone_stream_delivers_server_initiated_messages(tmp_path, mcpzip, peer):
    _, proc = _legacy_session(tmp_path, mcpzip, peer)
    assert proc.execute("remote__announce", {"text": "hello from the GET stream"})["content"][0]["text"] == "announced"
    _wait_for(lambda: "[remote] hello from the GET stream" in proc.stderr, proc)
    assert proc.close() == 0


def test_lost_session_is_initialized_again(tmp_path, mcpzip, peer):
    server, proc = _legacy_session(tmp_path, mcpzip, peer)
    assert proc.execute("remote__echo", {"text": "before"})["content"][0]["text"] == "before"
    server.post("/test/drop-sessions")
    assert proc.execute("remote__echo", {"text": "after"})["content"][0]["text"] == "after"
    assert "the server ended the session" in proc.stderr
    assert server.stderr.count("Created new transport with session ID") == 2
    assert proc.close() == 0


@pytest.mark.parametrize("answer", ["404", "400"])
def test_restarted_server_gets_a_new_session(tmp_path, mcpzip, peer, answer):
    # A restarted server knows no session: the Python SDK says 404, the
    # TypeScript SDK 400 "No valid session ID provided".  Either way the
    # next call starts a new session and succeeds.
    args = ("--legacy-only", "--session-400") if answer == "400" else ("--legacy-only",)
    server = peer(*args)
    config = write_config(tmp_path, {"remote": {"type": "http", "url": server.url("/mcp")}})
    proc = mcpzip(config, clean_env(MCPZIP_LOG="info"))
    proc.initialize()
    assert proc.execute("remote__echo", {"text": "before"})["content"][0]["text"] == "before"
    server = server.restarted()
    try:
        assert proc.execute("remote__echo", {"text": "after"})["content"][0]["text"] == "after"
        assert proc.execute("remote__echo", {"text": "again"})["content"][0]["text"] == "again"
        assert f"remote: the server no longer knows this session (HTTP {answer})" in proc.stderr
        assert server.stderr.count("Created new transport with session ID") == 1
    finally:
        server.stop()
    assert proc.close() == 0


def test_restarted_sse_server_is_connected_again(tmp_path, mcpzip, peer):
    server = peer("--transport", "sse")
    config = write_config(tmp_path, {"remote": {"type": "sse", "url": server.url("/sse")}})
    proc = mcpzip(config, clean_env(MCPZIP_LOG="info"))
    proc.initialize()
    assert proc.execute("remote__echo", {"text": "before"})["content"][0]["text"] == "before"
    server = server.restarted()
    try:
        _wait_for(lambda: "remote: connection lost" in proc.stderr, proc)
        assert proc.execute("remote__echo", {"text": "after"})["content"][0]["text"] == "after"
    finally:
        server.stop()
    assert proc.close() == 0


def _server_everything() -> list[str] | None:
    """How to start Node's @modelcontextprotocol/server-everything, if it is installed here."""
    import os
    import shutil

    script = os.environ.get("MCPZIP_SERVER_EVERYTHING")  # path to its dist/index.js
    node = shutil.which("node")
    if script and node and os.path.isfile(script):
        return [node, script]
    found = shutil.which("mcp-server-everything")
    return [found] if found else None


def _start_everything(command: list[str], port: int):
    import os
    import socket
    import subprocess

    server = subprocess.Popen([*command, "streamableHttp"], env=dict(os.environ, PORT=str(port)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                _stop(server)
                raise AssertionError("server-everything did not start") from None
            time.sleep(0.1)  # waiting for another process to listen


def _stop(server) -> None:
    server.terminate()
    server.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_node_server_everything_over_streamable_http(tmp_path, mcpzip):
    command = _server_everything()
    if command is None:
        pytest.skip("@modelcontextprotocol/server-everything is not installed (optional peer)")
    port = _free_port()
    server = _start_everything(command, port)
    try:
        config = write_config(tmp_path, {"everything": {"type": "http", "url": f"http://127.0.0.1:{port}/mcp"}})
        proc = mcpzip(config)
        proc.initialize()
        assert "everything__echo" in proc.text("search_tools", {"query": "echo message"})
        result = proc.execute("everything__echo", {"message": "hi from mcpzip"})
        assert "hi from mcpzip" in result["content"][0]["text"]
        assert proc.close() == 0
    finally:
        _stop(server)


def test_node_server_everything_restarted(tmp_path, mcpzip):
    command = _server_everything()
    if command is None:
        pytest.skip("@modelcontextprotocol/server-everything is not installed (optional peer)")
    port = _free_port()
    server = _start_everything(command, port)
    try:
        config = write_config(tmp_path, {"everything": {"type": "http", "url": f"http://127.0.0.1:{port}/mcp"}})
        proc = mcpzip(config, clean_env(MCPZIP_LOG="info"))
        proc.initialize()
        assert "before" in proc.execute("everything__echo", {"message": "before"})["content"][0]["text"]
        _stop(server)
        server = _start_everything(command, port)
        assert "after" in proc.execute("everything__echo", {"message": "after"})["content"][0]["text"]
        assert "everything: the server no longer knows this session" in proc.stderr
        assert proc.close() == 0
    finally:
        _stop(server)
