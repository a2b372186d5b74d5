"""A client that writes its requests and closes stdin still gets every answer."""

from __future__ import annotations

import io
import json
import time

from conftest import fixture_server, write_config

from mcpzip.base import config
from mcpzip.downstream.wiring import build_server


class SlowPipe(io.BytesIO):
    """A stdout whose reader is slow: each write takes a while to get through."""

    def write(self, data: bytes) -> int:
        time.sleep(0.1)  # not synchronisation: the slowness under test
        return super().write(data)


def test_serving_ends_only_after_every_answer_is_written(tmp_path):
    loaded = config.load(str(write_config(tmp_path, {"fx": fixture_server()})))
    # Answered by worker threads (an unknown method is answered at once, with an error).
    requests = [{"jsonrpc": "2.0", "id": i, "method": "no/such/method"} for i in range(1, 4)]
    stdin = io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    stdout = SlowPipe()
    server = build_server(loaded, stdin, stdout)
    try:
        server.serve_forever()
    finally:
        server.metatools.close()
    answers = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert sorted(a["id"] for a in answers) == [1, 2, 3]
