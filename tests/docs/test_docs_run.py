"""Documentation that runs as written: every Python block of README.md and docs/*.md, pasted
into a fresh folder, runs to the end (a block that breaks fails here, naming its file and line).

Each block runs in its own process in an empty working directory, as a newcomer pasting it
would. A block that talks to ``nearspace serve`` at the documented ``http://127.0.0.1:8000``
gets a real server on loopback (a free port, substituted into the block).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_URL = "http://127.0.0.1:8000"


def python_blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            line = text[:match.start()].count("\n") + 1
            out.append((path.relative_to(ROOT).as_posix(), line, match.group(1)))
    return out


BLOCKS = python_blocks()


def test_the_docs_have_python_blocks_to_run():
    assert len(BLOCKS) >= 9 and {b[0] for b in BLOCKS} >= {"README.md", "docs/analyze.md", "docs/server.md"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.server.conftest import start_server

    served = start_server(tmp_path_factory.mktemp("docs-server") / "store.db")
    yield served
    served.stop()


@pytest.mark.parametrize("where, line, code", BLOCKS, ids=[f"{w}:{n}" for w, n, _ in BLOCKS])
def test_a_documented_python_block_runs(where, line, code, tmp_path, request):
    if DOCUMENTED_URL in code:
        code = code.replace(DOCUMENTED_URL, request.getfixturevalue("server").url)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, f"{where}:{line} failed:\n{proc.stderr[-3000:]}"
