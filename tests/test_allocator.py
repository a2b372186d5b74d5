"""The C allocator, tuned before the upstreams' reader threads exist (Linux with glibc)."""

from __future__ import annotations

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


def test_serve_tunes_before_its_first_upstream_starts(tmp_path, mcpzip):
    # glibc fixes its arena limit once a ninth arena is needed: the settings
    # must come before the upstreams' reader threads exist.
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}), env=clean_env(MCPZIP_LOG="debug"))
    proc.initialize()
    assert not proc.execute("fx__pid").get("isError")
    assert proc.close() == 0
    lines = proc.stderr_lines
    tuned = next(i for i, line in enumerate(lines) if "malloc tuned: 2 arenas" in line)
    started = next(i for i, line in enumerate(lines) if "fx: started pid" in line)
    assert tuned < started, lines
