"""What passes through besides tool calls: progress, changed lists, logging,
requests from servers to the client, and the modern era's multi-round-trip."""

from __future__ import annotations

import json
import queue
import time

import pytest

from conftest import ENTRY, PYTHON, SERVERS, clean_env, fixture_server, write_config

SDK_SERVER = {"command": PYTHON, "args": [str(SERVERS / "sdk_server.py")]}


def notifications(proc, method, timeout=5.0):
    """Notifications of *method* received so far, waiting up to *timeout* for a first one."""
    found = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            message = proc.notifications.get(timeout=max(0.0, deadline - time.monotonic()) if not found else 0)
        except queue.Empty:
            return found
        if message["method"] == method:
            found.append(message)


@pytest.fixture
def proc(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}))
    proc.initialize()
    return proc


# -- progress -----------------------------------------------------------------


def test_progress_comes_back_under_the_clients_token(proc):
    result = proc.result("tools/call", {
        "name": "execute_tool", "arguments": {"name": "fx__progress", "arguments": {"steps": 3}},
        "_meta": {"progressToken": "client-token-7"},
    })
    assert result["content"][0]["text"] == "3 steps, token seen"
    progress = notifications(proc, "notifications/progress")
    assert [n["params"] for n in progress] == [
        {"progressToken": "client-token-7", "progress": i, "total": 3, "message": f"step {i}"} for i in (1, 2, 3)
    ]


def test_without_a_token_the_upstream_gets_none(proc):
    assert proc.execute("fx__progress", {"steps": 2})["content"][0]["text"] == "2 steps, token absent"
    assert notifications(proc, "notifications/progress", timeout=0.2) == []


def test_progress_keeps_a_long_call_alive(proc):
    # Five steps of 400 ms each: 2 s in all, but never 1 s without news.
    result = proc.result("tools/call", {
        "name": "execute_tool", "arguments": {"name": "fx__progress", "arguments": {"steps": 5, "ms": 400}, "timeout": 1},
        "_meta": {"progressToken": 1},
    })
    assert result["content"][0]["text"] == "5 steps, token seen"
    # Without progress the same wait is a timeout.
    result = proc.call("execute_tool", {"name": "fx__sleep", "arguments": {"ms": 2000}, "timeout": 1})
    assert result["isError"] and "timed out after 1s" in result["content"][0]["text"]


# -- changed tool lists -----------------------------------------------------------


def wait_searchable(proc, name, query, seconds=1.0):
    deadline = time.monotonic() + seconds
    while name not in proc.text("search_tools", {"query": query}):
        assert time.monotonic() < deadline, f"{name} was not searchable within {seconds}s"


def test_a_legacy_upstreams_new_tool_is_searchable_at_once(proc, tmp_path):
    assert proc.execute("fx__grow", {"name": "brand_new_widget"})["content"][0]["text"] == "grown"
    wait_searchable(proc, "fx__brand_new_widget", "brand new widget")
    assert proc.execute("fx__brand_new_widget")["content"][0]["text"] == "brand_new_widget ran"
    # The cache follows (written just after the catalog changes).
    deadline = time.monotonic() + 5
    cache = tmp_path / "cache" / "tools.json"
    while not any(e["name"] == "fx__brand_new_widget" for e in json.loads(cache.read_text())):
        assert time.monotonic() < deadline, "the cache was not updated"
        proc.result("ping")


def test_a_burst_of_changed_lists_is_one_listing(tmp_path, mcpzip):
    # server-everything announces five changes as it starts; each used to
    # cost a listing of its own.
    record = tmp_path / "received.jsonl"
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fixture", "--record", str(record))}))
    proc.initialize()

    def listings():
        return [json.loads(line)["method"] for line in record.read_text().splitlines()].count("tools/list")

    assert proc.execute("fx__grow", {"name": "first_gizmo", "times": 5})["content"][0]["text"] == "grown"
    wait_searchable(proc, "fx__first_gizmo", "first gizmo")
    before = listings()
    assert proc.execute("fx__grow", {"name": "second_gizmo", "times": 5})["content"][0]["text"] == "grown"
    wait_searchable(proc, "fx__second_gizmo", "second gizmo")
    assert proc.execute("fx__grow", {"name": "third_gizmo"})["content"][0]["text"] == "grown"
    wait_searchable(proc, "fx__third_gizmo", "third gizmo")
    # Listings of one server follow each other: the third tool being found
    # means every listing of the burst before it is done.
    assert listings() - before <= 3  # the burst: one (two if a listing was running), then one


def test_a_modern_upstreams_new_tool_is_searchable_at_once(tmp_path, mcpzip):
    pytest.importorskip("mcp")
    proc = mcpzip(write_config(tmp_path, {"sdk": SDK_SERVER}))
    proc.initialize()
    assert proc.execute("sdk__echo", {"text": "connect"})["content"][0]["text"] == "connect"
    assert proc.execute("sdk__grow", {"name": "shiny_gadget"})["content"][0]["text"] == "grown"
    wait_searchable(proc, "sdk__shiny_gadget", "shiny gadget")


# -- logging ------------------------------------------------------------------------


def test_upstream_log_messages_reach_a_client_that_asked(proc):
    proc.execute("fx__log", {"level": "warning", "text": "before any level was set"})
    assert proc.result("logging/setLevel", {"level": "info"}) == {}
    assert proc.execute("fx__log", {"level": "debug", "text": "too detailed"})["content"][0]["text"] == "logged"
    proc.execute("fx__log", {"level": "warning", "text": "disk almost full"})
    messages = [n["params"] for n in notifications(proc, "notifications/message")]
    assert messages == [{"level": "warning", "logger": "fx/fixture-logger", "data": "disk almost full"}]
    received = json.loads(proc.text("execute_tool", {"name": "fx__received"}))
    assert {"level": "info"} in [m["params"] for m in received if m["method"] == "logging/setLevel"]


def test_set_level_rejects_unknown_levels(proc):
    assert proc.request("logging/setLevel", {"level": "loud"})["error"]["code"] == -32602


# -- requests from servers to the client (legacy era) -------------------------------------


def ask(proc, method, params=None):
    return json.loads(proc.text("execute_tool", {"name": "fx__ask", "arguments": {"method": method, "params": params or {}}}))


def test_server_requests_are_refused_when_the_client_lacks_the_capability(proc):
    answer = ask(proc, "sampling/createMessage", {"messages": [], "maxTokens": 5})
    assert answer["error"]["code"] == -32601
    assert answer["error"]["message"] == "the client connected to mcpzip did not declare sampling, which sampling/createMessage needs"


def test_server_requests_are_forwarded_with_ids_mapped(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}))
    proc.initialize(capabilities={"roots": {}, "sampling": {}})
    rid = proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__ask", "arguments": {"method": "roots/list"}}})
    forwarded = proc.requests.get(timeout=10)
    assert forwarded["method"] == "roots/list"
    assert forwarded["id"] != "fixture-1"  # mcpzip's own id, not the upstream's
    proc.send({"jsonrpc": "2.0", "id": forwarded["id"], "result": {"roots": [{"uri": "file:///work", "name": "work"}]}})
    answer = json.loads(proc.response(rid)["result"]["content"][0]["text"])
    assert answer["result"] == {"roots": [{"uri": "file:///work", "name": "work"}]}
    assert answer["id"] == "fixture-1"
    # An error from the client reaches the upstream as an error.
    rid = proc.start_request("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__ask", "arguments": {"method": "sampling/createMessage"}}})
    forwarded = proc.requests.get(timeout=10)
    proc.send({"jsonrpc": "2.0", "id": forwarded["id"], "error": {"code": -1, "message": "User rejected sampling request"}})
    answer = json.loads(proc.response(rid)["result"]["content"][0]["text"])
    assert answer["error"] == {"code": -1, "message": "User rejected sampling request"}


def test_a_late_initialize_still_reaches_the_upstreams(tmp_path, mcpzip):
    # The upstream lists its sampling tool only to a client that declared
    # sampling, as server-everything does.  mcpzip connects it a second after
    # starting; this client says what it can do only later.
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server("fixture", "--sampling-tool")}),
                  env=clean_env(MCPZIP_LOG="info"))
    deadline = time.monotonic() + 20
    while "fx: connected" not in proc.stderr:
        assert time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)
    proc.initialize(capabilities={"sampling": {}})
    wait_searchable(proc, "fx__sample", "ask the model for a completion sampling", seconds=10)
    rid = proc.start_request("tools/call", {"name": "execute_tool",
                                            "arguments": {"name": "fx__sample", "arguments": {"prompt": "hi"}}})
    forwarded = proc.requests.get(timeout=10)
    assert forwarded["method"] == "sampling/createMessage"
    proc.send({"jsonrpc": "2.0", "id": forwarded["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "hello from the model"}, "model": "m"}})
    assert proc.response(rid)["result"]["content"][0]["text"] == "hello from the model"


# -- with the official SDK as the client ----------------------------------------------------


def sdk_session(config, mode, body, **callbacks):
    mcp = pytest.importorskip("mcp")
    anyio = pytest.importorskip("anyio")
    params = mcp.StdioServerParameters(command=PYTHON, args=[ENTRY, "serve", "--config", str(config)], env=clean_env())

    async def main():
        async with mcp.Client(params, mode=mode, cache=None, **callbacks) as client:
            return await body(client)

    return anyio.run(main)


def text_of(result):
    return "\n".join(c.text for c in result.content if c.type == "text")


def test_sampling_elicitation_and_roots_answered_by_the_sdk_client(tmp_path):
    types = pytest.importorskip("mcp.types")

    config = write_config(tmp_path, {"fx": fixture_server()})

    async def sampling(context, params):
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"sampled: {params.messages[0].content.text}"),
            model="test-model",
        )

    async def elicitation(context, params):
        return types.ElicitResult(action="accept", content={"name": "octocat"})

    async def roots(context):
        return types.ListRootsResult(roots=[types.Root(uri="file:///home/me/project", name="project")])

    async def body(client):
        def ask_args(method, params):
            return {"name": "fx__ask", "arguments": {"method": method, "params": params}}

        sampled = json.loads(text_of(await client.call_tool("execute_tool", ask_args("sampling/createMessage", {
            "messages": [{"role": "user", "content": {"type": "text", "text": "hello"}}], "maxTokens": 10}))))
        elicited = json.loads(text_of(await client.call_tool("execute_tool", ask_args("elicitation/create", {
            "mode": "form", "message": "Your name?",
            "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}))))
        rooted = json.loads(text_of(await client.call_tool("execute_tool", ask_args("roots/list", {}))))
        return sampled, elicited, rooted

    sampled, elicited, rooted = sdk_session(config, "legacy", body, sampling_callback=sampling,
                                            elicitation_callback=elicitation, list_roots_callback=roots)
    assert sampled["result"]["content"]["text"] == "sampled: hello"
    assert elicited["result"] == {"action": "accept", "content": {"name": "octocat"}}
    assert rooted["result"]["roots"] == [{"uri": "file:///home/me/project", "name": "project"}]


def test_a_legacy_servers_requests_reach_a_modern_client_as_input_rounds(tmp_path):
    # A modern client takes no requests: mcpzip holds the upstream call open,
    # answers execute_tool with ``input_required``, and the client's retry
    # carries the answers to the waiting upstream.
    types = pytest.importorskip("mcp.types")

    config = write_config(tmp_path, {"fx": fixture_server()})

    async def sampling(context, params):
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="sampled"),
                                         model="test-model")

    async def elicitation(context, params):
        return types.ElicitResult(action="accept", content={"name": "octocat"})

    async def roots(context):
        return types.ListRootsResult(roots=[types.Root(uri="file:///srv", name="srv")])

    async def body(client):
        assert client.protocol_version == "2026-07-28"
        answers = []
        for method, params in (
            ("elicitation/create", {"mode": "form", "message": "Your name?",
                                    "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}),
            ("sampling/createMessage", {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
                                        "maxTokens": 5}),
            ("roots/list", {}),
        ):
            result = await client.call_tool("execute_tool", {"name": "fx__ask", "arguments": {"method": method, "params": params}})
            answers.append(json.loads(text_of(result)))
        return answers

    elicited, sampled, rooted = sdk_session(config, "auto", body, sampling_callback=sampling,
                                            elicitation_callback=elicitation, list_roots_callback=roots)
    assert elicited["result"] == {"action": "accept", "content": {"name": "octocat"}}
    assert sampled["result"]["content"]["text"] == "sampled"
    assert rooted["result"] == {"roots": [{"uri": "file:///srv", "name": "srv"}]}


def test_a_modern_clients_roots_reach_a_server_that_asks_at_connect(tmp_path):
    # server-filesystem asks roots/list as soon as it is connected, outside
    # any call; a modern client can only be asked during a call.  mcpzip holds
    # the question and asks it with the client's next call.
    types = pytest.importorskip("mcp.types")
    config = write_config(tmp_path, {"fx": fixture_server("fixture", "--ask-roots")})
    asked = []

    async def roots(context):
        asked.append(1)
        return types.ListRootsResult(roots=[types.Root(uri="file:///home/me/project", name="project")])

    async def body(client):
        assert client.protocol_version == "2026-07-28"
        # The search waits for the first listing: fx is connected and has asked.
        assert "fx__roots_seen" in text_of(await client.call_tool("search_tools", {"query": "roots seen"}))
        first = text_of(await client.call_tool("execute_tool", {"name": "fx__roots_seen", "arguments": {}}))
        second = text_of(await client.call_tool("execute_tool", {"name": "fx__roots_seen", "arguments": {}}))
        return first, second

    first, second = sdk_session(config, "auto", body, list_roots_callback=roots)
    assert json.loads(first) == {"roots": [{"uri": "file:///home/me/project", "name": "project"}]}
    assert second == first
    assert asked == [1]  # remembered: asked once


def test_an_unknown_held_request_state_is_a_tool_error(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}))  # a modern client: no initialize
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}
    result = proc.result("tools/call", {"name": "execute_tool", "arguments": {"name": "fx__echo", "arguments": {"text": "x"}},
                                        "requestState": "mcpzip-held-999", "inputResponses": {}, "_meta": meta})
    assert result["isError"] is True
    assert "requestState is unknown or has expired" in result["content"][0]["text"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_multi_round_trip_through_execute_tool(tmp_path, mode):
    # The SDK upstream speaks the modern era: it answers ``input_required``.
    # A modern client answers it itself and retries; for a legacy client
    # mcpzip asks the questions as elicitation requests and retries for it.
    types = pytest.importorskip("mcp.types")

    config = write_config(tmp_path, {"sdk": SDK_SERVER})
    asked = []

    async def elicitation(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "octocat"})

    async def body(client):
        return await client.call_tool("execute_tool", {"name": "sdk__greet", "arguments": {}})

    result = sdk_session(config, mode, body, elicitation_callback=elicitation)
    assert text_of(result) == "hello octocat"
    assert asked == ["Please provide your GitHub username"]


def test_progress_from_an_sdk_upstream_reaches_the_sdk_client(tmp_path):
    config = write_config(tmp_path, {"sdk": SDK_SERVER})
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async def body(client):
        return await client.call_tool("execute_tool", {"name": "sdk__slow", "arguments": {"steps": 3}}, progress_callback=on_progress)

    assert text_of(sdk_session(config, "auto", body)) == "done 3"
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
