"""mcpzip as an MCP server on stdio: both eras, bad input, concurrency, shutdown."""

from __future__ import annotations

import json
import signal
import time

import pytest

from servers.fixture_server import TOOLS
from conftest import fixture_server, wait_gone, write_config

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
}


@pytest.fixture
def proc(tmp_path, mcpzip):
    return mcpzip(write_config(tmp_path, {"fx": fixture_server(), "other": fixture_server("other")}, tools_mode="meta"))


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_legacy_initialize_echoes_supported_versions(proc, version):
    result = proc.initialize(version)
    assert result["protocolVersion"] == version
    assert result["serverInfo"]["name"] == "mcpzip"
    assert "tools" in result["capabilities"]


def test_legacy_initialize_with_unknown_version_gets_newest_legacy(proc):
    assert proc.initialize("2023-01-01")["protocolVersion"] == "2025-11-25"


def test_instructions_name_servers_with_tool_counts(proc):
    # Both servers are listed once the background refresh has run.
    proc.initialize()
    proc.text("search_tools", {"query": "echo"})  # waits for the first listing
    instructions = proc.initialize()["instructions"]
    assert f"- fx ({len(TOOLS)} tools)" in instructions
    assert f"- other ({len(TOOLS)} tools)" in instructions
    assert "search_tools" in instructions and "execute_tool" in instructions


def test_modern_requests_are_served_statelessly(proc):
    discover = proc.result("server/discover", {"_meta": ENVELOPE})
    assert MODERN in discover["supportedVersions"]
    assert discover["resultType"] == "complete"
    assert discover["cacheScope"] in ("public", "private") and isinstance(discover["ttlMs"], int)
    assert discover["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcpzip"

    listed = proc.result("tools/list", {"_meta": ENVELOPE})
    assert [t["name"] for t in listed["tools"]] == ["search_tools", "describe_tool", "execute_tool"]
    assert listed["resultType"] == "complete" and "ttlMs" in listed and "cacheScope" in listed

    called = proc.result(
        "tools/call", {"name": "execute_tool", "arguments": {"name": "fx__echo", "arguments": {"text": "x"}}, "_meta": ENVELOPE}
    )
    assert called["resultType"] == "complete"
    assert called["content"] == [{"type": "text", "text": "x"}]


def test_unsupported_modern_version_lists_what_is_supported(proc):
    meta = dict(ENVELOPE, **{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})
    error = proc.request("tools/list", {"_meta": meta})["error"]
    assert error["code"] == -32022
    assert error["data"]["requested"] == "2099-01-01"
    assert MODERN in error["data"]["supported"] and "2025-11-25" in error["data"]["supported"]


def test_modern_request_without_capabilities_is_invalid_params(proc):
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN}
    assert proc.request("tools/list", {"_meta": meta})["error"]["code"] == -32602
    meta = dict(ENVELOPE, **{"io.modelcontextprotocol/logLevel": "chatty"})
    assert proc.request("tools/list", {"_meta": meta})["error"]["code"] == -32602


def test_legacy_results_carry_no_modern_fields(proc):
    proc.initialize()
    listed = proc.result("tools/list")
    assert "resultType" not in listed and "ttlMs" not in listed


def test_ping(proc):
    proc.initialize()
    assert proc.result("ping") == {}


def test_tools_list_is_small(proc):
    proc.initialize()
    proc.start_request("tools/list", id="size")
    proc.response("size")
    line = next(raw for raw in proc.raw_lines if b'"id":"size"' in raw)
    assert len(line) <= 1500


def test_malformed_input_gets_errors_and_the_session_goes_on(proc):
    proc.initialize()
    proc.send_raw(b"this is not json\n")
    assert proc.stray.get(timeout=10)["error"]["code"] == -32700
    proc.send_raw(b'{"jsonrpc": "2.0", "id": 1\n')  # truncated JSON
    assert proc.stray.get(timeout=10)["error"]["code"] == -32700
    proc.send_raw(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]\n')
    assert proc.stray.get(timeout=10)["error"]["code"] == -32600
    proc.send_raw(b'{"jsonrpc":"1.0","id":"old","method":"ping"}\n')
    assert proc.stray.get(timeout=10) == {
        "jsonrpc": "2.0", "id": "old", "error": {"code": -32600, "message": "Invalid Request: not a JSON-RPC 2.0 message"}
    }
    proc.send_raw(b'{"jsonrpc":"2.0","id":7,"method":42}\n')
    assert proc.stray.get(timeout=10)["error"]["code"] == -32600
    assert proc.request("no/such/method")["error"]["code"] == -32601
    assert proc.request("tools/call", {"arguments": {}})["error"]["code"] == -32602
    assert proc.request("tools/call", {"name": "not_a_meta_tool", "arguments": {}})["error"]["code"] == -32602
    assert proc.request("initialize", {"capabilities": {}})["error"]["code"] == -32602
    # Still serving, and stdout carried only JSON (the reader asserts that).
    assert proc.result("ping") == {}
    assert proc.execute("fx__echo", {"text": "still here"})["content"][0]["text"] == "still here"


def test_slow_call_does_not_delay_other_requests(proc):
    proc.initialize()
    slow = proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": 3000}}})
    started = time.monotonic()
    assert "fx__echo" in proc.text("search_tools", {"query": "echo text"})
    assert proc.execute("other__echo", {"text": "fast"})["content"][0]["text"] == "fast"
    assert time.monotonic() - started < 2.5
    assert proc.response(slow)["result"]["content"][0]["text"] == "slept 3000 ms"


def test_concurrent_answers_are_whole_lines(tmp_path, mcpzip):
    # No result budget: each answer is 200 KB, three pipe buffers' worth.
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}, max_result_bytes=0))
    proc.initialize()
    ids = [
        proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__big", "arguments": {"bytes": 200_000}}})
        for _ in range(8)
    ]
    for i in ids:
        assert len(proc.response(i)["result"]["content"][0]["text"]) == 200_000


def test_client_cancellation_is_forwarded_upstream(tmp_path, mcpzip):
    record = tmp_path / "received.jsonl"
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx", "--record", str(record))}))
    proc.initialize()
    rid = proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__hang"}})

    def upstream_calls() -> list[dict]:
        lines = record.read_text().splitlines() if record.exists() else []
        return [m for m in map(json.loads, lines) if m.get("method") == "tools/call"]

    # Cancel only once the upstream has the call in hand: a cancel before
    # that would test something else (a call never sent).
    deadline = time.monotonic() + 10
    while not upstream_calls() and time.monotonic() < deadline:
        time.sleep(0.02)
    (call,) = upstream_calls()
    assert call["params"]["name"] == "hang"
    proc.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid, "reason": "user"}})

    def cancels() -> list[dict]:
        lines = record.read_text().splitlines()
        return [m for m in map(json.loads, lines) if m.get("method") == "notifications/cancelled"]

    deadline = time.monotonic() + 10
    while not cancels() and time.monotonic() < deadline:
        time.sleep(0.02)
    # The upstream is told which of its requests to drop, with the client's reason.
    assert [c["params"] for c in cancels()] == [{"requestId": call["id"], "reason": "user"}]
    # No answer is owed for a cancelled request.
    with pytest.raises(AssertionError):
        proc.response(rid, timeout=0.5)
    assert proc.execute("fx__echo", {"text": "still serving"})["content"][0]["text"] == "still serving"


def test_stdin_eof_exits_cleanly(proc):
    proc.initialize()
    proc.execute("fx__echo", {"text": "start the upstream"})
    assert proc.close() == 0


def test_answers_owed_at_eof_are_still_delivered(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}))
    proc.initialize()
    rid = proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": 300}}})
    proc.proc.stdin.close()
    assert proc.response(rid)["result"]["content"][0]["text"] == "slept 300 ms"
    assert proc.proc.wait(15) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_exit_cleanly(proc, sig):
    proc.initialize()
    pid = int(proc.text("execute_tool", {"name": "fx__pid"}))
    proc.proc.send_signal(sig)
    assert proc.proc.wait(15) == 0
    assert wait_gone(pid, 5)
