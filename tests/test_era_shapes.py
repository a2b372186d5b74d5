"""Each client gets its own era's results, whatever era the upstream speaks."""

from __future__ import annotations

import json
import subprocess


from conftest import PYTHON, SERVERS, needs_sdk, write_config

SDK_SERVER = [PYTHON, str(SERVERS / "sdk_server.py")]
DOCS_SERVER = [PYTHON, str(SERVERS / "sdk_resources_server.py")]
LEGACY = "2025-11-25"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
}


def direct(command: list[str], requests: list[tuple[str, dict]]) -> list[str]:
    """The raw result of each request, sent to the server directly by a legacy client."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        def ask(rid: int, method: str, params: dict) -> dict:
            proc.stdin.write((json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}) + "\n").encode())
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        ask(0, "initialize", {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "tests", "version": "0"}})
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        return [compact(ask(i + 1, method, params)["result"]) for i, (method, params) in enumerate(requests)]
    finally:
        proc.stdin.close()
        proc.wait(15)
        proc.stdout.close()


def compact(value: object) -> str:
    """The JSON text as both the SDK and mcpzip write it: compact, keys in the order received."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@needs_sdk
def test_a_legacy_client_sees_what_a_direct_call_to_a_modern_upstream_shows(tmp_path, mcpzip):
    # The SDK servers speak the modern era to mcpzip, and would speak legacy
    # to this client directly: through mcpzip the client must not notice.
    servers = {"sdk": {"command": SDK_SERVER[0], "args": SDK_SERVER[1:]},
               "docs": {"command": DOCS_SERVER[0], "args": DOCS_SERVER[1:]}}
    proc = mcpzip(write_config(tmp_path, servers))
    proc.initialize(LEGACY)
    via_weather = proc.call("execute_tool", {"name": "sdk__weather", "arguments": {"city": "Paris"}})
    via_read = proc.result("resources/read", {"uri": "docs://readme"})
    via_prompt = proc.result("prompts/get", {"name": "docs__review", "arguments": {"code": "x = 1"}})
    [weather] = direct(SDK_SERVER, [("tools/call", {"name": "weather", "arguments": {"city": "Paris"}})])
    read, prompt = direct(DOCS_SERVER, [("resources/read", {"uri": "docs://readme"}),
                                        ("prompts/get", {"name": "review", "arguments": {"code": "x = 1"}})])
    assert compact(via_weather) == weather
    assert compact(via_read) == read
    assert compact(via_prompt) == prompt
    # And on the wire, no modern field reached the client.
    for line in proc.raw_lines:
        for field in (b'"resultType"', b'"ttlMs"', b'"cacheScope"', b"io.modelcontextprotocol/serverInfo"):
            assert field not in line, line


@needs_sdk
def test_every_modern_result_carries_mcpzips_server_info(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"sdk": {"command": SDK_SERVER[0], "args": SDK_SERVER[1:]}}))
    mcpzip_info = {"name": "mcpzip", "version": proc.result("server/discover", {"_meta": MODERN_META})["_meta"][
        "io.modelcontextprotocol/serverInfo"]["version"]}
    for name, arguments in (("search_tools", {"query": "weather"}), ("describe_tool", {"name": "sdk__weather"}),
                            ("execute_tool", {"name": "sdk__weather", "arguments": {"city": "Oslo"}})):
        result = proc.result("tools/call", {"name": name, "arguments": arguments, "_meta": MODERN_META})
        assert result["resultType"] == "complete", name
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"] == mcpzip_info, name
    assert result["structuredContent"] == {"city": "Oslo", "temp_c": 21.5}
