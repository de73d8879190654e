"""The keyword index derived from SQLite: Lucene BM25, kept in step with writes."""
from __future__ import annotations

import math

import numpy as np

from nearspace.store.sqlite.keywords import Tokenizer


def _coll(store, name="kw"):
    coll = store.collection(name)
    ones = lambda n: np.ones((n, coll.backend.dim), dtype=np.float32)  # noqa: E731 (keyword never reads them)
    return coll, ones


def test_scores_are_lucene_bm25_by_hand(store):
    coll, ones = _coll(store)
    texts = ["the cat sat on the cat mat", "a dog barked", "cats and dogs"]
    coll.add(["a", "b", "c"], texts, vectors=ones(3))
    hits = coll.search("cat", k=5, mode="keyword")
    # tokens after stop words and stemming: a=[cat, sat, cat, mat] (4), b=[dog, bark] (2), c=[cat, dog] (2)
    n, df, avgdl, k1, b = 3, 2, 8 / 3, 1.5, 0.75
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expect_a = idf * 2 * (k1 + 1) / (2 + k1 * (1 - b + b * 4 / avgdl))
    expect_c = idf * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 2 / avgdl))
    assert [h.id for h in hits] == ["a", "c"]
    assert math.isclose(hits[0].scores["keyword"], expect_a, rel_tol=1e-5)
    assert math.isclose(hits[1].scores["keyword"], expect_c, rel_tol=1e-5)
    # a query that repeats a term weighs it more (query term frequency is kept)
    twice = coll.search("cat cat", k=1, mode="keyword")[0].scores["keyword"]
    assert math.isclose(twice, 2 * expect_a, rel_tol=1e-5)


def test_index_follows_adds_updates_and_deletes(store):
    coll, ones = _coll(store)
    coll.add(["x", "y"], ["tidal energy from the moon", "solar panels on roofs"], vectors=ones(2))
    assert [h.id for h in coll.search("tidal", mode="keyword")] == ["x"]
    index = coll.backend.keywords
    seq = index.covered_seq
    coll.upsert(["x"], ["wind turbines offshore"], vectors=ones(1))  # x no longer says tidal
    assert coll.search("tidal", mode="keyword") == []
    assert [h.id for h in coll.search("turbines", mode="keyword")] == ["x"]
    assert index.covered_seq > seq and coll.backend.keywords is index  # updated in place, not rebuilt
    coll.delete(["x"])
    assert coll.search("turbines", mode="keyword") == []
    coll.add(["z"], ["offshore wind turbines again"], vectors=ones(1))
    assert [h.id for h in coll.search("turbine", mode="keyword")] == ["z"]


def test_another_process_writes_are_seen(store, tmp_path):
    from nearspace import open_store

    coll, ones = _coll(store)
    coll.add(["a"], ["granite quarry"], vectors=ones(1))
    assert [h.id for h in coll.search("quarry", mode="keyword")] == ["a"]
    with open_store(store.path) as other:
        other.get_collection("kw").add(["b"], ["marble quarry"], vectors=ones(1))
    assert {h.id for h in coll.search("quarry", mode="keyword")} == {"a", "b"}


def test_filtered_keyword_search_keeps_only_allowed_rows(store):
    coll, ones = _coll(store)
    ids = [f"d{i}" for i in range(30)]
    coll.add(ids, [f"harbour report number {i}" for i in range(30)],
             metadatas=[{"n": i} for i in range(30)], vectors=ones(30))
    hits = coll.search("harbour", k=50, mode="keyword", where={"n": {"$lt": 5}})
    assert sorted(h.id for h in hits) == [f"d{i}" for i in range(5)]


def test_tokenizer_matches_the_reference_settings():
    # Lucene stop words go, single characters go, Snowball English stems
    assert Tokenizer()("The Running of a B-tree, and the runners' libraries") == ["run", "tree", "runner", "librari"]


def test_saved_counts_are_reused_by_the_next_process_and_checked(store, monkeypatch, caplog):
    from nearspace import open_store
    from nearspace.store.sqlite import keywords as bm25

    monkeypatch.setattr(bm25, "SAVE_AFTER", 1)
    coll, ones = _coll(store)
    coll.add(["a", "b"], ["granite quarry", "marble statue"], vectors=ones(2))
    first = coll.search("quarry", mode="keyword")
    path = coll.backend.keywords.path
    assert path.exists() and path.parent == store.ann_dir
    read = []
    original = bm25.KeywordIndex._read
    monkeypatch.setattr(bm25.KeywordIndex, "_read", lambda self, rows: read.append(rows) or original(self, rows))
    with open_store(store.path) as other:  # a fresh process's view: loads the saved counts
        again = other.get_collection("kw").search("quarry", mode="keyword")
    assert read == [] and [(h.id, h.scores) for h in again] == [(h.id, h.scores) for h in first]
    # damage: the saved copy is not trusted, the index is rebuilt from SQLite
    path.write_bytes(path.read_bytes()[:40])
    with open_store(store.path) as other:
        assert [h.id for h in other.get_collection("kw").search("quarry", mode="keyword")] == ["a"]
    assert read == [None] and "rebuilding the keyword index" in caplog.text


def test_an_older_saved_copy_is_caught_up_from_the_change_log(store, tmp_path, monkeypatch):
    import shutil

    from nearspace import open_store
    from nearspace.store.sqlite import keywords as bm25

    monkeypatch.setattr(bm25, "SAVE_AFTER", 1)
    coll, ones = _coll(store)
    coll.add(["a"], ["granite quarry"], vectors=ones(1))
    coll.search("quarry", mode="keyword")
    saved = tmp_path / "saved.npz"
    shutil.copy(coll.backend.keywords.path, saved)
    coll.delete(["a"])
    coll.add(["b"], ["marble quarry"], vectors=ones(1))
    coll.search("quarry", mode="keyword")
    # put back a copy covering the old history (as a restored backup would leave beside the store)
    shutil.copy(saved, coll.backend.keywords.path)
    with open_store(store.path) as other:
        assert [h.id for h in other.get_collection("kw").search("quarry", mode="keyword")] == ["b"]


def test_saved_postings_with_impossible_numbers_are_rebuilt(store, monkeypatch, caplog):
    # a readable file whose arrays lie (a posting pointing past the documents) is not trusted
    from nearspace import open_store
    from nearspace.store.sqlite import keywords as bm25

    monkeypatch.setattr(bm25, "SAVE_AFTER", 1)
    coll, ones = _coll(store)
    coll.add(["a", "b"], ["granite quarry", "marble statue"], vectors=ones(2))
    coll.flush()
    path = coll.backend.keywords.path
    with np.load(path) as saved:
        arrays = dict(saved)
    arrays["indices"] = arrays["indices"] + 7
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    with open_store(store.path) as other:
        assert [h.id for h in other.get_collection("kw").search("quarry", mode="keyword")] == ["a"]
    assert "points at documents it does not hold" in caplog.text


def test_flush_saves_postings_that_a_fresh_process_reads_without_scipy(store):
    import subprocess
    import sys

    coll, ones = _coll(store)
    coll.add(["a", "b"], ["granite quarry", "marble statue"], vectors=ones(2))
    coll.flush()
    probe = ("import sys; from nearspace import open_store; s = open_store(sys.argv[1]); "
             "print([h.id for h in s.get_collection('kw').search('quarry', mode='keyword')], 'scipy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe, str(store.path)], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["['a']", "False"], done.stderr[-2000:]
