"""The catalog under threads: every listing reaches the cache file, loading happens once, waiters wake."""

from __future__ import annotations

import json
import threading

from mcpzip.knowledge.catalog import Catalog

SERVERS = [f"s{i}" for i in range(24)]


def _listing(server: str, generation: int) -> list[dict]:
    return [{"name": f"tool{generation}", "description": f"{server} generation {generation}"}]


def test_concurrent_listings_all_reach_the_cache_file(tmp_path):
    # Each thread takes in a listing and writes the cache.  A writer holding
    # an older snapshot must never be the last to write: the file ends with
    # every server's latest listing.
    for round_ in range(6):
        path = tmp_path / f"tools{round_}.json"
        catalog = Catalog(SERVERS, str(path))
        start = threading.Barrier(len(SERVERS))

        def list_twice(server: str) -> None:
            start.wait()
            catalog.update(server, _listing(server, 1))
            catalog.update(server, _listing(server, 2))

        threads = [threading.Thread(target=list_twice, args=(s,)) for s in SERVERS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert catalog.flush(10)
        written = {e["server_name"]: e["original_name"] for e in json.loads(path.read_text())}
        assert written == {s: "tool2" for s in SERVERS}, f"round {round_}"


def test_the_cache_file_is_read_once_by_many_first_readers(tmp_path):
    path = tmp_path / "tools.json"
    first = Catalog(SERVERS, str(path))
    for s in SERVERS:
        first.update(s, _listing(s, 1), save=False)
    first.save()
    catalog = Catalog(SERVERS, str(path))
    start = threading.Barrier(16)
    seen = []

    def read() -> None:
        start.wait()
        seen.append(len(catalog.tools()))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # No reader saw a half-loaded catalog, and the version moved once for the load.
    assert seen == [len(SERVERS)] * 16
    assert catalog.version == 1


def test_waiters_wake_when_their_servers_are_listed(tmp_path):
    catalog = Catalog(SERVERS, None)
    results = []

    def wait(server: str) -> None:
        results.append(catalog.wait_for([server], timeout=10))

    waiters = [threading.Thread(target=wait, args=(s,)) for s in SERVERS]
    for t in waiters:
        t.start()
    listers = [threading.Thread(target=catalog.update, args=(s, _listing(s, 1))) for s in SERVERS]
    for t in listers:
        t.start()
    for t in listers + waiters:
        t.join()
    assert results == [True] * len(SERVERS)
