import sqlite3

import numpy as np
import pytest

from nearspace import open_store
from nearspace.errors import CollectionNotFound, EncoderMismatch, InputError, StoreError
from nearspace.store.sqlite.database import Database


def _vecs(n, dim=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture()
def data(tmp_path):
    db = Database(tmp_path / "s.db")
    yield db.collection("c", encoder="test-enc", dim=8, create=True)
    db.close()


def _write(data, ids, texts, metas=None, replace=True, seed=0):
    from nearspace.store.sqlite.database import Document

    docs = [Document(i, t, m or {}) for i, t, m in zip(ids, texts, metas or [None] * len(ids))]
    return data.write(docs, _vecs(len(docs), seed=seed), replace=replace)


def test_wal_mode_and_schema(data):
    assert data.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert data.count() == 0


def test_upsert_semantics(data):
    assert _write(data, ["a", "b"], ["one", "two"])["added"] == 2
    counts = _write(data, ["a", "b"], ["one", "two changed"], [{"k": 1}, None], seed=1)
    assert counts == {"added": 0, "updated": 1, "metadata": 1, "unchanged": 0}
    assert data.count() == 2
    assert data.get(["b"])[0].text == "two changed"
    assert data.get(["a"])[0].metadata == {"k": 1}
    # the vector of an updated document is replaced, the old row is gone from the change log view
    ops = [op for _, _, op in data.changes_since(0)]
    assert ops.count("add") == 3 and ops.count("del") == 1


def test_add_refuses_existing_ids_and_writes_nothing(data):
    _write(data, ["a"], ["one"])
    with pytest.raises(InputError, match="already stored"):
        _write(data, ["b", "a"], ["two", "again"], replace=False)
    assert data.count() == 1 and data.get(["b"]) == [None]


def test_wrong_dimension_and_nan_are_refused(data):
    from nearspace.store.sqlite.database import Document

    with pytest.raises(InputError, match="dimension 4 does not match"):
        data.write([Document("x", "t")], np.ones((1, 4), dtype=np.float32), replace=True)
    bad = _vecs(1)
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        data.write([Document("x", "t")], bad, replace=True)
    assert data.count() == 0


def test_delete_removes_everything_for_the_id(data):
    _write(data, ["a", "b"], ["apple pie", "banana bread"], [{"t": "x"}, {"t": "y"}])
    assert data.delete(["a", "zzz"]) == 1
    assert data.count() == 1
    from nearspace.store.sqlite.keywords import KeywordIndex

    assert KeywordIndex(data).search("apple", 10) == []
    assert data.filter_rows({"t": "x"}).size == 0
    assert data.conn.execute("SELECT count(*) FROM meta_index").fetchone()[0] == 1


METAS = [
    {"topic": "ml", "year": 2019, "tags": ["a", "b"], "draft": False},
    {"topic": "ml", "year": 2021, "tags": ["b"], "author": {"name": "Ada"}},
    {"topic": "cooking", "year": 2021, "tags": ["c"]},
    {"topic": "space", "year": 2005},
]


@pytest.mark.parametrize("where, expected", [
    ({"topic": "ml"}, {"d0", "d1"}),
    ({"topic": {"$in": ["cooking", "space"]}}, {"d2", "d3"}),
    ({"year": {"$gte": 2019, "$lt": 2021}}, {"d0"}),
    ({"year": {"$gt": 2000}, "topic": "ml"}, {"d0", "d1"}),
    ({"$or": [{"topic": "space"}, {"tags": "c"}]}, {"d2", "d3"}),
    ({"$and": [{"tags": "b"}, {"year": 2021}]}, {"d1"}),
    ({"topic": {"$ne": "ml"}}, {"d2", "d3"}),
    ({"topic": {"$nin": ["ml", "space"]}}, {"d2"}),
    ({"author.name": "Ada"}, {"d1"}),
    ({"draft": False}, {"d0"}),
    ({"topic": "nothing"}, set()),
])
def test_metadata_filters(data, where, expected):
    _write(data, [f"d{i}" for i in range(4)], ["t"] * 4, METAS)
    rows = data.filter_rows(where)
    got = {d.id for d in data.rows_to_documents(rows.tolist()).values()}
    assert got == expected


def test_filters_use_the_metadata_index_not_a_scan(data):
    from nearspace.store.filters import compile_where

    sql, params = compile_where({"year": {"$gte": 2000}, "topic": {"$in": ["a", "b"]}}, data.cid)
    plan = " ".join(r[-1] for r in data.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "meta_by_num" in plan and "meta_by_str" in plan
    assert "SCAN meta_index" not in plan
    # both bounds of a range go into one index lookup rather than two open-ended scans
    sql, _ = compile_where({"year": {"$gte": 2000, "$lt": 2010}}, data.cid)
    assert "INTERSECT" not in sql and "num >= ? AND num < ?" in sql


@pytest.mark.parametrize("where, message", [
    ({"year": {"$between": 1}}, "unknown operator"),
    ({"tags": {"$in": []}}, "non-empty list"),
    ({"$xor": []}, "unknown filter operator"),
    ({"year": {"$gt": [1]}}, "compares numbers"),
    ({}, "non-empty"),
])
def test_bad_filters_are_explained(data, where, message):
    with pytest.raises(InputError, match=message):
        data.filter_rows(where)


def test_collections_record_their_encoder(tmp_path):
    db = Database(tmp_path / "s.db")
    db.collection("one", encoder="enc-a", dim=8, create=True)
    db.collection("two", encoder="enc-b", dim=16, create=True)
    assert db.collection_names() == ["one", "two"]
    with pytest.raises(EncoderMismatch, match="built with encoder 'enc-a'"):
        db.collection("one", encoder="enc-b")
    with pytest.raises(EncoderMismatch, match="dimension"):
        db.collection("one", dim=16)
    with pytest.raises(CollectionNotFound, match="unknown collection 'three'.*one, two"):
        db.collection("three")
    with pytest.raises(InputError, match="invalid collection name"):
        db.collection("bad name!", encoder="e", dim=2, create=True)


def test_store_path_problems_are_clear(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        Database(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        Database(junk)
    assert junk.read_bytes() == b"this is not sqlite" * 100


def test_unwritable_store_is_clear(tmp_path):
    import os

    if os.geteuid() == 0:
        target = "/proc/nearspace-test/store.db"  # even root cannot create files under /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "store.db")
    with pytest.raises(StoreError):
        Database(target)


def test_readers_in_other_connections_see_committed_batches(tmp_path):
    path = tmp_path / "s.db"
    writer = Database(path).collection("c", encoder="e", dim=8, create=True)
    reader = Database(path).collection("c")
    _write(writer, ["a"], ["one"])
    assert reader.count() == 1 and reader.last_seq() == writer.last_seq()


def test_the_api_refuses_a_different_encoder(tmp_path, encoder):
    from nearspace.encoders.sparse import TfidfEncoder

    with open_store(tmp_path / "s.db", encoder=encoder) as store:
        store.collection("docs").add(["a"], ["hello world"])
        tfidf = TfidfEncoder().fit(["hello world", "other words"])
        with pytest.raises(EncoderMismatch, match="refusing encoder 'tfidf'"):
            store.collection("docs", encoder=tfidf)
        assert store.collection("docs").count() == 1


def test_commit_leaves_the_wal_copy_to_a_background_checkpoint(tmp_path):
    import time

    db = Database(tmp_path / "s.db")
    data = db.collection("c", encoder="test-enc", dim=8, create=True)
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never inside COMMIT
    db.checkpointer.threshold = 1  # any WAL at all asks for a copy (below the inline limit)
    main_before = (tmp_path / "s.db").stat().st_size
    _write(data, [f"d{i}" for i in range(300)], [f"text number {i} " * 20 for i in range(300)])
    deadline = time.monotonic() + 10
    while db.checkpointer.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert db.checkpointer.runs >= 1
    assert (tmp_path / "s.db").stat().st_size > main_before  # the pages reached the main file
    db.close()
    assert not db.checkpointer._thread.is_alive()  # close stops the thread
    reopened = Database(tmp_path / "s.db")
    assert reopened.collection("c").count() == 300
    reopened.close()


def test_a_large_transaction_leaves_no_large_wal_behind(tmp_path):
    # without truncation the WAL of one big write stays its size on disk until the next write
    import time

    db = Database(tmp_path / "s.db")
    data = db.collection("c", encoder="test-enc", dim=8, create=True)
    db.checkpointer.threshold, db.checkpointer.keep = 1, 64 * 1024
    wal = tmp_path / "s.db-wal"
    _write(data, [f"d{i}" for i in range(2000)], [f"text number {i} " * 40 for i in range(2000)])
    assert wal.stat().st_size > 1024 * 1024  # the transaction's pages
    deadline = time.monotonic() + 10
    while wal.stat().st_size > db.checkpointer.keep and time.monotonic() < deadline:
        time.sleep(0.02)
    assert wal.stat().st_size <= db.checkpointer.keep, wal.stat().st_size
    assert data.count() == 2000  # the store's own connection reads on, and writes on
    _write(data, ["after"], ["written after the truncation"], seed=7)
    db.close()
    reopened = Database(tmp_path / "s.db")
    assert reopened.collection("c").count() == 2001
    assert reopened.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reopened.close()


def test_back_to_back_writes_keep_the_wal_bounded(tmp_path):
    # a background pass alone lags a writer that never pauses; past the inline limit the
    # writer copies the WAL itself, so SQLite can restart it from the beginning
    db = Database(tmp_path / "s.db")
    data = db.collection("c", encoder="test-enc", dim=8, create=True)
    db.checkpointer.threshold, db.checkpointer.inline_limit = 64 * 1024, 512 * 1024
    wal = tmp_path / "s.db-wal"
    largest = 0
    for batch in range(60):
        ids = [f"d{batch}-{i}" for i in range(50)]
        _write(data, ids, [f"batch {batch} text {i} " * 30 for i in range(50)], seed=batch)
        largest = max(largest, wal.stat().st_size)
    assert largest < 4 * 1024 * 1024, largest  # 60 batches wrote ~10 MB of pages
    assert data.count() == 3000
    db.close()


def test_idle_checkpoint_thread_ends_and_a_later_commit_starts_another(tmp_path, monkeypatch):
    import time

    import nearspace.store.sqlite.database as database

    monkeypatch.setattr(database, "IDLE_SECONDS", 0.2)
    db = Database(tmp_path / "s.db")
    data = db.collection("c", encoder="test-enc", dim=8, create=True)
    db.checkpointer.threshold = 1

    def wait_for(predicate):
        deadline = time.monotonic() + 10
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.02)
        return predicate()

    _write(data, ["a"], ["first"])
    first = db.checkpointer._thread
    assert wait_for(lambda: db.checkpointer.runs >= 1)
    assert wait_for(lambda: not first.is_alive())  # a dropped Store leaves no thread behind
    _write(data, ["b"], ["second"], seed=1)
    assert db.checkpointer._thread is not first
    assert wait_for(lambda: db.checkpointer.runs >= 2)
    db.close()


def test_flush_prunes_the_change_log_to_what_every_index_covers(tmp_path, encoder):
    """The change log no longer grows for ever: flush keeps only the change the saved indexes
    cover (its token proves their history) and what came after."""
    import nearspace

    path = tmp_path / "p.db"
    with nearspace.open_store(path, encoder=encoder) as store:
        coll = store.collection("c")
        for round_ in range(5):
            coll.upsert([f"d{i}" for i in range(10)], [f"text {i} version {round_}" for i in range(10)])
        logged = coll.backend.data.conn.execute("SELECT count(*) FROM changes").fetchone()[0]
        assert logged >= 50
        coll.flush()
        kept = coll.backend.data.conn.execute("SELECT count(*) FROM changes").fetchone()[0]
        assert kept < logged and kept <= 11
        hits = coll.search("text 3 version 4", k=1)
        assert hits[0].id == "d3"
    with nearspace.open_store(path, encoder=encoder) as store:  # a new process reads the saved indexes
        coll = store.collection("c")
        assert coll.search("text 7 version 4", k=1)[0].id == "d7" and coll.count() == 10
        coll.upsert(["new"], ["a brand new text about tides"])
        assert coll.search("tides", k=1, mode="keyword")[0].id == "new"
        store.compact()
        assert coll.search("brand new tides", k=1)[0].id == "new"
