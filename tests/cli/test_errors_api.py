"""The Python API raises nearspace errors, never raw sqlite3 / Overflow / Recursion errors, for
hostile input, and the store is unchanged by any refused input."""
from __future__ import annotations

import numpy as np
import pytest

from nearspace.errors import InputError, LimitError, NearspaceError, StoreClosed
from nearspace.ingest.readers import read_jsonl
from tests.cli.test_errors import DIM, make_store


@pytest.fixture
def store(tmp_path):
    import nearspace

    path = tmp_path / "s.db"
    make_store(path)
    opened = nearspace.open_store(path)
    yield opened
    opened.close()


def snapshot(store) -> list:
    return list(store.db.conn.execute("SELECT doc_id, hash, metadata FROM docs ORDER BY doc_id"))


def deep(levels: int, leaf) -> dict:
    out = leaf
    for _ in range(levels):
        out = {"x": out}
    return out


@pytest.mark.parametrize("metadata, phrase", [
    (deep(2000, 1), "nested more than"),
    ({"n": 10 ** 400}, "64-bit range"),
    ({"n": -(2 ** 63) - 1}, "64-bit range"),
    ({"n": float("nan")}, "non-finite"),
    ({"s": "bad \ud800 text"}, "lone surrogate"),
])
def test_bad_metadata_is_refused_before_encoding(store, metadata, phrase):
    coll = store.collection("c")
    before = snapshot(store)
    vectors = np.ones((1, DIM), dtype=np.float32)
    with pytest.raises(LimitError, match=phrase):
        coll.upsert(ids=["new"], texts=["text"], metadatas=[metadata], vectors=vectors)
    assert snapshot(store) == before


def test_bad_text_is_refused(store):
    coll = store.collection("c")
    before = snapshot(store)
    with pytest.raises(LimitError, match="lone surrogate"):
        coll.upsert(ids=["new"], texts=["a \udfff b"], vectors=np.ones((1, DIM), dtype=np.float32))
    with pytest.raises(InputError, match="limit is 4,000,000"):
        coll.upsert(ids=["new"], texts=["x" * 4_000_001], vectors=np.ones((1, DIM), dtype=np.float32))
    assert snapshot(store) == before


def test_huge_filters_and_k(store):
    coll = store.collection("c")
    # 100k values run as one parameter, well past SQLite's compound-select limit of 500
    hits = coll.search("tides", mode="keyword", k=50, where={"n": {"$in": list(range(100_000))}})
    assert sorted(h.metadata["n"] for h in hits) == list(range(20))
    hits = coll.search("tides", mode="keyword", k=50, where={"n": {"$nin": list(range(5, 100_000))}})
    assert sorted(h.metadata["n"] for h in hits) == list(range(5))
    strings = [f"v{i}" for i in range(100_000)]
    assert coll.search("tides", mode="keyword", where={"n": {"$in": strings}}) == []
    with pytest.raises(InputError, match="at most"):
        coll.search("tides", mode="keyword", k=2 ** 63)
    with pytest.raises(LimitError, match="64-bit"):
        coll.search("tides", mode="keyword", where={"n": {"$gt": 10 ** 400}})
    with pytest.raises(LimitError, match="nested more than"):
        nested: dict = {"n": 1}
        for _ in range(2000):
            nested = {"$and": [nested]}
        coll.search("tides", mode="keyword", where=nested)
    with pytest.raises(LimitError, match="conditions"):
        coll.search("tides", mode="keyword", where={"$or": [{"n": i} for i in range(1000)]})


def test_closed_store_is_a_nearspace_error(store):
    coll = store.collection("c")
    store.close()
    with pytest.raises(StoreClosed, match="closed"):
        coll.search("tides", mode="keyword")
    with pytest.raises(StoreClosed):
        coll.count()


@pytest.mark.parametrize("line, phrase", [
    ('{"id": "a", "text": "x\\ud800"}', "lone surrogate"),
    ('{"id": "a", "text": "x", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"id": "a", "text": "x", "metadata": {"n": ' + "9" * 5000 + "}}", "64 bits"),
    ('{"id": "a", "text": "x", "metadata": {"n": 1' + "0" * 400 + "}}", "64-bit range"),
])
def test_hostile_jsonl_is_a_one_line_error(tmp_path, line, phrase):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(NearspaceError, match=phrase) as caught:
        read_jsonl(path)
    assert "\n" not in str(caught.value)
