"""cache/servers.json: each upstream's era and capabilities, remembered from one start to the next."""

from __future__ import annotations

import json
import stat
import time

from servers.fixture_server import TOOLS
from conftest import clean_env, fixture_server, write_config


def methods_received(record) -> list[str]:
    return [json.loads(line)["method"] for line in record.read_text().splitlines()]


def run_once(mcpzip, config) -> None:
    proc = mcpzip(config)
    proc.initialize()
    assert proc.execute("plain__echo", {"text": "x"})["content"][0]["text"] == "x"  # connects the upstream
    assert proc.close() == 0


def test_era_and_capabilities_are_remembered_and_spare_the_probe(tmp_path, mcpzip):
    record = tmp_path / "plain.jsonl"
    config = write_config(tmp_path, {"plain": fixture_server("plain", "--record", str(record))})
    run_once(mcpzip, config)
    assert methods_received(record)[0] == "server/discover"

    cache = tmp_path / "cache" / "servers.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o644
    entry = json.loads(cache.read_text())["servers"]["plain"]
    assert len(entry.pop("config")) == 32  # a keyed hash of the server's config entry, not a copy
    assert "echo" in entry.pop("topics")  # what its tools are about: the nouns of their names
    assert entry.pop("bytes") > 1000  # the size of its definitions, for tools_mode auto
    assert 0 <= time.time() - entry.pop("listed") < 60  # when its tools were listed
    assert entry.pop("offered") == {}  # what the client could do, as the legacy server heard it when it listed
    assert entry == {"era": "legacy", "protocolVersion": "2025-11-25",
                     "capabilities": {"tools": {"listChanged": True}, "logging": {}},  # as the fixture declares them
                     "tools": len(TOOLS)}

    record.unlink()
    run_once(mcpzip, config)
    received = methods_received(record)
    assert received[0] == "initialize" and "server/discover" not in received
    assert sorted(p.name for p in cache.parent.iterdir()) == ["servers.json", "servers.json.key", "tools.json"]  # no temp files left
    assert stat.S_IMODE((cache.parent / "servers.json.key").stat().st_mode) == 0o600


def test_a_changed_server_entry_is_probed_again(tmp_path, mcpzip):
    record = tmp_path / "plain.jsonl"
    config = write_config(tmp_path, {"plain": fixture_server("plain", "--record", str(record))})
    run_once(mcpzip, config)
    record.unlink()
    write_config(tmp_path, {"plain": fixture_server("plain", "--record", str(record), "--extra-tools", "1")})
    run_once(mcpzip, config)
    assert methods_received(record)[0] == "server/discover"


def test_a_damaged_server_cache_is_ignored_and_rewritten(tmp_path, mcpzip):
    config = write_config(tmp_path, {"plain": fixture_server("plain")})
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "servers.json").write_text("{not json")
    proc = mcpzip(config, env=clean_env(MCPZIP_LOG="warning"))
    proc.initialize()
    assert proc.execute("plain__echo", {"text": "x"})["content"][0]["text"] == "x"
    assert proc.close() == 0
    assert "server cache" in proc.stderr and "unreadable" in proc.stderr
    assert "plain" in json.loads((tmp_path / "cache" / "servers.json").read_text())["servers"]


def test_the_first_answers_take_tool_counts_from_the_small_file(tmp_path, mcpzip):
    config = write_config(tmp_path, {"plain": fixture_server("plain")})
    run_once(mcpzip, config)
    # Damage the big cache: the handshake must not need it, a search does.
    (tmp_path / "cache" / "tools.json").write_text("[{broken")
    proc = mcpzip(config)
    assert f"- plain ({len(TOOLS)} tools)" in proc.initialize()["instructions"]
    assert "unreadable" not in proc.stderr
    assert proc.text("search_tools", {"query": "echo"}).startswith("plain__echo")
    assert proc.close() == 0
    assert "tool cache" in proc.stderr and "unreadable" in proc.stderr
