"""`nearspace search` shows what a hit is (title and the start of its text), not only its id."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import EXAMPLES, SEED_QUERY


def _run(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "220"}
    proc = subprocess.run([sys.executable, "-m", "nearspace.cli", *args], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_search_shows_title_and_snippet_beside_each_id(tmp_path):
    db = str(tmp_path / "s.db")
    _run("--store", db, "index", str(EXAMPLES), "-c", "ex")
    docs = {d["id"]: d for d in map(json.loads, EXAMPLES.read_text().splitlines()) if d}
    hits = json.loads(_run("--store", db, "-c", "ex", "search", SEED_QUERY, "--k", "3", "--json"))
    for mode_args in ((), ("--mode", "all")):
        out = _run("--store", db, "-c", "ex", "search", SEED_QUERY, "--k", "3", *mode_args)
        for hit in hits:
            doc = docs[hit["id"]]
            assert hit["id"] in out
            assert doc["title"][:30] in out, (doc["title"], out)
            # the start of the text, as a snippet (cells wrap, so word by word)
            first = [w for w in doc["text"].split()[:6] if len(w) > 4][:2]
            assert first and all(w in out for w in first), (first, out)
