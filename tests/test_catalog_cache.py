"""The tool cache beside the config: served at once, refreshed, merged, never broken."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time

from conftest import fixture_server, write_config

from mcpzip.knowledge.catalog import Catalog, Tool, compact_params


def cache_of(config):
    return config.parent / "cache" / "tools.json"


def build_cache(tmp_path, mcpzip, servers):
    """Run mcpzip once so it lists *servers* and writes its cache."""
    config = write_config(tmp_path, servers)
    proc = mcpzip(config)
    proc.initialize()
    proc.text("search_tools", {"query": "echo"})
    assert proc.close() == 0
    return config


def test_cache_is_written_beside_the_config_with_mode_0644(tmp_path, mcpzip):
    config = build_cache(tmp_path, mcpzip, {"fx": fixture_server()})
    cache = cache_of(config)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o644
    entries = json.loads(cache.read_text())
    echo = next(e for e in entries if e["name"] == "fx__echo")
    # The reference implementation's entry shape, so both can read each other's cache.
    assert echo["server_name"] == "fx" and echo["original_name"] == "echo"
    assert echo["compact_params"] == "text:string*"
    assert echo["input_schema"]["required"] == ["text"]
    assert sorted(p.name for p in cache.parent.iterdir()) == ["servers.json", "servers.json.key", "tools.json"]  # no temp files left


def test_second_start_answers_from_cache_while_upstreams_are_unreachable(tmp_path, mcpzip):
    config = build_cache(tmp_path, mcpzip, {"fx": fixture_server()})
    # Now the server starts but never answers: listing it would take the full 30 s.
    silent = {"command": sys.executable, "args": ["-c", "import time; time.sleep(120)"]}
    write_config(tmp_path, {"fx": silent}, call_timeout_seconds=1)
    proc = mcpzip(config)
    proc.initialize()
    started = time.monotonic()
    text = proc.text("search_tools", {"query": "echo text back"})
    assert time.monotonic() - started < 5
    assert text.startswith("fx__echo: Echo the given text back unchanged.")
    described = json.loads(proc.text("describe_tool", {"name": "fx__add"}))
    assert described["outputSchema"]["required"] == ["sum"] and described["title"] == "Adder"
    result = proc.execute("fx__echo", {"text": "x"})
    assert result["isError"] is True and "timed out" in result["content"][0]["text"]
    assert proc.close() == 0
    # The failed refresh kept the cached tools.
    assert any(e["name"] == "fx__echo" for e in json.loads(cache_of(config).read_text()))


def test_corrupt_cache_is_ignored_with_a_warning_and_rebuilt(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": fixture_server()})
    cache = cache_of(config)
    cache.parent.mkdir()
    cache.write_text('[{"name": "fx__echo", "server_na')
    proc = mcpzip(config)
    proc.initialize()
    assert "fx__echo" in proc.text("search_tools", {"query": "echo"})
    assert proc.close() == 0
    assert "unreadable" in proc.stderr and "rebuilt" in proc.stderr
    assert {e["name"] for e in json.loads(cache.read_text())} >= {"fx__echo", "fx__add"}


def test_servers_removed_from_the_config_lose_their_tools(tmp_path, mcpzip):
    config = build_cache(tmp_path, mcpzip, {"fx": fixture_server(), "old": fixture_server("old")})
    write_config(tmp_path, {"fx": fixture_server()})
    proc = mcpzip(config)
    proc.initialize()
    text = proc.text("search_tools", {"query": "echo", "limit": 50})
    assert "fx__echo" in text and "old__" not in text
    assert proc.close() == 0
    assert not any(e["server_name"] == "old" for e in json.loads(cache_of(config).read_text()))


def test_first_run_without_cache_waits_for_the_listing(tmp_path, mcpzip):
    config = write_config(tmp_path, {"slow": fixture_server("slow", "--start-delay", "1.5")})
    proc = mcpzip(config)
    proc.initialize()
    assert proc.text("search_tools", {"query": "add two numbers"}).startswith("slow__add:")


def test_execute_waits_for_its_server_listing_on_first_run(tmp_path, mcpzip):
    config = write_config(tmp_path, {"slow": fixture_server("slow", "--start-delay", "1")})
    proc = mcpzip(config)
    proc.initialize()
    assert proc.execute("slow__echo", {"text": "waited"})["content"][0]["text"] == "waited"


def test_a_tool_list_change_on_disk_is_picked_up_on_next_start(tmp_path, mcpzip):
    config = build_cache(tmp_path, mcpzip, {"fx": fixture_server()})
    write_config(tmp_path, {"fx": fixture_server("fx", "--extra-tools", "2")})
    proc = mcpzip(config)
    proc.initialize()
    deadline = time.monotonic() + 20
    while "fx__tool_1" not in proc.text("search_tools", {"query": "generated tool number", "limit": 50}):
        assert time.monotonic() < deadline, "background refresh never added the new tools"
        proc.result("ping")


def test_two_processes_writing_the_cache_never_break_it(tmp_path):
    cache = tmp_path / "cache" / "tools.json"
    tools = [{"name": f"t{i}", "description": "x" * 500, "inputSchema": {"type": "object"}} for i in range(200)]
    stop = threading.Event()
    broken = []

    def read_loop():
        while not stop.is_set():
            try:
                data = cache.read_bytes()
            except FileNotFoundError:
                continue
            try:
                json.loads(data)
            except ValueError:
                broken.append(len(data))

    reader = threading.Thread(target=read_loop)
    reader.start()
    import subprocess

    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from mcpzip.knowledge.catalog import Catalog;"
        "c = Catalog(['a', 'b'], sys.argv[2]); tools = json.loads(sys.argv[3])\n"
        "for i in range(30): c.update('a' if i % 2 else 'b', tools)"
    )
    root = str(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    writers = [
        subprocess.Popen([sys.executable, "-c", code, root, str(cache), json.dumps(tools)]) for _ in range(2)
    ]
    try:
        assert [w.wait(60) for w in writers] == [0, 0]
    finally:
        stop.set()
        reader.join()
    assert broken == []
    assert len(json.loads(cache.read_text())) in (200, 400)
    assert sorted(p.name for p in cache.parent.iterdir()) == ["tools.json"]


def test_reference_cache_entries_are_read(tmp_path):
    # An entry as the reference implementation writes it, without extra keys.
    cache = tmp_path / "tools.json"
    cache.write_text(json.dumps([{
        "name": "gh__create_issue", "server_name": "gh", "original_name": "create_issue",
        "description": "Create an issue", "input_schema": {"type": "object", "properties": {"title": {"type": "string"}}},
        "compact_params": "title:string",
    }]))
    catalog = Catalog(["gh"], str(cache))
    assert catalog.load()
    tool = catalog.get("gh__create_issue")
    assert tool.definition == {
        "name": "create_issue", "description": "Create an issue",
        "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}},
    }


def test_compact_params_puts_required_first_and_bounds_length():
    schema = {
        "type": "object",
        "properties": {
            "owner": {"type": "string"}, "count": {"type": ["integer", "null"]},
            "mode": {"anyOf": [{"type": "null"}, {"type": "string"}]}, "repo": {"type": "string"},
        },
        "required": ["repo"],
    }
    assert compact_params(schema) == "repo:string*, owner:string, count:integer, mode:string"
    assert compact_params(schema, limit=2) == "repo:string*, owner:string, +2 more"
    assert compact_params({"type": "object"}) == ""


def test_tool_names_split_on_the_first_separator():
    from mcpzip.knowledge.catalog import split_name

    assert split_name("a__b__c") == ("a", "b__c")
    assert split_name("nounderscores") is None
    assert Tool("a", "b__c", {}).prefixed == "a__b__c"


def test_a_tool_keeps_its_definition_exactly_and_hands_out_copies():
    # Kept packed (a fifth of the memory of the dicts): what comes out must be
    # what went in, lone surrogates and odd numbers included, and a caller
    # that changes its copy must not change the catalog.
    definition = {
        "name": "odd", "description": "half a pair \ud83d, é, 🙂", "title": None,
        "inputSchema": {"type": "object", "properties": {"n": {"type": "number", "default": 1e308, "enum": [1, 2.5, True]}},
                        "required": ["n"]},
        "annotations": {"readOnlyHint": False}, "_meta": {"big": 10**30},
    }
    tool = Tool("s", "odd", definition)
    copy = tool.definition
    assert copy == definition and copy is not definition
    copy["name"] = "changed"
    copy["inputSchema"]["required"].append("x")
    assert tool.definition == definition
    assert tool == Tool("s", "odd", json.loads(json.dumps(definition))) and tool != Tool("t", "odd", definition)
    assert len({tool, Tool("s", "odd", dict(definition))}) == 1
    try:
        tool.name = "other"
    except AttributeError:
        pass
    else:
        raise AssertionError("a Tool must be immutable")


def test_a_definition_too_deep_to_keep_is_refused_and_the_rest_kept(tmp_path, capsys):
    deep: dict = {}
    inner = deep
    for _ in range(5000):  # deeper than marshal's limit (2,000), which the JSON decoder may not enforce
        inner["x"] = {}
        inner = inner["x"]
    catalog = Catalog(["s"], str(tmp_path / "tools.json"))
    catalog.update("s", [{"name": "deep", "inputSchema": deep}, {"name": "fine", "inputSchema": {"type": "object"}}])
    assert [t.name for t in catalog.tools()] == ["fine"]
    assert "s: refused tool 'deep': its definition is nested too deeply" in capsys.readouterr().err


def test_the_cache_file_is_the_compact_json_of_the_sorted_entries(tmp_path):
    # The file is written one entry at a time; it must stay byte for byte what
    # a single json.dumps of the whole sorted list gives, for the reference
    # implementation and older mcpzips to read.
    cache = tmp_path / "tools.json"
    catalog = Catalog(["b", "a"], str(cache))
    catalog.update("b", [{"name": "zeta", "description": "ü \u2028", "inputSchema": {"type": "object"}, "title": "Z"}])
    catalog.update("a", [{"name": "beta", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}},
                         {"name": "alpha"}])
    assert catalog.flush(10)
    entries = json.loads(cache.read_text(encoding="utf-8"))
    assert [e["name"] for e in entries] == ["a__alpha", "a__beta", "b__zeta"]
    assert cache.read_bytes() == json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode()
