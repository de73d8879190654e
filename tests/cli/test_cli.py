"""The real ``nearspace`` command in subprocesses against real store files."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, SEED_QUERY

NEARSPACE = [sys.executable, "-m", "nearspace.cli"]


def run(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {}), "COLUMNS": "200"}
    proc = subprocess.run([*NEARSPACE, *args], capture_output=True, text=True, env=full_env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"nearspace {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def snapshot(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT collection_id, doc_id, hash, metadata FROM docs ORDER BY doc_row").fetchall()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "store.db"
    proc = run("--store", str(db), "index", str(EXAMPLES))
    assert "60 added" in proc.stderr
    return db


def test_search_json_has_the_documented_fields(indexed):
    proc = run("--store", str(indexed), "search", SEED_QUERY, "--k", "3", "--json")
    hits = json.loads(proc.stdout)
    assert len(hits) == 3
    assert {"id", "score", "text", "metadata", "ranks"} <= set(hits[0])
    assert "regularization-techniques" in [h["id"] for h in hits]


def test_store_and_collection_from_environment_and_options_after_command(indexed):
    proc = run("search", "sourdough bread", "--mode", "keyword", "--json", env={"NEARSPACE_STORE": str(indexed)})
    assert json.loads(proc.stdout)[0]["ranks"] == {"keyword": 1}
    proc = run("search", "sourdough", "--mode", "keyword", "--json", "--store", str(indexed), "-c", "default")
    assert json.loads(proc.stdout)


def test_where_filters_from_the_command_line(indexed):
    proc = run("--store", str(indexed), "search", "stars and planets", "--json", "--k", "20",
               "--where", "topic=astronomy", "--where", "year>=2015")
    hits = json.loads(proc.stdout)
    assert hits and all(h["metadata"]["topic"] == "astronomy" and h["metadata"]["year"] >= 2015 for h in hits)


def test_side_by_side_table(indexed):
    proc = run("--store", str(indexed), "search", SEED_QUERY, "--mode", "all", "--k", "3")
    assert "keyword" in proc.stdout and "dense" in proc.stdout and "hybrid" in proc.stdout


def test_info_and_delete(tmp_path):
    db = tmp_path / "s.db"
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Tides\nThe Moon's gravity raises tides in the oceans.\n")
    (docs / "sub" / "b.txt").write_text("Bread rises because yeast produces carbon dioxide.")
    (docs / "image.png").write_bytes(b"\x89PNG")
    proc = run("--store", str(db), "index", str(docs), "-c", "notes")
    assert "2 added" in proc.stderr and "skipped docs/image.png" in proc.stderr
    info = json.loads(run("--store", str(db), "info", "--json").stdout)
    (notes,) = info["collections"]
    assert notes["name"] == "notes" and notes["count"] == 2 and notes["encoder"] == "all-MiniLM-L6-v2"
    assert info["bytes"] > 0
    hits = json.loads(run("--store", str(db), "-c", "notes", "search", "tides", "--mode", "keyword", "--json").stdout)
    assert hits[0]["id"] == "docs/a.md#0" and hits[0]["title"] == "Tides"
    assert hits[0]["metadata"]["source"] == "docs/a.md" and hits[0]["metadata"]["line_start"] == 2
    proc = run("--store", str(db), "-c", "notes", "delete", "docs/a.md#0", "missing-id")
    assert "deleted 1 of 2" in proc.stderr
    assert json.loads(run("--store", str(db), "info", "--json").stdout)["collections"][0]["count"] == 1


BAD_INPUTS = {
    "malformed.jsonl": (b'{"id": "ok", "text": "fine"}\n{"id": "x", "text": \n', r"malformed\.jsonl:2: malformed JSON"),
    "latin1.jsonl": (b'{"id": "ok", "text": "fine"}\n{"id": "x", "text": "caf\xe9"}\n', r"latin1\.jsonl:2: not valid UTF-8"),
    "empty.jsonl": (b'{"id": "e", "text": "   "}\n', r"empty\.jsonl:1 \(id 'e'\): text is empty"),
    "noid.jsonl": (b'{"text": "no id here"}\n', r"noid\.jsonl:1: missing 'id'"),
    "array.jsonl": (b'[1, 2]\n', r"array\.jsonl:1: expected a JSON object"),
    "notes.pdf": (b"%PDF-1.4 truncated garbage", r"notes\.pdf: corrupt PDF"),
    "data.xyz": (b"whatever", r"data\.xyz: unsupported file type \.xyz"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_changes_nothing(indexed, tmp_path, name):
    import re

    content, pattern = BAD_INPUTS[name]
    bad = tmp_path / name
    bad.write_bytes(content)
    before = snapshot(indexed)
    proc = run("--store", str(indexed), "index", str(bad), check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert snapshot(indexed) == before


def test_unknown_collection_and_bad_store_paths(indexed, tmp_path):
    proc = run("--store", str(indexed), "-c", "nope", "search", "x", check=False)
    assert proc.returncode == 1 and "unknown collection 'nope'" in proc.stderr
    proc = run("--store", str(tmp_path), "search", "x", check=False)
    assert proc.returncode == 1 and "is a directory" in proc.stderr
    proc = run("--store", "/proc/nearspace/x.db", "index", str(EXAMPLES), check=False)
    assert proc.returncode == 1 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("--store", str(indexed), "search", "x", "--where", "year>>2", check=False)
    assert proc.returncode == 1 and "filter" in proc.stderr


def test_help_lists_the_commands():
    proc = run("--help")
    for command in ("index", "search", "delete", "info"):
        assert command in proc.stdout


def test_a_windows_1252_text_file_is_read_and_the_run_says_so(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "menu.txt").write_bytes(b"Caf\xe9 cr\xe8me and cr\xeape Suzette, \x93the house special\x94.")
    proc = run("--store", str(tmp_path / "s.db"), "index", str(folder))
    assert "old/menu.txt: not UTF-8, read as cp1252" in proc.stderr
    hits = json.loads(run("--store", str(tmp_path / "s.db"), "search", "crêpe", "--mode", "keyword", "--json").stdout)
    assert hits and "crêpe" in hits[0]["text"]
