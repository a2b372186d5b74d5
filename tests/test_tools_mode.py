"""tools_mode and pinned: what tools/list offers, switching at the budget, and direct tools taking execute_tool's path."""

from __future__ import annotations

import json

import pytest

from conftest import ENTRY, PYTHON, ROOT, clean_env, fixture_server, write_config

ONLY = "echo,progress,grow,received,grown_one"
LISTED = ["echo", "progress", "grow", "received"]
DIRECT = sorted([f"fx__{n}" for n in LISTED] + ["mcpzip__read_result"])


def fixture_bytes(names: list[str]) -> int:
    """The bytes of these fixture tools' definitions as mcpzip lists them directly (compact JSON, prefixed)."""
    import sys

    from conftest import SERVERS

    sys.path.insert(0, str(SERVERS))
    from fixture_server import TOOLS

    return sum(len(json.dumps({**t, "name": f"fx__{t['name']}"}, separators=(",", ":"), ensure_ascii=False).encode())
               for t in TOOLS if t["name"] in names)  # fmt: skip


def test_pinned_tools_are_listed_beside_the_meta_tools_and_called_like_execute_tool(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": fixture_server("fx")}, tools_mode="meta", pinned=["fx__echo", "fx__pro*"])
    proc = mcpzip(config)
    proc.initialize()
    assert proc.text("search_tools", {"query": "echo"})  # waits for the first listing
    listed = [t["name"] for t in proc.result("tools/list")["tools"]]
    assert listed == ["search_tools", "describe_tool", "execute_tool", "fx__echo", "fx__progress"]

    assert proc.call("fx__echo", {"text": "pinned"})["content"][0]["text"] == "pinned"
    missing = proc.call("fx__echo", {})  # the argument check of execute_tool
    assert missing["isError"] and "missing required argument for fx__echo: text" in missing["content"][0]["text"]
    # A tool that is not listed directly is not callable directly: execute_tool is its way.
    with pytest.raises(AssertionError, match="Unknown tool: fx__add"):
        proc.call("fx__add", {"a": 1, "b": 2})
    assert proc.execute("fx__add", {"a": 1, "b": 2})["content"][0]["text"] == "3"


def test_direct_mode_lists_every_tool_under_its_prefixed_name(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": fixture_server("fx", "--only", ONLY + ",hang")}, tools_mode="direct",
                          direct_budget_bytes=10, call_timeout_seconds=1)  # fmt: skip
    proc = mcpzip(config)
    proc.initialize()
    assert proc.text("search_tools", {"query": "echo"})  # still answered, though not listed
    tools = proc.result("tools/list")["tools"]
    # The budget does not apply; big results stay readable through the built-in tool.
    assert sorted(t["name"] for t in tools) == sorted(DIRECT + ["fx__hang"])
    echo = next(t for t in tools if t["name"] == "fx__echo")
    assert echo["inputSchema"]["required"] == ["text"]  # the upstream's definition, as it is
    # call_timeout_seconds holds for a direct call as for execute_tool.
    hung = proc.call("fx__hang", {})
    assert hung["isError"] and "timed out after 1s" in hung["content"][0]["text"]


mcp = pytest.importorskip("mcp", reason="the official MCP SDK (test extra) is not installed")
anyio = pytest.importorskip("anyio")


def test_auto_lists_tools_directly_while_they_fit_and_switches_at_the_budget(tmp_path):
    from mcp import Client, StdioServerParameters, types

    budget = fixture_bytes(LISTED) + 20  # one more tool does not fit
    config = write_config(tmp_path, {"fx": fixture_server("fx", "--only", ONLY)}, direct_budget_bytes=budget)
    params = StdioServerParameters(command=PYTHON, args=[ENTRY, "serve", "--config", str(config)], env=clean_env())
    changes: list = []
    changed = None

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            changes.append(message)
            changed.set()

    async def names(client) -> list[str]:
        return [t.name for t in (await client.list_tools()).tools]

    async def main():
        nonlocal changed
        changed = anyio.Event()
        async with Client(params, mode="legacy", cache=None, message_handler=on_message) as client:
            listed = await names(client)
            if listed[0] == "search_tools":  # before the first listing mcpzip cannot know the size
                with anyio.fail_after(20):
                    await changed.wait()
                listed = await names(client)
            assert sorted(listed) == DIRECT

            # A direct tool relays progress, like execute_tool.
            seen = []

            async def on_progress(progress, total, message):
                seen.append((progress, total))

            done = await client.call_tool("fx__progress", {"steps": 2}, progress_callback=on_progress)
            assert done.content[0].text == "2 steps, token seen" and seen == [(1, 2), (2, 2)]

            # ... and cancellation: the upstream is told once it has started the call.
            with anyio.CancelScope() as scope:
                async def cancel_on_progress(progress, total, message):
                    scope.cancel()

                await client.call_tool("fx__progress", {"steps": 1000, "ms": 20}, progress_callback=cancel_on_progress)
            assert scope.cancelled_caught
            with anyio.fail_after(20):
                while True:
                    got = json.loads((await client.call_tool("fx__received", {})).content[0].text)
                    if any(n["method"] == "notifications/cancelled" for n in got):
                        break
                    await anyio.sleep(0.05)

            # One more tool crosses the budget: the meta-tools come back, and the client is told.
            changed = anyio.Event()
            assert (await client.call_tool("fx__grow", {"name": "grown_one"})).content[0].text == "grown"
            with anyio.fail_after(20):
                await changed.wait()
            assert await names(client) == ["search_tools", "describe_tool", "execute_tool"]
            found = await client.call_tool("search_tools", {"query": "grown"})
            assert "fx__grown_one" in found.content[0].text
            with pytest.raises(Exception, match="Unknown tool"):
                await client.call_tool("fx__echo", {"text": "no longer listed"})
        return True

    assert anyio.run(main)


def test_stats_counts_the_cached_definitions_and_what_mcpzip_lists_instead(tmp_path, mcpzip):
    import subprocess

    from mcpzip.knowledge.catalog import Catalog

    data = json.loads((ROOT / "benchmarks" / "data" / "ALL.json").read_text())
    servers = ["github", "slack"]
    never = tmp_path / "started"  # a server started would create this file
    config = write_config(tmp_path, {s: {"command": "/bin/sh", "args": ["-c", f"touch {never}"]} for s in servers})
    catalog = Catalog(servers, str(tmp_path / "cache" / "tools.json"))
    for s in servers:
        catalog.update(s, data[s])

    out = subprocess.run([PYTHON, ENTRY, "stats", "--json", "--config", str(config)], capture_output=True, text=True,
                         env=clean_env(), timeout=60, check=True)  # fmt: skip
    figures = json.loads(out.stdout)
    assert not never.exists()
    for s in servers:
        sizes = [len(json.dumps({**d, "name": f"{s}__{d['name']}"}, separators=(",", ":"), ensure_ascii=False).encode())
                 for d in data[s]]  # fmt: skip
        assert figures["servers"][s] == {"tools": len(data[s]), "bytes": sum(sizes), "tokens": (sum(sizes) + 3) // 4}
    assert figures["total"]["bytes"] == sum(figures["servers"][s]["bytes"] for s in servers) > 8192
    # Over the default budget, auto lists the meta-tools: exactly what serve answers tools/list with.
    proc = mcpzip(config)
    proc.initialize()
    listed = proc.result("tools/list")["tools"]
    size = sum(len(json.dumps(t, separators=(",", ":"), ensure_ascii=False).encode()) for t in listed)
    assert figures["listed"] == {"mode": "meta", "tools": 3, "bytes": size, "tokens": (size + 3) // 4}

    text = subprocess.run([PYTHON, ENTRY, "stats", "--config", str(config)], capture_output=True, text=True,
                          env=clean_env(), timeout=60, check=True).stdout  # fmt: skip
    github = next(line for line in text.splitlines() if line.startswith("github "))
    assert github.split() == ["github", str(len(data["github"])), f"{figures['servers']['github']['bytes']:,}",
                              f"{figures['servers']['github']['tokens']:,}"]  # fmt: skip
    assert text.splitlines()[-1].startswith("mcpzip lists 3 tools (meta mode, tools_mode auto): ")


def test_a_pinned_tools_big_result_is_cut_to_the_budget_like_execute_tools(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": fixture_server("fx")}, tools_mode="meta", pinned=["fx__big"],
                          max_result_bytes=2000)  # fmt: skip
    proc = mcpzip(config)
    proc.initialize()
    assert proc.text("search_tools", {"query": "big text"})  # waits for the first listing
    cut = proc.call("fx__big", {"bytes": 50_000})
    shown = "\n".join(c["text"] for c in cut["content"] if c["type"] == "text")
    assert len(shown.encode()) < 2000 + 400  # the head within the budget, and one closing line
    assert "mcpzip__read_result" in shown
    through_execute = proc.execute("fx__big", {"bytes": 50_000})
    assert len(json.dumps(through_execute)) == len(json.dumps(cut))  # the same cut (its id aside)
