#!/usr/bin/env python3
"""Soak: many pipelined execute_tool calls through mcpzip while its upstream keeps crashing.

    python benchmarks/soak.py [--calls N] [--crash-every K] [--idle-seconds S]

One mcpzip serves the stdlib fixture server.  All N requests are written at
once without waiting (``fixture__echo``; every K-th is ``fixture__crash``,
which kills the server in the middle of the call, and the calls in flight
with it).  Answers are read as they come.  The report says how many calls
were answered, how many were ``isError``, how many were never answered and
how many ids were answered twice, and mcpzip's RSS, threads and open file
descriptors before the calls and after the last answer (and once more after
S idle seconds, when finished threads have gone).  A figure report, not a
timed test.  Linux (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import FIXTURE, measured_env, serve, write_config  # noqa: E402

# No answer for this long while some are owed: the rest are counted as never answered.
STALL_SECONDS = 120.0


def process_figures(pid: int) -> dict:
    """RSS (MB), threads and open fds of *pid*."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def soak(calls: int, crash_every: int, idle_seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="mcpzip-soak-") as tmp:
        work = Path(tmp)
        config = write_config(work / "cfg", {"fixture": {"command": sys.executable, "args": [FIXTURE]}})
        peer = serve(sys.executable, config, measured_env(), work)
        try:
            peer.initialize()
            assert peer.call("tools/call", {"name": "execute_tool", "arguments": {
                "name": "fixture__echo", "arguments": {"text": "warm"}}})["content"][0]["text"] == "warm"  # fmt: skip
            before = process_figures(peer.proc.pid)
            counts = {"answered": 0, "is_error": 0, "duplicates": 0, "protocol_errors": 0}
            seen: set[int] = set()
            done = threading.Event()
            last_answer = [time.monotonic()]

            def read() -> None:
                for line in peer.proc.stdout:
                    message = json.loads(line)
                    rid = message.get("id")
                    if "method" in message or not isinstance(rid, int) or rid < 1000:
                        continue
                    last_answer[0] = time.monotonic()
                    if rid in seen:
                        counts["duplicates"] += 1
                        continue
                    seen.add(rid)
                    counts["answered"] += 1
                    if "error" in message:
                        counts["protocol_errors"] += 1
                    elif message["result"].get("isError"):
                        counts["is_error"] += 1
                    if counts["answered"] == calls:
                        done.set()
                done.set()

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            started = time.monotonic()
            batch = []
            for i in range(calls):
                tool = "fixture__crash" if crash_every and (i + 1) % crash_every == 0 else "fixture__echo"
                request = {"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call", "params": {
                    "name": "execute_tool", "arguments": {"name": tool, "arguments": {"text": f"call {i}"}}}}  # fmt: skip
                batch.append(json.dumps(request, separators=(",", ":")).encode() + b"\n")
                if len(batch) == 500:
                    peer.proc.stdin.write(b"".join(batch))
                    batch = []
            peer.proc.stdin.write(b"".join(batch))
            peer.proc.stdin.flush()
            written = time.monotonic() - started
            while not done.wait(1.0):
                if time.monotonic() - last_answer[0] > STALL_SECONDS:
                    break
            elapsed = time.monotonic() - started
            after = process_figures(peer.proc.pid)
            time.sleep(idle_seconds)  # a figure after idling, not a synchronisation
            idle = process_figures(peer.proc.pid)
            return {"calls": calls, "crash_every": crash_every, **counts,
                    "never_answered": calls - counts["answered"], "written_s": written, "elapsed_s": elapsed,
                    "before": before, "after": after, "idle": idle}  # fmt: skip
        finally:
            peer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--crash-every", type=int, default=1000, help="every K-th call crashes the upstream (0: never)")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    r = soak(args.calls, args.crash_every, args.idle_seconds)
    print(f"calls {r['calls']:,} (upstream crashes every {r['crash_every']:,}), written in {r['written_s']:.1f} s, "
          f"last answer after {r['elapsed_s']:.1f} s ({r['calls'] / r['elapsed_s']:,.0f} calls/s)")  # fmt: skip
    print(f"answered {r['answered']:,}  isError {r['is_error']:,}  protocol errors {r['protocol_errors']:,}  "
          f"never answered {r['never_answered']:,}  duplicate ids {r['duplicates']:,}")  # fmt: skip
    for label in ("before", "after", "idle"):
        f = r[label]
        print(f"{label:>6}: RSS {f['rss_mb']:.1f} MB  threads {f['threads']}  fds {f['fds']}")
    return 0 if r["never_answered"] == 0 and r["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
