"""Servers run only while they are used: a fresh cache starts nothing, stale listings are refreshed
in the background on connections closed right after, a server's own ttlMs decides, warm-up."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import clean_env, fixture_children, fixture_server, run_cli, write_config
from servers.fixture_server import TOOLS

from mcpzip.base import config as config_module
from mcpzip.downstream.wiring import open_tools
from mcpzip.knowledge.catalog import Tool
from mcpzip.upstream.session import UpstreamError

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc to see child processes")

NAMES = ("alpha", "beta", "gamma")


def poll(condition, timeout: float = 20.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a condition with a bound


def received(record) -> list[str]:
    if not record.exists():
        return []
    return [json.loads(line).get("method", "") for line in record.read_text().splitlines()]


def servers(tmp_path, *extra_args: str, **per_server: list[str]) -> dict:
    return {name: fixture_server(name, "--record", str(tmp_path / f"{name}.jsonl"), *extra_args, *per_server.get(name, []))
            for name in NAMES}  # fmt: skip


def listed(tmp_path) -> set[str]:
    """The servers cache/servers.json says were listed."""
    try:
        entries = json.loads((tmp_path / "cache" / "servers.json").read_text())["servers"]
    except (OSError, ValueError):
        return set()
    return {name for name, entry in entries.items() if "listed" in entry}


def serve(mcpzip, config):
    return mcpzip(config, env=clean_env(MCPZIP_LOG="info"))


def decided(proc) -> bool:
    """Whether serve has decided which servers to list (the settle job ran)."""
    return "in the background (the others' listings are fresh)" in proc.stderr


def warm_cache(tmp_path, mcpzip, config) -> None:
    """One session that lists every server, so the next one starts with a fresh cache."""
    proc = serve(mcpzip, config)
    proc.initialize()
    proc.result("tools/list")
    poll(lambda: listed(tmp_path) >= set(NAMES), what="the first listings to be recorded")
    assert proc.text("search_tools", {"query": "echo"})
    assert proc.close() == 0
    for name in NAMES:
        (tmp_path / f"{name}.jsonl").unlink()


def test_a_fresh_cache_starts_no_upstream_and_a_call_starts_only_its_server(tmp_path, mcpzip):
    config = write_config(tmp_path, servers(tmp_path), warm_up=False)
    warm_cache(tmp_path, mcpzip, config)

    proc = serve(mcpzip, config)
    assert "alpha (" in proc.initialize()["instructions"]
    assert len(proc.result("tools/list")["tools"]) == 3
    poll(lambda: decided(proc), what="the start-up listing decision")
    assert "listing 0 of 3 servers" in proc.stderr
    found = proc.text("search_tools", {"query": "echo text", "limit": 10})
    assert all(f"{n}__echo" in found for n in NAMES)
    assert fixture_children(proc.proc.pid) == set()  # not one upstream process
    assert all(received(tmp_path / f"{n}.jsonl") == [] for n in NAMES)

    assert proc.execute("beta__echo", {"text": "hi"})["content"][0]["text"] == "hi"
    assert len(fixture_children(proc.proc.pid)) == 1
    assert "tools/call" in received(tmp_path / "beta.jsonl")
    assert received(tmp_path / "alpha.jsonl") == [] and received(tmp_path / "gamma.jsonl") == []
    assert proc.close() == 0


def test_a_changed_config_entry_is_listed_again_and_its_connection_closed(tmp_path, mcpzip):
    config = write_config(tmp_path, servers(tmp_path), warm_up=False)
    warm_cache(tmp_path, mcpzip, config)
    write_config(tmp_path, servers(tmp_path, gamma=["--extra-tools", "1"]), warm_up=False)

    proc = serve(mcpzip, config)
    proc.initialize()
    proc.result("tools/list")
    cache = tmp_path / "cache" / "tools.json"
    poll(lambda: "gamma__tool_0" in cache.read_text(), what="gamma's new listing in the cache")
    poll(lambda: fixture_children(proc.proc.pid) == set(), what="the listing-only connection to close")
    assert "listing 1 of 3 servers" in proc.stderr
    assert "gamma: listed; closing the connection no call is using" in proc.stderr
    assert received(tmp_path / "alpha.jsonl") == [] and received(tmp_path / "beta.jsonl") == []
    assert "gamma__tool_0" in proc.text("search_tools", {"query": "tool_0"})
    assert proc.close() == 0


def test_a_listing_older_than_refresh_hours_is_listed_again(tmp_path, mcpzip):
    config = write_config(tmp_path, servers(tmp_path), warm_up=False)
    warm_cache(tmp_path, mcpzip, config)
    known = tmp_path / "cache" / "servers.json"
    data = json.loads(known.read_text())
    data["servers"]["alpha"]["listed"] -= 25 * 3600  # older than the default 24 hours
    data["servers"]["beta"]["listed"] -= 23 * 3600  # still fresh
    known.write_text(json.dumps(data))

    proc = serve(mcpzip, config)
    proc.initialize()
    proc.result("tools/list")
    poll(lambda: "tools/list" in received(tmp_path / "alpha.jsonl"), what="alpha's listing")
    poll(lambda: fixture_children(proc.proc.pid) == set(), what="the listing-only connection to close")
    assert "listing 1 of 3 servers" in proc.stderr
    assert received(tmp_path / "beta.jsonl") == []
    assert proc.close() == 0


@pytest.mark.parametrize(("ttl_ms", "refresh_hours", "listed_again"), [(3_600_000, 0, False), (0, 24, True)],
                         ids=["long-ttl-beats-refresh_hours-0", "ttl-0-beats-refresh_hours-24"])  # fmt: skip
def test_a_modern_servers_ttl_decides_its_freshness(tmp_path, mcpzip, ttl_ms, refresh_hours, listed_again):
    record = tmp_path / "modern.jsonl"
    entry = fixture_server("modern", "--modern-ttl", str(ttl_ms), "--record", str(record))
    config = write_config(tmp_path, {"modern": entry}, refresh_hours=refresh_hours, warm_up=False)
    proc = serve(mcpzip, config)
    proc.initialize()
    proc.result("tools/list")
    poll(lambda: "tools/list" in received(record), what="the first listing")
    assert proc.text("search_tools", {"query": "echo"}).startswith("modern__echo")
    assert proc.close() == 0
    assert json.loads((tmp_path / "cache" / "servers.json").read_text())["servers"]["modern"]["ttl"] == ttl_ms / 1000
    record.unlink()

    proc = serve(mcpzip, config)
    proc.initialize()
    proc.result("tools/list")
    poll(lambda: decided(proc), what="the start-up listing decision")
    if listed_again:
        poll(lambda: "tools/list" in received(record), what="the second listing")
    else:
        assert received(record) == [] and fixture_children(proc.proc.pid) == set()
    assert proc.close() == 0


def test_a_server_connected_for_a_call_is_listed_again_when_its_listing_is_old(tmp_path, mcpzip):
    config = write_config(tmp_path, servers(tmp_path), warm_up=False)
    warm_cache(tmp_path, mcpzip, config)
    known = tmp_path / "cache" / "servers.json"
    data = json.loads(known.read_text())
    data["servers"]["beta"]["listed"] -= 2 * 3600  # fresh (24 h), but older than an hour
    known.write_text(json.dumps(data))

    proc = serve(mcpzip, config)
    proc.initialize()
    proc.result("tools/list")
    poll(lambda: decided(proc), what="the start-up listing decision")
    assert proc.execute("beta__echo", {"text": "x"})["content"][0]["text"] == "x"
    poll(lambda: "tools/list" in received(tmp_path / "beta.jsonl"), what="beta's listing")
    poll(lambda: 0 <= time.time() - json.loads(known.read_text())["servers"]["beta"]["listed"] < 600,
         what="beta's listing time to be renewed")  # fmt: skip
    assert len(fixture_children(proc.proc.pid)) == 1, proc.stderr  # connected for a call: it stays
    assert proc.close() == 0


def test_search_warms_up_the_servers_of_its_top_results(tmp_path, mcpzip):
    # Each server has its own tool, so no result is a copy of another's.
    config = write_config(tmp_path, servers(tmp_path, alpha=["--only", "add"], beta=["--only", "sleep"],
                                            gamma=["--only", "echo"]))  # fmt: skip
    warm_cache(tmp_path, mcpzip, config)
    proc = serve(mcpzip, config)
    proc.initialize()
    proc.result("tools/list")
    poll(lambda: decided(proc), what="the start-up listing decision")
    assert fixture_children(proc.proc.pid) == set()
    found = proc.text("search_tools", {"query": "add numbers, sleep or echo text", "limit": 5})
    order = []
    for line in found.splitlines():
        server = line.partition("__")[0]
        if server in NAMES and server not in order:
            order.append(server)
    assert len(order) >= 2, found
    warmed = order[:2]
    poll(lambda: all("initialize" in received(tmp_path / f"{n}.jsonl") for n in warmed), what="two servers warmed up")
    assert len(fixture_children(proc.proc.pid)) == 2
    assert all(received(tmp_path / f"{n}.jsonl") == [] for n in NAMES if n not in warmed)
    assert "warming up" in proc.stderr
    assert proc.close() == 0


def test_warm_up_skips_servers_that_failed_to_start(tmp_path):
    path = write_config(tmp_path, {"broken": {"command": str(tmp_path / "no-such-program")}, "fine": fixture_server("fine")})
    tools = open_tools(config_module.load(str(path), environ={}))
    try:
        with pytest.raises(UpstreamError):
            tools.pool.get("broken")
        found = [Tool("broken", "x", {"name": "x"}), Tool("fine", "echo", {"name": "echo"})]
        assert tools.listings.warm_up(found) == ["fine"]  # broken is paused after its failed start
        poll(lambda: tools.pool.connected("fine"), what="fine to be warmed up")
        assert tools.listings.warm_up(found) == []  # fine runs already
    finally:
        tools.close()


def test_refresh_lists_now(tmp_path):
    path = write_config(tmp_path, {"alpha": fixture_server("alpha"), "beta": fixture_server("beta")})
    out = run_cli("refresh", "--config", str(path), env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"alpha: {len(TOOLS)} tools", f"beta: {len(TOOLS)} tools"]
    entries = json.loads((tmp_path / "cache" / "tools.json").read_text())
    assert {e["server_name"] for e in entries} == {"alpha", "beta"}
    one = run_cli("refresh", "beta", "--config", str(path), env=clean_env())
    assert one.returncode == 0 and one.stdout == f"beta: {len(TOOLS)} tools\n"
    bad = run_cli("refresh", "nope", "--config", str(path), env=clean_env())
    assert bad.returncode == 1 and "no server named 'nope'" in bad.stderr
