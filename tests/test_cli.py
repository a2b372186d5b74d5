"""The command line: exit codes, terminal versions of the meta-tools, logging."""

from __future__ import annotations

import base64
import json

import pytest

from servers.fixture_server import TOOLS
from conftest import clean_env, fixture_server, run_cli, write_config

from mcpzip import __version__


@pytest.fixture
def config(tmp_path):
    return str(write_config(tmp_path, {"fx": fixture_server()}))


def test_version_and_help():
    r = run_cli("--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"mcpzip {__version__}")
    r = run_cli("--help")
    assert r.returncode == 0
    for command in ("serve", "list", "search", "describe", "call"):
        assert command in r.stdout
    assert "MCPZIP_LOG" in r.stdout


def test_bad_usage_exits_2():
    assert run_cli().returncode == 2
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("search").returncode == 2  # QUERY missing
    assert run_cli("serve", "--bogus").returncode == 2


def test_list_shows_servers_and_tools(config):
    r = run_cli("list", "--config", config)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"fx (stdio, {len(TOOLS)} tools)\n")
    assert "  fx__echo: Echo the given text back unchanged." in r.stdout


def test_list_exits_1_when_a_server_is_broken(tmp_path):
    path = write_config(tmp_path, {"fx": fixture_server(), "broken": {"command": "mcpzip-test-no-such-command"}})
    r = run_cli("list", "--config", str(path))
    assert r.returncode == 1
    assert f"fx (stdio, {len(TOOLS)} tools)" in r.stdout
    assert "broken (stdio, 0 tools" in r.stdout and "not found" in r.stdout


def test_search_describe_call(config):
    r = run_cli("search", "add", "two", "numbers", "--config", config)
    assert r.returncode == 0 and r.stdout.startswith("fx__add: Add two numbers and return the sum. [a:number*, b:number*]")
    r = run_cli("describe", "fx__add", "--config", config)
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "fx__add"
    r = run_cli("call", "fx__add", '{"a": 1, "b": 2}', "--config", config)
    assert (r.returncode, r.stdout) == (0, "3\n")
    r = run_cli("call", "fx__add", '{"a": 1, "b": 2}', "--json", "--config", config)
    assert json.loads(r.stdout)["structuredContent"] == {"sum": 3}
    r = run_cli("call", "fx__image", "--config", config)
    from servers.fixture_server import PNG

    assert r.stdout == f"a red dot\n[image image/png, {len(base64.b64decode(PNG))} bytes]\n"


def test_failures_exit_1_with_a_message(config):
    r = run_cli("call", "fx__fail", "--config", config)
    assert (r.returncode, r.stderr) == (1, "it went wrong\n")
    r = run_cli("call", "fx__add", '{"a": 1}', "--config", config)
    assert r.returncode == 1 and "missing required argument for fx__add: b (number)" in r.stderr
    r = run_cli("call", "fx__add", "{not json", "--config", config)
    assert r.returncode == 1 and r.stderr.startswith("mcpzip: error: the arguments are not valid JSON")
    r = run_cli("describe", "fx__ech", "--config", config)
    assert r.returncode == 1 and "Did you mean: fx__echo" in r.stderr


def test_errors_of_describe_and_call_start_like_every_commands(config):
    # docs/cli.md: errors are one sentence on stderr starting "mcpzip: error:".
    r = run_cli("describe", "fx__ech", "--config", config)
    assert r.returncode == 1 and r.stderr.startswith("mcpzip: error: unknown tool 'fx__ech'. Did you mean: fx__echo")
    r = run_cli("call", "fx__add", '{"a": 1}', "--config", config)
    assert r.stderr == "mcpzip: error: missing required argument for fx__add: b (number). Call describe_tool for the full schema.\n"
    r = run_cli("call", "fx__fail", "--config", config)
    assert r.stderr == "it went wrong\n"  # the tool's own error, as the tool wrote it


def test_one_tool_is_one_tool(tmp_path):
    config = str(write_config(tmp_path, {"fx": fixture_server("fixture", "--only", "echo")}))
    r = run_cli("list", "--config", config)
    assert r.stdout.startswith("fx (stdio, 1 tool)\n"), r.stdout
    r = run_cli("search", "zebra", "crossing", "--config", config)
    assert "- fx (1 tool)" in r.stdout, r.stdout


def test_log_levels(config):
    quiet = run_cli("call", "fx__echo", '{"text": "x"}', "--config", config)
    assert quiet.stderr == ""
    loud = run_cli("call", "fx__echo", '{"text": "x"}', "--config", config, env=clean_env(MCPZIP_LOG="debug"))
    assert "mcpzip debug: fx: started pid" in loud.stderr
    assert loud.stdout == "x\n"  # logs never reach stdout
    odd = run_cli("call", "fx__echo", '{"text": "x"}', "--config", config, env=clean_env(MCPZIP_LOG="chatty"))
    assert "MCPZIP_LOG='chatty' is not one of" in odd.stderr


def test_python_dash_m_and_serve_entry(config):
    import subprocess
    import sys

    from conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "mcpzip", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == f"mcpzip {__version__}"
