"""What mcpzip knows: the tool catalog, search and its vocabulary, what each server declared, LLM ranking."""
