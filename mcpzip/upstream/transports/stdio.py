"""A local upstream: a child process speaking JSON lines on its stdin/stdout.

Threading contract: one thread per upstream reads stdout and delivers
messages; the shared watch thread (children.py) logs stderr, so the child can
never block on a full pipe, and notices the process's exit, so a crash is
seen even while a helper holds stdout open.  ``send`` may be called from any
thread; ``close`` from any thread, any number of times, also at once (the
idle reaper and ``Pool.close``): one caller runs the steps, the others wait.
The child runs in a session and process group of its own, so that closing
reaches its children too (``npx`` starts ``node``), and the watchdog
(watchdog.py) stops that group if mcpzip itself is killed.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import threading

from ...base import jsonrpc, log
from ...base.config import DEFAULT_MAX_MESSAGE_BYTES, OWN_PREFIX, OWN_VARS, PROXY_VARS
from . import children, watchdog
from .base import Transport, TransportClosed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Callable

    from ...base.config import ServerConfig
    from .base import OnClose, OnMessage

# What an upstream inherits from mcpzip's environment: enough to find
# programs, a home directory and the language, and what package managers
# (npx, uvx, pip, git) and TLS need behind a proxy or with a company CA —
# nothing that could be a secret of mcpzip or of another server.  More
# names: ``env_passthrough`` in the config.
ENV_ALLOWLIST = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TMPDIR", "TZ",
    *PROXY_VARS,
    "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip
ENV_PREFIXES = ("LC_",)  # the locale: LC_ALL, LC_CTYPE, ...
WINDOWS_ENV_ALLOWLIST = (
    "APPDATA", "COMSPEC", "HOMEDRIVE", "HOMEPATH", "LOCALAPPDATA", "PATHEXT", "PROCESSOR_ARCHITECTURE",
    "PROGRAMDATA", "PROGRAMFILES", "SYSTEMDRIVE", "SYSTEMROOT", "TEMP", "TMP", "USERNAME", "USERPROFILE",
    "WINDIR",
)  # fmt: skip

# Closing runs these steps in order (StdioTransport.close), each bounded:
# 1. close stdin, then wait STDIN_GRACE: the polite MCP shutdown; a
#    well-behaved server exits at once on end-of-file.
STDIN_GRACE = 0.5
# 2. SIGTERM to the server's process group and descendants, then wait
#    TERM_GRACE: time for a server to flush its state and exit cleanly.
TERM_GRACE = 2.0
# 3. SIGKILL to whatever is left (also children still in the group after the
#    server itself exited), then wait KILL_GRACE: SIGKILL cannot be refused,
#    so this only waits for the kernel to finish the process.
KILL_GRACE = 1.0
# 4. Release: the stdout reader ends at end-of-file.  A process that escaped
#    every signal may still hold the pipe; its reader is then left behind (a
#    daemon thread) instead of being waited for, so exiting never blocks.
READER_JOIN = 0.5
# When stdout ends, how long to wait for the process to exit before calling
# it mute (it closed stdout but runs on) and stopping it.
EOF_GRACE = 1.0
STDERR_TAIL = 20
# A server that times out at start-up without a word on stdout or stderr is
# most often a package manager fetching it, or waiting on the network.
SILENT_HINT = (
    "; it printed nothing, so it may be a package manager (npx, uvx, pip) fetching it over the network, or a "
    "variable it needs that was not passed: behind a proxy or with a company CA, set HTTPS_PROXY or "
    "NODE_EXTRA_CA_CERTS where mcpzip runs (they are passed on), add any other variable the server needs to its "
    "env_passthrough, or run its command once in a terminal (docs/troubleshooting.md)"
)
# A stderr line is logged masked, then cut to this many characters.
STDERR_LINE_CHARS = 2000
# Bytes kept of an oversized or unreadable message, to find the id of the
# request it answered.
KEEP = 1024
DISCARD_CHUNK = 1024 * 1024


def child_env(server: ServerConfig, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allowlisted part of *environ*, the server's ``env_passthrough``, then its own ``env``."""
    environ = os.environ if environ is None else environ
    names = set(ENV_ALLOWLIST + (WINDOWS_ENV_ALLOWLIST if os.name == "nt" else ()))
    names.update(server.env_passthrough)
    names.update(k for k in environ if k.startswith(ENV_PREFIXES))
    env = {k: environ[k] for k in names if k in environ and k not in OWN_VARS and not k.startswith(OWN_PREFIX)}
    env.update(server.env)
    return env


class StdioTransport(Transport):
    """One child process; see the module docstring for who runs what."""

    def __init__(self, server: ServerConfig, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.server = server
        self.max_message_bytes = max_message_bytes
        self._proc: subprocess.Popen | None = None
        self._on_close: OnClose | None = None
        self._reader: threading.Thread | None = None
        self._watched: children._Watched | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._heard = False  # any line on stdout or stderr (set by the reader or the watch thread)
        self._exit_reason = "the server process has exited"
        self._send_lock = threading.Lock()  # one message at a time on stdin
        # The close guard: the first caller of close() runs the steps, any
        # other (the idle reaper and Pool.close at once) waits for it.
        self._close_lock = threading.Lock()
        self._closed = False  # guarded by _close_lock
        # Guards _closing and _reported, so that on_close is called at most
        # once, and never for an end that close() caused.
        self._state_lock = threading.Lock()
        self._closing = False
        self._reported = False
        self._exited = threading.Event()  # the watch thread saw the process exit
        self._ended = threading.Event()  # the end was reported, or close() finished

    def start(self, on_message: OnMessage, on_close: OnClose) -> None:
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
            raise TransportClosed(f"cannot start {command!r}: {e.strerror or e}") from e
        log.debug("%s: started pid %s", self.server.name, self._proc.pid)
        self._on_close = on_close
        children.watchdog.register(self._proc.pid)
        self._watched = children.watcher().watch(self._proc, self._on_stderr_line, self._on_exit)
        self._reader = threading.Thread(target=self._read_stdout, args=(on_message,),
                                        name=f"mcpzip-{self.server.name}-stdout")  # fmt: skip
        self._reader.daemon = True
        self._reader.start()

    # -- stdout (the reader thread) ---------------------------------------------

    def _read_stdout(self, on_message: OnMessage) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        limit = self.max_message_bytes
        while True:
            try:
                # Never more than the limit in memory, newline or not.
                line = proc.stdout.readline(limit + 1)
            except (OSError, ValueError):
                break  # the pipe was closed: the end, as at end-of-file
            if not line:
                break
            self._heard = True
            try:
                if len(line) > limit and not line.endswith(b"\n"):
                    self._drop_oversized(line, proc.stdout, on_message)
                elif line.strip():
                    self._deliver(line, on_message)
            except Exception as e:  # whatever one line does, the next is read
                log.error("%s: failed to read a line from stdout: %r", self.server.name, e)
            line = b""  # not held while waiting for the next: a line can be large
        self._stdout_ended()

    def _deliver(self, line: bytes, on_message: OnMessage) -> None:
        try:
            message = _decode(line)
        except (ValueError, RecursionError) as e:
            # Servers that print banners or debug output on stdout are
            # common; the protocol lines around them are still good.
            why = "it is nested too deeply to read" if "deep" in str(e) or isinstance(e, RecursionError) else "it is not valid JSON"
            self._unreadable(line[:KEEP], line[-KEEP:], len(line), why, on_message)
            return
        try:
            on_message(message)
        except Exception as e:  # a bug in a handler must not kill the reader
            log.error("%s: failed to handle a message: %r", self.server.name, e)

    def _drop_oversized(self, first: bytes, stdout: IO[bytes], on_message: OnMessage) -> None:
        """Read the rest of a too-long line without keeping it, then report it."""
        size, head, tail = len(first), first[:KEEP], first[-KEEP:]
        while True:
            chunk = stdout.readline(DISCARD_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            tail = chunk[-KEEP:] if len(chunk) >= KEEP else (tail + chunk)[-KEEP:]
            if chunk.endswith(b"\n"):
                break
        why = f"it was {size} bytes, more than max_message_bytes ({self.max_message_bytes})"
        self._unreadable(head, tail, size, why, on_message)

    def _unreadable(self, head: bytes, tail: bytes, size: int, why: str, on_message: OnMessage) -> None:
        """A line that is no message: the call it answered (if that can be told) gets an error."""
        name = self.server.name
        request_id = _answered_id(head, tail.rstrip())
        if request_id is None:
            log.info("%s: skipped a line on stdout that is not a message (%d bytes): %s", name, size, why)
            return
        log.warning("%s: dropped its answer to request %s: %s", name, request_id, why)
        try:
            on_message(jsonrpc.error(request_id, jsonrpc.INTERNAL_ERROR, f"mcpzip dropped the server's answer: {why}"))
        except Exception as e:
            log.error("%s: failed to handle a message: %r", name, e)

    def _stdout_ended(self) -> None:
        if self._closing or self._exited.wait(EOF_GRACE):
            return  # closed by us, or the process ended: _on_exit reports it with its exit code
        self._exit_reason = "the server closed its stdout but kept running; mcpzip stopped it (it starts again on next use)"
        self._report(self._exit_reason)
        self.close()

    # -- stderr and exit (the shared watch thread) ------------------------------------

    def _on_stderr_line(self, line: str) -> None:
        # Masked before it is cut, so a cut never leaves part of a secret.
        line = log.shown(line, STDERR_LINE_CHARS, edges=True)
        self._heard = True
        self._stderr_tail.append(line)
        log.info("[%s] %s", self.server.name, line)

    def _on_exit(self, code: int) -> None:
        if not self._closing:
            tail = " | ".join(list(self._stderr_tail)[-3:])
            self._exit_reason = f"process exited with code {code}" + (f" (stderr: {tail[-300:]})" if tail else "")
        self._exited.set()
        if self._report(self._exit_reason):
            # What is left of it (a helper holding its pipes) is stopped
            # now, off the watch thread, which must not block.
            t = threading.Thread(target=self.close, name=f"mcpzip-{self.server.name}-cleanup")
            t.daemon = True
            t.start()

    def _report(self, reason: str) -> bool:
        """Tell the session the connection ended (once, and not when closing); True if told."""
        with self._state_lock:
            if self._reported or self._closing:
                return False
            self._reported = True
        self._ended.set()
        assert self._on_close is not None
        self._on_close(reason)
        return True

    def stall_hint(self) -> str:
        return "" if self._heard else SILENT_HINT

    # -- sending ------------------------------------------------------------------------

    def send(self, message: dict) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or self._closing:
            raise TransportClosed("not connected")
        if self._reported:
            raise TransportClosed(self._exit_reason)
        data = jsonrpc.encode(message)
        with self._send_lock:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as e:
                # The child is gone: its exit code and last words say why.
                self._ended.wait(EOF_GRACE + STDIN_GRACE)
                raise TransportClosed(self._exit_reason) from e

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the process and everything it started, in named steps; safe to call twice, from any threads."""
        with self._close_lock:
            if self._closed:
                return
            with self._state_lock:
                self._closing = True
            if self._proc is not None:
                self._stop(self._proc)
            self._closed = True
            self._ended.set()
        log.debug("%s: stopped", self.server.name)

    def _stop(self, proc: subprocess.Popen) -> None:
        # Its descendants are found while it lives: once it is gone they are
        # re-parented and can no longer be told from strangers.
        # (A look at /proc shared with the other closes of the moment; the
        # process group is signalled as a whole besides.)
        family = watchdog.family([proc.pid], children.recent_process_table())
        if not (self._close_stdin(proc) and _wait(proc, STDIN_GRACE)):
            family |= watchdog.family([proc.pid])  # looked at again: it had time to start more
            self._signal(proc, family, signal.SIGTERM)
            if not _wait(proc, TERM_GRACE):
                log.warning("%s: did not stop after SIGTERM; killing it", self.server.name)
                family |= watchdog.family([proc.pid])
        self._signal(proc, family, getattr(signal, "SIGKILL", signal.SIGTERM))
        _wait(proc, KILL_GRACE)
        self._release(proc)

    def _close_stdin(self, proc: subprocess.Popen) -> bool:
        # A write stuck on a full pipe (a server that does not read) holds
        # the send lock until the process dies: then skip straight to signals.
        if not self._send_lock.acquire(timeout=STDIN_GRACE):
            return False
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        finally:
            self._send_lock.release()
        return True

    def _release(self, proc: subprocess.Popen) -> None:
        if self._watched is not None:
            children.watcher().unwatch(self._watched)  # closes stderr on the watch thread
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(READER_JOIN)
        # stdout is closed only once its reader is done: closing a pipe that
        # another thread is reading waits for that read, which a process
        # still holding the other end may delay for ever.
        if reader is None or not reader.is_alive():
            _quietly(proc.stdout.close if proc.stdout else None)
        self._close_stdin(proc)
        children.watchdog.unregister(proc.pid)

    @staticmethod
    def _signal(proc: subprocess.Popen, family: set[int], sig: int) -> None:
        if os.name == "posix":
            watchdog.signal_all([proc.pid], family, sig)
        else:
            _quietly(lambda: proc.send_signal(sig))


def _decode(line: bytes) -> Any:
    try:
        return jsonrpc.decode(line)
    except UnicodeDecodeError:
        # Text in a legacy encoding: keep the message, mark the bad bytes.
        return jsonrpc.decode(line.decode("utf-8", "replace"))


def _answered_id(head: bytes, tail: bytes) -> Any:
    """The id of the response whose first and last bytes these are, if it can be told.

    Best effort on text that cannot be parsed: a top-level ``"id"`` right
    after the opening brace (after ``"jsonrpc"``) or right before the closing
    one.  Requests (a ``"method"`` key up front) are never taken for answers.
    """
    import re  # only for broken input, never on the normal path

    if not head.lstrip().startswith(b"{") or re.search(rb'^\s*\{\s*("jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"method"\s*:', head):
        return None
    value = rb'(-?\d+|"(?:[^"\\]|\\.){0,200}")'
    found = re.match(rb'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*' + value + rb"\s*,", head)
    found = found or re.search(rb'[,{]\s*"id"\s*:\s*' + value + rb'\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}$', tail)
    if found is None:
        return None
    try:
        request_id = jsonrpc.decode(found.group(1))
    except ValueError:
        return None
    return request_id if jsonrpc.valid_id(request_id) else None


def _quietly(action: Callable[[], object] | None) -> None:
    try:
        if action is not None:
            action()
    except OSError:
        pass


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False
