"""The watchdog: a small process that stops mcpzip's upstreams if mcpzip dies.

mcpzip stops its stdio upstreams itself on every orderly exit (stdin closed,
SIGTERM, SIGINT).  A SIGKILL, a crash of the interpreter or an out-of-memory
kill gives it no chance, and an upstream that ignores stdin EOF and SIGTERM
would then run on forever.  So the first stdio upstream mcpzip starts also
starts this watchdog, in a session of its own (a signal to mcpzip's process
group does not reach it), with a pipe from mcpzip as its stdin.  mcpzip
writes ``+PID`` when it starts an upstream (the leader of a new session and
process group) and ``-PID`` once it has stopped it.  When the pipe reaches
end-of-file, mcpzip is gone, however it ended: the watchdog stops everything
still registered, the way :func:`family` finds it, with SIGTERM and, after
:data:`TERM_GRACE`, SIGKILL, and exits.

What is covered (docs/architecture.md): every process in the session and the
process group of each upstream, and on Linux every descendant of those
processes still alive when the watchdog looks, including ones that called
``setsid``.  Not covered: a process that called ``setsid`` and whose parent
had already exited before the watchdog looked (a double-forked daemon that is
no longer anyone's descendant).

This module is run as a separate interpreter (``python -I -S``) and must
stay importable on its own: standard library only, nothing from mcpzip.
"""

from __future__ import annotations

import os
import sys
import time

try:
    # The C module behind ``signal``: the same functions and constants,
    # without the enum classes (megabytes in a process that only waits).
    import _signal as signal
except ImportError:
    import signal  # type: ignore[no-redef]

# After SIGTERM, how long the processes of a dead mcpzip get to exit before
# SIGKILL: enough for a server to flush a file, short enough that nothing
# outlives mcpzip by more than a few seconds.
TERM_GRACE = 1.0
POLL = 0.05


def family(leaders: set[int] | list[int], table: dict[int, tuple[int, int, int]] | None = None) -> set[int]:
    """Every live process in the sessions/groups led by *leaders*, and their descendants.

    Sessions and groups are read from ``/proc`` (or *table*, a
    :func:`process_table` taken earlier); where there is no ``/proc`` the
    result is just *leaders*, whose groups the caller signals as a whole.
    """
    table = process_table() if table is None else table
    if not table:
        return set(leaders)
    roots = set(leaders)
    found = {pid for pid, (_ppid, pgid, sid) in table.items() if pgid in roots or sid in roots} | (roots & set(table))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _pgid, _sid) in table.items():
        children.setdefault(ppid, []).append(pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(os.getpid())
    return found


def process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, process group, session) of every live process, from /proc ({} without)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    table = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone since the listing
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and fields[0] not in (b"Z", b"X"):
            table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def signal_all(leaders: set[int] | list[int], pids: set[int], sig: int) -> None:
    """Send *sig* to the process group of each leader, and to each process in *pids* outside those groups.

    Once each: a process signalled through its group and again by itself
    would see a SIGTERM handler run twice when the two do not coalesce.
    """
    groups = set(leaders)
    for leader in groups:
        try:
            os.killpg(leader, sig)
        except OSError:
            pass
    for pid in pids:
        try:
            if os.getpgid(pid) not in groups:
                os.kill(pid, sig)
        except OSError:
            pass


def stop(leaders: set[int]) -> None:
    """SIGTERM everything :func:`family` finds, then SIGKILL what is left after the grace."""
    if not leaders:
        return
    signal_all(leaders, family(leaders), signal.SIGTERM)
    deadline = time.monotonic() + TERM_GRACE
    while time.monotonic() < deadline and family(leaders):
        time.sleep(POLL)
    # Looked for again: a process may have started children since.
    signal_all(leaders, family(leaders), signal.SIGKILL)


def main() -> None:
    # The terminal's ^C and hang-up are meant for mcpzip, which stops its
    # upstreams itself and then closes the pipe; the watchdog waits for that.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    leaders: set[int] = set()
    for line in sys.stdin.buffer:
        op, pid = line[:1], line[1:].strip()
        if pid.isdigit():
            (leaders.add if op == b"+" else leaders.discard)(int(pid))
    stop(leaders)


if __name__ == "__main__":
    main()
