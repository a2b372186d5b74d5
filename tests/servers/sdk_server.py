#!/usr/bin/env python3
"""An upstream written with the official MCP Python SDK (both protocol eras).

Usage: sdk_server.py                 stdio
       sdk_server.py http PORT       Streamable HTTP at http://127.0.0.1:PORT/mcp
       sdk_server.py sse PORT        legacy HTTP+SSE at http://127.0.0.1:PORT/sse
"""

from __future__ import annotations

import base64
import sys
from typing import Annotated

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

mcp = MCPServer("sdk-weather", version="1.0.0", instructions="Weather for tests.")


@mcp.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


class Weather(BaseModel):
    city: str
    temp_c: float


@mcp.tool()
def weather(city: str) -> Annotated[CallToolResult, Weather]:
    """Current weather for a city, with a picture of the sky."""
    return CallToolResult(
        content=[
            TextContent(type="text", text=f"{city}: 21.5C"),
            ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
        ],
        structured_content={"city": city, "temp_c": 21.5},
    )


@mcp.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Work in steps, reporting progress after each."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
    return f"done {steps}"


@mcp.tool()
async def grow(name: str, ctx: Context) -> str:
    """Add a tool to this server at run time and announce the changed list."""

    def grown() -> str:
        return f"{name} ran"

    mcp.add_tool(grown, name=name, description=f"A tool grown at run time: {name}.")
    await ctx.notify_tools_changed()  # modern: to subscriptions/listen streams
    try:
        await ctx.request_context.session.send_tool_list_changed()  # legacy sessions
    except Exception:
        pass
    return "grown"


class Login(BaseModel):
    name: str


def ask_login() -> Elicit[Login]:
    return Elicit("Please provide your GitHub username", Login)


@mcp.tool()
def greet(login: Annotated[Login, Resolve(ask_login)]) -> str:
    """Greet a user, asking for their name first (elicitation)."""
    return f"hello {login.name}"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] in ("http", "sse"):
        mcp.run("streamable-http" if sys.argv[1] == "http" else "sse", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        mcp.run()
