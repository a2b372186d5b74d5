"""``mcpzip init``: the wizard on a terminal, the same answers piped in, and flags for scripts."""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import time

import pytest
from conftest import ENTRY, FIXTURE, PYTHON, clean_env, fixture_server, run_cli, write_config
from setup_helpers import FIXTURE_TOOLS, closed_port

FIXTURE_COMMAND = f"{shlex.quote(PYTHON)} {shlex.quote(FIXTURE)} --name fx"


class Terminal:
    """mcpzip on a pseudo-terminal: wait for a prompt, then answer it."""

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [PYTHON, ENTRY, *args], stdin=slave, stdout=slave, stderr=slave, env=clean_env(), start_new_session=True
        )
        os.close(slave)
        self.raw = b""
        self.pos = 0  # how much of the transcript earlier expects consumed

    @property
    def transcript(self) -> str:
        return self.raw.decode("utf-8", "replace").replace("\r\n", "\n")

    def _read(self, timeout: float) -> bool:
        """Append what the program wrote; False when it has closed the terminal."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the program ended
            return False
        self.raw += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 20) -> str:
        """Wait until *text* appears after the previous match; return what came in between."""
        deadline = time.monotonic() + timeout
        while text not in self.transcript[self.pos :]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} within {timeout}s; the terminal showed:\n{self.transcript}")
            if not self._read(left):
                raise AssertionError(f"ended before {text!r}; the terminal showed:\n{self.transcript}")
        end = self.transcript.index(text, self.pos) + len(text)
        seen, self.pos = self.transcript[self.pos : end], end
        return seen

    def type(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\r")

    def answer(self, prompt: str, text: str) -> str:
        seen = self.expect(prompt)
        self.type(text)
        return seen

    def finish(self, timeout: float = 20) -> int:
        """Read to the end and return the exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        return self.proc.wait(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminal():
    """Start mcpzip on pseudo-terminals; each is closed (and its process ended) after the test."""
    terminals: list[Terminal] = []
    yield lambda *args: terminals.append(Terminal(*args)) or terminals[-1]
    for t in terminals:
        t.close()


def test_wizard_on_a_terminal(tmp_path, terminal):
    config = tmp_path / "cfg" / "config.json"
    t = terminal("init", "--config", str(config))

    t.answer("Gemini API key (optional; Enter to skip): ", "AIzaTypedKey-12345")
    t.answer("Server name (Enter when done): ", "fx")
    t.answer("Type: stdio (a local command), http or sse (remote) [stdio]: ", "")
    t.answer("Command line (e.g. npx -y @modelcontextprotocol/server-everything): ", FIXTURE_COMMAND)
    t.answer("Environment variable KEY=VALUE (Enter when done): ", "GREETING=hello")
    t.answer("Environment variable KEY=VALUE (Enter when done): ", "")
    checked = t.expect("Added fx.")
    assert f"Checking fx… found {FIXTURE_TOOLS} tools (legacy 2025-11-25, started in" in checked
    t.answer("Server name (Enter when done): ", "bad__name")
    assert "Use letters, digits, - and _ only" in t.expect("Server name (Enter when done): ")
    t.type("")
    t.answer(f"Write {config} with 1 server? [Y/n]: ", "y")
    assert t.finish() == 0, t.transcript

    assert "AIzaTypedKey-12345" not in t.transcript  # typed without echo
    assert f"Wrote {config} (1 server, mode 600)." in t.transcript
    # A command the user can run as it is: this interpreter and this checkout's script.
    assert f"{PYTHON} {ENTRY} doctor --config {config}" in t.transcript
    assert config.stat().st_mode & 0o777 == 0o600
    assert json.loads(config.read_text()) == {
        "mcpServers": {"fx": {"command": PYTHON, "args": [FIXTURE, "--name", "fx"], "env": {"GREETING": "hello"}}},
        "gemini_api_key": "AIzaTypedKey-12345",
    }


def test_wizard_asks_before_adding_to_an_existing_config_and_can_stop(tmp_path, terminal):
    config = write_config(tmp_path, {"old": {"command": "old-mcp"}})
    before = config.read_bytes()
    t = terminal("init", "--config", str(config))
    seen = t.answer("Add to it? (no stops here and changes nothing) [Y/n]: ", "n")
    assert "already exists with 1 server(s): old." in seen
    assert t.finish() == 1
    assert "Nothing was changed." in t.transcript
    assert config.read_bytes() == before


def test_wizard_keeps_a_failing_server_only_when_told(tmp_path, terminal):
    config = write_config(tmp_path, {"old": {"command": "old-mcp"}}, search={"default_limit": 3})
    t = terminal("init", "--config", str(config), "--timeout", "5")
    t.answer("[Y/n]: ", "")
    t.answer("(optional; Enter to skip): ", "")
    t.answer("Server name (Enter when done): ", "old")
    assert "old is already in the config" in t.expect("Server name (Enter when done): ")
    t.type("gone")
    t.answer("[stdio]: ", "stdio")
    t.answer("server-everything): ", "no-such-mcp-command --flag")
    t.answer("(Enter when done): ", "")
    assert "Checking gone… failed: cannot start server gone: command 'no-such-mcp-command' not found" in t.expect(
        "Keep gone anyway? [y/N]: "
    )
    t.type("")
    t.answer("Server name (Enter when done): ", "remote")
    t.answer("[stdio]: ", "streamable-http")
    t.answer("  URL: ", "ftp://nope")
    assert "starts with https://" in t.expect("  URL: ")
    t.type(f"http://127.0.0.1:{closed_port()}/mcp")
    t.answer("none for OAuth): ", "X-Api-Key=k-123")
    t.answer("none for OAuth): ", "")
    t.expect("Keep remote anyway? [y/N]: ")  # nothing answers at that address
    t.type("y")
    t.answer("Server name (Enter when done): ", "")
    t.answer("with 2 servers? [Y/n]: ", "")
    assert t.finish() == 0, t.transcript
    saved = json.loads(config.read_text())
    assert saved["mcpServers"]["remote"]["url"].startswith("http://127.0.0.1:")
    assert saved == {
        "mcpServers": {
            "old": {"command": "old-mcp"},
            "remote": {"type": "http", "url": saved["mcpServers"]["remote"]["url"], "headers": {"X-Api-Key": "k-123"}},
        },
        "search": {"default_limit": 3},
    }


def test_wizard_answers_piped_in(tmp_path):
    config = tmp_path / "config.json"
    answers = "\n".join(["", "fx", "", FIXTURE_COMMAND, "", "", ""]) + "\n"
    result = run_cli("init", "--config", str(config), input=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"found {FIXTURE_TOOLS} tools" in result.stdout
    assert json.loads(config.read_text()) == {"mcpServers": {"fx": {"command": PYTHON, "args": [FIXTURE, "--name", "fx"]}}}


def test_wizard_input_ending_early_writes_nothing(tmp_path):
    config = tmp_path / "config.json"
    result = run_cli("init", "--config", str(config), input="\nfx\nstdio\n")
    assert result.returncode == 1
    assert "nothing was written" in result.stderr
    assert not config.exists()


# -- flags -----------------------------------------------------------------------------


def test_flags_add_and_check_servers(tmp_path):
    config = tmp_path / "new" / "config.json"
    result = run_cli(
        "init", "--config", str(config),
        "--server", f"fx={FIXTURE_COMMAND}",
        "--server", f"big={FIXTURE_COMMAND} --extra-tools 5",
        "--env", "fx:GREETING=hi there",
        "--gemini-key", "AIzaFlagKey",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"fx: found {FIXTURE_TOOLS} tools" in result.stdout and f"big: found {FIXTURE_TOOLS + 5} tools" in result.stdout
    assert config.stat().st_mode & 0o777 == 0o600
    assert json.loads(config.read_text()) == {
        "mcpServers": {
            "fx": {"command": PYTHON, "args": [FIXTURE, "--name", "fx"], "env": {"GREETING": "hi there"}},
            "big": {"command": PYTHON, "args": [FIXTURE, "--name", "fx", "--extra-tools", "5"]},
        },
        "gemini_api_key": "AIzaFlagKey",
    }
    # What init wrote serves.
    listed = run_cli("list", "--config", str(config))
    assert listed.returncode == 0 and "big__tool_4" in listed.stdout


def test_flags_never_overwrite_an_existing_config(tmp_path):
    config = write_config(tmp_path, {"old": fixture_server("old")})
    before = config.read_bytes()
    result = run_cli("init", "--config", str(config), "--server", f"fx={FIXTURE_COMMAND}")
    assert result.returncode == 1
    assert "already exists with 1 server(s); pass --merge" in result.stderr
    assert config.read_bytes() == before

    merged = run_cli("init", "--config", str(config), "--merge", "--no-check",
                     "--sse", "legacy=https://example.com/sse", "--header", "legacy:Authorization=Bearer t")  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert "Checking" not in merged.stdout
    servers = json.loads(config.read_text())["mcpServers"]
    assert servers["old"] == fixture_server("old")
    assert servers["legacy"] == {"type": "sse", "url": "https://example.com/sse", "headers": {"Authorization": "Bearer t"}}


def test_flags_report_a_failing_server_and_exit_1(tmp_path):
    config = tmp_path / "config.json"
    leak = "import os, sys; sys.stderr.write('bad token ' + os.environ['TOKEN']); sys.exit(1)"
    result = run_cli(
        "init", "--config", str(config),
        "--server", "gone=no-such-mcp-command",
        "--server", f"leaky={shlex.quote(PYTHON)} -c {shlex.quote(leak)}", "--env", "leaky:TOKEN=tok-secret-42",
    )  # fmt: skip
    assert result.returncode == 1
    assert "gone: failed: cannot start server gone: command 'no-such-mcp-command' not found" in result.stdout
    assert "leaky: failed: server leaky failed to start: process exited with code 1 (stderr: bad token ***)" in result.stdout
    assert "tok-secret-42" not in result.stdout + result.stderr
    assert "2 server(s) failed the check; they were written anyway" in result.stderr
    assert json.loads(config.read_text())["mcpServers"]["gone"] == {"command": "no-such-mcp-command"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--server", "a__b=x"], "must be letters, digits, - and _"),
        (["--server", "nocommand"], "is not NAME=COMMAND"),
        (["--server", "a=x", "--server", "a=y"], 'a server "a" is already given'),
        (["--env", "ghost:A=1", "--server", "a=x"], "start it with the name of a server given here"),
        (["--http", "h=ftp://x"], "url must start with https://"),
        (["--yes"], "nothing to add"),
    ],
)
def test_flag_mistakes_are_usage_errors(tmp_path, args, message):
    result = run_cli("init", "--config", str(tmp_path / "config.json"), "--no-check", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "config.json").exists()


def test_flag_name_clash_with_existing_config(tmp_path):
    config = write_config(tmp_path, {"fx": fixture_server()})
    result = run_cli("init", "--config", str(config), "--yes", "--no-check", "--server", "fx=other")
    assert result.returncode == 2
    assert f'a server "fx" is already in {config}' in result.stderr
