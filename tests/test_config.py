"""Configuration: types, aliases, expansion, validation messages, warnings, paths."""

from __future__ import annotations

import pytest

from conftest import clean_env, fixture_server, run_cli, write_config

from mcpzip.base import config as cfg


def parse(data: dict, environ: dict | None = None) -> cfg.Config:
    return cfg.parse(data, "/home/u/.config/x/config.json", environ or {})


def test_types_and_their_aliases():
    c = parse({"mcpServers": {
        "a": {"command": "x"},
        "b": {"type": "stdio", "command": "x"},
        "c": {"type": "http", "url": "https://h/mcp"},
        "d": {"type": "streamable-http", "url": "https://h/mcp"},
        "e": {"type": "streamableHttp", "url": "https://h/mcp"},
        "f": {"type": "sse", "url": "https://h/sse"},
        "g": {"url": "https://h/mcp"},
    }})
    assert {n: s.type for n, s in c.servers.items()} == {
        "a": "stdio", "b": "stdio", "c": "http", "d": "http", "e": "http", "f": "sse", "g": "http"
    }


def test_defaults_and_settings():
    c = parse({"mcpServers": {"a": {"command": "x"}}})
    assert (c.search.model, c.search.default_limit) == ("gemini-2.0-flash", 5)
    assert (c.idle_timeout_minutes, c.call_timeout_seconds) == (5, 120)
    assert c.resources_and_prompts is True
    assert c.max_message_bytes == 64 * 1024 * 1024
    assert parse({"mcpServers": {"a": {"command": "x"}}, "max_message_bytes": 4096}).max_message_bytes == 4096
    assert parse({"mcpServers": {"a": {"command": "x"}}, "resources_and_prompts": False}).resources_and_prompts is False
    c = parse({"mcpServers": {"a": {"command": "x"}}, "search": {"model": "m", "default_limit": 9},
               "idle_timeout_minutes": 1, "call_timeout_seconds": 7, "gemini_api_key": "k-from-file"})
    assert (c.search.model, c.search.default_limit, c.idle_timeout_minutes, c.call_timeout_seconds) == ("m", 9, 1, 7)
    assert c.gemini_api_key == "k-from-file"
    assert parse({"mcpServers": {"a": {"command": "x"}}, "gemini_api_key": "file"}, {"GEMINI_API_KEY": "env"}).gemini_api_key == "env"


def test_disabled_servers_are_skipped():
    c = parse({"mcpServers": {"a": {"command": "x"}, "b": {"command": "y", "disabled": True}, "c": {"disabled": True}}})
    assert list(c.servers) == ["a"]
    assert c.disabled == ["b", "c"]


def test_variables_expand_from_the_environment():
    env = {"TOKEN": "t0k", "HOST": "example.org", "EMPTY": ""}
    c = parse({"mcpServers": {
        "a": {"command": "${HOME_BIN:-/usr/bin}/tool", "args": ["--token=${TOKEN}", "${EMPTY:-fallback}"],
              "env": {"K": "${TOKEN}", "L": "plain $NOT_EXPANDED"}},
        "b": {"type": "http", "url": "https://${HOST}/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
    }}, env)
    a, b = c.servers["a"], c.servers["b"]
    assert a.command == "/usr/bin/tool"
    assert a.args == ["--token=t0k", "fallback"]
    assert a.env == {"K": "t0k", "L": "plain $NOT_EXPANDED"}
    assert b.url == "https://example.org/mcp"
    assert b.headers == {"Authorization": "Bearer t0k"}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mcpServers": {}}, "at least one MCP server must be defined"),
        ({}, "at least one MCP server must be defined"),
        ({"mcpServers": {"a": {"args": []}}}, 'server "a": stdio server must have a command'),
        ({"mcpServers": {"a": {"type": "http"}}}, 'server "a": http server must have a url'),
        ({"mcpServers": {"a": {"type": "sse", "url": "ftp://x"}}}, 'server "a": url must start with https://'),
        ({"mcpServers": {"a": {"type": "carrier-pigeon"}}}, "server \"a\": type 'carrier-pigeon' is not one of"),
        ({"mcpServers": {"a__b": {"command": "x"}}}, "server name 'a__b' must be"),
        ({"mcpServers": {"a b": {"command": "x"}}}, "server name 'a b' must be"),
        ({"mcpServers": {"a": {"command": "x", "args": "--flag"}}}, 'server "a": args must be a list of strings'),
        ({"mcpServers": {"a": {"command": "x", "env": {"K": ["v"]}}}}, 'server "a": env.K must be a string'),
        ({"mcpServers": {"a": {"command": "x"}}, "search": {"default_limit": 500}}, "search.default_limit must be between 1 and 50"),
        ({"mcpServers": {"a": {"command": "x"}}, "call_timeout_seconds": "soon"}, "call_timeout_seconds must be a non-negative number"),
        ({"mcpServers": {"a": {"command": "x"}}, "max_message_bytes": 10}, "max_message_bytes must be at least 1024"),
        ({"mcpServers": {"a": {"command": "x"}}, "max_message_bytes": 4096.5}, "max_message_bytes must be a whole number"),
        ({"mcpServers": {"a": {"command": "x"}}, "resources_and_prompts": 0}, "resources_and_prompts must be true or false"),
        ({"mcpServers": []}, "mcpServers must be an object"),
        ([], "the top level must be a JSON object"),
    ],
)
def test_validation_messages_name_the_server_and_field(data, message):
    with pytest.raises(cfg.ConfigError) as e:
        parse(data)
    text = str(e.value)
    assert message in text
    assert "\n" not in text and text.startswith("config /home/u/.config/x/config.json")


def test_cache_and_auth_live_beside_the_config_in_use(tmp_path):
    path = write_config(tmp_path / "some" / "dir", {"a": {"command": "x"}})
    c = cfg.load(str(path))
    assert c.cache_path == str(tmp_path / "some" / "dir" / "cache" / "tools.json")
    assert c.servers_cache_path == str(tmp_path / "some" / "dir" / "cache" / "servers.json")
    assert c.auth_dir == str(tmp_path / "some" / "dir" / "auth")


def test_default_path_is_the_reference_one(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cfg.resolve_path(None) == str(tmp_path / ".config" / "compressed-mcp-proxy" / "config.json")


def test_cli_reports_config_errors_in_one_line(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"mcpServers": {"a": {"args": []}}}')
    bad.chmod(0o600)
    r = run_cli("list", "--config", str(bad))
    assert r.returncode == 1
    assert r.stderr.strip() == f'mcpzip: error: config {bad}: server "a": stdio server must have a command'
    bad.write_text("{not json")
    r = run_cli("serve", "--config", str(bad))
    assert r.returncode == 1 and "not valid JSON" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("serve", "--config", str(tmp_path / "missing.json"))
    assert r.returncode == 1 and "missing.json does not exist" in r.stderr


def test_warnings_for_unknown_keys_and_a_readable_config(tmp_path):
    path = write_config(tmp_path, {"fx": fixture_server(alwaysAllow=["x"], colour="red")}, colour="blue")
    path.chmod(0o644)
    r = run_cli("list", "--cached", "--config", str(path))
    assert r.returncode == 0, r.stderr
    assert "unknown key 'colour' ignored" in r.stderr
    assert "server \"fx\": unknown key 'colour' ignored" in r.stderr
    # A key another client wrote (kept by migrate) is no mistake: not warned about.
    assert "alwaysAllow" not in r.stderr
    assert "readable by other users" in r.stderr and f"chmod 600 {path}" in r.stderr
    path.chmod(0o600)
    assert "readable by other users" not in run_cli("list", "--cached", "--config", str(path)).stderr


def test_unset_variable_warns_with_its_name_only(tmp_path):
    path = write_config(tmp_path, {"fx": fixture_server(env={"K": "${MCPZIP_TEST_UNSET_VAR}"})})
    r = run_cli("list", "--cached", "--config", str(path), env=clean_env())
    assert "MCPZIP_TEST_UNSET_VAR is not set" in r.stderr
