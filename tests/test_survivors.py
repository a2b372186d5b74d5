"""Promises a mutation slipped past (tests/tools/mutate.py), each now with a test of its own.

Every test here passed with its mutation applied before it was written, and
fails with it now; the mutation's name is in each docstring.
"""

from __future__ import annotations

from conftest import PYTHON, SERVERS, clean_env, run_cli, write_config
from oauth_fake import FakeServer
from remote_peer import browser_env, browser_visits

HOSTILE = str(SERVERS / "hostile_server.py")
SECRET = "s3cr3t-0123456789abcdef"
LONGER = "outer-" + SECRET + "-tail9876"  # a secret that holds another


def login(server: FakeServer, tmp_path):
    config = write_config(tmp_path / "cfg", {"remote": {"type": "http", "url": server.url("/mcp")}})
    return run_cli("login", "remote", "--config", str(config), env=clean_env(**browser_env(tmp_path)))


def test_every_occurrence_inside_a_line_and_a_secret_within_another_are_masked(tmp_path, mcpzip):
    """mask-first-only, mask-shortest-first: the stream's edge masking must not be what saves them."""
    server = {"command": PYTHON, "args": [HOSTILE], "env": {"SECRET": SECRET, "LONGER": LONGER}}
    proc = mcpzip(write_config(tmp_path, {"leaky": server}), clean_env(MCPZIP_LOG="debug"))
    proc.initialize()
    line = f"one {SECRET} two {SECRET} three {LONGER} four"
    assert proc.execute("leaky__shout", {"text": line})["content"][0]["text"] == "shouted"
    assert proc.close() == 0
    logged = proc.stderr
    assert "one *** two *** three *** four" in logged
    for piece in (SECRET, "outer-", "-tail9876"):
        assert piece not in logged


def test_an_authorization_server_without_s256_is_refused_before_the_browser_opens(tmp_path, fake):
    """pkce-not-required."""
    server = fake()
    server.as_metadata["code_challenge_methods_supported"] = ["plain"]
    result = login(server, tmp_path)
    assert result.returncode == 1
    assert "its authorization server does not offer PKCE with S256" in result.stderr
    assert browser_visits(tmp_path) == [] and server.seen("/token") == []


def test_a_callback_from_another_issuer_is_refused(tmp_path, fake):
    """iss-unchecked: RFC 9207, the mix-up defence."""
    server = fake()
    server.callback_iss = "https://evil.example"
    result = login(server, tmp_path)
    assert result.returncode == 1
    assert f"the sign-in answer came from issuer 'https://evil.example', not '{server.origin}'" in result.stderr
    assert server.seen("/token") == []  # the code is never exchanged


def test_an_sse_endpoint_on_another_origin_is_never_posted_to(tmp_path):
    """sse-endpoint-anywhere: the legacy SSE ``endpoint`` must be on the stream's own origin."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    arrived: list[str] = []
    done = threading.Event()

    class Elsewhere(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            arrived.append(self.path)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    # localhost and 127.0.0.1 are two origins: the stream names the other one.
    foreign = f"http://localhost:{elsewhere.server_address[1]}/messages"

    class Stream(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(f"event: endpoint\ndata: {foreign}\n\n".encode())
            self.wfile.flush()
            done.wait(30)

    stream = ThreadingHTTPServer(("127.0.0.1", 0), Stream)
    stream.daemon_threads = elsewhere.daemon_threads = True
    for server in (stream, elsewhere):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{stream.server_address[1]}/sse"
        config = write_config(tmp_path, {"events": {"type": "sse", "url": url}})
        result = run_cli("list", "--config", str(config), env=clean_env(MCPZIP_LOG="warning"))
    finally:
        done.set()
        for server in (stream, elsewhere):
            server.shutdown()
            server.server_close()
    assert result.returncode == 1
    assert f"events: ignoring an endpoint on another origin (localhost:{elsewhere.server_address[1]})" in result.stderr
    assert "sent no endpoint event" in result.stdout
    assert arrived == []
