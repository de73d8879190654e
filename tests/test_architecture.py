"""The package's shape: arrows point one way (consumers -> search -> store -> types).

The import graph comes from ``benchmarks/import_graph.py`` (every import statement, lazy ones
too, as an edge); the only cycle allowed is the CLI's sub-command registration.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "benchmarks" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)

#: cycles still to be broken, each with the issue that breaks it; an entry that no longer
#: occurs fails the test below, so the list can only shrink
KNOWN: dict[tuple[str, ...], str] = {}


def _non_cli_cycles(*, lazy: bool) -> set[tuple[str, ...]]:
    graph = import_graph.import_graph(lazy=lazy)
    return {tuple(c) for c in import_graph.cycles(graph) if not import_graph.is_cli_registration(c)}


def test_the_graph_is_found_and_the_cli_cycle_is_recognised():
    graph = import_graph.import_graph()
    assert len(graph) > 80 and "nearspace.types" in graph
    cli_cycles = [c for c in import_graph.cycles(graph) if import_graph.is_cli_registration(c)]
    assert any("nearspace.cli.app" in c for c in cli_cycles)


def test_no_import_cycle_apart_from_cli_registration():
    found = _non_cli_cycles(lazy=True)
    unexpected = found - set(KNOWN)
    assert not unexpected, f"new import cycle(s): {sorted(unexpected)}"
    gone = set(KNOWN) - found
    assert not gone, f"cycle(s) {sorted(gone)} are broken: remove them from KNOWN"


def test_import_time_graph_has_no_cycle():
    """What runs on ``import nearspace.X`` never loops back (lazy imports aside)."""
    assert not _non_cli_cycles(lazy=False)


#: the results' Jupyter/terminal rendering, imported lazily by ``SearchResults.__repr__``: a leaf
RENDERING = {"nearspace.integrations", "nearspace.integrations.notebook"}


@pytest.mark.parametrize("module, allowed", [
    ("nearspace.types", {"nearspace.errors"} | RENDERING),
    ("nearspace.errors", set()),
    ("nearspace.integrations.notebook", set()),
    ("nearspace.integrations", set()),
    ("nearspace.validation", {"nearspace.errors", "nearspace.limits", "nearspace.types"}),
])
def test_foundation_modules_import_only_the_foundation(module, allowed):
    graph = import_graph.import_graph()
    assert graph[module] - {"nearspace"} <= allowed, graph[module]


def test_store_does_not_import_its_consumers():
    graph = import_graph.import_graph()
    consumers = ("nearspace.cli", "nearspace.server", "nearspace.integrations", "nearspace.analyze",
                 "nearspace.recommend", "nearspace.rag", "nearspace.evaluate", "nearspace.api",
                 "nearspace.search", "nearspace.encoders", "nearspace.ingest", "nearspace.transfer")
    for module, targets in graph.items():
        if module.startswith("nearspace.store"):
            bad = [t for t in targets if t.startswith(consumers)]
            assert not bad, (module, bad)


def test_the_script_prints_the_graph():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "import_graph.py")],
                          capture_output=True, text=True, timeout=120)
    assert "modules" in proc.stdout and "allowed (CLI registration)" in proc.stdout, proc.stdout


def test_no_raw_sql_against_store_tables_outside_store():
    """The database is the truth and ``store/`` owns it: every other layer goes through its API."""
    import re

    tables = r"(docs|changes|collections|meta_index|files|artifacts|store_info|fts_\w*)"
    statement = re.compile(rf"\b(FROM|INTO|UPDATE|JOIN|TABLE)\s+{tables}\b")
    offenders = []
    for path in (ROOT / "src" / "nearspace").rglob("*.py"):
        if "store" in path.relative_to(ROOT / "src" / "nearspace").parts[:1]:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
            if statement.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_package_namespace_shows_its_entry_points_and_each_resolves():
    import nearspace

    shown = set(dir(nearspace))
    assert {"open_store", "Store", "Collection", "load_encoder", "load_reranker", "Recommender",
            "cluster_collection", "build_map", "__version__"} <= shown
    assert all(callable(getattr(nearspace, name)) for name in nearspace.__all__)
