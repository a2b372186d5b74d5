"""Resources, resource templates, prompts and completions of several upstreams, through mcpzip."""

from __future__ import annotations

import base64
import json
import time

import pytest

from conftest import PYTHON, SERVERS, clean_env, fixture_server, needs_sdk, write_config

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
}
DOCS = {"command": PYTHON, "args": [str(SERVERS / "sdk_resources_server.py")]}
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
PAGE_SIZE = 100  # mcpzip.downstream.aggregate.PAGE_SIZE


def resources_fixture(name: str, count: int = 2, *args: str) -> dict:
    return fixture_server(name, "--resources", str(count), *args)


def modern(params: dict | None = None) -> dict:
    return {**(params or {}), "_meta": ENVELOPE}


def own(capabilities: dict) -> set:
    """The capabilities this feature is about, among all mcpzip declares."""
    return set(capabilities) & {"resources", "prompts", "completions"}


def error_of(proc, method: str, params: dict) -> dict:
    response = proc.request(method, params)
    assert "error" in response, response
    return response["error"]


def all_pages(proc, method: str, key: str, params=lambda p: p) -> list[dict]:
    """Every page of a merged list; asserts each non-last page is full."""
    pages, cursor = [], None
    while True:
        result = proc.result(method, params({"cursor": cursor} if cursor else {}))
        pages.append(result)
        cursor = result.get("nextCursor")
        if not cursor:
            break
        assert len(result[key]) >= PAGE_SIZE
        assert len(pages) < 20, "the cursor never ends"
    return pages


# -- the official SDK as the client, both eras ----------------------------------------------

@pytest.mark.parametrize("mode", ["auto", "legacy"])
@needs_sdk
def test_sdk_client_lists_reads_and_gets_from_two_upstreams(tmp_path, mode):
    from mcp.shared.exceptions import MCPError
    from mcp.types import PromptReference, ResourceTemplateReference
    from test_interop_sdk import run_client

    config = write_config(tmp_path, {"docs": DOCS, "fx": resources_fixture("fx")})
    not_found = -32602 if mode == "auto" else -32002

    async def body(client):
        caps = client.server_capabilities
        assert caps.resources is not None and caps.prompts is not None and caps.completions is not None

        listed = await client.list_resources()
        assert [str(r.uri) for r in listed.resources] == [
            "docs://readme", "docs://logo", "fixture://fx/about", "fixture://fx/item/0", "fixture://fx/item/1",
        ]
        assert listed.next_cursor is None
        templates = await client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["docs://pages/{slug}", "fixture://fx/notes/{topic}"]

        readme = await client.read_resource("docs://readme")
        assert readme.contents[0].text == "# Readme of sdk-docs"
        logo = await client.read_resource("docs://logo")
        assert base64.b64decode(logo.contents[0].blob) == PNG and logo.contents[0].mime_type == "image/png"
        about = await client.read_resource("fixture://fx/about")
        assert about.contents[0].text == "fixture://fx/about from fx"
        # Not listed: routed by the templates.
        page = await client.read_resource("docs://pages/intro")
        assert page.contents[0].text == "page intro of sdk-docs"
        notes = await client.read_resource("fixture://fx/notes/todo")
        assert notes.contents[0].text == "fixture://fx/notes/todo from fx"
        with pytest.raises(MCPError) as e:
            await client.read_resource("nowhere://at/all")
        assert e.value.code == not_found and "nowhere://at/all" in e.value.error.message

        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["docs__review", "fx__greet"]
        assert [a.name for a in prompts.prompts[0].arguments] == ["code", "language"]
        review = await client.get_prompt("docs__review", {"code": "x = 1", "language": "perl"})
        assert review.messages[0].content.text == "Review this perl code for sdk-docs:\nx = 1"
        greet = await client.get_prompt("fx__greet", {"who": "Ada"})
        assert greet.messages[0].content.text == "Hello Ada from fx"
        with pytest.raises(MCPError) as e:
            await client.get_prompt("nobody__greet", {})
        assert e.value.code == -32602

        done = await client.complete(PromptReference(type="ref/prompt", name="docs__review"), {"name": "language", "value": "p"})
        assert done.completion.values == ["python", "perl", "php"]
        done = await client.complete(PromptReference(type="ref/prompt", name="fx__greet"), {"name": "who", "value": "al"})
        assert done.completion.values == ["alice", "albert"]
        ref = ResourceTemplateReference(type="ref/resource", uri="docs://pages/{slug}")
        assert (await client.complete(ref, {"name": "slug", "value": "in"})).completion.values == ["intro", "install"]
        ref = ResourceTemplateReference(type="ref/resource", uri="fixture://fx/notes/{topic}")
        assert (await client.complete(ref, {"name": "topic", "value": "no"})).completion.values == ["notes"]
        return True

    assert run_client(config, mode, body)


# -- raw JSON-RPC, both eras ---------------------------------------------------------------


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_pages_run_through_every_upstream_in_config_order(tmp_path, mcpzip, era):
    # 121 resources each, in upstream pages of 50: mcpzip must follow both
    # servers' cursors and hand out its own.
    servers = {"one": resources_fixture("one", 120, "--page-size", "50"),
               "two": resources_fixture("two", 120, "--page-size", "50")}
    proc = mcpzip(write_config(tmp_path, servers))
    params = modern if era == "modern" else (lambda p: p)
    if era == "legacy":
        proc.initialize()
    pages = all_pages(proc, "resources/list", "resources", params)
    uris = [r["uri"] for page in pages for r in page["resources"]]
    expected = [f"fixture://{n}/{tail}" for n in ("one", "two") for tail in ["about"] + [f"item/{i}" for i in range(120)]]
    assert uris == expected
    assert len(pages) >= 2
    if era == "modern":
        # A list that spans pages is never public; legacy upstreams give no TTL.
        assert all(p["resultType"] == "complete" and p["ttlMs"] == 0 and p["cacheScope"] == "private" for p in pages)
    else:
        assert all("ttlMs" not in p for p in pages)
    assert error_of(proc, "resources/list", params({"cursor": "not-ours"}))["code"] == -32602
    # Another list's cursor is not accepted either.
    assert error_of(proc, "prompts/list", params({"cursor": pages[0]["nextCursor"]}))["code"] == -32602


def test_first_server_in_config_order_wins_a_uri_and_the_clash_is_logged_once(tmp_path, mcpzip):
    servers = {"zeta": resources_fixture("zeta", 2, "--shared-resources"),
               "alpha": resources_fixture("alpha", 2, "--shared-resources")}
    proc = mcpzip(write_config(tmp_path, servers), env=clean_env(MCPZIP_LOG="warning"))
    proc.initialize()
    for _ in range(2):
        uris = [r["uri"] for r in proc.result("resources/list")["resources"]]
        assert uris == ["fixture://zeta/about", "fixture://shared/0", "fixture://shared/1", "fixture://alpha/about"]
    read = proc.result("resources/read", {"uri": "fixture://shared/1"})
    assert read["contents"][0]["text"] == "fixture://shared/1 from zeta"
    read = proc.result("resources/read", {"uri": "fixture://alpha/about"})
    assert read["contents"][0]["text"] == "fixture://alpha/about from alpha"
    assert proc.close() == 0
    clashes = [line for line in proc.stderr.splitlines() if "is offered by zeta and alpha" in line]
    assert len(clashes) == 2, proc.stderr  # one per URI, however often it is listed
    assert "resource fixture://shared/0 is offered by zeta and alpha; zeta's is used" in clashes[0]


def test_a_list_a_server_does_not_know_is_a_debug_line_once(tmp_path, mcpzip):
    # sqlite declares resources but answers resources/templates/list with -32601.
    record = tmp_path / "received.jsonl"
    servers = {"sq": resources_fixture("sq", 1, "--no-templates", "--record", str(record))}
    proc = mcpzip(write_config(tmp_path, servers), env=clean_env(MCPZIP_LOG="debug"))
    proc.initialize()
    for _ in range(3):
        assert proc.result("resources/templates/list") == {"resourceTemplates": []}
    assert proc.result("resources/read", {"uri": "fixture://sq/about"})["contents"][0]["text"] == "fixture://sq/about from sq"
    assert proc.close() == 0
    assert "warning" not in proc.stderr, proc.stderr
    assert proc.stderr.count("sq: does not support resources/templates/list; not asked again") == 1, proc.stderr
    asked = [json.loads(line)["method"] for line in record.read_text().splitlines()]
    assert asked.count("resources/templates/list") == 1


@needs_sdk  # the docs upstream is an SDK server
def test_modern_results_carry_cache_fields_and_the_modern_not_found_code(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"docs": DOCS, "fx": resources_fixture("fx")}))
    for method in ("resources/list", "resources/templates/list", "prompts/list"):
        result = proc.result(method, modern())
        assert result["resultType"] == "complete" and result["cacheScope"] == "private" and result["ttlMs"] == 0
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcpzip"
    read = proc.result("resources/read", modern({"uri": "fixture://fx/about"}))  # a legacy upstream's answer
    assert (read["resultType"], read["ttlMs"], read["cacheScope"]) == ("complete", 0, "private")
    assert error_of(proc, "resources/read", modern({"uri": "fixture://fx/nothing"}))["code"] == -32602
    # Subscriptions are a legacy method; modern clients use subscriptions/listen.
    assert error_of(proc, "resources/subscribe", modern({"uri": "fixture://fx/about"}))["code"] == -32601


def test_completions_are_routed_by_their_ref(tmp_path, mcpzip):
    servers = {"a": resources_fixture("a"), "b": resources_fixture("b"), "plain": fixture_server("plain")}
    proc = mcpzip(write_config(tmp_path, servers))
    proc.initialize()

    def complete(ref: dict, value: str) -> list:
        argument = {"name": "topic" if ref["type"] == "ref/resource" else "who", "value": value}
        return proc.result("completion/complete", {"ref": ref, "argument": argument})["completion"]["values"]

    # Each fixture completes only its own template: an answer proves the routing.
    assert complete({"type": "ref/resource", "uri": "fixture://b/notes/{topic}"}, "n") == ["news", "notes"]
    assert complete({"type": "ref/resource", "uri": "fixture://a/notes/{topic}"}, "t") == ["todo"]
    assert complete({"type": "ref/prompt", "name": "b__greet"}, "b") == ["bob"]
    # A server without completions suggests nothing; unknown refs are bad params.
    assert complete({"type": "ref/prompt", "name": "plain__greet"}, "") == []
    assert error_of(proc, "completion/complete", {"ref": {"type": "ref/resource", "uri": "x://{y}"},
                                                  "argument": {"name": "y", "value": ""}})["code"] == -32602
    assert error_of(proc, "completion/complete", {"ref": {"type": "ref/other"}, "argument": {}})["code"] == -32602


def test_a_broken_upstream_does_not_break_the_lists(tmp_path, mcpzip):
    servers = {
        "broken": resources_fixture("broken", 1, "--broken-lists", "error"),
        "missing": {"command": str(tmp_path / "no-such-server")},
        "silent": resources_fixture("silent", 1, "--broken-lists", "silent"),
        "ok": resources_fixture("ok", 1),
    }
    proc = mcpzip(write_config(tmp_path, servers, call_timeout_seconds=2), env=clean_env(MCPZIP_LOG="warning"))
    proc.initialize()
    started = time.monotonic()
    listed = proc.result("resources/list", timeout=15)
    assert [r["uri"] for r in listed["resources"]] == ["fixture://ok/about", "fixture://ok/item/0"]
    assert [p["name"] for p in proc.result("prompts/list", timeout=15)["prompts"]] == ["ok__greet"]
    assert time.monotonic() - started < 12
    read = proc.result("resources/read", {"uri": "fixture://ok/item/0"}, timeout=15)
    assert read["contents"][0]["text"] == "fixture://ok/item/0 from ok"
    assert proc.close() == 0
    assert "broken: resources/list failed" in proc.stderr
    assert "silent: resources/list failed: timed out" in proc.stderr


@needs_sdk  # the docs upstream is an SDK server
def test_subscriptions_reach_the_upstream_and_updates_come_back(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"docs": DOCS, "fx": resources_fixture("fx")}))
    proc.initialize()
    assert proc.result("resources/subscribe", {"uri": "fixture://fx/about"}) == {}
    assert proc.initialize()["capabilities"]["resources"]["subscribe"] is True
    # Updates for URIs the client did not subscribe to stay behind.
    proc.execute("fx__touch", {"uri": "fixture://fx/item/0"})
    proc.execute("fx__touch", {"uri": "fixture://fx/about"})
    note = proc.notifications.get(timeout=10)
    assert note == {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "fixture://fx/about"}}
    assert proc.result("resources/unsubscribe", {"uri": "fixture://fx/about"}) == {}
    received = json.loads(proc.text("execute_tool", {"name": "fx__received"}))
    assert [r["method"] for r in received if r["method"].startswith("resources/")] == [
        "resources/subscribe", "resources/unsubscribe"]
    # The SDK upstream speaks the modern era: no resources/subscribe there.
    assert error_of(proc, "resources/subscribe", {"uri": "docs://readme"})["code"] == -32602


def test_subscriptions_keep_their_upstream_and_survive_its_restart(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": resources_fixture("fx"), "other": fixture_server("other")},
                          idle_timeout_minutes=0.01)
    proc = mcpzip(config, env=clean_env(MCPZIP_LOG="info"))
    proc.initialize()
    proc.result("resources/subscribe", {"uri": "fixture://fx/about"})
    pid = proc.text("execute_tool", {"name": "fx__pid"})
    proc.execute("other__echo", {"text": "x"})
    deadline = time.monotonic() + 10
    while "other: closing after" not in proc.stderr:  # the reaper ran (it checks every 0.3 s)
        assert time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)
    assert "fx: closing after" not in proc.stderr
    assert proc.text("execute_tool", {"name": "fx__pid"}) == pid

    # A restarted upstream is subscribed again before it is used.
    assert proc.execute("fx__crash").get("isError") is True
    received = json.loads(proc.text("execute_tool", {"name": "fx__received"}))
    assert [r for r in received if r["method"] == "resources/subscribe"] == [
        {"method": "resources/subscribe", "params": {"uri": "fixture://fx/about"}}]
    proc.execute("fx__touch", {"uri": "fixture://fx/about"})
    assert proc.notifications.get(timeout=10)["params"] == {"uri": "fixture://fx/about"}


def test_list_changed_reaches_the_client_and_the_new_resource_is_routed(tmp_path, mcpzip):
    servers = {"fx": resources_fixture("fx"), "other": resources_fixture("other")}
    proc = mcpzip(write_config(tmp_path, servers))
    proc.initialize()
    assert len(proc.result("resources/list")["resources"]) == 6
    proc.execute("fx__change")
    methods = {proc.notifications.get(timeout=10)["method"] for _ in range(2)}
    assert methods == {"notifications/resources/list_changed", "notifications/prompts/list_changed"}
    assert "fixture://fx/added" in [r["uri"] for r in proc.result("resources/list")["resources"]]
    read = proc.result("resources/read", {"uri": "fixture://fx/added"})
    assert read["contents"][0]["text"] == "fixture://fx/added from fx"


# -- capabilities, the server cache and the switch -----------------------------------------------


def test_capabilities_follow_the_upstreams_and_are_remembered(tmp_path, mcpzip):
    # A slow starter: mcpzip answers initialize long before it is connected.
    config = write_config(tmp_path, {"plain": fixture_server("plain", "--start-delay", "1")})
    proc = mcpzip(config)
    # Nothing known yet: mcpzip cannot tell, so it offers all three, subscriptions too.
    first = proc.initialize()["capabilities"]
    assert own(first) == {"resources", "prompts", "completions"}
    assert first["resources"] == {"listChanged": True, "subscribe": True}
    assert proc.result("resources/list") == {"resources": []}  # connects; the server offers none
    assert own(proc.initialize()["capabilities"]) == set()
    assert proc.close() == 0

    # The next start declares what the server declared last time, before connecting.
    proc = mcpzip(config)
    assert own(proc.initialize()["capabilities"]) == set()
    assert own(proc.result("server/discover", modern())["capabilities"]) == set()
    proc.kill()

    # A server whose config entry changed is a stranger again.
    write_config(tmp_path, {"plain": fixture_server("plain", "--start-delay", "1", "--extra-tools", "1")})
    proc = mcpzip(config)
    assert own(proc.initialize()["capabilities"]) == {"resources", "prompts", "completions"}


def test_capabilities_declared_when_an_upstream_offers_them(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": resources_fixture("fx"), "plain": fixture_server("plain")})
    proc = mcpzip(config)
    proc.text("search_tools", {"query": "echo"})
    caps = proc.initialize()["capabilities"]
    assert caps["resources"] == {"listChanged": True, "subscribe": True}
    assert caps["prompts"] == {"listChanged": True} and caps["completions"] == {}
    # Modern clients hear of changes only on a listen stream, which mcpzip does not serve.
    modern_caps = proc.result("server/discover", modern())["capabilities"]
    assert modern_caps["resources"] == {} and modern_caps["prompts"] == {} and modern_caps["completions"] == {}


def test_switch_off_hides_resources_prompts_and_completions(tmp_path, mcpzip):
    config = write_config(tmp_path, {"fx": resources_fixture("fx")}, resources_and_prompts=False)
    proc = mcpzip(config)
    proc.text("search_tools", {"query": "echo"})
    assert own(proc.initialize()["capabilities"]) == set()
    assert own(proc.result("server/discover", modern())["capabilities"]) == set()
    for method, params in [("resources/list", {}), ("resources/templates/list", {}), ("prompts/list", {}),
                           ("resources/read", {"uri": "fixture://fx/about"}), ("prompts/get", {"name": "fx__greet"}),
                           ("completion/complete", {"ref": {"type": "ref/prompt", "name": "fx__greet"}}),
                           ("resources/subscribe", {"uri": "fixture://fx/about"})]:
        assert error_of(proc, method, params)["code"] == -32601, method
    assert proc.execute("fx__echo", {"text": "still here"})["content"][0]["text"] == "still here"

