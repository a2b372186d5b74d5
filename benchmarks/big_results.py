#!/usr/bin/env python3
"""A 20 MB tool result through mcpzip, with the result budget on and off.

    python benchmarks/big_results.py [--runs N] [--megabytes N]

For each setting (``max_result_bytes`` 0 and the default 80,000) a fresh
mcpzip serves the stdlib fixture server; one ``execute_tool`` of its ``big``
tool (numbered text lines) is timed from request to answer, and mcpzip's
peak resident memory (VmHWM) is read after it.  With the budget on, the
model's answer is about 80 KB, the whole text is kept in a private temporary
file, and reading one more part and one grep are timed too.  Medians of
``--runs`` runs, interleaved.  Nothing is left behind.  Linux (reads /proc).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import FIXTURE, Peer, measured_env, serve, write_config  # noqa: E402


def peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc (Linux only)")


def fixture_config(directory: Path, budget: int) -> Path:
    server = {"command": sys.executable, "args": [FIXTURE, "--name", "fx"]}
    return write_config(directory, {"fx": server}, max_result_bytes=budget, call_timeout_seconds=300)


def execute(peer: Peer, name: str, arguments: dict) -> tuple[dict, float]:
    started = time.perf_counter()
    result = peer.execute(name, arguments)
    return result, time.perf_counter() - started


def one_run(config: Path, env: dict, work: Path, size: int) -> dict:
    peer = serve(sys.executable, config, env, work)
    try:
        peer.initialize()
        execute(peer, "fx__echo", {"text": "warm up"})  # the upstream is started before timing
        before = peak_mb(peer.proc.pid)
        result, seconds = execute(peer, "fx__big", {"bytes": size, "lines": True})
        figures = {"seconds": seconds, "peak_mb": peak_mb(peer.proc.pid), "before_mb": before,
                   "answer_bytes": peer.last_size}  # fmt: skip
        note = result["content"][-1]["text"]
        found = re.search(r'"id":"([^"]+)","offset":(\d+)', note)
        if found:  # budget on: one more part and one grep, as a model would
            key, offset = found.group(1), int(found.group(2))
            _, figures["read_seconds"] = execute(peer, "mcpzip__read_result", {"id": key, "offset": offset})
            _, figures["grep_seconds"] = execute(peer, "mcpzip__read_result", {"id": key, "grep": "^line 0123456 "})
        return figures
    finally:
        peer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=20)
    args = parser.parse_args()
    size = args.megabytes * 1024 * 1024
    env = measured_env()
    settings = {"budget off (0)": 0, "budget on (80,000)": 80_000}
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory(prefix="mcpzip-bench-") as tmp:
        work = Path(tmp)
        env["TMPDIR"] = tmp  # the kept result's file goes here, and with it
        configs = {name: fixture_config(work / f"c{budget}", budget) for name, budget in settings.items()}
        for _ in range(args.runs):
            for name, config in configs.items():
                runs[name].append(one_run(config, env, work, size))
    print(f"A {args.megabytes} MB text result through mcpzip (median of {args.runs} runs, Python {sys.version.split()[0]})")
    print(f"{'setting':<20} {'call s':>8} {'answer bytes':>13} {'peak RSS MB':>12} {'(before)':>9} {'read s':>7} {'grep s':>7}")
    for name, results in runs.items():
        def med(key: str) -> float:
            values = [r[key] for r in results if key in r]
            return statistics.median(values) if values else float("nan")

        print(f"{name:<20} {med('seconds'):>8.2f} {med('answer_bytes'):>13,.0f} {med('peak_mb'):>12.1f} "
              f"{med('before_mb'):>9.1f} {med('read_seconds'):>7.3f} {med('grep_seconds'):>7.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
