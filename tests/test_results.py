"""Big results: cut to the budget, the rest kept and read back through mcpzip__read_result."""

from __future__ import annotations

import json
import os
import re
import stat
import time

import pytest

from conftest import clean_env, fixture_server, run_cli, write_config
from servers.fixture_server import big_text

from mcpzip.downstream.results import Results
from mcpzip.downstream.resultstore import ResultStore

BUDGET = 80_000


def note_call(note: str) -> dict:
    """The arguments of the execute_tool call a note tells the model to make."""
    found = re.search(r"execute_tool (\{.*?\}\})", note)
    assert found, note
    call = json.loads(found.group(1))
    assert call["name"] == "mcpzip__read_result"
    return call["arguments"]


def read_all(proc, key: str, offset: int, budget: int = BUDGET) -> str:
    """Follow the "Read on" notes from *offset* to the end; every part within the budget."""
    parts = []
    for _ in range(10_000):
        answer = proc.execute("mcpzip__read_result", {"id": key, "offset": offset})
        assert not answer.get("isError"), answer
        *text, note = answer["content"]
        if text:
            assert len(text[0]["text"].encode()) <= budget
            parts.append(text[0]["text"])
        if "the end of result" in note["text"]:
            return "".join(parts)
        offset = note_call(note["text"])["offset"]
    raise AssertionError("reading never reached the end")


@pytest.fixture
def proc(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": fixture_server()}, call_timeout_seconds=60)
    proc = mcpzip(config, env=clean_env(TMPDIR=str(tmp_path)))
    proc.initialize()
    return proc


def test_two_megabyte_text_is_cut_at_a_line_and_reads_back_exactly(proc):
    original = big_text(2_000_000, lines=True)
    answer = proc.execute("fx__big", {"bytes": 2_000_000, "lines": True})
    head, note = answer["content"]
    assert len(head["text"].encode()) <= BUDGET
    assert original.startswith(head["text"]) and head["text"].endswith("\n")
    assert f"Showing bytes 0-{len(head['text'].encode()):,} of 2,000,000" in note["text"]
    where = note_call(note["text"])
    assert where["offset"] == len(head["text"].encode())
    assert head["text"] + read_all(proc, where["id"], where["offset"]) == original
    # From the start, too: every part in order is the original, byte for byte.
    assert read_all(proc, where["id"], 0) == original


def test_grep_answers_matching_lines_with_numbers_offsets_and_context(proc):
    original = big_text(2_000_000, lines=True)
    note = proc.execute("fx__big", {"bytes": 2_000_000, "lines": True})["content"][-1]["text"]
    key = note_call(note)["id"]
    answer = proc.text("execute_tool", {"name": "mcpzip__read_result",
                                        "arguments": {"id": key, "grep": r"^line 00123(45|99) ", "context": 1}})
    lines = answer.splitlines()
    assert lines[0].startswith("[mcpzip: 2 matching lines for")
    rows = [re.match(r"(\d+)([:-]) @(\d+) (.*)", line).groups() for line in lines[1:] if line != "--"]
    assert [(n, kind) for n, kind, _, _ in rows] == [
        ("12345", "-"), ("12346", ":"), ("12347", "-"), ("12399", "-"), ("12400", ":"), ("12401", "-")]
    data = original.encode()
    for number, _, offset, text in rows:
        line = original.split("\n")[int(number) - 1]
        assert text == line
        assert data[int(offset):].startswith(line.encode())  # read around it by that offset
    assert "--" in lines  # the two groups are apart


def test_grep_mistakes_get_clear_errors(proc):
    key = note_call(proc.execute("fx__big", {"bytes": 200_000, "lines": True})["content"][-1]["text"])["id"]
    bad = proc.execute("mcpzip__read_result", {"id": key, "grep": "(unclosed"})
    assert bad["isError"] and "not a valid regular expression" in bad["content"][0]["text"]
    past = proc.execute("mcpzip__read_result", {"id": key, "offset": 10_000_000})
    assert past["isError"] and "past the end" in past["content"][0]["text"]


def test_a_pattern_that_backtracks_forever_is_stopped(tmp_path):
    results = Results(ResultStore(), grep_seconds=1)
    key = results.store.put("", "text", ("a" * 40 + "!\n").encode() * 10, {"budget": 1000})
    started = time.monotonic()
    answer = results.read({"id": key, "grep": "(a+)+$"})
    assert time.monotonic() - started < 5
    assert answer["isError"] and "took longer than 1 seconds" in answer["content"][0]["text"]
    results.close()


def test_just_under_and_just_over_the_budget(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}, max_result_bytes=1000))
    proc.initialize()
    assert proc.execute("fx__big", {"bytes": 1000}) == {"content": [{"type": "text", "text": big_text(1000)}]}
    head, note = proc.execute("fx__big", {"bytes": 1001})["content"]
    assert head["text"] == big_text(1000)  # one long line: cut between characters
    assert "Showing bytes 0-1,000 of 1,001" in note["text"]


def test_an_oversized_image_is_named_and_fetched_alone(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}, max_result_bytes=10_000))
    proc.initialize()
    answer = proc.execute("fx__big", {"bytes": 100, "image": 50_000})
    text, line = answer["content"]
    assert text == {"type": "text", "text": big_text(100)}
    assert "image (image/png, 50,000 bytes) left out: over the 10,000-byte budget" in line["text"]
    alone = proc.execute("mcpzip__read_result", note_call(line["text"]))
    assert alone == {"content": [{"type": "image", "data": ("iVBORw0K" * 50_000)[:50_000], "mimeType": "image/png"}]}


def test_oversized_structured_content_is_left_out_and_readable_as_json(proc):
    answer = proc.execute("fx__big", {"bytes": 200_000, "lines": True, "structured": True, "error": True})
    assert "structuredContent" not in answer
    assert answer["isError"] is True  # an error result is cut the same way
    head, cut_note, structured_note = answer["content"]
    assert len(head["text"].encode()) <= BUDGET and "result cut to the 80,000-byte budget" in cut_note["text"]
    assert "structuredContent left out" in structured_note["text"]
    where = note_call(structured_note["text"])
    body = big_text(200_000, True)
    assert json.loads(read_all(proc, where["id"], 0)) == {"text": body, "bytes": len(body.encode())}


def test_structured_content_alone_over_the_budget_leaves_the_text_whole(proc):
    answer = proc.execute("fx__big", {"bytes": 50_000, "lines": True, "structured": True})
    assert answer["content"][0] == {"type": "text", "text": big_text(50_000, True)}
    assert "structuredContent left out" in answer["content"][1]["text"] and "structuredContent" not in answer


# max_result_bytes 0 passing 20 MB unchanged: test_stdio_upstreams.py::test_twenty_megabyte_result_arrives_intact


def test_per_server_budgets_override_the_top_level_one(tmp_path, mcpzip):
    servers = {"off": fixture_server("off", max_result_bytes=0), "small": fixture_server("small", max_result_bytes=500),
               "default": fixture_server("default")}  # fmt: skip
    proc = mcpzip(write_config(tmp_path, servers, max_result_bytes=5000))
    proc.initialize()
    assert len(proc.execute("off__big", {"bytes": 20_000})["content"][0]["text"]) == 20_000
    assert len(proc.execute("small__big", {"bytes": 20_000})["content"][0]["text"]) == 500
    assert len(proc.execute("default__big", {"bytes": 20_000})["content"][0]["text"]) == 5000


def test_twenty_megabytes_are_kept_in_a_private_file_removed_at_exit(tmp_path, proc):
    note = proc.execute("fx__big", {"bytes": 20 * 1024 * 1024, "lines": True}, timeout=60)["content"][-1]["text"]
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("mcpzip-results-")]
    assert len(folders) == 1
    (kept,) = folders[0].iterdir()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(folders[0].stat().st_mode) == 0o700
    assert kept.stat().st_size == 20 * 1024 * 1024 and kept.name == note_call(note)["id"]
    assert proc.close() == 0
    assert not folders[0].exists()


def test_unknown_and_expired_ids_get_clear_errors_and_eviction_is_least_recently_used():
    store = ResultStore(memory_limit=100)
    results = Results(store)
    first, second = (store.put("", "text", bytes(40), {"budget": 100}) for _ in range(2))
    results.read({"id": first})  # first is now the more recently used
    third = store.put("", "text", bytes(40), {"budget": 100})
    assert not results.read({"id": first}).get("isError") and not results.read({"id": third}).get("isError")
    expired = results.read({"id": second})
    assert expired["isError"] and f"result {second!r} has expired" in expired["content"][0]["text"]
    unknown = results.read({"id": "AAAAAAAAAAAAAAAAAAAAAA"})
    assert unknown["isError"] and "unknown result id 'AAAAAAAAAAAAAAAAAAAAAA'" in unknown["content"][0]["text"]
    assert store.usage() == (2, 80, 0)
    results.close()


def test_ids_are_unguessable_and_a_client_reads_only_its_own():
    store = ResultStore()
    results = Results(store)
    keys = {store.put("client-a", "text", b"secret", {"budget": 100}) for _ in range(1000)}
    assert len(keys) == 1000 and all(re.fullmatch(r"[A-Za-z0-9_-]{22}", k) for k in keys)
    key = next(iter(keys))
    assert results.read({"id": key}, owner="client-a")["content"][0]["text"] == "secret"
    other = results.read({"id": key}, owner="client-b")
    assert other["isError"] and "unknown result id" in other["content"][0]["text"]
    results.close()


def test_the_reading_tool_is_described_but_never_found_by_search(proc):
    described = json.loads(proc.text("describe_tool", {"name": "mcpzip__read_result"}))
    assert described["name"] == "mcpzip__read_result" and described["inputSchema"]["required"] == ["id"]
    assert "mcpzip__read_result" not in proc.text("search_tools", {"query": "read the rest of a result grep", "limit": 50})


def test_mcpzip_call_prints_everything_unless_max_bytes_is_given(tmp_path):
    config = str(write_config(tmp_path, {"fx": fixture_server()}))
    env = clean_env(TMPDIR=str(tmp_path))
    whole = run_cli("call", "fx__big", '{"bytes": 200000}', "--config", config, env=env)
    assert whole.returncode == 0 and big_text(200_000) in whole.stdout
    cut = run_cli("call", "fx__big", '{"bytes": 200000, "lines": true}', "--max-bytes", "1000", "--config", config, env=env)
    assert cut.returncode == 0 and big_text(200_000, True)[:700] in cut.stdout
    assert "Showing bytes 0-" in cut.stdout and "The rest was not kept (run without a budget to see it all)" in cut.stdout
    assert big_text(200_000, True)[:5000] not in cut.stdout
    assert not [p for p in os.listdir(tmp_path) if p.startswith("mcpzip-results-")]


def test_a_wrong_budget_in_the_config_is_named():
    from mcpzip.base.config import ConfigError, parse

    with pytest.raises(ConfigError, match=r"config c.json: max_result_bytes must be a whole number"):
        parse({"mcpServers": {"a": {"command": "x"}}, "max_result_bytes": 1.5}, "c.json", {})
    with pytest.raises(ConfigError, match=r'server "a": max_result_bytes must be a non-negative number'):
        parse({"mcpServers": {"a": {"command": "x", "max_result_bytes": -1}}}, "c.json", {})
    assert parse({"mcpServers": {"a": {"command": "x", "max_result_bytes": 10}}}, "c.json", {}).result_budget("a") == 10


def test_grep_and_parts_keep_lone_surrogates_and_every_character():
    results = Results(ResultStore())
    text = "a\ud800b é\n" * 3 + "€" * 50_000 + "\nlast 😀 line"
    answer = results.limit({"content": [{"type": "text", "text": text}]}, 1000)
    key = note_call(answer["content"][-1]["text"])["id"]
    parts, offset = [answer["content"][0]["text"]], note_call(answer["content"][-1]["text"])["offset"]
    while True:
        *part, note = results.read({"id": key, "offset": offset})["content"]
        parts += [p["text"] for p in part]
        if "the end of result" in note["text"]:
            break
        offset = note_call(note["text"])["offset"]
    assert "".join(parts) == text
    found = results.read({"id": key, "grep": "\ud800|😀"})["content"][0]["text"]
    assert "1: @0 a\ud800b é" in found and "5: @" in found and "last 😀 line" in found
    results.close()


def test_kept_files_are_evicted_least_recently_used_first_and_removed(tmp_path):
    store = ResultStore(file_threshold=10, disk_limit=100, directory=str(tmp_path))
    first, second = (store.put("", "text", bytes([65 + i]) * 40, {"budget": 100}) for i in range(2))
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == sorted([first, second])
    store.get("", first)  # now the more recently used
    third = store.put("", "text", b"C" * 40, {"budget": 100})
    assert sorted(p.name for p in folder.iterdir()) == sorted([first, third])  # second's file is gone
    assert store.get("", first).read() == b"A" * 40 and store.get("", third).read(10, 20) == b"C" * 10
    assert store.usage() == (2, 0, 80)
    store.close()
    store.close()  # twice is fine
    assert not folder.exists()


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads resident memory from /proc")
def test_a_large_answer_is_not_kept_once_it_is_sent(tmp_path, mcpzip):
    # Eight servers each answer 1.2 MB, passed whole (no budget).  Each reader
    # thread used to hold its last line, each idle worker its last request,
    # and a reference cycle the answer until the cyclic collector ran: about
    # 20 MB in all (measured), where 1.3-3.6 MB is left now.
    servers = {f"s{i}": fixture_server(f"s{i}") for i in range(8)}
    proc = mcpzip(write_config(tmp_path, servers, max_result_bytes=0))
    proc.initialize()
    for name in servers:
        assert not proc.execute(f"{name}__pid").get("isError")
    before = resident_kib(proc.proc.pid)
    for name in servers:
        answer = proc.execute(f"{name}__big", {"bytes": 1_200_000})
        assert len(answer["content"][0]["text"]) >= 1_200_000
    grown = resident_kib(proc.proc.pid) - before
    assert grown < 8 * 1024, f"mcpzip kept {grown} KiB after answering"
