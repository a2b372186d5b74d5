"""OAuth 2.1 against a real authorization server (the official SDK's, with an auto-approving provider).

The "browser" is tests/servers/browser.py, started by ``webbrowser`` through
``$BROWSER``: it follows the authorization redirect to mcpzip's callback.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time

import pytest
from conftest import ENTRY, PYTHON, clean_env, run_cli, stopped_at_end, write_config
from remote_peer import Peer, browser_env, browser_visits, mode_of, secrets_of


@pytest.fixture
def oauth_server():
    yield from stopped_at_end(lambda *args: Peer("--oauth", *args))


def _config(tmp_path, server: Peer, path: str = "/mcp", **fields: object):
    return write_config(tmp_path / "cfg", {"remote": {"type": "http", "url": server.url(path), **fields}})


def _token_file(tmp_path, server: Peer, path: str = "/mcp"):
    name = hashlib.sha256(server.url(path).encode()).hexdigest()[:32] + ".json"
    return tmp_path / "cfg" / "auth" / name


def test_login_then_serve_with_refresh_then_logout(tmp_path, mcpzip, oauth_server):
    server = oauth_server()
    config = _config(tmp_path, server)
    env = clean_env(MCPZIP_LOG="debug", **browser_env(tmp_path))

    login = run_cli("login", "--config", str(config), env=env)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip().splitlines() == [f"remote: authorized (tokens in {_token_file(tmp_path, server)})"]
    assert "open this URL" in login.stderr and "/authorize?" in login.stderr  # printed as well as opened
    visits = browser_visits(tmp_path)
    assert visits[0].startswith("open ") and "code_challenge_method=S256" in visits[0]
    assert visits[-1] == "callback 200"
    assert server.stats()["registrations"] == 1 and server.stats()["authorizations"] == 1
    assert server.stats()["resource"] == server.url("/mcp")

    token_file = _token_file(tmp_path, server)
    assert mode_of(token_file) == 0o600 and mode_of(token_file.parent) == 0o700
    stored = json.loads(token_file.read_text())
    assert stored["token_type"] == "Bearer" and stored["refresh_token"] and stored["expiry"].endswith("Z")
    secrets = secrets_of(token_file)
    for value in secrets:
        assert value not in login.stderr and value not in login.stdout

    # serve uses the stored token; a browser opening now would be a failure.
    serve_env = clean_env(MCPZIP_LOG="debug", **browser_env(tmp_path, mode="refuse"))
    proc = mcpzip(config, serve_env)
    proc.initialize()
    assert proc.execute("remote__echo", {"text": "one"})["content"][0]["text"] == "one"
    # The server forgets every access token: the next call gets a 401 and refreshes.
    server.expire_tokens()
    assert proc.execute("remote__echo", {"text": "two"})["content"][0]["text"] == "two"
    stats = server.stats()
    assert (stats["authorizations"], stats["refreshes"]) == (1, 1)
    assert browser_visits(tmp_path) == visits  # no browser during serve
    assert proc.close() == 0
    for value in secrets + secrets_of(token_file):
        assert value not in proc.stderr

    logout = run_cli("logout", "remote", "--config", str(config), env=env)
    assert logout.returncode == 0 and logout.stdout.startswith("remote: signed out")
    assert "access_token" not in token_file.read_text() and mode_of(token_file) == 0o600
    after = run_cli("call", "remote__echo", '{"text": "x"}', "--config", str(config), env=serve_env)
    assert after.returncode == 1
    assert "run `mcpzip login remote`" in after.stderr
    assert browser_visits(tmp_path) == visits  # terminal commands never open a browser


def test_serve_signs_in_by_itself_and_the_call_waits_for_it(tmp_path, mcpzip, oauth_server):
    # The person takes a few seconds in the browser; the call that caused the
    # sign-in waits for it instead of failing, and search says what is going on.
    server = oauth_server()
    config = _config(tmp_path, server)
    proc = mcpzip(config, clean_env(**browser_env(tmp_path, mode="slow", TEST_BROWSER_DELAY="6")))
    proc.initialize()
    rid = proc.start_request("tools/call", {"name": "execute_tool",
                                            "arguments": {"name": "remote__echo", "arguments": {"text": "x"}}})
    deadline = time.monotonic() + 20
    while "remote (signing in (browser opened))" not in proc.text("search_tools", {"query": "zebra crossing"}):
        assert time.monotonic() < deadline, proc.stderr
    assert proc.response(rid, timeout=60)["result"]["content"] == [{"type": "text", "text": "x"}]
    assert server.stats()["authorizations"] == 1
    assert "remote (" in proc.text("search_tools", {"query": "zebra crossing"})
    assert "signing in" not in proc.text("search_tools", {"query": "zebra crossing"})
    assert proc.close() == 0


def test_a_sign_in_completed_while_execute_tool_waits_makes_that_call_succeed(tmp_path, mcpzip, oauth_server):
    server = oauth_server()
    config = _config(tmp_path, server)
    env = clean_env(**browser_env(tmp_path))
    assert run_cli("login", "--config", str(config), env=env).returncode == 0
    assert run_cli("list", "--config", str(config), env=env).returncode == 0  # the tools are in the cache now
    assert run_cli("logout", "remote", "--config", str(config), env=env).returncode == 0
    proc = mcpzip(config, clean_env(**browser_env(tmp_path, mode="slow", TEST_BROWSER_DELAY="3")))
    proc.initialize()
    assert proc.execute("remote__echo", {"text": "waited"}, timeout=60)["content"][0]["text"] == "waited"
    assert server.stats()["authorizations"] == 2  # the login, then the one the call waited for
    assert proc.close() == 0


def test_an_abandoned_sign_in_ends_the_wait_and_is_not_reopened_at_once(tmp_path, mcpzip, oauth_server):
    server = oauth_server()
    config = _config(tmp_path, server)
    proc = mcpzip(config, clean_env(MCPZIP_LOGIN_TIMEOUT="2", **browser_env(tmp_path, mode="refuse")))
    proc.initialize()
    started = time.monotonic()
    first = proc.execute("remote__echo", {"text": "x"}, timeout=60)
    assert first["isError"] and "mcpzip login remote" in first["content"][0]["text"], first
    assert time.monotonic() - started < 20  # the sign-in's own limit ended the wait, not the call's
    for _ in range(3):
        again = proc.execute("remote__echo", {"text": "x"})
        assert again["isError"] and "mcpzip login remote" in again["content"][0]["text"], again
    assert len([v for v in browser_visits(tmp_path) if v.startswith("open ")]) == 1
    assert server.stats()["authorizations"] == 0
    assert proc.close() == 0


def test_callback_with_wrong_state_is_rejected_and_the_real_one_accepted(tmp_path, oauth_server):
    server = oauth_server()
    config = _config(tmp_path, server)
    result = run_cli("login", "remote", "--config", str(config), env=clean_env(**browser_env(tmp_path, "wrong-state")))
    assert result.returncode == 0, result.stderr
    assert browser_visits(tmp_path)[1:] == ["callback 400 forged", "callback 200"]
    assert server.stats()["authorizations"] == 1  # the forged code was never exchanged


def test_resource_mismatch_is_refused(tmp_path, oauth_server):
    server = oauth_server("--resource-path", "/elsewhere")
    config = _config(tmp_path, server)
    result = run_cli("login", "remote", "--config", str(config), env=clean_env(**browser_env(tmp_path)))
    assert result.returncode == 1
    assert "names another resource" in result.stderr and "/elsewhere" in result.stderr
    assert browser_visits(tmp_path) == []
    assert server.stats()["registrations"] == 0


def test_login_times_out_without_a_callback(tmp_path, oauth_server):
    server = oauth_server()
    config = _config(tmp_path, server)
    env = clean_env(MCPZIP_LOGIN_TIMEOUT="2", **browser_env(tmp_path, "refuse"))
    result = run_cli("login", "remote", "--config", str(config), env=env)
    assert result.returncode == 1
    assert "no answer from the browser within 2s" in result.stderr
    assert not _token_file(tmp_path, server).exists()


def test_two_logins_at_once_share_one_sign_in(tmp_path, oauth_server):
    server = oauth_server()
    config = _config(tmp_path, server)
    env = clean_env(**browser_env(tmp_path))
    procs = [subprocess.Popen([PYTHON, ENTRY, "login", "remote", "--config", str(config)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert server.stats()["authorizations"] == 1
    assert server.stats()["registrations"] == 1


def test_mcp_remote_token_for_the_same_url_is_reused(tmp_path, mcpzip, oauth_server):
    server = oauth_server()
    # A token obtained elsewhere, stored the way mcp-remote stores it.
    donor = run_cli("login", "--config", str(_config(tmp_path / "donor", server)),
                    env=clean_env(**browser_env(tmp_path / "donor")))  # fmt: skip
    assert donor.returncode == 0, donor.stderr
    token = json.loads(_token_file(tmp_path / "donor", server).read_text())
    remote_dir = tmp_path / "home" / ".mcp-auth" / "mcp-remote-0.1.29"
    remote_dir.mkdir(parents=True)
    url = server.url("/mcp")
    (remote_dir / f"{hashlib.md5(url.encode()).hexdigest()}_tokens.json").write_text(
        json.dumps({"access_token": token["access_token"], "token_type": "Bearer", "expires_in": 3600})
    )
    # Another server's token must never be tried against this one.
    (remote_dir / f"{hashlib.md5(b'https://other.example/mcp').hexdigest()}_tokens.json").write_text(
        json.dumps({"access_token": "other-servers-token", "token_type": "Bearer"})
    )
    config = _config(tmp_path, server)
    proc = mcpzip(config, clean_env(MCPZIP_LOG="debug", **browser_env(tmp_path, "refuse")))
    proc.initialize()
    assert proc.execute("remote__echo", {"text": "via mcp-remote"})["content"][0]["text"] == "via mcp-remote"
    assert proc.close() == 0
    assert "using the token mcp-remote stored" in proc.stderr
    assert server.stats()["authorizations"] == 1  # only the donor's
    assert json.loads(_token_file(tmp_path, server).read_text())["access_token"] == token["access_token"]


def test_login_with_nothing_to_do(tmp_path):
    plain = Peer()
    try:
        config = write_config(tmp_path, {"open": {"type": "http", "url": plain.url("/mcp")},
                                         "local": {"command": "true"}})  # fmt: skip
        result = run_cli("login", "--config", str(config), env=clean_env(**browser_env(tmp_path)))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "open: no authorization needed"
        bad = run_cli("login", "local", "--config", str(config))
        assert bad.returncode == 1 and "only http and sse servers" in bad.stderr
    finally:
        plain.stop()
