"""The CLI's query path stays light: searching, asking and ``--help`` never import torch,
transformers, sentence-transformers or scikit-learn, nor scipy once the store's keyword postings are
saved by `nearspace index` (checked in ``sys.modules`` inside the process)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, SEED_QUERY

# scipy (0.25 s of a cold command) is needed only to build or splice keyword postings: `index` saves
# them, so a search reads them with numpy alone
HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy")

PROBE = """
import json, sys
from nearspace.cli.app import main
sys.argv = ["nearspace", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
heavy = sorted(m for m in HEAVY_MODULES if m in sys.modules)
print("PROBE=" + json.dumps({"code": code, "heavy": heavy, "onnxruntime": "onnxruntime" in sys.modules}), file=sys.stderr)
"""


def probe_source(heavy: tuple[str, ...] = HEAVY) -> str:
    return PROBE.replace("HEAVY_MODULES", repr(heavy))


def probe(*args: str) -> tuple[dict, str]:
    env = {**os.environ, "NEARSPACE_BACKEND": "auto"}
    done = subprocess.run([sys.executable, "-c", probe_source(), *args], capture_output=True, text=True, env=env, timeout=600)
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("PROBE=")]
    assert line, done.stderr[-2000:]
    return json.loads(line[-1][len("PROBE="):]), done.stdout


@pytest.fixture(scope="module")
def example_store(tmp_path_factory, encoder):
    db = tmp_path_factory.mktemp("imports") / "s.db"
    subprocess.run([sys.executable, "-m", "nearspace.cli", "--store", str(db), "index", str(EXAMPLES)],
                   check=True, capture_output=True, timeout=600)
    return db


@pytest.mark.parametrize("mode", ["keyword", "dense", "hybrid"])
def test_search_never_imports_torch(example_store, mode):
    result, out = probe("--store", str(example_store), "search", SEED_QUERY, "--mode", mode, "--json")
    assert result["code"] == 0 and result["heavy"] == [], result
    assert json.loads(out), "the search found nothing"
    assert result["onnxruntime"] is (mode != "keyword")  # keyword search does not even load the model


def test_ask_never_imports_torch(example_store):
    result, out = probe("--store", str(example_store), "ask", "How do I reduce overfitting?")
    assert result["code"] == 0 and result["heavy"] == [], result
    assert out.strip()


def test_help_imports_neither_the_model_nor_numpy():
    done = subprocess.run([sys.executable, "-c", probe_source(HEAVY + ("numpy",)), "--help"],
                          capture_output=True, text=True, timeout=120)
    result = json.loads([ln for ln in done.stderr.splitlines() if ln.startswith("PROBE=")][-1][len("PROBE="):])
    assert result["code"] == 0 and result["heavy"] == [] and result["onnxruntime"] is False, result
    assert "search" in done.stdout
