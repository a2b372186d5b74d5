"""The pool under threads: a shutdown that lands while a server finishes starting leaves no process."""

from __future__ import annotations

import os
import threading

import pytest
from conftest import fixture_children, fixture_server, wait_gone, write_config

from mcpzip.base import config as config_module
from mcpzip.upstream.pool import Pool
from mcpzip.upstream.session import UpstreamError


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc")
def test_close_while_a_connection_is_handed_out_stops_its_process(tmp_path):
    # close() runs after the server has started but before the connection
    # joins the pool (on the connecting thread, as a when_connected callback
    # does).  Neither close() nor get() may leave the process running.
    config = config_module.load(str(write_config(tmp_path, {"fx": fixture_server()})), environ={})
    before = fixture_children()
    pool = Pool(config)
    started: list[int] = []

    def close_now(conn) -> None:
        started.extend(fixture_children() - before)
        closer = threading.Thread(target=pool.close)
        closer.start()
        closer.join()

    pool.when_connected(close_now)
    with pytest.raises(UpstreamError, match="shutting down"):
        pool.get("fx")
    assert started, "the server never started"
    for pid in started:
        assert wait_gone(pid, 10), f"server process {pid} outlived Pool.close()"
    assert pool.connections() == []


def test_a_call_that_takes_a_listing_connection_keeps_it(tmp_path):
    # A listing closes the connection it made right after, unless a call took
    # it meanwhile.  The call here asks for the server the moment the listing's
    # connection is up: it is answered, and its connection stays afterwards
    # (idle reaping decides when it goes), no longer marked as listing-only.
    config = config_module.load(str(write_config(tmp_path, {"fx": fixture_server()})), environ={})
    for _ in range(5):
        pool = Pool(config)
        answers: list[dict] = []
        caller = threading.Thread(target=lambda: answers.append(pool.call_tool("fx", "echo", {"text": "hi"}, 10)))
        started = threading.Event()

        def call_now(conn) -> None:
            if not started.is_set():  # the listing's connection (not one the call may make later)
                started.set()
                caller.start()

        pool.when_connected(call_now)
        try:
            assert [t["name"] for t in pool.list_tools("fx", 10)][:1] == ["echo"]
            caller.join(30)
            assert answers and answers[0]["content"][0]["text"] == "hi"
            assert pool.connected("fx") and not pool.listing_only("fx")
        finally:
            pool.close()
