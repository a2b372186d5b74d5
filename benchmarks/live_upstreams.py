#!/usr/bin/env python3
"""mcpzip's own cost per live stdio upstream: RSS, threads and fds with N servers connected.

    python3 benchmarks/live_upstreams.py                 # 37 fixture servers
    python3 benchmarks/live_upstreams.py --servers 10 --mcpzip /path/to/other/checkout/mcpzip.py
    python3 benchmarks/live_upstreams.py --catalog       # each also lists a real server's tools
    python3 benchmarks/live_upstreams.py --servers 8 --wide 600   # each lists 1.2 MB in one line

Starts one ``mcpzip serve`` with N copies of the stdlib fixture server
(tests/servers/fixture_server.py), calls a tool on each so that all N are
live, waits for the background listing to finish, and prints mcpzip's RSS,
threads and open fds, with nothing connected (after initialize) and with all
N live.  ``--mcpzip`` measures another checkout (e.g. an older commit
unpacked with ``git archive``) with the same fixtures, for a before/after.
Figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from run import Peer, measured_env, write_config  # beside this script

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "servers" / "fixture_server.py"
CATALOG = ROOT / "benchmarks" / "data" / "ALL.json"


def status(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def run(entry: str, servers: int, catalog: bool = False, wide: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as work:
        if wide:
            # Each fixture also lists *wide* tools of 2,000-character descriptions in one line.
            listing = Path(work) / "wide.json"
            listing.write_text(json.dumps({"wide": [{"name": f"t{i}", "description": "d" * 2000} for i in range(wide)]}))
            names = [f"s{i}" for i in range(servers)]
            entries = {n: {"command": sys.executable, "args": [str(FIXTURE), "--name", n, "--tools-from", f"{listing}:wide"]}
                       for n in names}  # fmt: skip
        elif catalog:
            # The 37 real catalogs: each fixture also lists one real server's tools.
            names = sorted(json.loads(CATALOG.read_text()))[:servers]
            entries = {n: {"command": sys.executable, "args": [str(FIXTURE), "--name", n, "--tools-from", f"{CATALOG}:{n}"]}
                       for n in names}  # fmt: skip
        else:
            names = [f"s{i}" for i in range(servers)]
            entries = {n: {"command": sys.executable, "args": [str(FIXTURE), "--name", n]} for n in names}
        config = write_config(Path(work) / "config", entries)
        env = measured_env()
        client = Peer([sys.executable, entry, "serve", "--config", str(config)], env)
        client.initialize()
        idle = status(client.proc.pid)
        for n in names:
            result = client.execute(f"{n}__pid")
            assert not result.get("isError"), result
        # Let the background listings finish and their threads end.
        deadline = time.monotonic() + 60
        live = status(client.proc.pid)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = status(client.proc.pid)
            if now["threads"] == live["threads"]:
                break
            live = now
        started = time.monotonic()
        client.close()
        return {"idle": idle, "live": live, "exit_seconds": time.monotonic() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=37)
    parser.add_argument("--mcpzip", default=str(ROOT / "mcpzip.py"), help="the mcpzip.py entry point to measure")
    parser.add_argument("--catalog", action="store_true",
                        help="each upstream also lists one of the 37 real catalogs of benchmarks/data/ALL.json")
    parser.add_argument("--wide", type=int, default=0, metavar="N",
                        help="each upstream also lists N tools of 2,000-character descriptions (600: a 1.2 MB line)")
    args = parser.parse_args()
    figures = run(args.mcpzip, args.servers, args.catalog, args.wide)
    idle, live = figures["idle"], figures["live"]
    what = f" listing {args.wide} wide tools each" if args.wide else " replaying the real catalogs" if args.catalog else ""
    print(f"mcpzip {args.mcpzip}, {args.servers} live stdio upstreams{what}")
    print(f"{'':24}{'RSS MB':>8}{'threads':>9}{'fds':>6}")
    for label, s in (("after initialize", idle), (f"{args.servers} upstreams live", live)):
        print(f"{label:24}{s['rss_mb']:8.1f}{s['threads']:9d}{s['fds']:6d}")
    per = (live["rss_mb"] - idle["rss_mb"]) / args.servers
    print(f"per live upstream: {per * 1024:.0f} KB RSS, {(live['threads'] - idle['threads']) / args.servers:.2f} threads, "
          f"{(live['fds'] - idle['fds']) / args.servers:.2f} fds; exit after stdin closed: {figures['exit_seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
