"""A local upstream: a child process speaking JSON lines on its stdin/stdout.

Threading contract: one thread reads stdout and delivers messages, one drains
stderr into the log (so the child can never block on a full pipe), and
``send`` may be called from any thread.  The child runs in its own process
group so that closing reaches its children too (``npx`` starts ``node``).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading

from ...base import jsonrpc, log
from .base import Transport, TransportClosed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ...base.config import ServerConfig
    from .base import OnClose, OnMessage

# What an upstream inherits from mcpzip's environment: enough to find programs
# and a home directory, nothing that could be a secret of mcpzip or of
# another server.
ENV_ALLOWLIST = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "TMPDIR", "TZ")
WINDOWS_ENV_ALLOWLIST = (
    "APPDATA", "COMSPEC", "HOMEDRIVE", "HOMEPATH", "LOCALAPPDATA", "PATHEXT", "PROCESSOR_ARCHITECTURE",
    "PROGRAMDATA", "PROGRAMFILES", "SYSTEMDRIVE", "SYSTEMROOT", "TEMP", "TMP", "USERNAME", "USERPROFILE",
    "WINDIR",
)  # fmt: skip

# Closing: stdin is closed first (the polite MCP shutdown), then the group is
# sent SIGTERM, then SIGKILL.  Each step waits at most this long.
STDIN_GRACE = 0.5
TERM_GRACE = 2.0
STDERR_TAIL = 20
STDERR_LINE_CHARS = 2000
# After the child exits, how long to let the stderr thread catch up: its last
# lines usually say why.  (A grandchild holding stderr open bounds the wait.)
STDERR_SETTLE = 1.0


def child_env(server: ServerConfig, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allowlisted part of *environ* plus the server's own ``env``."""
    environ = os.environ if environ is None else environ
    names = ENV_ALLOWLIST + (WINDOWS_ENV_ALLOWLIST if os.name == "nt" else ())
    env = {k: environ[k] for k in names if k in environ}
    env.update(server.env)
    return env


class StdioTransport(Transport):
    def __init__(self, server: ServerConfig) -> None:
        self.server = server
        self._proc: subprocess.Popen | None = None
        self._send_lock = threading.Lock()
        self._closing = False
        self._closed_event = threading.Event()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._threads: list[threading.Thread] = []
        self._stderr_done = threading.Event()
        self._exit_reason = "the server process has exited"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, on_message: OnMessage, on_close: OnClose) -> None:
        import shutil

        env = child_env(self.server)
        command = self.server.command
        # Resolve against the child's PATH, as a shell would for the user.
        found = shutil.which(command, path=env.get("PATH"))
        if found is None:
            raise TransportClosed(f"command {command!r} not found")
        kwargs: dict = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        try:
            self._proc = subprocess.Popen(
                [found, *self.server.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.server.cwd or None,
                **kwargs,
            )
        except OSError as e:
            raise TransportClosed(f"cannot start {command!r}: {e.strerror or e}") from None
        log.debug("%s: started pid %s", self.server.name, self._proc.pid)
        self._spawn(self._read_stdout, on_message, on_close)
        self._spawn(self._drain_stderr)

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        t = threading.Thread(target=target, args=args, name=f"mcpzip-{self.server.name}-{target.__name__}")
        t.daemon = True
        t.start()
        self._threads.append(t)

    def _read_stdout(self, on_message: OnMessage, on_close: OnClose) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        name = self.server.name
        for line in iter(proc.stdout.readline, b""):
            if not line.strip():
                continue
            try:
                message = jsonrpc.decode(line)
            except ValueError:
                # Servers that print banners or debug output on stdout are
                # common; the protocol lines around them are still good.
                log.info("%s: skipped a non-JSON line on stdout (%d bytes)", name, len(line))
                continue
            try:
                on_message(message)
            except Exception as e:  # a bug in a handler must not kill the reader
                log.error("%s: failed to handle a message: %r", name, e)
        code = proc.wait()
        if not self._closing:
            self._stderr_done.wait(STDERR_SETTLE)
            tail = " | ".join(list(self._stderr_tail)[-3:])
            self._exit_reason = f"process exited with code {code}" + (f" (stderr: {tail[-300:]})" if tail else "")
        self._closed_event.set()
        if not self._closing:
            on_close(self._exit_reason)

    def _drain_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        name = self.server.name
        for raw in iter(proc.stderr.readline, b""):
            # Bound what one runaway line may cost in log volume; masked before
            # it is cut, so a cut never leaves part of a secret.
            line = log.shown(raw.decode("utf-8", "replace").rstrip(), STDERR_LINE_CHARS, edges=True)
            if line:
                self._stderr_tail.append(line)
                log.info("[%s] %s", name, line)
        self._stderr_done.set()

    def send(self, message: dict) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or self._closing:
            raise TransportClosed("not connected")
        data = jsonrpc.encode(message)
        with self._send_lock:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                # The child is gone: its exit code and last words say why.
                self._closed_event.wait(STDERR_SETTLE + TERM_GRACE)
                raise TransportClosed(self._exit_reason) from None

    def close(self) -> None:
        proc = self._proc
        if proc is None or self._closing:
            return
        self._closing = True
        try:
            with self._send_lock:
                if proc.stdin:
                    proc.stdin.close()
        except OSError:
            pass
        if not _wait(proc, STDIN_GRACE):
            self._signal_group(proc, signal.SIGTERM)
            if not _wait(proc, TERM_GRACE):
                log.warning("%s: did not stop after SIGTERM; killing it", self.server.name)
        # The leader may be gone while children it started live on in the
        # group; they go too.
        self._signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
        _wait(proc, TERM_GRACE)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=1.0)
        for stream in (proc.stdout, proc.stderr):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        log.debug("%s: stopped", self.server.name)

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        try:
            if os.name == "posix":
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False
