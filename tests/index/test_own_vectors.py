"""Bring your own vectors: a collection from a dimension alone, items without text, search by vector."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import nearspace
from nearspace.errors import InputError


def vectors(n: int, dim: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_round_trip_filters_delete_reopen(tmp_path):
    path = tmp_path / "own.db"
    V = vectors(300)
    ids = [f"p{i}" for i in range(300)]
    with nearspace.open_store(path) as store:
        products = store.collection("products", dim=48, metric="cosine")
        assert products.vectors_only
        counts = products.upsert(ids=ids, vectors=V, metadatas=[{"shop": i % 3, "price": i} for i in range(300)])
        assert counts["added"] == 300
        hits = products.search(vector=V[7], k=5)
        assert hits[0].id == "p7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        filtered = products.search(vector=V[7], k=10, where={"shop": 1, "price": {"$lt": 100}})
        assert len(filtered) == 10
        assert all(h.metadata["shop"] == 1 and h.metadata["price"] < 100 for h in filtered)
        np.testing.assert_allclose(products.vector_of("p7"), V[7] / np.linalg.norm(V[7]), atol=1e-6)
        assert products.delete(["p7"]) == 1
        assert "p7" not in [h.id for h in products.search(vector=V[7], k=5)]
    with nearspace.open_store(path) as store:
        again = store.get_collection("products")
        assert again.vectors_only and again.count() == 299
        assert again.search(vector=V[8], k=1)[0].id == "p8"


def test_clear_errors(tmp_path):
    with nearspace.open_store(tmp_path / "s.db") as store:
        c = store.collection("c", dim=8)
        with pytest.raises(InputError, match="own vectors"):
            c.search("a text query")
        with pytest.raises(InputError, match="shape"):
            c.search(vector=np.ones(9))
        with pytest.raises(InputError, match="needs texts, or vectors"):
            c.upsert(ids=["a"])
        with pytest.raises(InputError, match="all zeros"):
            c.upsert(ids=["a"], vectors=np.zeros((1, 8)))
        with pytest.raises(InputError, match="metric"):
            store.collection("d", dim=8, metric="l2")
        with pytest.raises(InputError, match="dimension 8, not 4"):
            store.collection("c", dim=4)
        assert c.count() == 0


def test_vectors_only_never_imports_a_model(tmp_path):
    code = f"""
import sys, json, numpy as np, nearspace
store = nearspace.open_store({str(tmp_path / 'v.db')!r})
c = store.collection("items", dim=16)
V = np.random.default_rng(1).standard_normal((50, 16)).astype("float32")
c.upsert(ids=[str(i) for i in range(50)], vectors=V)
hits = c.search(vector=V[3], k=3)
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "onnxruntime") if m in sys.modules)
print(json.dumps({{"top": hits[0].id, "heavy": heavy}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"top": "3", "heavy": []}
