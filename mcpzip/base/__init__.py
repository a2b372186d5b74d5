"""Foundations every layer uses: config, logging, JSON-RPC framing, MCP revisions, files, HTTP hygiene."""
