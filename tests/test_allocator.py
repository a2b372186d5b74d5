"""The C allocator, tuned before the upstreams' reader threads exist (Linux with glibc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import clean_env, fixture_server, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
    reason="tunes glibc's malloc only",
)

# Sixteen threads that stay alive, as stdio readers do, each having read and
# let go of a few large lines; prints whether tune() took and how many KiB of
# resident memory the process kept.
PROBE = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from mcpzip.base import allocator

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

tuned = allocator.tune()
before = rss()
kept, alive = [], threading.Barrier(16)

def reader():
    for size in (1 << 20, 1 << 20, 600_000):
        line = b"x" * size
        del line
    kept.append(b"y" * 1000)
    alive.wait()

threads = [threading.Thread(target=reader) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(tuned, rss() - before)
"""


def probe(**env: str) -> tuple[bool, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run([sys.executable, "-c", PROBE, ROOT], env={**environ, **env}, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()  # fmt: skip
    return out[0] == "True", int(out[1])


def test_reader_threads_give_large_lines_back():
    tuned, kept_kib = probe()
    assert tuned
    # glibc's defaults keep about a megabyte per thread here (16 MB measured).
    assert kept_kib < 4 * 1024, kept_kib


def test_the_users_own_malloc_settings_win():
    tuned, kept_kib = probe(GLIBC_TUNABLES="glibc.malloc.check=0")
    assert not tuned
    assert kept_kib > 8 * 1024, kept_kib  # glibc's own behaviour, which the first test improves on
    assert probe(MALLOC_ARENA_MAX="4")[0] is False


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_serve_keeps_its_memory_with_upstreams_sending_large_listings(tmp_path, mcpzip):
    # Eight live stdio upstreams, each listing about 1.2 MB in one line: with
    # glibc's defaults the reader threads' arenas kept about 30 MB more in
    # all (measured: 34-35 MB tuned, 65-68 MB not); tuned, it goes back at once.
    catalog = tmp_path / "big.json"
    catalog.write_text(json.dumps({"big": [{"name": f"t{i}", "description": "d" * 2000} for i in range(600)]}))
    servers = {f"s{i}": fixture_server(f"s{i}", "--tools-from", f"{catalog}:big") for i in range(8)}
    environ = {k: v for k, v in clean_env().items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    resident: list[int] = []
    for env in (environ, {**environ, "GLIBC_TUNABLES": "glibc.malloc.check=0"}):
        proc = mcpzip(write_config(tmp_path / str(len(resident)), servers), env=env)
        proc.initialize()
        for name in servers:
            assert not proc.execute(f"{name}__pid").get("isError")
        assert "s7__t599" in proc.text("search_tools", {"query": "t599", "server": "s7"})
        resident.append(resident_kib(proc.proc.pid))
        assert proc.close() == 0
    tuned, untuned = resident
    assert tuned + 12 * 1024 < untuned, (tuned, untuned)
