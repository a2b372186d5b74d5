"""What the client sees: the MCP server, the meta-tools, aggregated resources and prompts, relayed traffic."""
