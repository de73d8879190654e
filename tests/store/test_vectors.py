import json

import numpy as np
import pytest

from nearspace.store.sqlite.database import Database, Document
from nearspace.store.sqlite.vectors import VectorIndex


def _vecs(n, dim=16, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fill(data, n, start=0, seed=0):
    docs = [Document(f"v{i}", f"text {i}", {"group": i % 5}) for i in range(start, start + n)]
    vectors = _vecs(n, seed=seed)
    for s in range(0, n, 500):
        data.write(docs[s:s + 500], vectors[s:s + 500], replace=True)
    return vectors


@pytest.fixture()
def data(tmp_path):
    db = Database(tmp_path / "s.db")
    yield db.collection("c", encoder="e", dim=16, create=True)
    db.close()


def _exact_ids(data, query, k, where=None):
    rows, matrix = data.vectors()
    if where is not None:
        keep = np.isin(rows, data.filter_rows(where))
        rows, matrix = rows[keep], matrix[keep]
    top = np.argsort(-(matrix @ query))[:k]
    return set(rows[top].tolist())


def test_exact_search_is_exact(data, tmp_path):
    _fill(data, 300)
    index = VectorIndex(data, tmp_path / "ann")
    for q in _vecs(5, seed=9):
        got = {row for row, _ in index.search(q, 10)}
        assert got == _exact_ids(data, q, 10)
    assert index.hnsw is None


def test_hnsw_above_threshold_has_high_recall_and_filters(data, tmp_path):
    _fill(data, 3000)
    index = VectorIndex(data, tmp_path / "ann", exact_threshold=1000)
    queries = _vecs(30, seed=7)
    recall = np.mean([len({r for r, _ in index.search(q, 10)} & _exact_ids(data, q, 10)) / 10 for q in queries])
    assert index.hnsw is not None and recall >= 0.95
    allowed = data.filter_rows({"group": 2})  # 600 rows: filtered exact path
    for q in queries[:5]:
        got = [r for r, _ in index.search(q, 10, allowed)]
        assert len(got) == 10 and set(got) == _exact_ids(data, q, 10, {"group": 2})
    wide = data.filter_rows({"group": {"$ne": 2}})  # 2400 rows: filtered graph walk
    got = [r for r, _ in index.search(queries[0], 10, wide)]
    assert len(got) == 10 and set(got) <= set(wide.tolist())


def test_index_catches_up_with_writes_and_deletes(data, tmp_path):
    vectors = _fill(data, 1200)
    index = VectorIndex(data, tmp_path / "ann", exact_threshold=1000)
    target = vectors[5]
    assert index.search(target, 1)[0][1] == pytest.approx(1.0, abs=1e-5)
    data.delete(["v5"])
    assert all(r != 5 for r, _ in index.search(target, 5))
    new = _vecs(1, seed=42)
    data.write([Document("new", "new text")], new, replace=True)
    (row, score), = index.search(new[0], 1)
    assert data.rows_to_documents([row])[row].id == "new" and score == pytest.approx(1.0, abs=1e-5)


def test_saved_graph_is_reused_caught_up_or_rebuilt(data, tmp_path):
    ann = tmp_path / "ann"
    _fill(data, 1500)
    index = VectorIndex(data, ann, exact_threshold=1000)
    assert index.save()
    meta = json.loads((ann / "c.json").read_text())
    assert meta["seq"] == data.last_seq() and meta["count"] == 1500
    # rows written after the save are caught up by a fresh index that loads the file
    extra = _vecs(1, seed=77)
    data.write([Document("late", "late text")], extra, replace=True)
    fresh = VectorIndex(data, ann, exact_threshold=1000)
    (row, score), = fresh.search(extra[0], 1)
    assert data.rows_to_documents([row])[row].id == "late"
    assert fresh.hnsw_seq == data.last_seq()
    # a damaged graph file is detected and rebuilt from SQLite, never trusted
    (ann / "c.hnsw").write_bytes(b"garbage")
    rebuilt = VectorIndex(data, ann, exact_threshold=1000)
    (row, _), = rebuilt.search(extra[0], 1)
    assert data.rows_to_documents([row])[row].id == "late"
