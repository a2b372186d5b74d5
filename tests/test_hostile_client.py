"""Whatever a client sends, mcpzip answers every request once and keeps serving (issue 10).

Each test sends one kind of hostile input to a real ``mcpzip serve`` and then
checks that the same process still answers ``tools/list`` and a normal
``execute_tool``.
"""

from __future__ import annotations

import json
import queue

import pytest

from conftest import fixture_server, run_cli, write_config

MODERN = "2026-07-28"


@pytest.fixture
def proc(tmp_path, mcpzip):
    p = mcpzip(write_config(tmp_path, {"fx": fixture_server()}))
    p.initialize()
    return p


def assert_healthy(proc) -> None:
    """The process is alive and serves both a quick request and a call through an upstream."""
    names = [t["name"] for t in proc.result("tools/list", timeout=20)["tools"]]
    assert "execute_tool" in names or "fx__echo" in names  # the meta-tools, or the tools directly (tools_mode auto)
    result = proc.execute("fx__echo", {"text": "still here"}, timeout=30)
    assert result["content"][0]["text"] == "still here", result
    assert proc.proc.poll() is None


def stray(proc, timeout: float = 10) -> dict:
    """The next answer whose id the test helper did not send (or could not know)."""
    try:
        return proc.stray.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no answer within {timeout}s; stderr:\n{proc.stderr}") from None


def no_stray(proc) -> None:
    """Nothing was answered to messages that must not be answered (checked after a round trip)."""
    assert proc.result("ping") == {}
    assert proc.stray.empty(), proc.stray.get()


# -- item 1: ids of every kind ---------------------------------------------------------


@pytest.mark.parametrize("bad_id", [[1], {"a": 1}, [], 1.5, True])
def test_unusable_ids_in_cancellations_and_responses_are_ignored(proc, bad_id):
    proc.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": bad_id}})
    proc.send({"jsonrpc": "2.0", "id": bad_id, "result": {}})
    proc.send({"jsonrpc": "2.0", "id": bad_id, "error": {"code": 1, "message": "x"}})
    no_stray(proc)  # neither a notification nor a response is ever answered
    assert_healthy(proc)


@pytest.mark.parametrize("bad_id", [[1], {"a": 1}, 1.5, None, False])
def test_requests_with_unusable_ids_are_invalid_requests(proc, bad_id):
    proc.send({"jsonrpc": "2.0", "id": bad_id, "method": "ping"})
    answer = stray(proc)
    assert answer["id"] is None and answer["error"]["code"] == -32600
    assert_healthy(proc)


@pytest.mark.parametrize("token", [[1], {"a": 1}, 1.5])
def test_a_call_with_an_unusable_progress_token_is_answered_without_progress(proc, token):
    args = {"name": "fx__progress", "arguments": {"steps": 2}}
    result = proc.result("tools/call", {"name": "execute_tool", "arguments": args, "_meta": {"progressToken": token}})
    assert result["content"][0]["text"] == "2 steps, token absent"
    assert proc.notifications.empty()
    assert_healthy(proc)


# -- item 2: nesting deeper than a parser can go --------------------------------------------


@pytest.mark.parametrize("line", [b"[" * 100_000, b'{"a":' * 5_000, b'{"jsonrpc":"2.0","id":1,"method":"ping","params":'
                                  + b"[" * 3_000 + b"]" * 3_000 + b"}"])  # fmt: skip
def test_deeply_nested_lines_are_parse_errors(proc, line):
    proc.send_raw(line + b"\n")
    answer = stray(proc)
    assert answer["id"] is None
    assert answer["error"] == {"code": -32700, "message": "Parse error: it is nested too deeply"}
    assert_healthy(proc)


def test_arguments_given_as_a_deeply_nested_json_string_get_a_clear_error(proc):
    result = proc.execute("fx__echo", "[" * 100_000)  # type: ignore[arg-type]
    assert result["isError"] is True
    assert "nested too deeply" in result["content"][0]["text"]
    assert_healthy(proc)


# -- item 3: strings that UTF-8 cannot carry -------------------------------------------------


def test_a_lone_surrogate_in_an_id_is_replaced_in_the_answer(proc):
    proc.send_raw(b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}\n')
    assert stray(proc) == {"jsonrpc": "2.0", "id": "\ufffd", "result": {}}
    assert_healthy(proc)


def test_a_lone_surrogate_in_a_method_name_is_answered(proc):
    proc.send_raw(b'{"jsonrpc":"2.0","id":"m","method":"no/such/\\udc00"}\n')
    answer = stray(proc)
    assert answer["id"] == "m" and answer["error"]["code"] == -32601
    assert answer["error"]["message"] == "Method not found: no/such/\ufffd"
    assert_healthy(proc)


def test_raw_bytes_of_an_encoded_surrogate_are_answered(proc):
    proc.send_raw(b'{"jsonrpc":"2.0","id":"raw-\xed\xa0\x80","method":"ping"}\n')
    answer = stray(proc)
    assert answer["id"].startswith("raw-\ufffd") and answer["result"] == {}
    assert_healthy(proc)


def test_an_upstream_result_with_a_lone_surrogate_is_answered(proc):
    result = proc.execute("fx__echo", {"text": "half \ud800 a pair"})
    assert result["content"][0]["text"] == "half \ufffd a pair"
    assert_healthy(proc)


# -- item 4: timeouts out of range ------------------------------------------------------------


@pytest.mark.parametrize("timeout", [1e10, float("inf"), 10**400, "1e999"])
def test_huge_timeouts_are_clamped(proc, timeout):
    result = proc.call("execute_tool", {"name": "fx__echo", "arguments": {"text": "slow ok"}, "timeout": timeout})
    assert result["content"][0]["text"] == "slow ok"
    assert_healthy(proc)


@pytest.mark.parametrize("timeout", [float("nan"), float("-inf"), "soon", -1])
def test_unusable_timeouts_get_a_clear_error(proc, timeout):
    result = proc.call("execute_tool", {"name": "fx__echo", "arguments": {"text": "x"}, "timeout": timeout})
    assert result["isError"] is True
    assert result["content"][0]["text"] == "Error: timeout must be a positive number of seconds"
    assert_healthy(proc)


@pytest.mark.parametrize("value, message", [
    ("Infinity", "call_timeout_seconds is too large"),
    ("NaN", "call_timeout_seconds must be a non-negative number"),
    ("1e10", "call_timeout_seconds must be at most 86400 (one day); 0 means no limit"),
])  # fmt: skip
def test_a_config_timeout_out_of_range_is_one_line_at_load(tmp_path, value, message):
    path = write_config(tmp_path, {"fx": fixture_server()})
    path.write_text(path.read_text()[:-1] + f', "call_timeout_seconds": {value}}}')
    done = run_cli("serve", "--config", str(path), input="")
    assert done.returncode != 0
    assert done.stderr.strip() == f"mcpzip: error: config {path}: {message}"


# -- item 5: free text of any size ------------------------------------------------------------


def test_a_huge_query_is_refused_quickly(proc):
    result = proc.call("search_tools", {"query": "echo " * 2_000_000}, timeout=10)
    assert result["isError"] is True
    assert result["content"][0]["text"] == (
        "Error: query is too long (10000000 characters, at most 2000): describe the tool you need in a few words"
    )
    assert_healthy(proc)


@pytest.mark.parametrize("tool", ["describe_tool", "execute_tool"])
def test_a_huge_tool_name_is_refused_quickly(proc, tool):
    result = proc.call(tool, {"name": "fx__" + "e" * 1_000_000}, timeout=10)
    assert result["isError"] is True
    assert "name is too long (1000004 characters, at most 512)" in result["content"][0]["text"]
    assert_healthy(proc)


def test_a_huge_limit_string_is_an_error_not_a_crash(proc):
    result = proc.call("search_tools", {"query": "echo", "limit": "9" * 5000})
    assert result["isError"] is True
    assert_healthy(proc)


# -- item 18: broken config files ---------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b'{"mcpServers": {"a": {"command": "caf\xe9"}}}', "not valid UTF-8 (byte 0xe9 at offset 37)"),
    (b"[" * 100_000, "not valid JSON: JSON nested too deeply"),
    (b'{"a":' * 100_000, "not valid JSON: JSON nested too deeply"),
], ids=["invalid-utf8", "deep-arrays", "deep-objects"])  # short ids: the test id travels in every child's environment
def test_a_broken_config_is_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    path.chmod(0o600)
    for command in ("serve", "list"):
        done = run_cli(command, "--config", str(path), input="")
        assert done.returncode != 0
        assert done.stderr.strip() == f"mcpzip: error: config {path}: {message}", done.stderr


# -- items 3 and 10: what upstreams list --------------------------------------------------------


def wait_until(condition, timeout: float = 20.0, step: float = 0.05) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def test_tool_listings_with_fields_of_the_wrong_type_are_normalised_and_cached(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx", "--odd-listings")}))
    proc.initialize()
    text = proc.text("search_tools", {"query": "odd types", "limit": 50})
    assert "fx__odd_types: 42" in text, text
    found = proc.text("search_tools", {"query": "zebra"})
    assert "fx__odd_surrogate: Half \ufffd of a pair, found by the word zebra." in found
    described = json.loads(proc.text("describe_tool", {"name": "fx__odd_types"}))
    assert described == {"name": "fx__odd_types", "description": "42"}
    assert proc.execute("fx__odd_types")["content"][0]["text"] == "odd_types ran"
    # The lone surrogate does not stop the cache from being written.
    cache = tmp_path / "cache" / "tools.json"
    assert wait_until(lambda: cache.exists() and "odd_surrogate" in cache.read_text())
    entry = next(e for e in json.loads(cache.read_text()) if e["original_name"] == "odd_surrogate")
    assert entry["description"] == "Half \ufffd of a pair, found by the word zebra."
    warnings = [line for line in proc.stderr_lines if "fields of the wrong type" in line]
    assert len(warnings) == 1 and "mcpzip warning: fx: its tool list" in warnings[0], proc.stderr
    assert_healthy_as(proc, "fx")


def test_resource_and_prompt_listings_with_fields_of_the_wrong_type_are_normalised(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx", "--resources", "1", "--odd-listings")}))
    proc.initialize()
    resources = proc.result("resources/list")["resources"]
    odd = next(r for r in resources if r["uri"] == "fixture://odd/number")
    assert odd == {"uri": "fixture://odd/number", "name": "5"}
    assert all(isinstance(r["uri"], str) for r in resources)
    prompts = proc.result("prompts/list")["prompts"]
    assert {"name": "fx__odd_prompt", "description": "3.5"} in prompts
    assert len(prompts) == 2
    assert proc.result("resources/read", {"uri": "fixture://odd/number"})["contents"][0]["text"].startswith("fixture://")
    assert_healthy_as(proc, "fx")


def assert_healthy_as(proc, server: str) -> None:
    names = [t["name"] for t in proc.result("tools/list", timeout=20)["tools"]]
    assert "execute_tool" in names or f"{server}__echo" in names  # the meta-tools, or the tools directly (auto)
    assert proc.execute(f"{server}__echo", {"text": "still here"}, timeout=30)["content"][0]["text"] == "still here"


# -- item 9: a server's requests to the client are bounded ----------------------------------------


def thread_count(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/task"))


def test_a_flood_of_server_requests_is_bounded_and_the_excess_refused(tmp_path, mcpzip):
    MAX_SERVER_REQUESTS = 16  # as documented (docs/architecture.md)
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}))
    proc.initialize(capabilities={"elicitation": {}})
    count = 300
    rid = proc.start_request("tools/call", {"name": "execute_tool", "arguments": {
        "name": "fx__flood", "arguments": {"method": "elicitation/create", "count": count, "expect": count - MAX_SERVER_REQUESTS}}})
    answer = proc.response(rid, timeout=40)
    report = json.loads(answer["result"]["content"][0]["text"])
    assert report["errors"] == count - MAX_SERVER_REQUESTS, report
    assert report["messages"] == [f"mcpzip answers at most {MAX_SERVER_REQUESTS} requests from one server at a time; "
                                  "try again when one has been answered"]  # fmt: skip
    # The ones admitted are waiting for the client, each on one thread; no more.
    asked = [proc.requests.get(timeout=10) for _ in range(MAX_SERVER_REQUESTS)]
    assert {m["method"] for m in asked} == {"elicitation/create"}
    assert thread_count(proc.proc.pid) < 2 * MAX_SERVER_REQUESTS + 20
    for m in asked:
        proc.send({"jsonrpc": "2.0", "id": m["id"], "result": {"action": "decline"}})
    assert_healthy(proc)


# -- item 12: a server hanging at start-up costs a search a few seconds at most ----------------------


def timed(action):
    import time

    started = time.monotonic()
    value = action()
    return value, time.monotonic() - started


def test_a_hanging_server_does_not_hold_up_the_first_search_without_a_cache(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server(), "stuck": fixture_server("stuck", "--start-delay", "600")}))
    proc.initialize()
    text, seconds = timed(lambda: proc.text("search_tools", {"query": "echo text"}, timeout=40))
    assert "fx__echo" in text
    assert "(still starting, not searched yet: stuck; search again in a moment)" in text
    assert seconds < 12, seconds  # the grace is 3 s; before, 30 s
    assert_healthy(proc)


def test_a_hanging_server_does_not_hold_up_the_first_search_with_a_cache(tmp_path, mcpzip):
    first = mcpzip(write_config(tmp_path, {"fx": fixture_server()}))
    first.initialize()
    assert "fx__echo" in first.text("search_tools", {"query": "echo text"})
    cache = tmp_path / "cache" / "tools.json"
    assert wait_until(lambda: cache.exists() and "echo" in cache.read_text())
    assert first.close() == 0
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server(), "stuck": fixture_server("stuck", "--start-delay", "600")}))
    proc.initialize()
    text, seconds = timed(lambda: proc.text("search_tools", {"query": "echo text"}, timeout=40))
    assert "fx__echo" in text and "still starting, not searched yet: stuck" in text
    assert seconds < 2.5, seconds  # no grace with a cache; before, 30 s
    assert_healthy(proc)


# -- item 13: a server whose start failed is started again, with backoff ---------------------------------


def flaky_server(marker, attempts) -> dict:
    """A server that fails to start until *marker* exists; each start adds a line to *attempts*."""
    from conftest import FIXTURE, PYTHON

    code = ("import os, sys; open(sys.argv[2], 'a').write('start\\n'); "
            "os.path.exists(sys.argv[1]) or sys.exit('not ready yet'); "
            "os.execv(sys.executable, [sys.executable, sys.argv[3], '--name', 'flaky'])")  # fmt: skip
    return {"command": PYTHON, "args": ["-c", code, str(marker), str(attempts), FIXTURE]}


def test_a_server_whose_first_start_failed_is_started_again_after_a_backoff(tmp_path, mcpzip):
    marker, attempts = tmp_path / "ready", tmp_path / "attempts"
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server(), "flaky": flaky_server(marker, attempts)}))
    proc.initialize()
    first, seconds = timed(lambda: proc.execute("flaky__echo", {"text": "hi"}))
    assert first["isError"] is True and seconds < 5, (first, seconds)
    text = first["content"][0]["text"]
    assert "server 'flaky' is unavailable (" in text and "not ready yet" in text
    assert "mcpzip starts it again in " in text, text
    # During the backoff a call answers at once and starts nothing.
    starts = attempts.read_text().count("start")
    again, seconds = timed(lambda: proc.execute("flaky__echo", {"text": "hi"}))
    assert again["isError"] is True and "mcpzip starts it again in " in again["content"][0]["text"]
    assert seconds < 3 and attempts.read_text().count("start") == starts
    # Once the server can start, a call after the backoff starts it.
    marker.write_text("")
    assert wait_until(lambda: not proc.execute("flaky__echo", {"text": "back"}).get("isError"), timeout=20, step=0.5)
    assert proc.execute("flaky__echo", {"text": "back"})["content"][0]["text"] == "back"
    assert attempts.read_text().count("start") == starts + 1
    assert_healthy(proc)


# -- a client message longer than max_message_bytes ---------------------------------------------


def test_a_client_message_over_max_message_bytes_is_refused_and_the_session_goes_on(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}, max_message_bytes=65536))
    proc.initialize()
    big = {"jsonrpc": "2.0", "id": "big", "method": "tools/call",
           "params": {"name": "execute_tool", "arguments": {"name": "fx__echo", "arguments": {"text": "x" * 200_000}}}}
    proc.send(big)
    answer = stray(proc)
    assert answer["id"] == "big"
    assert answer["error"]["code"] == -32600
    size = len(json.dumps(big)) + 1
    assert answer["error"]["message"] == f"Invalid Request: the message is {size} bytes, more than max_message_bytes (65536)"
    proc.send_raw(b"[" * 3_000_000 + b"\n")  # no id to be found: answered with null
    assert stray(proc)["error"] == {"code": -32600,
                                    "message": "Invalid Request: the message is 3000001 bytes, more than max_message_bytes (65536)"}
    assert_healthy(proc)


# -- item 6: whatever an answer holds, the request is answered once ----------------------------------


def test_results_nested_near_and_past_the_parsers_limit_are_each_answered(proc):
    for depth in [*range(940, 1001, 3), 1500]:
        args = {"name": "execute_tool", "arguments": {"name": "fx__nested", "arguments": {"depth": depth}}}
        answer = proc.request("tools/call", args, timeout=15)
        assert "result" in answer, (depth, answer)
        result = answer["result"]
        if result.get("isError"):
            assert "nested too deeply" in result["content"][0]["text"], (depth, result)
        else:
            assert result["content"][0]["text"] == "nested", (depth, result)
    assert proc.stray.empty()
    assert_healthy(proc)


def test_a_search_after_the_backoff_starts_a_failed_server_again(tmp_path, mcpzip):
    marker, attempts = tmp_path / "ready", tmp_path / "attempts"
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server(), "flaky": flaky_server(marker, attempts)}))
    proc.initialize()
    assert "flaky__echo" not in proc.text("search_tools", {"query": "echo text", "limit": 50})
    assert attempts.read_text().count("start") == 1
    marker.write_text("")
    # The first search after the backoff (5 s) starts the server again; one after that finds its tools.
    assert wait_until(lambda: "flaky__echo" in proc.text("search_tools", {"query": "echo text", "limit": 50}),
                      timeout=25, step=0.5)  # fmt: skip
    assert attempts.read_text().count("start") == 2
    assert proc.execute("flaky__echo", {"text": "back"})["content"][0]["text"] == "back"


def test_huge_uris_are_refused_before_they_are_matched(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx", "--resources", "1")}))
    proc.initialize()
    uri = "fixture://fx/notes/" + "n" * 5_000_000
    message = "Invalid params: uri is too long (5000019 characters, at most 8192)"
    assert proc.request("resources/read", {"uri": uri}, timeout=10)["error"] == {"code": -32602, "message": message}
    complete = {"ref": {"type": "ref/resource", "uri": uri}, "argument": {"name": "topic", "value": "n"}}
    assert proc.request("completion/complete", complete, timeout=10)["error"] == {"code": -32602, "message": message}
    assert proc.result("resources/read", {"uri": "fixture://fx/notes/short"})["contents"][0]["text"].startswith("fixture://")
    assert_healthy(proc)
