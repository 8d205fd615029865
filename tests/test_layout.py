"""The package's shape: modules that fit on a screen, and imports that point one way.

Policy, protocol, models, errors and config sit at the bottom and never import a shell; the
shells (clients, async and sync APIs) sit above them; the plugin, the CLI, notebooks and the
local backend sit at the edge. A module-level import cycle would make import order matter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skyvern_cdp"
MAX_LINES = 450

#: Modules that must stay free of I/O shells: nothing above them may be imported.
BOTTOM = ("skyvern_cdp.policy", "skyvern_cdp.protocol", "skyvern_cdp.models",
          "skyvern_cdp.errors", "skyvern_cdp.config")
SHELLS = ("skyvern_cdp.client", "skyvern_cdp.async_api", "skyvern_cdp.sync_api",
          "skyvern_cdp._async_", "skyvern_cdp._sync_")
EDGE = ("skyvern_cdp.cli", "skyvern_cdp.pytest_plugin", "skyvern_cdp._pytest",
        "skyvern_cdp.notebook", "skyvern_cdp.local")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Package modules imported when ``name`` is imported (not in functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)

    visit(tree.body)
    return {t for t in targets if t in known and t != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _top_level_imports(path, name, known) for name, path in modules.items()}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_fits_on_a_screen(name: str) -> None:
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it along a seam"


def test_no_module_level_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p if p.endswith("_") else p + ".") for p in prefixes)


def test_the_bottom_imports_no_shell_and_the_shells_no_edge() -> None:
    wrong = []
    for module, imports in _graph().items():
        for target in imports:
            if _under(module, BOTTOM) and _under(target, SHELLS + EDGE):
                wrong.append(f"{module} -> {target}")
            if _under(module, SHELLS) and _under(target, EDGE):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up: " + ", ".join(sorted(wrong))


def test_the_checker_sees_real_imports() -> None:
    """The graph is not empty by accident: known edges are found."""
    graph = _graph()
    assert "skyvern_cdp.policy.session" in graph["skyvern_cdp.policy"]
    assert "skyvern_cdp._client_base" in graph["skyvern_cdp.client"]
    assert "skyvern_cdp._async_driver" in graph["skyvern_cdp.async_api"]


def test_the_cdp_client_belongs_to_none_of_its_users() -> None:
    """relay/ reaches Chromium through skyvern_cdp.cdp_client, not through the local backend;
    the client itself imports none of the relay, the local backend or the notebook."""
    graph = _graph()
    users = ("skyvern_cdp.relay", "skyvern_cdp.local", "skyvern_cdp.notebook")
    assert "skyvern_cdp.cdp_client" in graph["skyvern_cdp.relay"]
    own = graph["skyvern_cdp.cdp_client"]
    assert not [t for t in own if _under(t, (*users, "skyvern_cdp.gateway"))]
    wrong = [f"{m} -> {t}" for m, imports in graph.items() for t in imports
             if _under(m, ("skyvern_cdp.relay",)) and _under(t, ("skyvern_cdp.local",))]
    assert not wrong, "the relay imports the local backend: " + ", ".join(sorted(wrong))
