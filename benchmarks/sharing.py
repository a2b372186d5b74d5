#!/usr/bin/env python3
"""What one mcpzip for all clients saves: processes, memory, and what it costs per call.

    python benchmarks/sharing.py [--clients 5] [--servers 9] [--calls 500]

Five client sessions using nine (stdlib fixture) servers, three ways:

* direct: each client starts every server itself (what a client does without mcpzip);
* per-session mcpzip: each client starts ``mcpzip serve``, which starts every server;
* shared: each client starts ``mcpzip serve --shared``; one shared mcpzip runs the servers.

Every server is called once per client, so all are running, then the
processes and their resident memory are counted over every process tree.
Then the latency of one ``execute_tool`` call through ``serve --shared``
against ``serve`` (p50/p95 of interleaved calls).  Nothing is left behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import procfs  # beside this script
from run import ENTRY, FIXTURE, Peer, measured_env, write_config  # beside this script


def census(pids: list[int]) -> tuple[int, float]:
    return len(pids), sum(procfs.rss_kib(p) for p in pids) / 1024


def fixture_argv(work: Path, client: int, server: int) -> list[str]:
    # The work directory's name in every command line lets the census find each process.
    return [sys.executable, FIXTURE, "--name", f"s{server}-{work.name}"]


def direct(work: Path, clients: int, servers: int, env: dict) -> tuple[int, float]:
    peers = [Peer(fixture_argv(work, c, s), env) for c in range(clients) for s in range(servers)]
    for p in peers:
        p.initialize()
        p.call("tools/call", {"name": "echo", "arguments": {"text": "x"}})
    found = census(procfs.processes_with(work.name))
    for p in peers:
        p.close()
    return found


def through_mcpzip(work: Path, config: Path, clients: int, servers: int, env: dict, extra: list[str]) -> tuple[int, float]:
    peers = [Peer([sys.executable, ENTRY, "serve", "--config", str(config), *extra], env) for _ in range(clients)]
    for p in peers:
        p.initialize()
        for s in range(servers):
            p.execute(f"s{s}__echo", {"text": "x"})  # an error answer raises
    found = census(procfs.processes_with(work.name))
    for p in peers:
        p.close()
    return found


def latency(config: Path, env: dict, calls: int) -> tuple[list[float], list[float]]:
    plain = Peer([sys.executable, ENTRY, "serve", "--config", str(config)], env)
    shared = Peer([sys.executable, ENTRY, "serve", "--shared", "--config", str(config)], env)
    times: tuple[list[float], list[float]] = ([], [])
    try:
        for p in (plain, shared):
            p.initialize()
            for _ in range(20):  # warm: servers started, code paths hot
                p.execute("s0__echo", {"text": "warm"})
        for _ in range(calls):
            for p, out in ((plain, times[0]), (shared, times[1])):
                t = time.perf_counter()
                p.execute("s0__echo", {"text": "x"})
                out.append((time.perf_counter() - t) * 1000)
    finally:
        plain.close()
        shared.close()
    return times


def stop_shared(work: Path) -> None:
    for pid in procfs.processes_with(work.name):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 10
    while procfs.processes_with(work.name) and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for other processes to exit, bounded
    for pid in procfs.processes_with(work.name):
        os.kill(pid, signal.SIGKILL)


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--servers", type=int, default=9)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    env = measured_env()
    with tempfile.TemporaryDirectory(prefix="mcpzip-sharing-") as tmp:
        work = Path(tmp)
        servers = {f"s{s}": {"command": sys.executable, "args": fixture_argv(work, 0, s)[1:]} for s in range(args.servers)}
        config = write_config(work / "config", servers)
        try:
            rows = [
                ("direct (each client starts its servers)", direct(work, args.clients, args.servers, env)),
                ("per-session mcpzip (serve)", through_mcpzip(work, config, args.clients, args.servers, env, [])),
                ("shared mcpzip (serve --shared)",
                 through_mcpzip(work, config, args.clients, args.servers, env, ["--shared"])),
            ]
            plain, shared = latency(config, env, args.calls)
        finally:
            stop_shared(work)
    print(f"{args.clients} client sessions x {args.servers} servers, every server called once per client:\n")
    print(f"{'setup':<42} {'processes':>9} {'tree RSS':>10}")
    for name, (count, rss) in rows:
        print(f"{name:<42} {count:>9} {rss:>7.0f} MB")
    p50 = statistics.median(shared) - statistics.median(plain)
    print(f"\nexecute_tool latency, {args.calls} interleaved calls each: serve p50 {statistics.median(plain):.3f} ms, "
          f"p95 {p(plain, 0.95):.3f} ms; serve --shared p50 {statistics.median(shared):.3f} ms, p95 {p(shared, 0.95):.3f} ms")
    print(f"added by --shared: {p50:+.3f} ms p50 (goal <= 0.5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
