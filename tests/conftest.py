"""Shared test helpers: configs on disk, fixture servers, and mcpzip as a subprocess."""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import procfs  # noqa: E402  (the benchmarks' reader of /proc: one copy for both)

# hypothesis keeps a folder of its own (an example database, a cache of
# constants): a temporary one, removed when the run ends, so that a test run
# leaves nothing behind in the checkout.
_HYPOTHESIS_DIR = tempfile.mkdtemp(prefix="mcpzip-hypothesis-")
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = _HYPOTHESIS_DIR
atexit.register(shutil.rmtree, _HYPOTHESIS_DIR, True)

PYTHON = sys.executable
ENTRY = str(ROOT / "mcpzip.py")
SERVERS = ROOT / "tests" / "servers"
FIXTURE = str(SERVERS / "fixture_server.py")

# The official MCP SDK (test extra; Python >= 3.10) runs the SDK peers. A test
# that needs it says so; the others in its module run without it.
HAVE_SDK = importlib.util.find_spec("mcp") is not None
needs_sdk = pytest.mark.skipif(not HAVE_SDK, reason="the official MCP SDK (test extra, Python >= 3.10) is not installed")


def fixture_server(name: str = "fixture", *args: str, **fields: object) -> dict:
    """A config entry that runs the stdlib fixture server."""
    entry: dict = {"command": PYTHON, "args": [FIXTURE, "--name", name, *args]}
    entry.update(fields)
    return entry


def write_config(directory: Path, servers: dict, **extra: object) -> Path:
    """Write a private config file in *directory* and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps({"mcpServers": servers, **extra}))
    path.chmod(0o600)
    return path


def clean_env(**extra: str) -> dict:
    """mcpzip's environment in tests: no user config, no Gemini key, logs off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPZIP_", "GEMINI_"))}
    env.update(extra)
    return env


def fixture_children(pid: int | str = "self") -> set[int]:
    """*pid*'s live children (of any of its threads) that run the fixture server.

    Not mcpzip's watchdog: it is a child too while an upstream runs, and
    leaves on its own schedule.
    """
    return procfs.children_running(pid, "fixture_server.py")


def pid_alive(pid: int) -> bool:
    """True while *pid* exists and has not exited (zombies count as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False  # gone between the two looks


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until *pid* has exited (True) or *timeout* passed (False)."""
    import select
    import time

    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        fd = None
    try:
        while pid_alive(pid):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if fd is not None:
                # A pidfd becomes readable when the process terminates.
                select.select([fd], [], [], left)
            else:
                time.sleep(0.01)  # no pidfd on this system: poll
        return True
    finally:
        if fd is not None:
            os.close(fd)


class Mcpzip:
    """``python mcpzip.py serve`` as a child, spoken to over its pipes."""

    def __init__(self, config: Path, env: dict | None = None, args: tuple[str, ...] = (),
                 command: tuple[str, ...] = (PYTHON, ENTRY)) -> None:  # fmt: skip
        self.proc = subprocess.Popen(
            [*command, "serve", "--config", str(config), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env() if env is None else env,
        )
        self._next_id = 0
        self._responses: dict[object, queue.Queue] = {}
        self._lock = threading.Lock()
        self.notifications: queue.Queue = queue.Queue()
        self.requests: queue.Queue = queue.Queue()
        self.stray: queue.Queue = queue.Queue()  # responses with ids we did not send
        self.raw_lines: list[bytes] = []
        self.stderr_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    # -- plumbing ----------------------------------------------------------

    def _read(self) -> None:
        for line in iter(self.proc.stdout.readline, b""):
            self.raw_lines.append(line)
            message = json.loads(line)  # every stdout line must be JSON
            if "method" in message and "id" in message:
                self.requests.put(message)
            elif "method" in message:
                self.notifications.put(message)
            else:
                with self._lock:
                    q = self._responses.get(message.get("id"))
                (q or self.stray).put(message)

    def _read_stderr(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def send_raw(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.proc.wait(5)
            raise AssertionError(f"mcpzip exited ({self.proc.returncode}); stderr:\n{self.stderr}") from None

    def send(self, message: dict) -> None:
        self.send_raw((json.dumps(message) + "\n").encode())

    def start_request(self, method: str, params: dict | None = None, id: object = None) -> object:
        with self._lock:
            if id is None:
                self._next_id += 1
                id = self._next_id
            self._responses[id] = queue.Queue()
        message: dict = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return id

    def response(self, id: object, timeout: float = 20) -> dict:
        try:
            return self._responses[id].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no response to request {id!r} within {timeout}s; stderr:\n{self.stderr}") from None

    def request(self, method: str, params: dict | None = None, timeout: float = 20) -> dict:
        return self.response(self.start_request(method, params), timeout)

    def result(self, method: str, params: dict | None = None, timeout: float = 20) -> dict:
        response = self.request(method, params, timeout)
        assert "result" in response, response
        return response["result"]

    def initialize(self, version: str = "2025-11-25", capabilities: dict | None = None) -> dict:
        result = self.result(
            "initialize",
            {"protocolVersion": version, "capabilities": capabilities or {}, "clientInfo": {"name": "tests", "version": "0"}},
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def call(self, tool: str, arguments: dict, timeout: float = 20) -> dict:
        return self.result("tools/call", {"name": tool, "arguments": arguments}, timeout)

    def execute(self, name: str, arguments: dict | None = None, timeout: float = 20, **extra: object) -> dict:
        return self.call("execute_tool", {"name": name, "arguments": arguments or {}, **extra}, timeout)

    def text(self, tool: str, arguments: dict, timeout: float = 20) -> str:
        result = self.call(tool, arguments, timeout)
        return "\n".join(c["text"] for c in result["content"] if c["type"] == "text")

    # -- ending ------------------------------------------------------------------

    def close(self, timeout: float = 15) -> int:
        """Close stdin (the client went away) and wait for a clean exit."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(5)
            self._err_reader.join(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def stopped_at_end(make: Callable[..., Any], stop: str = "stop") -> Iterator[Callable[..., Any]]:
    """A fixture's body: it hands out *make*, and each thing made is stopped (its *stop* method) after the test."""
    made: list = []

    def start(*args: Any, **kwargs: Any) -> Any:
        thing = make(*args, **kwargs)
        made.append(thing)
        return thing

    yield start
    for thing in made:
        getattr(thing, stop)()


@pytest.fixture
def peer():
    """Start the official SDK's servers on 127.0.0.1 (remote_peer.Peer)."""
    from remote_peer import Peer  # the SDK is a test extra: imported by the tests that need it

    yield from stopped_at_end(Peer)


@pytest.fixture
def fake():
    """Start FakeServers (tests/oauth_fake.py): remote servers and their authorization servers."""
    from oauth_fake import FakeServer

    yield from stopped_at_end(FakeServer)


@pytest.fixture
def mcpzip():
    """Start mcpzip processes (``Mcpzip(config, env, args, command)``)."""
    yield from stopped_at_end(Mcpzip, "kill")


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python mcpzip.py ARGS`` to completion."""
    return subprocess.run(
        [PYTHON, ENTRY, *args],
        capture_output=True,
        text=True,
        env=clean_env() if env is None else env,
        input=input,
        timeout=timeout,
    )
