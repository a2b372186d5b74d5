#!/usr/bin/env python3
"""Search quality and speed, in-process, from a clean checkout.

    python benchmarks/search_bench.py              # dev set + scale (500 / 5,000 / 50,000 tools)
    python benchmarks/search_bench.py --no-scale   # quality only
    python benchmarks/search_bench.py --misses     # also list the queries mcpzip misses
    python benchmarks/search_bench.py --sealed     # also the untouched set (never list its misses)

Quality: Recall@1, Recall@5 and MRR@10 on labelled queries (a query counts as
answered when any of its expected tools is found), for mcpzip's ranker and two
baselines: plain token overlap and plain BM25 over the same text.  Latency is
per query, cache bypassed.  Scale: the real catalog replicated under new
server names; reports search latency, index build time and the index's
memory.  Finally the import time of ``mcpzip.knowledge.search``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "benchmarks", "data")
sys.path.insert(0, ROOT)

from mcpzip.knowledge.catalog import Tool  # noqa: E402
from mcpzip.knowledge.search import Index  # noqa: E402


def load_catalog(path: str) -> list[Tool]:
    """``{server: [tool definitions]}`` as a list of tools."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return [Tool(server, d["name"], d) for server, defs in data.items() for d in defs]


def load_queries(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def replicate(tools: list[Tool], n: int) -> list[Tool]:
    """*n* tools: the catalog, then copies of it under servers ``name-2``, ``name-3``…"""
    out = list(tools[:n])
    copy = 2
    while len(out) < n:
        out.extend(Tool(f"{t.server}-{copy}", t.name, t.definition) for t in tools[: n - len(out)])
        copy += 1
    return out


# -- baselines ---------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


def _plain_text(tool: Tool) -> str:
    d = tool.definition
    props = (d.get("inputSchema") or {}).get("properties") or {}
    return " ".join([tool.name.replace("_", " "), tool.server, d.get("description") or "", " ".join(props)])


class Overlap:
    """Score = how many distinct query words the tool's text contains."""

    def __init__(self, tools: list[Tool]) -> None:
        self.tools = tools
        self.words = [set(_WORD.findall(_plain_text(t).lower())) for t in tools]

    def search(self, query: str, limit: int) -> tuple[list[Tool], int]:
        q = set(_WORD.findall(query.lower()))
        scored = [(-len(q & w), t.prefixed, i) for i, (t, w) in enumerate(zip(self.tools, self.words)) if q & w]
        scored.sort()
        return [self.tools[i] for _, _, i in scored[:limit]], len(scored)


class PlainBM25:
    """Textbook BM25 (k1 1.2, b 0.75) over one bag of words per tool."""

    def __init__(self, tools: list[Tool]) -> None:
        self.tools = tools
        docs = [_WORD.findall(_plain_text(t).lower()) for t in tools]
        self.avg = sum(map(len, docs)) / max(1, len(docs))
        self.tf = []
        df: dict[str, int] = {}
        for words in docs:
            counts: dict[str, int] = {}
            for w in words:
                counts[w] = counts.get(w, 0) + 1
            self.tf.append((counts, len(words)))
            for w in counts:
                df[w] = df.get(w, 0) + 1
        n = len(docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}

    def search(self, query: str, limit: int) -> tuple[list[Tool], int]:
        q = set(_WORD.findall(query.lower()))
        scored = []
        for i, (counts, length) in enumerate(self.tf):
            s = 0.0
            for w in q:
                tf = counts.get(w)
                if tf:
                    s += self.idf[w] * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / self.avg))
            if s:
                scored.append((-s, self.tools[i].prefixed, i))
        scored.sort()
        return [self.tools[i] for _, _, i in scored[:limit]], len(scored)


# -- measuring ---------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def evaluate(ranker, queries: list[dict]) -> dict:
    hits1 = hits5 = 0
    rr = 0.0
    times = []
    misses = []
    for q in queries:
        expected = set(q["expected"])
        start = time.perf_counter()
        found, _ = ranker.search(q["query"], 10)
        times.append((time.perf_counter() - start) * 1000)
        names = [t.prefixed for t in found]
        rank = next((i + 1 for i, n in enumerate(names) if n in expected), None)
        hits1 += rank == 1
        hits5 += rank is not None and rank <= 5
        rr += 1 / rank if rank else 0.0
        if rank != 1:
            misses.append((q, rank, names[:5]))
    n = len(queries)
    return {
        "r1": hits1 / n,
        "r5": hits5 / n,
        "mrr": rr / n,
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "misses": misses,
    }


def quality(tools: list[Tool], queries: list[dict], title: str, show_misses: bool) -> None:
    rankers = [("token overlap", Overlap(tools)), ("plain BM25", PlainBM25(tools)), ("mcpzip", Index(tools))]
    print(f"\n{title}: {len(queries)} queries, {len(tools)} tools")
    print(f"  {'ranker':<14} {'R@1':>6} {'R@5':>6} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}")
    results = {}
    for name, ranker in rankers:
        ranker.search("warm up", 5)
        r = results[name] = evaluate(ranker, queries)
        print(f"  {name:<14} {r['r1']:6.3f} {r['r5']:6.3f} {r['mrr']:7.3f} {r['p50']:7.3f} {r['p95']:7.3f}")
    if show_misses:
        for q, rank, top in results["mcpzip"]["misses"]:
            where = f"rank {rank}" if rank else "not in top 10"
            print(f"    {where:>13}: {q['query']!r} wants {q['expected']}; got {top[:3]}")


WARM_UP = "warm up: serach"  # a misspelling, so the lazily built spelling index is part of the build


def timed_queries(index: Index, queries: list[dict], repeat: int) -> list[float]:
    """Per query, the median of *repeat* runs in milliseconds (a busy machine adds noise)."""
    out = []
    for q in queries:
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            index.search(q["query"], 5)
            runs.append((time.perf_counter() - t0) * 1000)
        out.append(statistics.median(runs))
    return out


def scale(tools: list[Tool], queries: list[dict], sizes: list[int]) -> None:
    print(f"\nScale: search latency per query ({len(queries)} dev queries, median of 3 runs each, cache bypassed)")
    print(f"  {'tools':>7} {'build s':>8} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for n in sizes:
        catalog = replicate(tools, n)
        start = time.perf_counter()
        index = Index(catalog, fold=False)  # the copies are identical: folded, they would be one catalog again
        index.search(WARM_UP, 5)
        build = time.perf_counter() - start
        times = timed_queries(index, queries, 3)
        print(f"  {n:>7} {build:8.2f} {percentile(times, 50):7.3f} {percentile(times, 95):7.3f} {max(times):7.3f}")
        del index
    n = sizes[-1]
    catalog = replicate(tools, n)
    import tracemalloc

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = Index(catalog, fold=False)
    index.search(WARM_UP, 5)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  index memory at {n} tools: {(after - before) / 2**20:.1f} MiB kept, {(peak - before) / 2**20:.1f} MiB peak "
        "while building (tracemalloc; the catalog itself excluded)"
    )
    # Ranking must not depend on size: copies of a tool tie, so the best
    # tool at this size should be a copy of the best tool in the real catalog.
    real = Index(tools)
    originals = {t.server for t in tools}
    same = 0
    for q in queries:
        best = real.search(q["query"], 1)[0][:1]
        found = index.search(q["query"], 1)[0][:1]
        if best and found:
            server = found[0].server if found[0].server in originals else found[0].server.rsplit("-", 1)[0]
            same += (server, found[0].name) == (best[0].server, best[0].name)
    print(f"  same best tool at {n} tools as at {len(tools)}: {same} of {len(queries)} queries")


def import_time(runs: int = 9) -> None:
    """Import time of mcpzip.knowledge.search in fresh interpreters, with and without cached bytecode."""
    import tempfile

    code = "import time; t = time.perf_counter(); import mcpzip.knowledge.search; print(time.perf_counter() - t)"
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache  # keeps the bytecode out of the checkout

        def once(environ: dict) -> float:
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, check=True)
            return float(out.stdout) * 1000

        once(env)  # writes the bytecode
        warm = statistics.median(once(env) for _ in range(runs))
        cold = statistics.median(once({**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": os.path.join(cache, "none")}) for _ in range(3))
    modules = subprocess.run(
        [sys.executable, "-c", "import sys; b = set(sys.modules); import mcpzip.knowledge.search; print(', '.join(sorted(set(sys.modules) - b)))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(f"\nImport of mcpzip.knowledge.search: {warm:.2f} ms with its bytecode cached (median of {runs} fresh interpreters), "
          f"{cold:.2f} ms compiling from source")
    print(f"  modules it loads beyond the interpreter's own: {modules}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", default=os.path.join(DATA, "ALL.json"))
    parser.add_argument("--queries", default=os.path.join(DATA, "search-dev.jsonl"))
    parser.add_argument(
        "--extra",
        default=",".join(os.path.join(DATA, f) for f in ("search-extra.jsonl", "search-fresh.jsonl", "search-styles-tune.jsonl")),
        help="more query sets, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--sealed", action="store_true",
        help="also the untouched set (search-styles-sealed.jsonl), kept out of tuning: measure it, never tune on its misses",
    )
    parser.add_argument("--split", choices=["all", "even", "odd"], default="all", help="use part of the dev set")
    parser.add_argument("--misses", action="store_true", help="list the queries mcpzip does not rank first")
    parser.add_argument("--no-scale", action="store_true", help="skip the 500 / 5,000 / 50,000 tool runs")
    parser.add_argument("--sizes", default="500,5000,50000")
    args = parser.parse_args()

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start "
          "(timings are wall-clock: other work on the machine slows them)")
    tools = load_catalog(args.catalog)
    queries = load_queries(args.queries)
    if args.split != "all":
        queries = queries[args.split == "odd" :: 2]
    quality(tools, queries, f"Dev set ({os.path.basename(args.queries)}, {args.split})", args.misses)
    for path in filter(None, args.extra.split(",")):
        quality(tools, load_queries(path), f"Paraphrases ({os.path.basename(path)})", args.misses)
    if args.sealed:
        quality(tools, load_queries(os.path.join(DATA, "search-styles-sealed.jsonl")), "Untouched (search-styles-sealed.jsonl)", False)
    if not args.no_scale:
        scale(tools, load_queries(args.queries), [int(s) for s in args.sizes.split(",")])
        import_time()
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
