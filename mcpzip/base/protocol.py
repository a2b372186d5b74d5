"""MCP protocol revisions and the ``_meta`` keys of the modern era.

The specification has two eras.  *Legacy* revisions open a session with an
``initialize`` handshake; the *modern* revision (2026-07-28) has no
handshake: every request carries its protocol version, client info and
client capabilities in ``params._meta``, and every result says what kind of
result it is in ``resultType``.
"""

from __future__ import annotations

LEGACY_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
LATEST_LEGACY = LEGACY_VERSIONS[-1]
LATEST_MODERN = MODERN_VERSIONS[-1]
SUPPORTED_VERSIONS = LEGACY_VERSIONS + MODERN_VERSIONS

LEGACY, MODERN = "legacy", "modern"

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"


def meta_of(params: object) -> dict:
    """``params._meta`` as a dict (empty when absent or malformed)."""
    if isinstance(params, dict):
        meta = params.get("_meta")
        if isinstance(meta, dict):
            return meta
    return {}


def with_meta(params: dict | None, meta: dict) -> dict:
    """A copy of *params* whose ``_meta`` also holds *meta*."""
    params = dict(params or {})
    merged = dict(meta_of(params))
    merged.update(meta)
    params["_meta"] = merged
    return params
