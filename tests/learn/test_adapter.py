import numpy as np
import pytest

from nearspace.encoders.base import normalize_rows
from nearspace.learn.adapter import fit_linear_adapter, load_adapter, save_adapter
from nearspace.store.sqlite.database import Document


def _task(seed=0, n_docs=400, n_queries=240, dim=32):
    """Queries are a fixed linear distortion of their relevant document: a learnable task."""
    rng = np.random.default_rng(seed)
    docs = normalize_rows(rng.normal(size=(n_docs, dim)))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    mix = 0.4 * np.eye(dim) + rotation
    targets = rng.integers(0, n_docs, size=n_queries)
    queries = normalize_rows(docs[targets] @ mix.T + 0.05 * rng.normal(size=(n_queries, dim)))
    return docs, queries, targets


def test_adapter_learns_a_task_and_keeps_the_best_dev_epoch():
    docs, queries, targets = _task()
    ids = [f"d{i}" for i in range(len(docs))]
    train, dev = slice(0, 180), slice(180, 240)
    dev_qids = [f"q{i}" for i in range(180, 240)]
    dev_qrels = {q: {ids[t]: 1} for q, t in zip(dev_qids, targets[dev])}
    adapter, report = fit_linear_adapter(queries[train], [[t] for t in targets[train]], docs, ids,
                                         queries[dev], dev_qids, dev_qrels, epochs=40, lr=1e-2)
    assert report.improved and report.dev_ndcg_after > report.dev_ndcg_before + 0.1
    assert report.history[report.best_epoch - 1] == pytest.approx(report.dev_ndcg_after)
    moved = adapter.transform(queries[dev])
    assert np.allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)


def test_no_gain_keeps_the_identity():
    docs, queries, targets = _task(seed=1)
    ids = [f"d{i}" for i in range(len(docs))]
    rng = np.random.default_rng(3)
    wrong = rng.integers(0, len(docs), size=180)  # labels unrelated to the queries: nothing to learn
    dev_qids = [f"q{i}" for i in range(180, 240)]
    dev_qrels = {q: {ids[t]: 1} for q, t in zip(dev_qids, targets[180:240])}
    adapter, report = fit_linear_adapter(queries[:180], [[t] for t in wrong], docs, ids, queries[180:240],
                                         dev_qids, dev_qrels, epochs=8, patience=3)
    if not report.improved:
        assert np.array_equal(adapter.matrix, np.eye(docs.shape[1], dtype=np.float32))


def test_adapter_is_stored_with_the_collection(tmp_path):
    from nearspace.store.sqlite.backend import SQLiteStore

    data = SQLiteStore(tmp_path / "s.db").create_collection("c", "e", 4)
    assert load_adapter(data) is None
    from nearspace.learn.adapter import LinearAdapter

    matrix = np.diag([1.0, 2.0, 3.0, 4.0]).astype(np.float32)
    save_adapter(data, LinearAdapter(matrix, {"note": "x"}))
    reopened = SQLiteStore(tmp_path / "s.db").open_collection("c")
    loaded = load_adapter(reopened)
    assert np.array_equal(loaded.matrix, matrix) and loaded.meta["note"] == "x"
    assert reopened.delete_artifact("query_adapter") and load_adapter(reopened) is None
