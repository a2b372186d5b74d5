#!/usr/bin/env python3
"""mcpzip's performance figures (SPEC §10), measured side by side in one run.

    python benchmarks/run.py [--runs N] [--calls N] [--python PATH]

Prints one table: each figure, its goal and whether it is met.  Every
process is started with the same interpreter — by default a bare virtual
environment made for the run from the interpreter running this script, so
no installed package's ``.pth`` file is loaded — with ``PYTHON*`` variables
removed (``PYTHONDONTWRITEBYTECODE`` would make every start compile mcpzip
anew).  Nothing is left behind: the work directory is a temporary one.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENTRY = str(ROOT / "mcpzip.py")
FIXTURE = str(ROOT / "tests" / "servers" / "fixture_server.py")
CATALOG = HERE / "data" / "ALL.json"

sys.path.insert(0, str(ROOT))

GOAL_STARTUP_RATIO = 2.0
GOAL_ADDED_MS = 0.3
GOAL_CONCURRENCY_RATIO = 1.10
GOAL_RSS_MB = 25.0
GOAL_LIST_BYTES = 1500
SLOW_CALLS, SLOW_MS = 16, 200


# -- a minimal MCP client over a child's pipes --------------------------------


class Peer:
    """A JSON-lines peer; answers are read on the calling thread, in order.

    The one client of every benchmark here.  Its stderr goes to *stderr_path*, or nowhere.
    """

    def __init__(self, argv: list[str], env: dict, stderr_path: Path | None = None) -> None:
        self.started = time.perf_counter()
        self._stderr = None if stderr_path is None else open(stderr_path, "ab")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL if self._stderr is None else self._stderr, env=env)  # fmt: skip
        self._id = 0
        self.last_size = 0

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.proc.stdin.flush()

    def start(self, method: str, params: dict | None = None) -> int:
        self._id += 1
        self.send({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}})
        return self._id

    def answer(self) -> dict:
        """The next response (notifications and stray lines are skipped)."""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.proc.args[1]} exited; its stderr:\n{self.stderr_tail()}")
            message = json.loads(line)
            if "id" in message and "method" not in message:
                self.last_size = len(line.rstrip(b"\n"))
                if "error" in message:
                    raise RuntimeError(f"error answer: {message['error']}")
                return message

    def call(self, method: str, params: dict | None = None) -> dict:
        rid = self.start(method, params)
        message = self.answer()
        assert message["id"] == rid, (message, rid)
        return message["result"]

    def execute(self, name: str, arguments: dict | None = None) -> dict:
        """``execute_tool`` of *name*: its result."""
        return self.call("tools/call", {"name": "execute_tool", "arguments": {"name": name, "arguments": arguments or {}}})

    def initialize(self) -> dict:
        result = self.call("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"},
        })  # fmt: skip
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def stderr_tail(self) -> str:
        if self._stderr is None or self.stderr_path is None:
            return "(not kept)"
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()


# -- set-up -----------------------------------------------------------------------


def bare_python(work: Path) -> str:
    """An interpreter with nothing installed, made from the one running this."""
    import venv

    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(work / "venv")
    return str(work / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def measured_env() -> dict:
    """The environment of a measured mcpzip: none of the user's mcpzip or Gemini settings, and no
    ``PYTHON*`` variable (``PYTHONDONTWRITEBYTECODE`` would compile every changed module at every start)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MCPZIP_", "GEMINI_"))}


def write_config(directory: Path, servers: dict, **extra: object) -> Path:
    """A private config of *servers* (and top-level *extra* settings) in a new *directory*."""
    directory.mkdir(parents=True)
    path = directory / "config.json"
    path.write_text(json.dumps({"mcpServers": servers, **extra}))
    path.chmod(0o600)
    return path


def large_catalog_config(directory: Path) -> tuple[Path, dict]:
    """A config naming the 37 servers of ALL.json, with their tools as the cache.

    The servers' commands do not exist, so the background refresh fails at
    once and the cache is what mcpzip serves — as when every upstream is
    offline.  The cache is written through mcpzip's own Catalog.
    """
    from mcpzip.base import config as config_module
    from mcpzip.knowledge.catalog import Catalog
    from mcpzip.knowledge.servercache import ServerCache

    listings = json.loads(CATALOG.read_text())
    config = write_config(directory, {name: {"command": f"mcpzip-bench-offline-{name}"} for name in listings})
    loaded = config_module.load(str(config))
    # As a run of mcpzip that listed them leaves it: the tools in
    # cache/tools.json, their counts in cache/servers.json.
    known = ServerCache(loaded.servers_cache_path, loaded.servers)
    catalog = Catalog(listings, loaded.cache_path, on_update=known.record_tools)
    for name, tools in listings.items():
        catalog.update(name, tools, save=False)
    catalog.save()
    return config, listings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the figures ------------------------------------------------------------------


def serve(python: str, config: Path, env: dict, work: Path) -> Peer:
    return Peer([python, ENTRY, "serve", "--config", str(config)], env, work / "mcpzip.stderr")


def startup(python: str, configs: dict[str, Path], env: dict, work: Path, runs: int) -> dict:
    """Seconds from spawn to exit of ``-c pass``, and to the tools/list answer per config (medians, bests)."""
    times: dict[str, list[float]] = {"pass": [], **{name: [] for name in configs}}
    sizes = {}
    for run in range(runs + 1):  # run 0 warms the disk cache and writes .pyc files
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], env=env, check=True)
        elapsed = time.perf_counter() - t0
        if run:
            times["pass"].append(elapsed)
        for name, config in configs.items():
            peer = serve(python, config, env, work)
            peer.initialize()
            peer.call("tools/list")
            elapsed = time.perf_counter() - peer.started
            sizes[name] = peer.last_size
            peer.close()
            if run:
                times[name].append(elapsed)
    return {
        "median": {k: statistics.median(v) for k, v in times.items()},
        "best": {k: min(v) for k, v in times.items()},
        "sizes": sizes,
    }


def added_latency(python: str, config: Path, env: dict, work: Path, calls: int) -> dict:
    """``echo`` called directly on the fixture vs through ``execute_tool``, interleaved."""
    direct = Peer([python, FIXTURE], env, work / "fixture.stderr")
    via = serve(python, config, env, work)
    try:
        direct.initialize()
        via.initialize()
        call_direct = {"name": "echo", "arguments": {"text": "hello"}}
        call_via = {"name": "execute_tool", "arguments": {"name": "fx__echo", "arguments": {"text": "hello"}}}
        d, v = [], []
        for i in range(calls + calls // 10):  # the first tenth warms up
            t0 = time.perf_counter()
            a = direct.call("tools/call", call_direct)
            t1 = time.perf_counter()
            b = via.call("tools/call", call_via)
            t2 = time.perf_counter()
            if a != b:
                raise RuntimeError(f"results differ: {a} vs {b}")
            if i >= calls // 10:
                d.append(t1 - t0)
                v.append(t2 - t1)
    finally:
        direct.close()
        via.close()
    return {
        "direct": (percentile(d, 0.5), percentile(d, 0.95)),
        "via": (percentile(v, 0.5), percentile(v, 0.95)),
    }


def concurrency(python: str, config: Path, env: dict, work: Path, rounds: int = 9) -> dict:
    """Seconds for one slow call and for 16 at once, through mcpzip and directly (medians, interleaved)."""
    peers = {
        "via": (serve(python, config, env, work),
                {"name": "execute_tool", "arguments": {"name": "fx__sleep", "arguments": {"ms": SLOW_MS}}}),
        "direct": (Peer([python, FIXTURE], env, work / "fixture.stderr"), {"name": "sleep", "arguments": {"ms": SLOW_MS}}),
    }  # fmt: skip
    times: dict[str, list[float]] = {f"{k}_{n}": [] for k in peers for n in ("one", "many")}
    try:
        for peer, args in peers.values():
            peer.initialize()
            peer.call("tools/call", args)  # starts the upstream
        for _ in range(rounds):
            for key, (peer, args) in peers.items():
                t0 = time.perf_counter()
                peer.call("tools/call", args)
                times[f"{key}_one"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                ids = {peer.start("tools/call", args) for _ in range(SLOW_CALLS)}
                while ids:
                    ids.discard(peer.answer()["id"])
                times[f"{key}_many"].append(time.perf_counter() - t0)
    finally:
        for peer, _ in peers.values():
            peer.close()
    return {k: statistics.median(v) for k, v in times.items()}


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


def memory(python: str, config: Path, env: dict, work: Path) -> dict:
    """RSS of an idle mcpzip serving the large cached catalog, and of a bare interpreter."""
    bare = subprocess.Popen([python, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE, env=env)
    peer = serve(python, config, env, work)
    try:
        peer.initialize()
        peer.call("tools/list")
        time.sleep(1.0)  # let the (failing) background refresh of 37 servers finish
        idle = rss_mb(peer.proc.pid)
        peer.call("tools/call", {"name": "search_tools", "arguments": {"query": "create an issue"}})
        searched = rss_mb(peer.proc.pid)
        base = rss_mb(bare.pid)
    finally:
        peer.close()
        bare.communicate(b"\n")
    return {"idle": idle, "searched": searched, "bare": base}


def upstream_list_bytes(listings: dict) -> int:
    """What the 37 servers' own tools/list answers weigh together."""
    total = 0
    for i, tools in enumerate(listings.values()):
        message = {"jsonrpc": "2.0", "id": i, "result": {"tools": tools}}
        total += len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())
    return total


# -- the report -------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="start-ups per measurement (default 21)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per latency measurement (default 2000)")
    parser.add_argument("--python", help="interpreter to measure with (default: a bare venv made for the run)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mcpzip-bench-"))
    try:
        python = args.python or bare_python(work)
        env = measured_env()
        small = write_config(work / "small", {"fx": {"command": python, "args": [FIXTURE, "--name", "fx"]}})
        large, listings = large_catalog_config(work / "large")
        print(f"interpreter: {python} ({sys.version.split()[0]}); {os.cpu_count()} CPUs", file=sys.stderr)

        print("measuring start-up ...", file=sys.stderr)
        start = startup(python, {"small": small, "large": large}, env, work, args.runs)
        print("measuring added latency ...", file=sys.stderr)
        lat = added_latency(python, small, env, work, args.calls)
        print("measuring concurrency ...", file=sys.stderr)
        conc = concurrency(python, small, env, work)
        print("measuring memory ...", file=sys.stderr)
        mem = memory(python, large, env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ms = 1000
    base = start["median"]["pass"]
    rows = []
    for name, label in (("small", "1 server"), ("large", "495 tools cached")):
        ratio = start["median"][name] / base
        best = start["best"][name] / start["best"]["pass"]
        rows.append((
            f"start-up → tools/list ({label})",
            f"{start['median'][name] * ms:.1f} ms = {ratio:.2f}× `-c pass` ({base * ms:.1f} ms); best runs {best:.2f}×",
            f"≤ {GOAL_STARTUP_RATIO:g}×", verdict(ratio <= GOAL_STARTUP_RATIO),
        ))  # fmt: skip
    added50 = (lat["via"][0] - lat["direct"][0]) * ms
    rows.append((
        "execute_tool added latency, p50",
        f"{added50:.3f} ms ({lat['via'][0] * ms:.3f} via vs {lat['direct'][0] * ms:.3f} direct)",
        f"≤ {GOAL_ADDED_MS:g} ms", verdict(added50 <= GOAL_ADDED_MS),
    ))  # fmt: skip
    rows.append((  # tails are mostly scheduling noise, so no difference is taken
        "execute_tool latency, p95",
        f"{lat['via'][1] * ms:.3f} ms via vs {lat['direct'][1] * ms:.3f} ms direct", "", "",
    ))  # fmt: skip
    ratio = conc["via_many"] / conc["via_one"]
    rows.append((
        f"{SLOW_CALLS}×{SLOW_MS} ms concurrent vs one",
        f"{ratio:.3f}× ({conc['via_many'] * ms:.0f} vs {conc['via_one'] * ms:.0f} ms); "
        f"upstream alone {conc['direct_many'] / conc['direct_one']:.3f}×",
        f"≤ {GOAL_CONCURRENCY_RATIO:.2f}×", verdict(ratio <= GOAL_CONCURRENCY_RATIO),
    ))  # fmt: skip
    rows.append((
        "idle RSS, 495 tools cached",
        f"{mem['idle']:.1f} MB (bare interpreter {mem['bare']:.1f} MB)",
        f"≤ {GOAL_RSS_MB:g} MB", verdict(mem["idle"] <= GOAL_RSS_MB),
    ))  # fmt: skip
    rows.append(("RSS after one search_tools", f"{mem['searched']:.1f} MB (search index built)", "", ""))
    size = start["sizes"]["large"]
    upstream = upstream_list_bytes(listings)
    rows.append((
        "tools/list answer",
        f"{size:,} B vs {upstream:,} B for the {len(listings)} servers' own lists ({size / upstream:.2%})",
        f"≤ {GOAL_LIST_BYTES:,} B", verdict(size <= GOAL_LIST_BYTES),
    ))  # fmt: skip

    widths = [max(len(r[i]) for r in rows + [("figure", "measured", "goal", "")]) for i in range(3)]
    print(f"{'figure':<{widths[0]}}  {'measured':<{widths[1]}}  {'goal':<{widths[2]}}  result")
    print("  ".join("-" * w for w in widths) + "  ------")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    print(f"(start-up: medians of {args.runs} runs; latency: {args.calls} calls each way, interleaved)")
    return 0 if all(r[3] != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
