#!/usr/bin/env python3
"""What one client session costs in upstream processes, and what warm-up buys (issue 13).

    python benchmarks/upstream_starts.py [--root CHECKOUT] [--servers 9] [--runs 5] [--skip-warmup]

**Processes**: a session with N stdio fixture servers — ``initialize``,
``tools/list``, ``search_tools``, then two seconds of idleness — run once
with no cache (cold) and once more with the cache the first run left
(warm).  It reports the most upstream processes alive at once, how many were
started in all, and the RSS of mcpzip plus its children at the end.
``--root`` runs another checkout's ``mcpzip.py`` (e.g. an older commit, for
a before/after figure), with this checkout's fixture server.

**Warm-up**: a warm cache of N servers, one of which takes 500 ms to start.
``search_tools`` finds the slow server's tool, the client pauses one second
(a model turn), then calls it: the call's latency with ``warm_up`` on and
off, beside a call to an already running server.  Medians of ``--runs``.

Linux only (it reads /proc).  Nothing is left behind.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import procfs  # beside this script
from run import FIXTURE, Peer, measured_env, write_config  # beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE_EVERY = 0.02


class Session(Peer):
    """mcpzip serve as a child, noting which upstream processes it runs (sampled every 20 ms)."""

    def __init__(self, entry: str, config: Path) -> None:
        super().__init__([sys.executable, entry, "serve", "--config", str(config)], measured_env())
        self.seen: set[int] = set()
        self.most = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            now = upstreams(self.proc.pid)
            self.seen |= now
            self.most = max(self.most, len(now))

    def tree_rss_mb(self) -> float:
        return sum(procfs.rss_kib(p) for p in {self.proc.pid} | procfs.children(self.proc.pid)) / 1024

    def close(self) -> None:
        self._stop.set()
        self._sampler.join()
        super().close()


def upstreams(pid: int) -> set[int]:
    """*pid*'s children that run the fixture server (not mcpzip's own helpers)."""
    return procfs.children_running(pid, "fixture_server.py")


def fixture(name: str, *args: str) -> dict:
    return {"command": sys.executable, "args": [FIXTURE, "--name", name, *args]}


# -- processes per session -------------------------------------------------------------


def one_session(entry: str, config: Path) -> tuple[int, int, float]:
    """(most upstreams at once, upstreams started, tree RSS MB at the end) of one short session."""
    session = Session(entry, config)
    try:
        session.initialize()
        session.call("tools/list")
        session.call("tools/call", {"name": "search_tools", "arguments": {"query": "echo text"}})
        time.sleep(2.0)  # the client idles: what keeps running meanwhile is the figure
        rss = session.tree_rss_mb()
    finally:
        session.close()
    return session.most, len(session.seen), rss


def processes(entry: str, work: Path, count: int) -> list[str]:
    servers = {f"s{i}": fixture(f"s{i}") for i in range(count)}
    config = write_config(work / "procs", servers, warm_up=False)
    rows = []
    for label in ("cold cache", "warm cache"):
        most, started, rss = one_session(entry, config)
        rows.append(f"{count} servers, {label:<10}  upstreams at once {most:>2}, started {started:>2}, "
                    f"tree RSS {rss:6.1f} MB")  # fmt: skip
    return rows


# -- warm-up ----------------------------------------------------------------------------


def warm_call_ms(entry: str, config: Path, pause: float) -> tuple[float, float]:
    """(latency of the call after search + pause, latency of a second call) in ms."""
    session = Session(entry, config)
    try:
        session.initialize()
        session.call("tools/list")
        session.call("tools/call", {"name": "search_tools", "arguments": {"query": "add two numbers"}})
        time.sleep(pause)  # the model's turn
        args = {"name": "execute_tool", "arguments": {"name": "slow__add", "arguments": {"a": 1, "b": 2}}}
        started = time.perf_counter()
        session.call("tools/call", args)
        first = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        session.call("tools/call", args)
        second = (time.perf_counter() - started) * 1000
    finally:
        session.close()
    return first, second


def warm_up(entry: str, work: Path, runs: int) -> list[str]:
    servers = {"slow": fixture("slow", "--only", "add", "--start-delay", "0.5")}
    servers.update({f"s{i}": fixture(f"s{i}", "--only", "echo") for i in range(4)})
    rows = []
    warm_calls = []
    for switch in (True, False):
        config = write_config(work / f"warm-{switch}", servers, warm_up=switch)
        one_session(entry, config)  # fills the cache: the measured sessions start nothing by themselves
        firsts = []
        for _ in range(runs):
            first, second = warm_call_ms(entry, config, 1.0)
            firsts.append(first)
            warm_calls.append(second)
        rows.append(f"execute_tool after search + 1 s, warm_up {'on ' if switch else 'off'}: "
                    f"{statistics.median(firsts):7.1f} ms (median of {runs})")  # fmt: skip
    rows.append(f"execute_tool on a running server:            {statistics.median(warm_calls):7.1f} ms")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose mcpzip.py to run")
    parser.add_argument("--servers", type=int, default=9)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-warmup", action="store_true", help="only the process figures")
    args = parser.parse_args()
    entry = str(Path(args.root).resolve() / "mcpzip.py")
    with tempfile.TemporaryDirectory(prefix="mcpzip-starts-") as tmp:
        work = Path(tmp)
        rows = processes(entry, work, args.servers)
        if not args.skip_warmup:
            rows += warm_up(entry, work, args.runs)
    print(f"mcpzip: {entry}")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
