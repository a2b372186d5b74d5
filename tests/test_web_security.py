"""The remote path's network promises (docs/security.md): no redirect to another origin, no remote
server sending mcpzip to this machine, one reading of every URL's host — for upstreams and Gemini.

Two origins on one machine: ``127.0.0.1:A`` and ``localhost:B``.  A host that is not this machine is
a resolver override in the test process (``evil.test`` -> 127.0.0.1), so nothing leaves the machine.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_cli, stopped_at_end, write_config
from mcpzip.base import web

requests = pytest.importorskip("requests")


class Recorder:
    """A stdlib HTTP server on 127.0.0.1 that records every request; *redirect* answers 307 there."""

    def __init__(self, redirect: str | None = None) -> None:
        self.seen: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body})  # fmt: skip
                if redirect is not None and not self.path.startswith("/landed"):
                    self.send_response(307)
                    self.send_header("Location", redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = b'{"jsonrpc": "2.0", "id": 1, "result": {}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def recorders():
    yield from stopped_at_end(Recorder)


@pytest.fixture
def evil_test_is_here(monkeypatch):
    """Resolve ``evil.test`` to 127.0.0.1 in this process: a remote-looking host that stays local."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):  # noqa: ANN001, ANN202
        return real("127.0.0.1" if host == "evil.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_a_redirect_to_another_origin_carries_nothing_there(tmp_path, recorders):
    # An upstream at 127.0.0.1 answers the POST with 307 to localhost: the
    # config's API key, the JSON-RPC body and the session must not follow.
    sink = recorders()
    redirector = recorders(redirect=f"http://localhost:{sink.port}/landed")
    config = write_config(tmp_path, {"remote": {"type": "http", "url": f"http://127.0.0.1:{redirector.port}/mcp",
                                                "headers": {"X-Api-Key": "key-that-stays-home"}}})  # fmt: skip
    result = run_cli("call", "remote__echo", '{"text": "private words"}', "--config", str(config))
    assert result.returncode == 1
    assert redirector.seen, "the upstream was never asked"
    assert sink.seen == []
    assert "refusing a redirect from http://127.0.0.1" in result.stderr
    assert "key-that-stays-home" not in result.stderr + result.stdout


def test_a_redirect_within_the_origin_is_followed(recorders):
    # Servers redirect /mcp to /mcp/ (Starlette does): that keeps working.
    server = recorders(redirect="/landed")
    http = web.session()
    response = http.post(f"http://127.0.0.1:{server.port}/mcp", data=b'{"x": 1}', headers={"X-Api-Key": "k"})
    assert response.status_code == 200
    assert [r["path"] for r in server.seen] == ["/mcp", "/landed"]
    assert server.seen[1]["body"] == b'{"x": 1}'


def test_a_remote_server_cannot_send_mcpzip_to_this_machine():
    # The check the OAuth code applies to resource_metadata and authorization_servers URLs.
    with pytest.raises(web.InsecureURL, match="evil.test may not send mcpzip to this machine"):
        web.check_referred("http://127.0.0.1:8080/admin", "https://evil.test/mcp", "authorization server")
    with pytest.raises(web.InsecureURL):
        web.check_referred("https://localhost/.well-known/x", "https://evil.test/mcp", "resource metadata")
    assert web.check_referred("http://127.0.0.1:9/as", "http://localhost:8/mcp", "x") == "http://127.0.0.1:9/as"
    assert web.check_referred("https://as.example/", "https://evil.test/mcp", "x") == "https://as.example/"


@pytest.mark.parametrize("url", ["http://evil.test\\@127.0.0.1:{port}/mcp", "http://evil.test\\\\@127.0.0.1:{port}/",
                                 "http://evil.test @127.0.0.1:{port}/", "http://evil.test\t@127.0.0.1:{port}/",
                                 "http://evil.test%s@127.0.0.1:{port}/" % "\x01"])  # fmt: skip
def test_a_url_parsers_would_read_two_ways_is_refused(recorders, evil_test_is_here, url):
    # urllib.parse sees 127.0.0.1 (allowed over plain http); urllib3 would
    # connect to evil.test — in cleartext.  Refused before any connection.
    sink = recorders()
    url = url.format(port=sink.port)
    with pytest.raises(web.InsecureURL, match="backslash, a space or a control character"):
        web.check_url(url, "token endpoint")
    with pytest.raises(web.InsecureURL):
        web.session().post(url, data=b"refresh_token=secret")
    assert sink.seen == []


def test_gemini_follows_no_redirect(recorders):
    from mcpzip.knowledge.llm import Gemini, LlmError

    sink = recorders()
    fake = recorders(redirect=f"http://localhost:{sink.port}/landed")
    gemini = Gemini("AIzaTEST-redirected-key", "m", base_url=f"http://127.0.0.1:{fake.port}")
    with pytest.raises(LlmError):
        gemini.rank("weather", ["a__b: c"], 3)
    assert fake.seen and sink.seen == []


def test_gemini_base_url_is_checked_like_any_other():
    from mcpzip.knowledge.llm import Gemini, LlmError

    gemini = Gemini("AIzaTEST-cleartext-key", "m", base_url="http://gemini.example")
    with pytest.raises(LlmError, match="refusing plain http:// to gemini.example"):
        gemini.rank("weather", ["a__b: c"], 3)


def test_gemini_answer_is_read_with_a_bound():
    # An endpoint that streams far more than any ranking answer: mcpzip stops reading.
    from mcpzip.knowledge.llm import MAX_ANSWER_BYTES, Gemini, LlmError

    sent = []

    class Flood(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for _ in range(64):  # 64 MiB unless the reader hangs up
                    self.wfile.write(b" " * (1 << 20))
                    sent.append(1)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flood)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gemini = Gemini("AIzaTEST-flood-key", "m", base_url=f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(LlmError, match=f"larger than {MAX_ANSWER_BYTES} bytes"):
            gemini.rank("weather", ["a__b: c"], 3)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert len(sent) < 64
