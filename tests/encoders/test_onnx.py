"""The ONNX Runtime encoder: export, verification, cache repair, agreement with torch, no torch on the query path."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nearspace.encoders.onnx import OnnxEncoder, _valid, cache_dir, ensure_graph, graph_files
from nearspace.encoders.sentence import bundled_model_path
from tests.conftest import EXAMPLES, require_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def onnx_encoder():
    return OnnxEncoder()


def test_graph_is_exported_verified_and_cached(onnx_encoder):
    graph, sidecar = graph_files(bundled_model_path(), cache_dir())
    assert graph.exists() and sidecar.exists()
    meta = json.loads(sidecar.read_text())
    assert meta["verified"]["mean_cosine"] >= 0.9999 and meta["verified"]["max_abs_diff"] < 1e-3
    assert onnx_encoder.name == "all-MiniLM-L6-v2" and onnx_encoder.dim == 384


def test_damaged_or_missing_cache_is_rebuilt(tmp_path, onnx_encoder):
    model_dir = bundled_model_path()
    source_graph, source_meta = graph_files(model_dir, cache_dir())
    graph, sidecar = graph_files(model_dir, tmp_path)
    shutil.copy(source_graph, graph)
    shutil.copy(source_meta, sidecar)
    assert _valid(graph, sidecar) is not None
    with open(graph, "r+b") as handle:  # same size, damaged inside
        handle.seek(graph.stat().st_size // 2)
        handle.write(os.urandom(4096))
    assert _valid(graph, sidecar) is None
    # beside it: a graph an older nearspace exported (superseded) and a current one for other weights
    old_graph, other_graph = tmp_path / "all-MiniLM-L6-v2-0ld.onnx", tmp_path / "all-MiniLM-L6-v2-0ther.onnx"
    for path, version in ((old_graph, None), (other_graph, meta_version := json.loads(source_meta.read_text())
                                                             .get("graph_version", 2))):
        path.write_bytes(b"graph")
        path.with_suffix(".json").write_text(json.dumps({"bytes": 5} | ({"graph_version": version} if version else {})))
    rebuilt, meta = ensure_graph(model_dir, tmp_path)
    assert _valid(rebuilt, sidecar) is not None and meta["verified"]["mean_cosine"] >= 0.9999
    assert meta["graph_version"] >= meta_version
    assert not old_graph.exists() and not old_graph.with_suffix(".json").exists()  # 90 MB freed
    assert other_graph.exists()
    graph.unlink()
    assert _valid(graph, sidecar) is None
    encoder = OnnxEncoder(cache=tmp_path)  # missing: exported again on first use
    assert graph.exists() and encoder.dim == 384


def test_vectors_equal_sentence_transformers_on_real_passages(onnx_encoder):
    from nearspace.encoders.sentence import SentenceEncoder

    corpus = require_data("beir", "scifact", "corpus.jsonl")
    texts = []
    with corpus.open() as handle:
        for line in handle:
            record = json.loads(line)
            texts.append(f"{record['title']} {record['text']}")
            if len(texts) == 300:
                break
    ours = onnx_encoder.encode(texts)
    theirs = SentenceEncoder(precision="fp32").encode(texts)
    cosines = np.sum(ours * theirs, axis=1)
    print(f"mean cosine {cosines.mean():.7f}, min {cosines.min():.7f}, max abs diff {np.abs(ours - theirs).max():.2e}")
    assert cosines.mean() >= 0.9999 and cosines.min() >= 0.999


def test_tokenizer_matches_the_hugging_face_one(onnx_encoder):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(bundled_model_path()), local_files_only=True)
    text = "Mixed-case TEXT, numbers 3.14159 and ünïcode — plus a very long tail " + "word " * 300
    for special in (True, False):
        assert onnx_encoder.tokenizer(text, add_special_tokens=special)["input_ids"] == \
            reference(text, add_special_tokens=special)["input_ids"]
    ours = onnx_encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    theirs = reference(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert [tuple(o) for o in ours] == [tuple(o) for o in theirs]


PROBE = """
import sys
from nearspace.cli.app import main
sys.argv = ["nearspace", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("mode", ["keyword", "dense", "hybrid"])
def test_cli_search_never_imports_torch(tmp_path, mode, onnx_encoder):
    db = tmp_path / "s.db"
    env = {**os.environ, "NEARSPACE_BACKEND": "auto"}
    subprocess.run([sys.executable, "-m", "nearspace.cli", "--store", str(db), "index", str(EXAMPLES)],
                   check=True, capture_output=True, env=env, timeout=600)
    done = subprocess.run([sys.executable, "-c", PROBE, "--store", str(db), "search",
                           "how to reduce overfitting in neural networks", "--mode", mode, "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert "HEAVY=\n" in done.stderr or done.stderr.strip().endswith("HEAVY="), done.stderr[-500:]
    hits = json.loads(done.stdout)
    assert hits and (mode == "keyword" or hits[0]["id"] == "regularization-techniques" or mode == "hybrid")


def test_int8_precision_is_its_own_model_checked_against_fp32(tmp_path, onnx_encoder):
    import nearspace
    from nearspace.encoders import load_encoder
    from nearspace.encoders.onnx import INT8_MIN_MEAN_COSINE

    int8 = load_encoder(precision="int8")
    assert int8.name == "all-MiniLM-L6-v2-int8" and int8.precision == "int8" and int8.dim == 384
    assert load_encoder("all-MiniLM-L6-v2-int8") is int8
    assert int8.graph_meta["verified_vs_fp32"]["mean_cosine"] >= INT8_MIN_MEAN_COSINE
    passages = ["Dropout randomly silences units while training.", "Comets follow long elliptical orbits.",
                "Yeast ferments sugar and makes bread rise."]
    cosines = np.sum(int8.encode(passages) * onnx_encoder.encode(passages), axis=1)
    assert (cosines > 0.98).all() and (cosines < 1 - 1e-6).any()  # close to fp32, yet not the same vectors
    # a new collection records the int8 name; an fp32 collection in the same store stays fp32
    with nearspace.open_store(tmp_path / "s.db") as store:
        store.collection("plain").add(["a"], ["Comets follow long elliptical orbits."])
    with nearspace.open_store(tmp_path / "s.db", precision="int8") as store:
        quantised = store.collection("small")
        quantised.add(["a", "b"], passages[:2])
        assert store.collection("plain").encoder.name == "all-MiniLM-L6-v2"
        assert [h.id for h in quantised.search("regularising a network", k=1, mode="dense")] == ["a"]
    with nearspace.open_store(tmp_path / "s.db") as store:  # reopened without the option: still int8
        assert store.collection("small").encoder is int8
    graph = int8.graph_path
    graph.write_bytes(graph.read_bytes()[:1000])  # damaged: quantised again on next use
    from nearspace.encoders.onnx import ensure_int8_graph

    rebuilt, meta = ensure_int8_graph(onnx_encoder.graph_path)
    assert rebuilt == graph and meta["bytes"] == graph.stat().st_size > 1000
