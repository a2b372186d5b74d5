"""stdio upstreams that misbehave on their pipes or refuse to die: mcpzip keeps serving and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from conftest import PYTHON, fixture_server, pid_alive, wait_gone, write_config

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process checks read /proc")


def healthy(proc, name: str = "fx") -> None:
    """The same mcpzip still lists its tools and runs a normal call."""
    names = {t["name"] for t in proc.result("tools/list")["tools"]}
    assert {"search_tools", "execute_tool"} <= names or f"{name}__echo" in names  # meta-tools, or direct (auto)
    assert proc.execute(f"{name}__echo", {"text": "still here"}, timeout=30)["content"][0]["text"] == "still here"


def descendants(pid: int) -> set[int]:
    """Every live process below *pid*, from /proc (a zombie has exited: not counted)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] not in ("Z", "X"):
                    parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def all_gone(pids, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    return [pid for pid in pids if not wait_gone(pid, max(0.0, deadline - time.monotonic()))]


# -- item 7: a reader thread survives any line ----------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        {"text": "[" * 2000 + "]" * 2000},
        {"text": '{"jsonrpc":"2.0","method":"x","params":' + "[" * 100_000},
        {"hex": "7b226a736f6e727063223a22322e30222c226964223a39392c22726573756c74223a22ed a0 80 ff fe 227d".replace(" ", "")},
        {"hex": "00ff0a0d"},
        {"text": "not json at all"},
    ],
    ids=["nested-2000", "nested-100k-unclosed", "invalid-utf8", "binary", "text"],
)
def test_any_line_on_stdout_leaves_the_upstream_working(tmp_path, mcpzip, line):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx")}))
    proc.initialize()
    assert proc.execute("fx__emit", line, timeout=5)["content"][0]["text"] == "emitted"
    healthy(proc)


def test_an_answer_nested_too_deeply_fails_its_call_at_once(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx")}))
    proc.initialize()
    started = time.monotonic()
    result = proc.execute("fx__nest", {"depth": 3000}, timeout=20)
    assert result["isError"] is True
    assert "nested too deeply" in result["content"][0]["text"]
    assert time.monotonic() - started < 5
    healthy(proc)


# -- item 8: message size is capped ----------------------------------------------------------


def test_an_oversized_answer_is_dropped_with_an_error_for_its_call(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx")}, max_message_bytes=1024 * 1024))
    proc.initialize()
    started = time.monotonic()
    result = proc.execute("fx__big", {"bytes": 3 * 1024 * 1024}, timeout=20)
    assert result["isError"] is True, result
    text = result["content"][0]["text"]
    assert "more than max_message_bytes (1048576)" in text, text
    assert time.monotonic() - started < 10
    assert proc.execute("fx__big", {"bytes": 1000})["content"][0]["text"] == ("0123456789abcdef" * 63)[:1000]
    healthy(proc)


def test_a_line_without_newline_is_not_held_in_memory(tmp_path, mcpzip):
    # 256 MiB of one line with no newline, then a newline and the real answer.
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx")}, max_message_bytes=1024 * 1024))
    proc.initialize()
    healthy(proc)
    chunk = "x" * (512 * 1024)  # the request itself stays under the client's max_message_bytes
    assert proc.execute("fx__emit", {"text": chunk, "repeat": 512}, timeout=60)["content"][0]["text"] == "emitted"
    with open(f"/proc/{proc.proc.pid}/status") as f:
        peak_kib = int(next(line for line in f if line.startswith("VmHWM:")).split()[1])
    assert peak_kib < 128 * 1024, f"mcpzip's peak memory was {peak_kib // 1024} MiB"
    healthy(proc)


# -- item 11: the process is watched, not only its pipe --------------------------------------


def test_an_upstream_that_closes_stdout_but_runs_on_is_restarted(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx")}))
    proc.initialize()
    first = int(proc.text("execute_tool", {"name": "fx__pid"}))
    started = time.monotonic()
    result = proc.execute("fx__close_stdout", timeout=30)
    assert result["isError"] is True
    assert "closed its stdout but kept running" in result["content"][0]["text"]
    assert time.monotonic() - started < 10
    assert wait_gone(first, 5)
    healthy(proc)
    assert int(proc.text("execute_tool", {"name": "fx__pid"})) != first


def test_a_crash_is_noticed_while_a_helper_holds_stdout(tmp_path, mcpzip):
    fixture = fixture_server("fx")
    command = " ".join([PYTHON, *fixture["args"]])
    helper_pid = tmp_path / "helper.pid"
    config = write_config(tmp_path, {"fx": {"command": "sh", "args": ["-c", f"sleep 300 & echo $! > {helper_pid}; exec {command}"]}})
    proc = mcpzip(config)
    proc.initialize()
    first = int(proc.text("execute_tool", {"name": "fx__pid"}))
    helper = int(helper_pid.read_text())
    started = time.monotonic()
    result = proc.execute("fx__crash", timeout=30)
    assert result["isError"] is True
    assert "exited with code 3" in result["content"][0]["text"]
    assert time.monotonic() - started < 5
    healthy(proc)
    assert int(proc.text("execute_tool", {"name": "fx__pid"})) != first
    # The helper went with the server it belonged to.
    assert wait_gone(helper, 5)


# -- items 14-16: nothing outlives mcpzip -----------------------------------------------------


def stubborn_config(tmp_path):
    return write_config(tmp_path, {"fx": fixture_server("fx", "--stubborn")})


def test_after_sigkill_nothing_mcpzip_started_survives(tmp_path, mcpzip):
    proc = mcpzip(stubborn_config(tmp_path))
    proc.initialize()
    server = int(proc.text("execute_tool", {"name": "fx__pid"}))
    child = int(proc.text("execute_tool", {"name": "fx__spawn_child"}))
    daemon = int(proc.text("execute_tool", {"name": "fx__spawn_child", "arguments": {"setsid": True}}))
    started = descendants(proc.proc.pid)
    assert {server, child, daemon} <= started
    proc.proc.kill()
    proc.proc.wait()
    assert not all_gone(started, 5), "still running 5 s after mcpzip was killed"


@pytest.mark.parametrize("how", ["stdin", "sigterm"])
def test_a_setsid_grandchild_holding_the_pipes_does_not_delay_exit(tmp_path, mcpzip, how):
    proc = mcpzip(stubborn_config(tmp_path))
    proc.initialize()
    daemon = int(proc.text("execute_tool", {"name": "fx__spawn_child", "arguments": {"setsid": True}}))
    started = descendants(proc.proc.pid)
    begun = time.monotonic()
    if how == "stdin":
        assert proc.close(timeout=15) == 0
    else:
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(15) == 0
    assert time.monotonic() - begun < 8, "exit took longer than the documented grace"
    assert daemon in started
    assert not all_gone(started, 2)


def test_closing_while_a_timed_out_start_is_being_cleaned_up_orphans_nothing(tmp_path):
    # The server ignores SIGTERM and stdin EOF and never answers: its start times
    # out, and the pool is closed (mcpzip exiting) while the server is being stopped.
    # Pool.close must not return before it is gone: mcpzip exits right after.
    from mcpzip.base import config as config_module
    from mcpzip.upstream.pool import Pool
    from mcpzip.upstream.session import UpstreamError

    marker = tmp_path / "eof"
    script = tmp_path / "silent.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "sys.stdin.buffer.read()\n"
        f"open({str(marker)!r}, 'w').write('eof')\n"
        "time.sleep(600)\n"
    )
    pool = Pool(config_module.load(str(write_config(tmp_path, {"slow": {"command": PYTHON, "args": [str(script)]}}))))
    failures = []

    def start():
        try:
            pool.get("slow", timeout=1)
        except UpstreamError as e:
            failures.append(str(e))

    starter = threading.Thread(target=start)
    starter.start()
    deadline = time.monotonic() + 15
    while not marker.exists():  # the clean-up has begun: stdin is closed
        assert time.monotonic() < deadline, "the start never timed out"
        time.sleep(0.01)
    pid = int((tmp_path / "pid").read_text())
    pool.close()
    assert wait_gone(pid, 0.5), "Pool.close returned while the server was still running"
    starter.join(10)
    assert failures and "timed out after 1s" in failures[0]


# -- issue 17 item 3: close is guarded -------------------------------------------------------


def test_two_threads_closing_one_transport_run_the_kill_sequence_once(tmp_path):
    from mcpzip.base.config import ServerConfig
    from mcpzip.upstream.transports.stdio import StdioTransport

    record = tmp_path / "record"
    script = tmp_path / "counting.py"
    script.write_text(
        "import os, signal, sys, time\n"
        f"def note(sig, frame): open({str(record)!r}, 'a').write('TERM\\n')\n"
        "signal.signal(signal.SIGTERM, note)\n"
        "sys.stdin.buffer.read()\n"
        "while True: time.sleep(1)\n"
    )
    transport = StdioTransport(ServerConfig(name="counting", command=PYTHON, args=[str(script)]))
    transport.start(lambda message: None, lambda reason: None)
    pid = transport._proc.pid
    barrier = threading.Barrier(2)
    returned_alive = []

    def close():
        barrier.wait()
        transport.close()
        returned_alive.append(pid_alive(pid))

    threads = [threading.Thread(target=close) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert returned_alive == [False, False], "a close() returned before the process was stopped"
    assert record.read_text().count("TERM") == 1
    transport.close()  # a third time: nothing to do


# -- item 17: stale temporary files of a killed cache write ----------------------------------


def test_stale_cache_temporaries_are_removed_at_the_next_start(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": fixture_server("fx")})
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = [cache / f".tmp-killed{i}" for i in range(3)]
    for path in stale:
        path.write_bytes(b"x" * 1000)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    fresh = cache / ".tmp-being-written-by-another-mcpzip"
    fresh.write_bytes(b"y")
    proc = mcpzip(config)
    proc.initialize()
    healthy(proc)
    assert not any(path.exists() for path in stale)
    assert fresh.exists()
    fresh.unlink()


@pytest.mark.parametrize(
    "head, tail, expected",
    [
        (b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"text":"xxxx', b'xxxx"}]}}', 7),
        (b'{ "id" : "req-9", "jsonrpc": "2.0", "result": [[[[', b']]]]}', "req-9"),
        # A TypeScript SDK writes the id last.
        (b'{"result":{"content":[{"type":"text","text":"aaaa', b'aaaa"}]},"jsonrpc":"2.0","id":12}', 12),
        (b'{"result":{"x":1},"id":13,"jsonrpc":"2.0"}', b'{"result":{"x":1},"id":13,"jsonrpc":"2.0"}', 13),
        # Requests from the server are never taken for answers; nor is text without an id.
        (b'{"jsonrpc":"2.0","method":"sampling/createMessage","id":3,"params":{"x":"', b'"}}', None),
        (b'{"method":"x","id":3', b'}', None),
        (b"not json at all", b"not json at all", None),
        (b'{"jsonrpc":"2.0","id":true,"result":{', b"}}", None),
        # An "id" inside the result is not the message's.
        (b'{"jsonrpc":"2.0","result":{"items":[{"id":5,"name":"', b'"}]}}', None),
    ],
)
def test_the_id_of_an_unreadable_answer(head, tail, expected):
    from mcpzip.upstream.transports.stdio import _answered_id

    assert _answered_id(head, tail) == expected


def test_the_watchdog_runs_only_while_an_upstream_does(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx")}, idle_timeout_minutes=0.01))
    proc.initialize()
    server = int(proc.text("execute_tool", {"name": "fx__pid"}))
    helpers = descendants(proc.proc.pid) - {server}
    assert len(helpers) == 1, "one watchdog beside the server"
    # Idle-closed: the server goes, and the watchdog with it.
    assert not all_gone([server, *helpers], 15)
    assert descendants(proc.proc.pid) == set()
    healthy(proc)
