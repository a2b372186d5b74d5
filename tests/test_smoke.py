"""The shortest path through mcpzip: start, list the meta-tools, run one tool."""

from conftest import fixture_server, write_config


def test_serve_lists_meta_tools_and_executes(tmp_path, mcpzip):
    proc = mcpzip(write_config(tmp_path, {"fx": fixture_server()}, tools_mode="meta"))
    proc.initialize()
    names = [t["name"] for t in proc.result("tools/list")["tools"]]
    assert names == ["search_tools", "describe_tool", "execute_tool"]
    result = proc.execute("fx__echo", {"text": "hello"})
    assert result == {"content": [{"type": "text", "text": "hello"}]}
    assert proc.close() == 0
