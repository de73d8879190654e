"""Print the import graph of ``src/nearspace`` and any cycle in it.

An edge A -> B is an ``import`` of B anywhere in A: at module level and inside functions (a
lazy import is still a dependency, only a later one), but not under ``if TYPE_CHECKING:``.
``--import-time`` keeps only the statements that run when A is imported.
``tests/test_architecture.py`` asserts that the graph has no cycle apart from the CLI's
sub-command registration (``nearspace.cli.*``, whose sub-command modules import the app they
register on).

    python benchmarks/import_graph.py                 # cycles only
    python benchmarks/import_graph.py --edges         # every edge too
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "nearspace"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool, *, lazy: bool) -> set[str]:
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(node.body)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.For, ast.While)):
                visit(node.body)
                if not isinstance(node, ast.With):
                    visit(node.orelse)

    visit(tree.body)
    return found


def import_graph(src: Path = SRC, *, lazy: bool = True) -> dict[str, set[str]]:
    """module -> the package's modules it imports: with ``lazy`` (the default) every import
    statement, also those inside functions; without it, only those that run at import time."""
    files = {module_name(p): p for p in (src / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = _imports(tree, module, path.name == "__init__.py", lazy=lazy)
        edges = set()
        for target in targets:
            while target and target not in files:  # `from a.b import name`: name is not a module
                target = target.rpartition(".")[0]
            # `from nearspace.store import schema` inside nearspace.store.sqlite.database names its own
            # package, which is already being imported: the edge is to the submodule alone
            if target and target != module and target.startswith(PACKAGE) and not module.startswith(target + "."):
                edges.add(target)
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        own = set(_parents(module)) | {module}  # a package's own parents are already importing
        graph[module] = edges | {p for t in edges for p in _parents(t) if p in files and p not in own}
    return graph


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def strong(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def is_cli_registration(component: list[str]) -> bool:
    """The one allowed cycle: the CLI app and the sub-command modules that register on it."""
    return all(m == "nearspace.cli" or m.startswith("nearspace.cli.") for m in component)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="print every edge")
    parser.add_argument("--import-time", action="store_true", help="only imports that run at import time")
    args = parser.parse_args()
    graph = import_graph(lazy=not args.import_time)
    if args.edges:
        for module in sorted(graph):
            for target in sorted(graph[module]):
                print(f"{module} -> {target}")
    found = cycles(graph)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} edges, {len(found)} cycle(s)")
    for component in found:
        kind = "allowed (CLI registration)" if is_cli_registration(component) else "CYCLE"
        print(f"  {kind}: {len(component)} modules: {', '.join(component)}")
    return 0 if all(is_cli_registration(c) for c in found) else 1


if __name__ == "__main__":
    raise SystemExit(main())
