"""What the benchmarks (and the tests) read of running processes from ``/proc`` (Linux): resident memory and who runs what."""

from __future__ import annotations

import os


def rss_kib(pid: int) -> int:
    """*pid*'s resident memory in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> bytes:
    """*pid*'s command line, arguments NUL-separated; empty once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def processes_with(marker: str) -> list[int]:
    """Every process whose command line mentions *marker* (none where there is no ``/proc``)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    return [int(e) for e in entries if e.isdigit() and marker.encode() in cmdline(int(e))]


def children(pid: int | str) -> set[int]:
    """*pid*'s live children (of every thread)."""
    pids: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def children_running(pid: int | str, marker: str) -> set[int]:
    """*pid*'s live children whose command line mentions *marker* (``"self"`` for this process)."""
    return {child for child in children(pid) if marker.encode() in cmdline(child)}
