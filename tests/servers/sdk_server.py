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

from mcp.server.mcpserver import MCPServer
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


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] in ("http", "sse"):
        mcp.run("streamable-http" if sys.argv[1] == "http" else "sse", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        mcp.run()
