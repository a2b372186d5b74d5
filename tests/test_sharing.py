"""One mcpzip for all of a user's clients: ``serve --http`` and the ``serve --shared`` relay."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ENTRY, PYTHON, clean_env, fixture_server, pid_alive, procfs, wait_gone, write_config

def shared_pids(config: Path) -> list[int]:
    """Every process running ``serve --http`` for *config*."""
    return [pid for pid in procfs.processes_with(str(config))
            if {b"--http", str(config).encode()} <= set(procfs.cmdline(pid).split(b"\0")) and pid_alive(pid)]  # fmt: skip


def kill_everything_of(config: Path) -> None:
    """Stop what a test started for *config*, including an orphan of a killed shared mcpzip."""
    for pid in procfs.processes_with(str(config.parent)):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def config(tmp_path):
    path = write_config(tmp_path / "cfg", {"fx": fixture_server("fx"), "solo": fixture_server("solo", shared=False)},
                        shared_idle_minutes=5)  # fmt: skip
    yield path
    kill_everything_of(path)


class Front:
    """``mcpzip serve --http 127.0.0.1:0`` as a child, with its port and secret."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc = subprocess.Popen([PYTHON, ENTRY, "serve", "--http", "127.0.0.1:0", "--config", str(config)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=clean_env())  # fmt: skip
        state = config.parent / "shared" / "state.json"
        deadline = time.monotonic() + 20
        while not (state.exists() and json.loads(state.read_text() or "{}").get("pid") == self.proc.pid):
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "serve --http did not start"
            time.sleep(0.05)  # a bounded poll for a file another process writes
        self.port = json.loads(state.read_text())["port"]
        self.secret = (config.parent / "shared" / "secret").read_text().strip()
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def post(self, message: dict, headers: dict | None = None, auth: bool = True) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            sent["Authorization"] = f"Bearer {self.secret}"
        sent.update(headers or {})
        try:
            conn.request("POST", "/mcp", body=json.dumps(message), headers=sent)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        if not self.proc.stderr.closed:
            self.stderr_text = self.proc.stderr.read().decode("utf-8", "replace")
            self.proc.stderr.close()


def initialize(capabilities: dict | None = None) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities or {},
                       "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip


def execute(rid: int, name: str, arguments: dict) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": "execute_tool", "arguments": {"name": name, "arguments": arguments}}}  # fmt: skip


def text_of(body: bytes) -> str:
    return json.loads(body)["result"]["content"][0]["text"]


# -- who may connect ----------------------------------------------------------------------------


def test_requests_without_the_secret_or_from_elsewhere_are_refused_and_reach_no_upstream(config):
    front = Front(config)
    try:
        status, headers, body = front.post(initialize())
        assert status == 200
        session = {"Mcp-Session-Id": headers["Mcp-Session-Id"]}
        before = text_of(front.post(execute(2, "fx__pid", {}), session)[2])
        crash = execute(3, "fx__crash", {})  # would end the upstream if it got through
        host = f"127.0.0.1:{front.port}"
        refused = [
            (front.post(crash, session, auth=False)[0], 401),
            (front.post(crash, {**session, "Authorization": "Bearer wrong"}, auth=False)[0], 401),
            (front.post(crash, {**session, "Origin": "http://evil.example"})[0], 403),
            (front.post(crash, {**session, "Host": f"evil.example:{front.port}"})[0], 403),
            (front.post(crash, {**session, "Host": host, "Origin": f"http://{host}.evil.example"})[0], 403),
        ]
        assert [got for got, _ in refused] == [want for _, want in refused]
        assert text_of(front.post(execute(4, "fx__pid", {}), session)[2]) == before  # never crashed
        # A page on the same loopback origin (the user's own) may talk to it.
        assert front.post(execute(5, "fx__echo", {"text": "ok"}), {**session, "Origin": f"http://{host}"})[0] == 200
    finally:
        front.stop()
    assert (config.parent / "shared" / "secret").stat().st_mode & 0o777 == 0o600
    assert (config.parent / "shared").stat().st_mode & 0o777 == 0o700


def test_sessions_are_checked_and_unknown_ones_are_gone(config):
    front = Front(config)
    try:
        status, _, body = front.post(execute(1, "fx__echo", {"text": "x"}))
        assert status == 400 and b"No valid session ID" in body
        assert front.post(execute(1, "fx__echo", {"text": "x"}), {"Mcp-Session-Id": "nope"})[0] == 404
    finally:
        front.stop()


def test_binding_other_than_loopback_is_refused(config):
    r = subprocess.run([PYTHON, ENTRY, "serve", "--http", "0.0.0.0:0", "--config", str(config)],
                       capture_output=True, text=True, timeout=30, env=clean_env())  # fmt: skip
    assert r.returncode == 1
    assert "loopback only" in r.stderr and "Traceback" not in r.stderr


# -- the official SDK as the client -------------------------------------------------------------


@pytest.mark.parametrize("mode, version", [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
def test_sdk_client_straight_to_serve_http(config, mode, version):
    pytest.importorskip("mcp")  # per test: the rest of this file needs no SDK
    import anyio
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    front = Front(config)

    async def main():
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {front.secret}"}) as http_client:
            async with Client(streamable_http_client(front.url, http_client=http_client), mode=mode, cache=None) as c:
                assert c.protocol_version == version
                found = await c.call_tool("search_tools", {"query": "echo the text back"})
                assert "fx__echo" in found.content[0].text
                done = await c.call_tool("execute_tool", {"name": "fx__echo", "arguments": {"text": mode}})
                return done.content[0].text

    try:
        assert anyio.run(main) == mode
    finally:
        front.stop()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_sdk_client_through_serve_shared(config, mode):
    pytest.importorskip("mcp")  # per test: the rest of this file needs no SDK
    import anyio
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=PYTHON, args=[ENTRY, "serve", "--shared", "--config", str(config)],
                                   env=clean_env())  # fmt: skip

    async def main():
        async with Client(params, mode=mode, cache=None) as c:
            done = await c.call_tool("execute_tool", {"name": "fx__echo", "arguments": {"text": "shared"}})
            return done.content[0].text

    assert anyio.run(main) == "shared"
    assert len(shared_pids(config)) == 1  # started detached, still serving other clients


# -- many clients, one set of servers --------------------------------------------------------------


def test_five_shared_sessions_share_one_process_per_server(config, mcpzip):
    clients = [mcpzip(config, args=("--shared",)) for _ in range(5)]
    for c in clients:
        c.initialize()
    pids: list = []
    errors: list = []

    def work(i, c):
        try:
            for n in range(10):
                word = f"client{i}-call{n}"
                assert c.text("execute_tool", {"name": "fx__echo", "arguments": {"text": word}}) == word
            pids.append(c.text("execute_tool", {"name": "fx__pid", "arguments": {}}))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(set(pids)) == 1 and len(pids) == 5
    assert len(shared_pids(config)) == 1
    for c in clients:
        assert c.close() == 0


def test_unshared_server_runs_once_per_client(config, mcpzip):
    a, b = mcpzip(config, args=("--shared",)), mcpzip(config, args=("--shared",))
    a.initialize()
    b.initialize()
    pid = {"name": "solo__pid", "arguments": {}}
    a_pid, b_pid = a.text("execute_tool", pid), b.text("execute_tool", pid)
    assert a_pid != b_pid
    assert a.text("execute_tool", pid) == a_pid  # each keeps its own
    shared = {"name": "fx__pid", "arguments": {}}
    assert a.text("execute_tool", shared) == b.text("execute_tool", shared)


def test_a_request_for_the_client_reaches_only_the_client_whose_call_caused_it(config, mcpzip):
    b = mcpzip(config, args=("--shared",))
    b.initialize(capabilities={"sampling": {}})  # B came first: being first earns nothing
    a = mcpzip(config, args=("--shared",))
    a.initialize(capabilities={"sampling": {}})
    ask = {"method": "sampling/createMessage",
           "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "A's secret"}}], "maxTokens": 5}}
    rid = a.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__ask", "arguments": ask}})
    request = a.requests.get(timeout=20)
    assert request["method"] == "sampling/createMessage"
    assert request["params"]["messages"][0]["content"]["text"] == "A's secret"
    a.send({"jsonrpc": "2.0", "id": request["id"],
            "result": {"role": "assistant", "content": {"type": "text", "text": "for A"}, "model": "m"}})  # fmt: skip
    assert "for A" in a.response(rid)["result"]["content"][0]["text"]
    # B took no part: no request reached it; a call of its own still works.
    assert b.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "b"}}) == "b"
    assert b.requests.empty()


def test_one_clients_cancel_does_not_touch_anothers_call(config, mcpzip):
    a, b = mcpzip(config, args=("--shared",)), mcpzip(config, args=("--shared",))
    a.initialize()
    b.initialize()
    rid = a.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": 1500}}})
    b.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid, "reason": "B's"}})
    assert b.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "b"}}) == "b"  # B's cancel was handled
    result = a.response(rid)["result"]
    assert not result.get("isError"), result


# -- the shared process's life ---------------------------------------------------------------------


def test_two_clients_starting_at_once_start_one_shared_mcpzip(config, mcpzip):
    clients = [mcpzip(config, args=("--shared",)) for _ in range(2)]
    threads = [threading.Thread(target=c.initialize) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    answers = {c.text("execute_tool", {"name": "fx__pid", "arguments": {}}) for c in clients}
    assert len(answers) == 1
    assert len(shared_pids(config)) == 1


def test_a_killed_shared_mcpzip_is_started_again_on_the_next_call(config, mcpzip):
    client = mcpzip(config, args=("--shared",))
    client.initialize()
    assert client.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "one"}}) == "one"
    [first] = shared_pids(config)
    os.kill(first, signal.SIGKILL)
    assert wait_gone(first, 10)
    assert client.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "two"}}) == "two"
    [second] = shared_pids(config)
    assert second != first
    assert client.close() == 0


def test_the_shared_mcpzip_stops_when_no_client_is_left(tmp_path, mcpzip):
    config = write_config(tmp_path / "cfg", {"fx": fixture_server("fx")}, shared_idle_minutes=0.02)
    try:
        client = mcpzip(config, args=("--shared",))
        client.initialize()
        assert client.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "x"}}) == "x"
        [pid] = shared_pids(config)
        assert client.close() == 0
        assert wait_gone(pid, 20)  # 1.2 s of idleness, checked every 0.3 s
        assert not (config.parent / "shared" / "state.json").exists()
    finally:
        kill_everything_of(config)


def test_log_messages_and_levels_are_each_clients_own(config, mcpzip):
    a, b = mcpzip(config, args=("--shared",)), mcpzip(config, args=("--shared",))
    a.initialize()
    b.initialize()
    assert a.result("logging/setLevel", {"level": "debug"}) == {}
    assert b.result("logging/setLevel", {"level": "error"}) == {}
    # A's call logs at info: A hears it; B asked for errors only, and it was not B's call anyway.
    a.execute("fx__log", {"level": "info", "text": "for A"})
    heard = a.notifications.get(timeout=10)
    assert heard["method"] == "notifications/message" and heard["params"]["data"] == "for A"
    # B's call logs at warning: below B's own level, so B hears nothing, and A none of B's.
    b.execute("fx__log", {"level": "warning", "text": "for B"})
    b.execute("fx__log", {"level": "error", "text": "B's error"})
    assert b.notifications.get(timeout=10)["params"]["data"] == "B's error"
    # Had anything of B's reached A, it would have come before this, A's next own message.
    a.execute("fx__log", {"level": "info", "text": "A again"})
    assert a.notifications.get(timeout=10)["params"]["data"] == "A again"
    assert a.notifications.empty() and b.notifications.empty()


def test_doctor_reports_the_shared_mcpzip_and_its_clients(config, mcpzip):
    from conftest import run_cli

    before = run_cli("doctor", "--config", str(config), "--timeout", "20")
    assert "shared mcpzip: not running" in before.stdout
    assert not (config.parent / "shared" / "secret").exists()  # doctor creates nothing
    client = mcpzip(config, args=("--shared",))
    client.initialize()
    assert client.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "x"}}) == "x"
    [pid] = shared_pids(config)
    after = run_cli("doctor", "--config", str(config), "--timeout", "20")
    assert f"shared mcpzip: running (pid {pid}, port " in after.stdout
    assert "1 client; servers running: fx" in after.stdout


def test_progress_reaches_only_the_client_whose_call_it_is(config, mcpzip):
    a, b = mcpzip(config, args=("--shared",)), mcpzip(config, args=("--shared",))
    a.initialize()
    b.initialize()
    call = {"name": "execute_tool", "arguments": {"name": "fx__progress", "arguments": {"steps": 3, "ms": 5}},
            "_meta": {"progressToken": "a-token"}}  # fmt: skip
    assert not a.result("tools/call", call).get("isError")
    seen = [a.notifications.get(timeout=10) for _ in range(3)]
    assert {n["method"] for n in seen} == {"notifications/progress"}
    assert {n["params"]["progressToken"] for n in seen} == {"a-token"}
    assert b.text("execute_tool", {"name": "fx__echo", "arguments": {"text": "b"}}) == "b"
    assert b.notifications.empty()
