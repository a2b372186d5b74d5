"""stdio upstreams through mcpzip: misbehaving servers, concurrency, environment, cleanup."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from conftest import clean_env, fixture_server, pid_alive, wait_gone, write_config


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path, {"fx": fixture_server(), "other": fixture_server("other")}, call_timeout_seconds=30)


def test_crash_mid_call_is_an_error_and_the_next_call_restarts(config, mcpzip):
    proc = mcpzip(config)
    proc.initialize()
    first_pid = int(proc.text("execute_tool", {"name": "fx__pid"}))
    started = time.monotonic()
    result = proc.execute("fx__crash")
    assert time.monotonic() - started < 2
    assert result["isError"] is True
    assert "exited with code 3" in result["content"][0]["text"]
    second_pid = int(proc.text("execute_tool", {"name": "fx__pid"}))
    assert second_pid != first_pid
    assert wait_gone(first_pid, 5)


def test_hang_times_out_and_other_calls_are_unaffected(config, mcpzip):
    proc = mcpzip(config)
    proc.initialize()
    hung = proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__hang", "timeout": 1}})
    # A call on the same upstream, and one on another, both answer while the hang waits.
    assert proc.execute("fx__echo", {"text": "same"})["content"][0]["text"] == "same"
    assert proc.execute("other__echo", {"text": "other"})["content"][0]["text"] == "other"
    result = proc.response(hung)["result"]
    assert result["isError"] is True
    assert "timed out after 1s" in result["content"][0]["text"]
    # The upstream was told the call is abandoned.
    received = json.loads(proc.text("execute_tool", {"name": "fx__received"}))
    assert [n["params"]["reason"] for n in received if n["method"] == "notifications/cancelled"] == ["timed out after 1s"]


def test_non_json_lines_on_stdout_are_skipped(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx", "--banner")}))
    proc.initialize()
    assert proc.execute("fx__noisy")["content"] == [{"type": "text", "text": "noisy done"}]
    assert proc.execute("fx__echo", {"text": "after"})["content"][0]["text"] == "after"


def test_five_megabytes_of_stderr_do_not_deadlock(config, mcpzip):
    proc = mcpzip(config)
    proc.initialize()
    assert proc.execute("fx__stderr_flood", {"bytes": 5 * 1024 * 1024})["content"][0]["text"] == "flooded"
    assert proc.execute("fx__echo", {"text": "alive"})["content"][0]["text"] == "alive"


def test_twenty_megabyte_result_arrives_intact(tmp_path, mcpzip):
    # max_result_bytes 0: no budget, the result passes unchanged (test_results.py has the budget).
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}, call_timeout_seconds=30, max_result_bytes=0))
    proc.initialize()
    n = 20 * 1024 * 1024
    text = proc.execute("fx__big", {"bytes": n}, timeout=60)["content"][0]["text"]
    assert len(text) == n
    assert text == ("0123456789abcdef" * (n // 16 + 1))[:n]


def test_image_structured_content_and_is_error_pass_through_unchanged(config, mcpzip):
    proc = mcpzip(config)
    proc.initialize()
    from servers.fixture_server import PNG

    assert proc.execute("fx__image") == {
        "content": [{"type": "text", "text": "a red dot"}, {"type": "image", "data": PNG, "mimeType": "image/png"}]
    }
    assert proc.execute("fx__add", {"a": 2, "b": 3}) == {
        "content": [{"type": "text", "text": "5"}],
        "structuredContent": {"sum": 5},
    }
    assert proc.execute("fx__fail") == {"content": [{"type": "text", "text": "it went wrong"}], "isError": True}


def test_concurrent_slow_calls_overlap(config, mcpzip):
    proc = mcpzip(config)
    proc.initialize()
    proc.execute("fx__echo", {"text": "warm"})

    def run(n):
        started = time.monotonic()
        ids = [
            proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": 200}}})
            for _ in range(n)
        ]
        for i in ids:
            assert proc.response(i)["result"]["content"][0]["text"] == "slept 200 ms"
        return time.monotonic() - started

    one = run(1)
    sixteen = run(16)
    # Serialised, sixteen calls would take 3.2 s; overlapped they take about one.
    assert sixteen < one + 0.6, (one, sixteen)


def test_closing_stdin_leaves_no_upstream_or_grandchild(config, mcpzip):
    proc = mcpzip(config)
    proc.initialize()
    server_pid = int(proc.text("execute_tool", {"name": "fx__pid"}))
    child_pid = int(proc.text("execute_tool", {"name": "fx__spawn_child"}))
    assert pid_alive(server_pid) and pid_alive(child_pid)
    assert proc.close() == 0
    assert wait_gone(server_pid, 5)
    assert wait_gone(child_pid, 5)


def test_upstream_environment_is_allowlist_plus_its_own(tmp_path, mcpzip):
    config = write_config(
        tmp_path,
        {
            "fx": fixture_server(env={"FX_TOKEN": "fx-secret-value-123", "FROM_VAR": "${MCPZIP_TEST_SOURCE}"}),
            "other": fixture_server("other", env={"OTHER_TOKEN": "other-secret-value-456"}),
        },
    )
    env = clean_env(
        GEMINI_API_KEY="gemini-key-should-not-leak",
        MCPZIP_TEST_SOURCE="expanded-secret-789",
        MCPZIP_LOG="debug",
        UNRELATED_SETTING="nope",
    )
    proc = mcpzip(config, env=env)
    proc.initialize()
    seen = json.loads(proc.text("execute_tool", {"name": "fx__environment"}))
    assert seen["FX_TOKEN"] == "fx-secret-value-123"
    assert seen["FROM_VAR"] == "expanded-secret-789"
    assert "OTHER_TOKEN" not in seen
    assert "GEMINI_API_KEY" not in seen and "MCPZIP_LOG" not in seen and "UNRELATED_SETTING" not in seen
    assert seen["PATH"] == os.environ["PATH"]
    from mcpzip.upstream.transports.stdio import ENV_ALLOWLIST

    assert set(seen) - {"FX_TOKEN", "FROM_VAR"} <= set(ENV_ALLOWLIST) | {k for k in seen if k.startswith("LC_")}
    # The upstream echoes its env on stdout (our result) and nothing leaks into the log.
    proc.execute("fx__stderr_flood", {"bytes": 2048})
    assert proc.close() == 0
    log = proc.stderr
    assert "debug" in log
    for secret in ("fx-secret-value-123", "other-secret-value-456", "expanded-secret-789", "gemini-key-should-not-leak"):
        assert secret not in log


def test_upstream_that_prints_its_secret_on_stderr_is_masked(tmp_path, mcpzip):
    script = tmp_path / "leaky.py"
    script.write_text(
        "import os, sys\n"
        "sys.stderr.write('my token is ' + os.environ['LEAKY_TOKEN'] + '\\n'); sys.stderr.flush()\n"
        "sys.exit(1)\n"
    )
    import sys

    config = write_config(tmp_path, {"leaky": {"command": sys.executable, "args": [str(script)], "env": {"LEAKY_TOKEN": "tok-abcdef-999"}}})
    proc = mcpzip(config, env=clean_env(MCPZIP_LOG="debug"))
    proc.initialize()
    result = proc.execute("leaky__anything")
    assert result["isError"] is True
    assert proc.close() == 0
    assert "my token is ***" in proc.stderr
    assert "tok-abcdef-999" not in proc.stderr
    assert "tok-abcdef-999" not in json.dumps(result)


def test_working_directory_and_paginated_listing(tmp_path, mcpzip):
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_config(
        tmp_path, {"fx": fixture_server("fx", "--page-size", "3", "--extra-tools", "5", cwd=str(workdir))}
    )
    proc = mcpzip(config)
    proc.initialize()
    text = proc.text("search_tools", {"query": "generated tool", "limit": 50})
    assert all(f"fx__tool_{i}:" in text for i in range(5))
    seen = json.loads(proc.text("execute_tool", {"name": "fx__environment"}))
    assert "PWD" not in seen  # cwd is set by the process, not inherited env
    pid = int(proc.text("execute_tool", {"name": "fx__pid"}))
    assert os.readlink(f"/proc/{pid}/cwd") == str(workdir)


def test_idle_upstreams_are_closed_and_restart_on_next_use(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": fixture_server()}, idle_timeout_minutes=0.01)
    proc = mcpzip(config)
    proc.initialize()
    pid = int(proc.text("execute_tool", {"name": "fx__pid"}))
    assert wait_gone(pid, 10), "idle upstream was not closed"
    assert proc.execute("fx__echo", {"text": "back"})["content"][0]["text"] == "back"
    assert int(proc.text("execute_tool", {"name": "fx__pid"})) != pid


def test_unknown_command_is_reported_to_the_model(tmp_path, mcpzip):
    config = write_config(tmp_path, {"gone": {"command": "no-such-command-mcpzip-test"}})
    proc = mcpzip(config)
    proc.initialize()
    result = proc.execute("gone__tool")
    assert result["isError"] is True
    assert "no-such-command-mcpzip-test" in result["content"][0]["text"]
    assert "not found" in result["content"][0]["text"]


def test_an_upstream_protocol_error_becomes_a_tool_error(tmp_path, mcpzip):
    # The cache promises a tool the server no longer has: it answers -32602.
    # (A slow start keeps the background refresh from correcting the cache first.)
    config = write_config(tmp_path, {"fx": fixture_server("fx", "--start-delay", "0.5")})
    cache = tmp_path / "cache" / "tools.json"
    cache.parent.mkdir()
    cache.write_text(json.dumps([{"name": "fx__ghost", "server_name": "fx", "original_name": "ghost",
                                  "description": "Gone.", "input_schema": {"type": "object"}}]))
    proc = mcpzip(config)
    proc.initialize()
    result = proc.execute("fx__ghost")
    assert result["isError"] is True
    assert result["content"][0]["text"] == "Error: fx__ghost: the server refused the call (-32602: Unknown tool)"


def test_closing_while_an_upstream_is_still_starting_stops_it(tmp_path, mcpzip):
    # The server prints its pid, then takes a minute to answer anything.
    pid_file = tmp_path / "pid"
    script = tmp_path / "slow_starter.py"
    script.write_text(
        "import os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    proc = mcpzip(write_config(tmp_path, {"slow": {"command": sys.executable, "args": [str(script)]}}))
    proc.initialize()
    proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "slow__x"}})
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the server was never started"
        proc.result("ping")
    pid = int(pid_file.read_text())
    assert proc.close() == 0
    assert wait_gone(pid, 5)
