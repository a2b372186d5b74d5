"""Start servers once, list their tools, and time it: the check behind ``init`` and ``doctor``.

Threading contract: :func:`probe_all` starts one thread per server and
returns when every one has finished or given up; each thread touches only
its own :class:`Probe`.  The pool it uses is closed before it returns, so
no server process outlives the check.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable

    from ..base.config import Config, ServerConfig
    from ..upstream.pool import Pool

# How long after its timeout a check may take to clean up before we stop waiting.
CLOSE_GRACE = 10.0


@dataclass
class Probe:
    """What one check of one server found."""

    name: str
    transport: str
    ok: bool = False
    era: str | None = None
    protocol_version: str | None = None
    server_info: str = ""
    tools: int | None = None
    start_seconds: float | None = None
    list_seconds: float | None = None
    error: str | None = None


def probe(pool: Pool, server: ServerConfig, timeout: float) -> Probe:
    """Connect to *server* through *pool* and list its tools within *timeout* seconds."""
    from ..upstream.session import UpstreamError

    result = Probe(server.name, server.type)
    started = time.monotonic()
    try:
        conn = pool.get(server.name, timeout)
        result.start_seconds = time.monotonic() - started
        result.era, result.protocol_version = conn.era, conn.protocol_version
        info = conn.server_info if isinstance(conn.server_info, dict) else {}
        result.server_info = " ".join(str(info[k]) for k in ("name", "version") if info.get(k))
        listed = time.monotonic()
        result.tools = len(conn.list_tools(max(0.001, timeout - result.start_seconds))[0])
        result.list_seconds = time.monotonic() - listed
        result.ok = True
    except UpstreamError as e:
        result.error = str(e)
        if result.start_seconds is not None:
            result.error = f"could not list its tools: {e}"
    except ImportError as e:
        result.error = _missing_module(server, e)
    except Exception as e:  # a protocol error from the server, a transport that failed oddly
        result.error = f"{type(e).__name__}: {e}" if not str(e) else str(e)
    return result


def _missing_module(server: ServerConfig, e: ImportError) -> str:
    if e.name in ("requests", "sseclient"):
        return f"{server.type} servers need the Python packages requests and sseclient-py: pip install requests sseclient-py"
    return f"mcpzip cannot load its {server.type} transport ({e})"


def probe_all(config: Config, names: Iterable[str] | None = None, timeout: float = 30.0) -> list[Probe]:
    """Check *names* (default: every enabled server) at the same time; results in config order."""
    from ..upstream.pool import Pool

    names = list(config.servers if names is None else names)
    results: dict[str, Probe] = {}
    pool = Pool(config)

    def check(name: str) -> None:
        results[name] = probe(pool, config.servers[name], timeout)

    threads = [threading.Thread(target=check, args=(n,), name=f"mcpzip-probe-{n}", daemon=True) for n in names]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout + CLOSE_GRACE
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
    finally:
        pool.close()
    return [results.get(n) or Probe(n, config.servers[n].type, error=f"no answer within {timeout:g}s") for n in names]
