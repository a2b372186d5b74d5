"""The environment of stdio servers: what networked servers need passes, secrets never do."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURE, PYTHON, clean_env, fixture_server, run_cli, write_config

PROXY = "http://proxyuser:proxy-pass-8876@127.0.0.1:9"  # never contacted


def npx_like(tmp_path) -> dict:
    """A server that, like ``npx -y`` behind a proxy, stays silent unless the proxy and CA settings reach it."""
    script = tmp_path / "npx_like.py"
    script.write_text(
        "import os, sys, time\n"
        "if not (os.environ.get('HTTPS_PROXY') and os.environ.get('NODE_EXTRA_CA_CERTS')):\n"
        "    time.sleep(600)  # retrying the registry, without a word\n"
        "sys.stderr.write('fetching through ' + os.environ['HTTPS_PROXY'] + '\\n'); sys.stderr.flush()\n"
        f"os.execv(sys.executable, [sys.executable, {FIXTURE!r}, '--name', 'npx'])\n"
    )
    return {"command": PYTHON, "args": [str(script)]}


def test_proxy_and_ca_settings_reach_a_package_manager_server(tmp_path, mcpzip):
    ca = tmp_path / "company-ca.pem"
    ca.write_text("not really a certificate\n")
    env = clean_env(HTTPS_PROXY=PROXY, NODE_EXTRA_CA_CERTS=str(ca), MCPZIP_LOG="info", LC_MESSAGES="C")
    proc = mcpzip(write_config(tmp_path, {"npx": npx_like(tmp_path)}), env=env)
    proc.initialize()
    assert proc.execute("npx__echo", {"text": "through"}, timeout=20)["content"][0]["text"] == "through"
    seen = json.loads(proc.text("execute_tool", {"name": "npx__environment"}))
    assert seen["HTTPS_PROXY"] == PROXY and seen["NODE_EXTRA_CA_CERTS"] == str(ca) and seen["LC_MESSAGES"] == "C"
    assert proc.close() == 0
    # The server printed the proxy URL: its credentials are masked in the log.
    assert "fetching through http://***@127.0.0.1:9" in proc.stderr
    assert "proxy-pass-8876" not in proc.stderr


def test_a_silent_start_that_times_out_names_the_likely_causes(tmp_path):
    config = write_config(tmp_path, {"npx": npx_like(tmp_path)})
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "tools.json").write_text(json.dumps([{"name": "npx__echo", "server_name": "npx", "original_name": "echo",
                                                   "description": "Echo.", "input_schema": {"type": "object"}}]))
    r = run_cli("call", "--config", str(config), "--timeout", "2", "npx__echo", '{"text": "x"}')
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert "timed out after 2s; it printed nothing, so it may be a package manager (npx, uvx, pip)" in out
    assert "HTTPS_PROXY" in out and "env_passthrough" in out


def test_doctor_names_the_likely_causes_of_a_silent_start(tmp_path):
    config = write_config(tmp_path, {"npx": npx_like(tmp_path)})
    r = run_cli("doctor", "--config", str(config), "--timeout", "2")
    assert r.returncode == 1
    assert "it printed nothing, so it may be a package manager" in r.stdout + r.stderr


def test_env_passthrough_top_level_and_per_server(tmp_path, mcpzip):
    config = write_config(
        tmp_path,
        {
            "fx": fixture_server("fx", env_passthrough=["ONLY_FX"]),
            "other": fixture_server("other"),
        },
        env_passthrough=["FOR_ALL"],
    )
    proc = mcpzip(config, env=clean_env(FOR_ALL="everyone", ONLY_FX="fx-only", UNLISTED="no"))
    proc.initialize()
    fx = json.loads(proc.text("execute_tool", {"name": "fx__environment"}))
    other = json.loads(proc.text("execute_tool", {"name": "other__environment"}))
    assert fx["FOR_ALL"] == other["FOR_ALL"] == "everyone"
    assert fx["ONLY_FX"] == "fx-only" and "ONLY_FX" not in other
    assert "UNLISTED" not in fx and "UNLISTED" not in other


@pytest.mark.parametrize(
    "entry, top, message",
    [
        ({}, ["GEMINI_API_KEY"], "env_passthrough names GEMINI_API_KEY, which is mcpzip's own and never passed on"),
        ({"env_passthrough": ["MCPZIP_LOG"]}, [], "env_passthrough names MCPZIP_LOG, which is mcpzip's own"),
        ({"env_passthrough": ["OTHER_TOKEN"]}, [],
         'env_passthrough names OTHER_TOKEN, which server "other" uses in its entry'),
        ({"env_passthrough": "PATH"}, [], "env_passthrough must be a list of environment variable names"),
    ],
)
def test_env_passthrough_never_hands_over_a_secret(tmp_path, entry, top, message):
    servers = {"fx": fixture_server("fx", **entry), "other": fixture_server("other", env={"T": "${OTHER_TOKEN}"})}
    config = write_config(tmp_path, servers, **({"env_passthrough": top} if top else {}))
    r = run_cli("list", "--cached", "--config", str(config), env=clean_env(OTHER_TOKEN="other-secret"))
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr and "other-secret" not in r.stderr
