"""mcpzip: one MCP server in front of all of yours, showing the model three tools."""

__version__ = "0.1.0"
