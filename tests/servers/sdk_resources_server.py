#!/usr/bin/env python3
"""An upstream written with the official MCP SDK that offers resources, prompts and completions.

Usage: sdk_resources_server.py [NAME]    stdio, both protocol eras; NAME (default "sdk-docs")
       appears in every text it returns, so tests can tell two copies apart.
"""

from __future__ import annotations

import base64
import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import Completion, PromptReference, ResourceTemplateReference

NAME = sys.argv[1] if len(sys.argv) > 1 else "sdk-docs"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

mcp = MCPServer(NAME, version="1.0.0")


@mcp.tool()
def ping_docs() -> str:
    """Say that the docs server is up."""
    return "up"


@mcp.resource("docs://readme", name="readme", mime_type="text/markdown")
def readme() -> str:
    return f"# Readme of {NAME}"


@mcp.resource("docs://logo", name="logo", mime_type="image/png")
def logo() -> bytes:
    return PNG


@mcp.resource("docs://pages/{slug}", name="page", mime_type="text/plain")
def page(slug: str) -> str:
    return f"page {slug} of {NAME}"


@mcp.prompt()
def review(code: str, language: str = "python") -> str:
    """Ask for a code review."""
    return f"Review this {language} code for {NAME}:\n{code}"


@mcp.completion()
async def complete(ref, argument, context):
    if isinstance(ref, PromptReference) and ref.name == "review" and argument.name == "language":
        options = ["python", "perl", "php", "rust"]
    elif isinstance(ref, ResourceTemplateReference) and ref.uri == "docs://pages/{slug}":
        options = ["intro", "install", "usage"]
    else:
        return None
    return Completion(values=[o for o in options if o.startswith(argument.value)])


if __name__ == "__main__":
    mcp.run()
