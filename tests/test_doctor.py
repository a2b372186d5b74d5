"""``mcpzip doctor``: what it reports for healthy, broken and slow servers, file modes and stored logins."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time

from conftest import ENTRY, PYTHON, clean_env, fixture_server, run_cli, write_config
from setup_helpers import FIXTURE_TOOLS, closed_port


def doctor(config, *args: str):
    started = time.monotonic()
    result = run_cli("doctor", "--config", str(config), *args)
    return result, time.monotonic() - started


def server_line(out: str, name: str) -> str:
    found = re.search(rf"^  (\S+) +{re.escape(name)} .*$", out, re.M)
    assert found, out
    return found.group(0)


def detail_after(out: str, name: str) -> str:
    lines = out.splitlines()
    i = lines.index(server_line(out, name))
    return lines[i + 1].strip()


def test_healthy_broken_and_slow_servers(tmp_path):
    crash = "import sys; sys.stderr.write('missing API key\\n'); sys.exit(3)"
    config = write_config(
        tmp_path,
        {
            "healthy": fixture_server("healthy"),
            "broken": {"command": PYTHON, "args": ["-c", crash]},
            "missing": {"command": "no-such-mcp-server-anywhere"},
            "stuck": fixture_server("stuck", "--start-delay", "60"),
            "sluggish": fixture_server("sluggish", "--start-delay", "1.6"),
            "off": {"command": "whatever", "disabled": True},
        },
    )

    result, took = doctor(config, "--timeout", "3")

    out = result.stdout
    assert result.returncode == 1
    assert re.match(rf"^  ok +healthy +stdio +legacy 2025-11-25 +{FIXTURE_TOOLS} tools +no auth +started in \d\.\d\d s$",
                    server_line(out, "healthy")), out  # fmt: skip
    assert server_line(out, "broken").startswith("  FAIL")
    assert detail_after(out, "broken") == "server broken failed to start: process exited with code 3 (stderr: missing API key)"
    assert detail_after(out, "missing") == "cannot start server missing: command 'no-such-mcp-server-anywhere' not found"
    assert server_line(out, "stuck").startswith("  FAIL")
    assert detail_after(out, "stuck").startswith("server stuck failed to start: timed out after 3s; it printed nothing")
    # Started, but in more than half the time allowed: a warning, with the figure.
    sluggish = server_line(out, "sluggish")
    assert sluggish.startswith("  warn") and f"{FIXTURE_TOOLS} tools" in sluggish
    assert float(re.search(r"started in (\d+\.\d+) s", sluggish).group(1)) >= 1.6
    assert detail_after(out, "sluggish").startswith("slow to start:")
    assert re.search(r"^  - +off +disabled, not started$", out, re.M)
    assert "3 problem(s) found, 1 warning(s)." in out
    # All started at once: far less than the delays and timeouts added up.
    assert took < 3 + 1.6 + 2.5, took
    assert result.stderr == ""  # findings are reported, not logged


def test_secrets_a_failing_server_echoes_are_masked(tmp_path):
    leak = "import os, sys; sys.stderr.write('rejected key ' + os.environ['API_KEY'] + '\\n'); sys.exit(2)"
    config = write_config(tmp_path, {"leaky": {"command": PYTHON, "args": ["-c", leak], "env": {"API_KEY": "sk-live-0123456789"}}})
    result, _ = doctor(config)
    assert result.returncode == 1
    assert detail_after(result.stdout, "leaky") == "server leaky failed to start: process exited with code 2 (stderr: rejected key ***)"
    assert "sk-live-0123456789" not in result.stdout + result.stderr


def test_all_good_exits_zero(tmp_path):
    config = write_config(tmp_path, {"one": fixture_server("one"), "two": fixture_server("two", "--extra-tools", "3")})
    result, _ = doctor(config)
    assert result.returncode == 0, result.stdout
    assert f"{FIXTURE_TOOLS + 3} tools" in server_line(result.stdout, "two")
    assert "ok    config is valid: 2 server(s)" in result.stdout
    assert "ok    config file mode 600" in result.stdout
    assert result.stdout.rstrip().endswith("Everything works.")


def test_missing_config_suggests_init_and_migrate(tmp_path):
    result, _ = doctor(tmp_path / "nope" / "config.json")
    assert result.returncode == 1
    assert "does not exist" in result.stdout and "mcpzip init" in result.stdout and "mcpzip migrate" in result.stdout


def test_invalid_config_names_the_field(tmp_path):
    config = write_config(tmp_path, {"bad": {"type": "stdio"}})
    result, _ = doctor(config)
    assert result.returncode == 1
    assert 'server "bad": stdio server must have a command' in result.stdout


def test_a_server_that_starts_mcpzip_itself_is_not_started(tmp_path):
    config = write_config(tmp_path, {"fx": fixture_server(), "loop": {"command": PYTHON, "args": [ENTRY, "serve"]}})
    result, _ = doctor(config)
    assert result.returncode == 1
    assert "starts mcpzip itself" in server_line(result.stdout, "loop")


def store_token(config_dir, url: str, token: dict, file_mode: int = 0o600):
    auth = config_dir / "auth"
    auth.mkdir(mode=0o700, exist_ok=True)
    path = auth / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")
    path.write_text(json.dumps(token))
    path.chmod(file_mode)
    return path


def test_auth_state_of_remote_servers(tmp_path):
    port = closed_port()
    urls = {name: f"http://127.0.0.1:{port}/{name}" for name in ("fresh", "go", "refreshable", "stale", "never", "keyed")}
    now = time.time()
    store_token(tmp_path, urls["fresh"], {"access_token": "at-1", "expires_at": now + 3600 + 30})
    # The Go implementation's shape: RFC 3339 with nanoseconds.
    go_expiry = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + 600 + 30)) + ".123456789Z"
    store_token(tmp_path, urls["go"], {"access_token": "at-2", "token_type": "Bearer", "expiry": go_expiry})
    store_token(tmp_path, urls["refreshable"], {"access_token": "at-3", "refresh_token": "rt", "expires_at": now - 60})
    store_token(tmp_path, urls["stale"], {"access_token": "at-4", "expires_at": now - 60})
    servers = {name: {"type": "http", "url": url} for name, url in urls.items()}
    servers["keyed"]["headers"] = {"Authorization": "Bearer k"}
    config = write_config(tmp_path, servers)

    result, _ = doctor(config, "--timeout", "5")

    out = result.stdout
    assert result.returncode == 1  # nothing listens on that port
    assert "token valid for 60 min" in server_line(out, "fresh")
    assert "token valid for 10 min" in server_line(out, "go")
    assert "token expired; refreshes on use" in server_line(out, "refreshable")
    assert "needs `mcpzip login stale`" in server_line(out, "stale")
    assert "no stored login" in server_line(out, "never")
    assert "headers (no OAuth)" in server_line(out, "keyed")
    assert "ok    stored logins: 4 file(s)" in out
    assert "at-1" not in out + result.stderr


def test_file_modes_that_expose_secrets(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/mcp"
    config = write_config(tmp_path, {"fx": fixture_server(env={"TOKEN": "s3cret-value"}), "remote": {"type": "http", "url": url}})
    config.chmod(0o644)
    token = store_token(tmp_path, url, {"access_token": "at"}, file_mode=0o644)
    (tmp_path / "auth").chmod(0o755)
    cache = tmp_path / "cache" / "tools.json"
    cache.parent.mkdir()
    cache.write_text("[]")
    cache.chmod(0o666)

    result, _ = doctor(config)

    out = result.stdout
    assert result.returncode == 1
    assert f"FAIL  config holds secrets and is readable by other users (mode 644): chmod 600 {config}" in out
    assert f"the directory {tmp_path / 'auth'} is open to other users (mode 755): chmod 700" in out
    assert f"{token} is readable by other users (mode 644): chmod 600 it" in out
    assert "the tool cache is writable by other users (mode 666)" in out
    assert "s3cret-value" not in out


def test_a_config_without_secrets_readable_by_others_is_only_a_warning(tmp_path):
    config = write_config(tmp_path, {"fx": fixture_server()})
    config.chmod(0o644)
    result, _ = doctor(config)
    assert result.returncode == 0, result.stdout
    assert "warn  config is readable by other users (mode 644)" in result.stdout
    assert "(1 warning(s))" in result.stdout


def test_gemini_key_is_mentioned_never_shown(tmp_path):
    config = write_config(tmp_path, {"fx": fixture_server()}, gemini_api_key="AIzaSyExampleKey123")
    result, _ = doctor(config)
    assert "Gemini (gemini-2.0-flash, key from the config)" in result.stdout
    assert "AIzaSyExampleKey123" not in result.stdout
    assert sys.executable in result.stdout  # the interpreter, for bug reports


def test_remote_servers_transport_era_and_sign_in(tmp_path):
    from remote_peer import Peer, browser_env, browser_visits

    peers = [Peer(), Peer("--transport", "sse"), Peer("--oauth")]
    try:
        open_http, sse, locked = peers
        config = write_config(tmp_path / "cfg", {
            "open": {"type": "http", "url": open_http.url("/mcp")},
            "events": {"type": "sse", "url": sse.url("/sse")},
            "locked": {"type": "http", "url": locked.url("/mcp")},
        })  # fmt: skip
        env = clean_env(**browser_env(tmp_path, mode="refuse"))

        before = run_cli("doctor", "--config", str(config), env=env)

        out = before.stdout
        assert before.returncode == 1
        assert re.match(r"^  ok +open +http +modern 2026-07-28 +\d+ tools +no auth +started in", server_line(out, "open")), out
        # The SDK fixture is dual-era on its SSE endpoint too: the modern probe wins (as in test_remote).
        assert re.match(r"^  ok +events +sse +modern 2026-07-28 +\d+ tools +no auth", server_line(out, "events")), out
        assert "needs `mcpzip login locked`" in server_line(out, "locked")
        assert server_line(out, "locked").startswith("  FAIL")
        assert browser_visits(tmp_path) == []  # doctor never starts a sign-in
        assert locked.stats()["authorizations"] == 0

        login = run_cli("login", "locked", "--config", str(config), env=clean_env(**browser_env(tmp_path)))
        assert login.returncode == 0, login.stderr
        after = run_cli("doctor", "--config", str(config), env=env)
        assert after.returncode == 0, after.stdout
        assert re.search(r"token valid for \d+ min", server_line(after.stdout, "locked"))
        assert "ok    stored logins: " in after.stdout
    finally:
        for peer in peers:
            peer.stop()
