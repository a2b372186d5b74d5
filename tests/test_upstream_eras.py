"""Era negotiation with upstreams off the happy path: silent probes, refusals, versions in no common.

The specification's stdio rule: probe with ``server/discover``; a result or
a modern error (-32020, -32021, -32022) identifies a modern server, which is
then never spoken to as legacy unless it lists a legacy version both sides
speak; any other error, or silence, identifies a legacy server, which gets
``initialize``.  Every dead end is an error naming both sides' versions.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import fixture_server, write_config

from mcpzip.base import protocol
from mcpzip.upstream.session import DISCOVER_TIMEOUT

OURS = ", ".join(protocol.SUPPORTED_VERSIONS)


def start(tmp_path, mcpzip, *args: str):
    """mcpzip over one fixture server started with *args*; returns (process, what the server received)."""
    record = tmp_path / "received.jsonl"
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fx", "--record", str(record), *args)}))
    proc.initialize()

    def received() -> list[dict]:
        return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []

    return proc, received


def initialize_offers(received) -> list[str]:
    return [m["params"]["protocolVersion"] for m in received() if m.get("method") == "initialize"]


def echo(proc) -> dict:
    return proc.execute("fx__echo", {"text": "hi"}, timeout=30)


def test_a_server_silent_on_the_probe_gets_initialize_after_the_probe_timeout(tmp_path, mcpzip):
    proc, received = start(tmp_path, mcpzip, "--discover", "silent")
    started = time.monotonic()
    assert echo(proc) == {"content": [{"type": "text", "text": "hi"}]}
    assert DISCOVER_TIMEOUT <= time.monotonic() - started < DISCOVER_TIMEOUT + 10
    methods = [m.get("method") for m in received()]
    assert methods.index("server/discover") < methods.index("initialize")
    assert initialize_offers(received) == [protocol.LATEST_LEGACY]


@pytest.mark.parametrize("how", ["result:2027-01-01", "error:-32022:2027-01-01,2028-02-02"])
def test_a_server_sharing_no_version_is_an_error_naming_both_sides(tmp_path, mcpzip, how):
    proc, received = start(tmp_path, mcpzip, "--discover", how)
    answer = echo(proc)
    theirs = how.split(":")[-1].replace(",", ", ")
    assert answer["isError"]
    assert f"the server speaks protocol versions {theirs}; mcpzip speaks {OURS}: no version in common" in (
        answer["content"][0]["text"])
    assert initialize_offers(received) == []  # a modern server is not treated as legacy


@pytest.mark.parametrize("how", ["result:2025-06-18,2027-01-01", "error:-32022:2025-06-18,2027-01-01"])
def test_a_modern_server_listing_an_older_version_we_speak_gets_initialize_at_that_version(tmp_path, mcpzip, how):
    proc, received = start(tmp_path, mcpzip, "--discover", how)
    assert echo(proc) == {"content": [{"type": "text", "text": "hi"}]}
    assert initialize_offers(received) == ["2025-06-18"]


def test_an_unsupported_version_refusal_without_a_list_is_an_error(tmp_path, mcpzip):
    proc, received = start(tmp_path, mcpzip, "--discover", "error:-32022")
    text = echo(proc)["content"][0]["text"]
    assert f"refused protocol version {protocol.LATEST_MODERN}" in text and f"mcpzip speaks {OURS}" in text
    assert initialize_offers(received) == []


def test_a_required_client_capability_is_named_and_not_answered_by_falling_back(tmp_path, mcpzip):
    proc, received = start(tmp_path, mcpzip, "--discover", "error:-32021:elicitation")
    answer = echo(proc)
    assert answer["isError"]
    assert "the server requires client capabilities mcpzip does not offer (elicitation)" in answer["content"][0]["text"]
    assert initialize_offers(received) == []


def test_a_header_mismatch_refusal_is_an_error_with_its_code(tmp_path, mcpzip):
    proc, received = start(tmp_path, mcpzip, "--discover", "error:-32020")
    assert "the server refused mcpzip's request (-32020: refused by the fixture)" in echo(proc)["content"][0]["text"]
    assert initialize_offers(received) == []


@pytest.mark.parametrize("code", ["-32601", "-32602", "-32600", "-32000"])
def test_any_other_refusal_of_the_probe_means_legacy(tmp_path, mcpzip, code):
    proc, received = start(tmp_path, mcpzip, "--discover", f"error:{code}")
    assert echo(proc) == {"content": [{"type": "text", "text": "hi"}]}
    assert initialize_offers(received) == [protocol.LATEST_LEGACY]


def test_initialize_answered_with_a_version_we_do_not_speak_names_both(tmp_path, mcpzip):
    proc, received = start(tmp_path, mcpzip, "--initialize-version", "2099-01-01")
    text = echo(proc)["content"][0]["text"]
    assert f"the server answered initialize with protocol version '2099-01-01', which mcpzip does not speak " \
           f"(mcpzip speaks {OURS})" in text
    assert not [m for m in received() if m.get("method") == "notifications/initialized"]
