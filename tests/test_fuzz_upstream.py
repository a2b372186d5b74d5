"""Property: whatever a stdio server writes on stdout, its transport keeps reading, and every answer it can match arrives.

Hypothesis generates lines (JSON-RPC shapes, broken JSON, invalid UTF-8, deep
nesting, long lines without a newline, binary) that a real child process
writes on its stdout, each followed by a well-formed answer; the answer must
reach the session, the reader thread must stay alive, and a line that
carries the id of a waiting call must answer that call (with its result or
an error), never leave it waiting.

The default run is short and reproducible (fixed seed); set
``MCPZIP_FUZZ_EXAMPLES`` to run more.
"""

from __future__ import annotations

import json
import os
import queue
import sys

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from mcpzip.base.config import ServerConfig
from mcpzip.upstream.transports.stdio import StdioTransport

EXAMPLES = int(os.environ.get("MCPZIP_FUZZ_EXAMPLES", "300"))
LIMIT = 64 * 1024  # max_message_bytes for the fuzzed transport: long lines are cheap to make

# The child writes the bytes of each {"hex": ...} it reads on stdin, raw, to stdout.
RELAY = (
    "import json, sys\n"
    "for line in sys.stdin.buffer:\n"
    "    sys.stdout.buffer.write(bytes.fromhex(json.loads(line)['hex']))\n"
    "    sys.stdout.buffer.flush()\n"
)

texts = st.text(max_size=20) | st.sampled_from(["", "\ud800", "é✓𝄞"])
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | texts,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                      max_leaves=10)  # fmt: skip
shapes = st.fixed_dictionaries(
    {},
    optional={"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "id": st.integers() | texts | values,
              "method": texts | values, "result": values, "error": values, "params": values},
)  # fmt: skip


def encode(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


lines = st.one_of(
    shapes.map(encode),
    st.binary(max_size=200),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 5000).map(lambda n: b'{"a":' * n),
    st.integers(LIMIT - 2, LIMIT * 3).map(lambda n: b'{"jsonrpc":"2.0","id":"fuzz","result":"' + b"x" * n + b'"}'),
    st.integers(LIMIT, LIMIT * 3).map(lambda n: b"y" * n),  # no newline at all until the next message
    st.sampled_from([b"\xed\xa0\x80", b"\xff\xfe", b"\x00", b"\r", b"   ", b"{", b"}", b"null"]),
) | st.lists(st.binary(max_size=50), max_size=3).map(b"\n".join)


def test_the_reader_survives_any_stdout(tmp_path):
    script = tmp_path / "relay.py"
    script.write_text(RELAY)
    transport = StdioTransport(ServerConfig(name="fuzz", command=sys.executable, args=[str(script)]), max_message_bytes=LIMIT)
    received: queue.Queue = queue.Queue()
    closed: list[str] = []
    transport.start(received.put, closed.append)
    counter = iter(range(1, 10**9))

    def write(data: bytes) -> None:
        transport.send({"hex": data.hex()})

    def answer_arrives(marker: int) -> None:
        while True:
            message = received.get(timeout=10)
            if isinstance(message, dict) and message.get("id") == f"marker-{marker}":
                assert message["result"] == marker
                return

    try:

        @seed(20261204)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(line=lines, newline=st.booleans())
        def example(line: bytes, newline: bool) -> None:
            marker = next(counter)
            answer = encode({"jsonrpc": "2.0", "id": f"marker-{marker}", "result": marker})
            write(line + (b"\n" if newline else b"") + b"\n" + answer + b"\n")
            answer_arrives(marker)
            assert transport._reader.is_alive()

        example()
        # A line carrying the id of a waiting call answers it, even when it cannot be read.
        write(b'{"jsonrpc":"2.0","id":"waiting","result":' + b"[" * 5000 + b"\n")
        while True:
            message = received.get(timeout=10)
            if isinstance(message, dict) and message.get("id") == "waiting":
                assert "nested too deeply" in message["error"]["message"]
                break
        assert closed == []
    finally:
        transport.close()
