"""The package's layers: lower layers never import higher ones, and no module imports in a circle.

Every import counts — at module level, inside functions, and under
``TYPE_CHECKING`` — because each one is a dependency a reader must follow.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "mcpzip"

# Bottom to top (docs/architecture.md).  The package root holds only the version.
LAYERS = ["base", "knowledge", "upstream", "downstream", "commands", "cli"]
ROOT_LAYER = {"mcpzip": "base", "mcpzip.cli": "cli", "mcpzip.__main__": "cli"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def layer(module: str) -> str:
    if module in ROOT_LAYER:
        return ROOT_LAYER[module]
    return module.split(".")[1]


def imports_of(module: str, path: pathlib.Path, known: dict) -> set:
    """The mcpzip modules that *module* imports, resolved to files that exist."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from pkg import name`` imports the submodule pkg.name when there is one.
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != module)
    return found


def graph() -> dict:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def test_layers_are_the_documented_folders():
    assert {layer(m) for m in modules()} == set(LAYERS)


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{m} ({layer(m)}) imports {t} ({layer(t)})"
        for m, targets in graph().items()
        for t in sorted(targets)
        if LAYERS.index(layer(t)) > LAYERS.index(layer(m))
    ]
    assert upward == []


def test_no_import_circle():
    edges = graph()
    state: dict = {}
    circles = []

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                circles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    # The walker itself must not be blind: a two-module circle and an upward
    # import in a scratch package are both found.
    pkg = tmp_path / "mcpzip"
    (pkg / "base").mkdir(parents=True)
    (pkg / "knowledge").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base" / "__init__.py").write_text("")
    (pkg / "knowledge" / "__init__.py").write_text("")
    (pkg / "base" / "a.py").write_text("from ..knowledge import b\n")
    (pkg / "knowledge" / "b.py").write_text("def f():\n    from ..base import a\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    edges = graph()
    assert edges["mcpzip.base.a"] == {"mcpzip.knowledge.b"}
    assert edges["mcpzip.knowledge.b"] == {"mcpzip.base.a"}
