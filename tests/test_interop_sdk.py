"""Interoperability with the official MCP Python SDK, as mcpzip's client and as its upstream."""

from __future__ import annotations

import json

import pytest

from conftest import ENTRY, PYTHON, SERVERS, clean_env, fixture_server, needs_sdk, write_config

SDK_SERVER = {"command": PYTHON, "args": [str(SERVERS / "sdk_server.py")]}


def run_client(config, mode, body):
    """Drive ``mcpzip serve`` with the SDK client in *mode*; returns body's result."""
    import anyio
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=PYTHON, args=[ENTRY, "serve", "--config", str(config)], env=clean_env())

    async def main():
        async with Client(params, mode=mode, cache=None) as client:
            return await body(client)

    return anyio.run(main)


def texts(result):
    return "\n".join(c.text for c in result.content if c.type == "text")


@pytest.mark.parametrize("mode, version", [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
@needs_sdk
def test_sdk_client_drives_mcpzip(tmp_path, mode, version):
    config = write_config(tmp_path, {"sdk": SDK_SERVER, "fx": fixture_server()}, tools_mode="meta")

    async def body(client):
        assert client.protocol_version == version
        assert "search_tools" in (client.instructions or "")
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == ["search_tools", "describe_tool", "execute_tool"]
        found = texts(await client.call_tool("search_tools", {"query": "weather in a city"}))
        assert found.splitlines()[0].startswith("sdk__weather: Current weather for a city")
        described = json.loads(texts(await client.call_tool("describe_tool", {"name": "sdk__weather"})))
        assert described["name"] == "sdk__weather"
        assert described["outputSchema"]["required"] == ["city", "temp_c"]
        executed = await client.call_tool("execute_tool", {"name": "fx__echo", "arguments": {"text": "via sdk"}})
        assert texts(executed) == "via sdk" and not executed.is_error
        failed = await client.call_tool("execute_tool", {"name": "fx__nope"})
        assert failed.is_error and "unknown tool" in texts(failed)
        return True

    assert run_client(config, mode, body)


@needs_sdk
def test_sdk_upstream_and_legacy_fixture_through_mcpzip(tmp_path, mcpzip):
    config = write_config(tmp_path, {"sdk": SDK_SERVER, "fx": fixture_server()})
    proc = mcpzip(config)
    proc.initialize()
    result = proc.execute("sdk__weather", {"city": "Oslo"})
    from servers.sdk_server import PNG_B64  # noqa: E402 (needs the SDK importable)

    assert result["content"] == [
        {"type": "text", "text": "Oslo: 21.5C"},
        {"type": "image", "data": PNG_B64, "mimeType": "image/png"},
    ]
    assert result["structuredContent"] == {"city": "Oslo", "temp_c": 21.5}
    assert result.get("isError", False) is False
    assert proc.execute("fx__add", {"a": 1, "b": 1})["structuredContent"] == {"sum": 2}


@needs_sdk
def test_sdk_upstream_is_spoken_to_in_the_modern_era(tmp_path, mcpzip):
    config = write_config(tmp_path, {"sdk": SDK_SERVER, "fx": fixture_server()})
    proc = mcpzip(config, env=clean_env(MCPZIP_LOG="debug"))
    proc.initialize()
    assert proc.execute("sdk__echo", {"text": "hi"})["content"] == [{"type": "text", "text": "hi"}]
    assert proc.execute("fx__echo", {"text": "hi"})["content"] == [{"type": "text", "text": "hi"}]
    assert proc.close() == 0
    assert "sdk: modern era (2026-07-28)" in proc.stderr
    assert "fx: legacy era (2025-11-25)" in proc.stderr


@needs_sdk
def test_sdk_client_through_mcpzip_to_sdk_upstream_result_is_unchanged(tmp_path):
    config = write_config(tmp_path, {"sdk": SDK_SERVER})

    async def body(client):
        result = await client.call_tool("execute_tool", {"name": "sdk__weather", "arguments": {"city": "Rome"}})
        assert result.structured_content == {"city": "Rome", "temp_c": 21.5}
        assert [c.type for c in result.content] == ["text", "image"]
        assert result.content[1].mime_type == "image/png"
        return True

    assert run_client(config, "auto", body)
