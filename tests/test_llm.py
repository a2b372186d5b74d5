"""Gemini ranking against a local stand-in for generateContent; the real service is never called."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import clean_env, write_config
from mcpzip.knowledge.catalog import Catalog, Tool
from mcpzip.knowledge.llm import Gemini, LlmSearcher, merge
from mcpzip.downstream.metatools import search_line
from mcpzip.knowledge.search import Searcher

KEY = "AIzaTEST-key-0123456789abcdef"
MODEL = "gemini-test-model"


class FakeGemini:
    """A 127.0.0.1 server answering ``POST /v1beta/models/{model}:generateContent`` like Gemini does.

    *mode*: ``pick`` answers with *picks*; ``slow`` answers only once
    :attr:`release` is set; ``error`` answers 500 with Gemini's error body;
    ``garbage`` answers 200 with text that is not the JSON asked for.
    """

    def __init__(self, mode: str = "pick", picks: list[str] | None = None) -> None:
        self.mode = mode
        self.picks = picks or []
        self.requests: list[dict] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path != f"/v1beta/models/{MODEL}:generateContent" or self.headers.get("x-goog-api-key") != KEY:
                    return self.reply(403, {"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}})
                if fake.mode == "slow":
                    fake.release.wait(30)
                if fake.mode == "error":
                    return self.reply(500, {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}})
                text = "I think the best tool is the first one." if fake.mode == "garbage" else json.dumps({"tools": fake.picks})
                self.reply(200, {
                    "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10, "totalTokenCount": 110},
                    "modelVersion": MODEL,
                })  # fmt: skip

            def reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def fake():
    servers: list[FakeGemini] = []

    def start(mode: str = "pick", picks: list[str] | None = None) -> FakeGemini:
        servers.append(FakeGemini(mode, picks))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def catalog() -> Catalog:
    cat = Catalog(["mail", "chat"])
    cat.update("mail", [
        {"name": "send_email", "description": "Send an email message.", "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}},
        {"name": "draft_email", "description": "Draft an email without sending it."},
        {"name": "search_emails", "description": "Search emails."},
    ], save=False)  # fmt: skip
    cat.update("chat", [{"name": "send_message", "description": "Send a chat message to a channel."}], save=False)
    return cat


def ranker(url: str, deadline: float = 2.0) -> LlmSearcher:
    return LlmSearcher(Searcher(catalog()), Gemini(KEY, MODEL, url), search_line, deadline)


def names(found: tuple[list[Tool], int]) -> list[str]:
    return [t.prefixed for t in found[0]]


def test_gemini_picks_come_first_and_the_request_is_generate_content(fake):
    server = fake(picks=["chat__send_message", "no__such_tool", "mail__send_email"])
    llm = ranker(server.url)
    keyword = names(llm.keyword.search("send email", 5))
    assert keyword[0] == "mail__send_email"

    assert names(llm.search("send email", 5)) == ["chat__send_message", "mail__send_email"] + [
        n for n in keyword if n not in ("chat__send_message", "mail__send_email")
    ]  # an unknown name is ignored; the keyword results fill up
    (request,) = server.requests
    assert request["path"] == f"/v1beta/models/{MODEL}:generateContent"  # no key in the URL
    assert request["headers"]["x-goog-api-key"] == KEY
    body = request["body"]
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    prompt = body["contents"][0]["parts"][0]["text"]
    assert "send email" in prompt
    assert "mail__send_email: Send an email message. [to:string*]" in prompt  # the compact line

    # Cached per normalised query: no second request.
    assert names(llm.search("Send  EMAIL", 5))[0] == "chat__send_message"
    assert len(server.requests) == 1


@pytest.mark.parametrize("mode", ["slow", "error", "garbage"])
def test_a_slow_failing_or_nonsense_answer_falls_back_to_keywords_within_the_deadline(fake, mode):
    server = fake(mode)
    llm = ranker(server.url, deadline=0.5)
    expected = names(llm.keyword.search("send email", 5))
    started = time.monotonic()
    assert names(llm.search("send email", 5)) == expected
    assert time.monotonic() - started < 0.5 + 1.0
    assert len(server.requests) == 1
    # After a failure Gemini is left alone for a while: no waiting at all.
    started = time.monotonic()
    assert names(llm.search("draft an email", 5)) == names(llm.keyword.search("draft an email", 5))
    assert time.monotonic() - started < 0.3
    assert len(server.requests) == 1


def test_unreachable_gemini_falls_back(fake):
    server = fake()
    url = server.url
    server.close()  # nothing listens there any more
    llm = ranker(url, deadline=2.0)
    assert names(llm.search("send email", 5)) == names(llm.keyword.search("send email", 5))


def test_merge_keeps_the_keyword_order_for_the_rest():
    tools = [Tool("s", n, {"name": n}) for n in ("a", "b", "c", "d")]
    assert [t.name for t in merge(["s__c"], tools, 3)] == ["c", "a", "b"]
    assert [t.name for t in merge([], tools, 2)] == ["a", "b"]


# -- through serve ---------------------------------------------------------------


def llm_config(tmp_path: Path) -> Path:
    config = write_config(
        tmp_path, {"mail": {"command": str(tmp_path / "missing-command")}}, gemini_api_key=KEY, search={"model": MODEL}
    )
    cat = Catalog(["mail"], str(tmp_path / "cache" / "tools.json"))
    cat.update("mail", [
        {"name": "send_email", "description": "Send an email message."},
        {"name": "draft_email", "description": "Draft an email without sending it."},
        {"name": "delete_email", "description": "Delete an email."},
    ])  # fmt: skip
    return config


def test_serve_merges_gemini_and_never_logs_the_key(tmp_path: Path, fake, mcpzip):
    server = fake(picks=["mail__draft_email"])
    proc = mcpzip(llm_config(tmp_path), env=clean_env(MCPZIP_GEMINI_URL=server.url, MCPZIP_LOG="debug"))
    proc.initialize()
    text = proc.text("search_tools", {"query": "send an email"})
    assert text.splitlines()[0].startswith("mail__draft_email: ")
    assert server.requests[0]["headers"]["x-goog-api-key"] == KEY
    assert proc.close() == 0
    assert "gemini ranking" in proc.stderr  # debug logging was on ...
    assert KEY not in proc.stderr  # ... and the key is nowhere in it


def test_serve_answers_with_keywords_when_gemini_hangs(tmp_path: Path, fake, mcpzip):
    server = fake("slow")
    env = clean_env(MCPZIP_GEMINI_URL=server.url, MCPZIP_LOG="debug", GEMINI_API_KEY=KEY)  # the environment's key wins
    proc = mcpzip(llm_config(tmp_path), env=env)
    proc.initialize()
    started = time.monotonic()
    text = proc.text("search_tools", {"query": "send an email"})
    elapsed = time.monotonic() - started
    assert text.splitlines()[0].startswith("mail__send_email: ")
    assert 1.5 < elapsed < 4.0  # about the 2 s deadline
    # The client goes away while Gemini still has not answered: mcpzip does not wait for it.
    started = time.monotonic()
    assert proc.close() == 0
    assert time.monotonic() - started < 5
    assert KEY not in proc.stderr
