"""The processes of stdio upstreams: their exits and stderr on one thread, and the watchdog.

A stdio upstream's death is noticed from the process itself, not only from
its stdout closing: a server that crashes while a helper it started still
holds its stdout (``sh -c "sleep 300 & exec server"``) never closes the
pipe.  On POSIX one thread, ``mcpzip-stdio-watch``, waits with ``selectors``
on every upstream's stderr pipe and on a pidfd per process (Linux; elsewhere
it looks at each process every :data:`POLL_SECONDS`), so a live upstream
costs mcpzip one thread of its own (its stdout reader) instead of three.  On
Windows, where pipes cannot be selected, each process gets a stderr thread
and a waiting thread instead.

Threading contract: :meth:`Watcher.watch` and :meth:`Watcher.unwatch` may be
called from any thread; every registration change is carried out by the
watch thread itself (woken through a pipe), so it alone ever reads or closes
the fds it watches.  The callbacks run on the watch thread and must not block.
"""

from __future__ import annotations

import collections
import os
import selectors
import subprocess
import sys
import threading
import time

from ...base import log
from .watchdog import process_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    OnLine = Callable[[str], None]
    OnExit = Callable[[int], None]

# Where there are no pidfds, how often the watch thread looks for exits.
POLL_SECONDS = 0.5
# Bytes of one stderr line kept: a runaway line costs bounded memory.  (The
# transport masks it, then cuts it shorter for the log: masking sees enough
# around the cut to hide a whole secret.)
STDERR_LINE_MAX = 16384
READ_CHUNK = 65536
# unwatch() waits this long for the watch thread to let go of the fds.
UNWATCH_WAIT = 2.0


class _Watched:
    """One process: its stderr fd (non-blocking), its pidfd, its partial stderr line."""

    def __init__(self, proc: subprocess.Popen, on_line: OnLine, on_exit: OnExit) -> None:
        self.proc = proc
        self.on_line = on_line
        self.on_exit = on_exit
        self.stderr = proc.stderr
        self.pidfd: int | None = None
        self.partial = bytearray()
        self.skipping = False  # inside a line already cut at STDERR_LINE_MAX
        self.exited = False
        self.released = threading.Event()

    # -- stderr --------------------------------------------------------------

    def read_stderr(self) -> bool:
        """Read what stderr holds now; False at end-of-file."""
        if self.stderr is None:
            return False
        while True:
            try:
                chunk = os.read(self.stderr.fileno(), READ_CHUNK)
            except BlockingIOError:
                return True
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                self._line(bytes(self.partial))
                self.partial.clear()
                return False
            self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self.skipping:
                room = STDERR_LINE_MAX - len(self.partial)
                self.partial += piece[:room]
                if len(piece) > room and end < 0:
                    self._line(bytes(self.partial))  # cut: the rest of this line is skipped
                    self.partial.clear()
                    self.skipping = True
            if end < 0:
                return
            if not self.skipping:
                self._line(bytes(self.partial))
            self.partial.clear()
            self.skipping = False
            start = end + 1

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            self.on_line(line)

    # -- exit ----------------------------------------------------------------------

    def exit_code(self) -> int | None:
        """The exit code if the process has ended, without reaping it.

        Left a zombie, its pid (and so its process group id) cannot be
        reused until the transport reaps it after stopping the group, so a
        later ``killpg`` never reaches a stranger.
        """
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped already (by Popen.wait)
            return self.proc.returncode if self.proc.returncode is not None else -1
        except (AttributeError, OSError):  # no waitid here
            return self.proc.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def close_fds(self) -> None:
        for close in (self.stderr.close if self.stderr else None, (lambda: os.close(self.pidfd)) if self.pidfd else None):
            try:
                if close:
                    close()
            except OSError:
                pass
        self.pidfd = None


class Watcher:
    """Exits and stderr of many processes, on one thread (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _changes and _thread
        self._changes: collections.deque = collections.deque()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        # Touched only by the watch thread:
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._polled: set[_Watched] = set()

    def watch(self, proc: subprocess.Popen, on_line: OnLine, on_exit: OnExit) -> _Watched:
        """Report *proc*'s stderr lines and (once) its exit code; call from any thread."""
        watched = _Watched(proc, on_line, on_exit)
        self._change(("watch", watched))
        return watched

    def unwatch(self, watched: _Watched) -> None:
        """Stop watching and close the fds; returns once the watch thread let go (bounded)."""
        self._change(("unwatch", watched))
        watched.released.wait(UNWATCH_WAIT)

    def _change(self, change: tuple) -> None:
        with self._lock:
            self._changes.append(change)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mcpzip-stdio-watch")
                self._thread.daemon = True
                self._thread.start()
        os.write(self._wake_w, b"x")

    # -- the watch thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                self._round()
            except Exception as e:  # a bug here must not stop every upstream's watch
                log.error("the stdio watch thread failed: %r", e)

    def _round(self) -> None:
        timeout = POLL_SECONDS if any(not w.exited for w in self._polled) else None
        for key, _events in self._selector.select(timeout):
            if self._selector.get_map().get(key.fd) is not key:
                continue  # unregistered by an earlier event of this round (its fd maybe reused since)
            if key.data is None:
                self._apply_changes()
            elif key.fd == key.data.pidfd:
                self._exited(key.data)
            elif not key.data.read_stderr():
                self._selector.unregister(key.fd)
        for watched in list(self._polled):
            if not watched.exited and watched.exit_code() is not None:
                self._exited(watched)

    def _apply_changes(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            with self._lock:
                if not self._changes:
                    return
                op, watched = self._changes.popleft()
            (self._add if op == "watch" else self._remove)(watched)

    def _add(self, watched: _Watched) -> None:
        read = selectors.EVENT_READ
        if watched.stderr is not None:
            os.set_blocking(watched.stderr.fileno(), False)
            self._selector.register(watched.stderr.fileno(), read, watched)
        try:
            watched.pidfd = os.pidfd_open(watched.proc.pid)
            self._selector.register(watched.pidfd, read, watched)
        except (AttributeError, OSError):  # not Linux >= 5.3: look every POLL_SECONDS
            watched.pidfd = None
            self._polled.add(watched)

    def _remove(self, watched: _Watched) -> None:
        for fd in (watched.stderr.fileno() if watched.stderr and not watched.stderr.closed else None, watched.pidfd):
            if fd is not None and fd in self._selector.get_map():
                self._selector.unregister(fd)
        self._polled.discard(watched)
        watched.close_fds()
        watched.released.set()

    def _exited(self, watched: _Watched) -> None:
        code = watched.exit_code()
        if code is None:
            return  # a spurious wake-up
        watched.exited = True
        self._polled.discard(watched)
        if watched.pidfd is not None:
            self._selector.unregister(watched.pidfd)
        # Its last words are in the pipe already; read them before reporting.
        if watched.stderr is not None and watched.stderr.fileno() in self._selector.get_map():
            if not watched.read_stderr():
                self._selector.unregister(watched.stderr.fileno())
        watched.on_exit(code)


class ThreadWatcher:
    """The same service with two threads per process, where pipes cannot be selected (Windows)."""

    def watch(self, proc: subprocess.Popen, on_line: OnLine, on_exit: OnExit) -> _Watched:
        watched = _Watched(proc, on_line, on_exit)
        for target in (self._drain, self._wait):
            t = threading.Thread(target=target, args=(watched,), name=f"mcpzip-stdio-{target.__name__[1:]}")
            t.daemon = True
            t.start()
        return watched

    def unwatch(self, watched: _Watched) -> None:
        watched.released.set()

    @staticmethod
    def _drain(watched: _Watched) -> None:
        for raw in iter(watched.stderr.readline, b""):
            watched._take(raw)

    @staticmethod
    def _wait(watched: _Watched) -> None:
        code = watched.proc.wait()
        watched.exited = True
        watched.on_exit(code)


_watcher: Watcher | ThreadWatcher | None = None
_watcher_lock = threading.Lock()


def watcher() -> Watcher | ThreadWatcher:
    """The process-wide watcher, made on first use."""
    global _watcher
    with _watcher_lock:
        if _watcher is None:
            _watcher = Watcher() if os.name == "posix" else ThreadWatcher()
        return _watcher


# -- the process table ---------------------------------------------------------------

# A look at /proc costs milliseconds; at exit every upstream closes at once,
# and one look this recent serves them all.
TABLE_MAX_AGE = 0.25
_table_lock = threading.Lock()  # guards _table and _table_time
_table: dict = {}
_table_time = -1.0


def recent_process_table() -> dict:
    """:func:`watchdog.process_table`, taken at most TABLE_MAX_AGE seconds ago."""
    global _table, _table_time
    with _table_lock:
        if time.monotonic() - _table_time > TABLE_MAX_AGE:
            _table = process_table()
            _table_time = time.monotonic()
        return _table


# How long stopping the last upstream waits for the watchdog to exit.
WATCHDOG_EXIT = 1.0

# -- the watchdog ---------------------------------------------------------------------


class Watchdog:
    """mcpzip's end of the watchdog process (see watchdog.py): registers each upstream.

    The watchdog runs only while some upstream does: when the last one is
    stopped its pipe is closed (it exits with nothing to do), and the next
    upstream starts a new one, so an idle mcpzip has no process besides itself.

    Threading contract: any thread; one lock guards the process, its pipe and
    the registered pids.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _proc, _pids, _failed and writes to the pipe
        self._proc: subprocess.Popen | None = None
        self._pids: set[int] = set()
        self._failed = False

    def register(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)
            self._send(b"+%d\n" % pid)

    def unregister(self, pid: int) -> None:
        with self._lock:
            if pid not in self._pids:
                return
            self._pids.discard(pid)
            if self._proc is None:
                return
            if self._pids:
                self._send(b"-%d\n" % pid)
                return
            # The last one: nothing left to watch.
            proc, self._proc = self._proc, None
        try:
            assert proc.stdin is not None
            proc.stdin.close()  # end-of-file with nothing registered: it exits at once
            proc.wait(WATCHDOG_EXIT)
        except (OSError, subprocess.TimeoutExpired) as e:
            log.debug("the watchdog did not stop: %s", e)

    def _send(self, line: bytes) -> None:
        """Write *line* to the watchdog, starting it first if needed (the lock held)."""
        if os.name != "posix" or self._failed:
            return  # no watchdog on Windows (docs/architecture.md)
        try:
            if self._proc is None:
                self._proc = _start_watchdog()
                line = b"".join(b"+%d\n" % pid for pid in self._pids)  # all that is registered
            assert self._proc.stdin is not None
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
        except (OSError, ValueError) as e:
            self._failed = True
            log.warning("the watchdog that stops upstreams if mcpzip is killed is not running: %s", e)


def _start_watchdog() -> subprocess.Popen:
    # The directory (or zipapp) mcpzip is imported from, for the new interpreter.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    code = f"import sys; sys.path.insert(0, {root!r}); from mcpzip.upstream.transports import watchdog; watchdog.main()"
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", code],
        stdin=subprocess.PIPE,
        # Never mcpzip's own stdout/stderr: a client waiting for their end
        # must not wait for the watchdog too.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


watchdog = Watchdog()
