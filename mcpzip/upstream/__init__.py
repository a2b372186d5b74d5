"""How mcpzip reaches servers: the pool, one session per server, transports, OAuth."""
