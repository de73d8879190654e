"""Regression tests for [7/13]: the derived index never disagrees with SQLite.

One test per finding; each failed on the code before the fix.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import threading

import numpy as np
import pytest

from nearspace import open_store
from nearspace.errors import InputError
from tests.store.hashing import HashingEncoder

THRESHOLD = 200  # the HNSW path from 200 vectors, so tests stay small


def _open(path):
    return open_store(path, encoder=HashingEncoder())


def _store(path):
    from nearspace.api import Store

    return Store(path, encoder=HashingEncoder(), exact_threshold=THRESHOLD)


def _texts(prefix: str, n: int) -> list[str]:
    """Texts whose every word carries ``prefix``: sets with different prefixes share no words."""
    return [f"{prefix}doc {prefix}{i} {prefix}topic{i % 17} {prefix}word{i * 7 % 101}" for i in range(n)]


def _finds_itself(coll, ids, texts) -> int:
    found = 0
    for doc_id, text in zip(ids, texts):
        hits = coll.search(text, k=1, mode="dense")
        found += bool(hits) and hits[0].id == doc_id
    return found


def test_restored_store_never_trusts_a_graph_saved_after_the_backup(tmp_path):
    path = tmp_path / "s.db"
    store = _store(path)
    coll = store.collection("c")
    coll.upsert(ids=[f"a{i}" for i in range(400)], texts=_texts("base", 400))
    assert coll.flush()
    store.close()
    shutil.copy(path, tmp_path / "backup.db")  # backup taken with the store closed (WAL checkpointed)

    store = _store(path)
    coll = store.collection("c")
    coll.upsert(ids=[f"b{i}" for i in range(40)], texts=_texts("later", 40))
    assert coll.flush()  # the graph now covers changes the backup never saw
    store.close()

    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"s.db{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", path)

    store = _store(path)
    coll = store.collection("c")
    new_ids, new_texts = [f"n{i}" for i in range(40)], _texts("fresh", 40)
    coll.upsert(ids=new_ids, texts=new_texts)
    assert _finds_itself(coll, new_ids, new_texts) == 40
    assert all(r.id.startswith(("a", "n")) for r in coll.search("laterdoc", k=50, mode="dense"))
    store.close()


def test_sidecar_claiming_more_than_sqlite_holds_is_rebuilt(tmp_path):
    import json

    path = tmp_path / "s.db"
    store = _store(path)
    coll = store.collection("c")
    coll.upsert(ids=[f"a{i}" for i in range(300)], texts=_texts("base", 300))
    coll.flush()
    sidecar = store.ann_dir / "c.json"
    meta = json.loads(sidecar.read_text())
    meta["seq"] += 40  # as after a power loss: the graph was fsynced, SQLite's last commits were not
    sidecar.write_text(json.dumps(meta))
    store.close()
    store = _store(path)
    coll = store.collection("c")
    new_ids, new_texts = [f"n{i}" for i in range(40)], _texts("fresh", 40)
    for doc_id, text in zip(new_ids, new_texts):  # 40 commits: SQLite reaches the claimed sequence
        coll.upsert(ids=[doc_id], texts=[text])
    store.close()
    store = _store(path)
    coll = store.collection("c")
    assert _finds_itself(coll, new_ids, new_texts) == 40
    store.close()


def _search_damaged(path: str, queue) -> None:
    try:
        store = _store(path)
        coll = store.collection("c")
        hits = coll.search(_texts("base", 300)[3], k=3, mode="dense")
        queue.put(hits[0].id)
    except BaseException as exc:  # report, don't hang the parent
        queue.put(f"error: {exc!r}")


def test_damage_inside_the_graph_is_rebuilt_not_a_crash(tmp_path, caplog):
    path = tmp_path / "s.db"
    store = _store(path)
    coll = store.collection("c")
    coll.upsert(ids=[f"a{i}" for i in range(300)], texts=_texts("base", 300))
    coll.flush()
    store.close()
    graph = tmp_path / "s.db.ann" / "c.hnsw"
    size = graph.stat().st_size
    with open(graph, "r+b") as handle:  # same size, garbage in the middle
        handle.seek(size // 4)
        handle.write(os.urandom(size // 2))
    # a segfault in a child shows as a negative exit code instead of killing pytest
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_search_damaged, args=(str(path), queue))
    child.start()
    child.join(120)
    assert child.exitcode == 0, f"search on a damaged graph died with exit code {child.exitcode}"
    assert queue.get(timeout=5) == "a3"


def _writer(path: str, label: str, rounds: int) -> None:
    store = _open(path)
    coll = store.collection("c")
    for r in range(rounds):
        coll.upsert(ids=["X", f"{label}-{r}"], texts=[f"{label} version {r} of the contested text x{r}{label}",
                                                       f"{label} filler {r}"])
    store.close()


def test_two_writers_of_one_id_never_leave_a_wrong_vector(tmp_path):
    path = str(tmp_path / "s.db")
    _open(path).collection("c").upsert(ids=["X"], texts=["start"])
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, label, 15)) for label in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    store = _open(path)
    coll = store.collection("c")
    stored = coll.get("X")
    vector = np.frombuffer(store.db.conn.execute(
        "SELECT vector FROM docs WHERE doc_id = 'X'").fetchone()[0], dtype=np.float32)
    expected = HashingEncoder().encode([stored.text])[0]
    assert np.allclose(vector, expected, atol=1e-5)
    assert coll.search(stored.text, k=1, mode="dense")[0].id == "X"
    store.close()


def test_race_between_hash_read_and_write_is_caught_in_the_transaction(tmp_path):
    """Deterministic version of the finding: another connection changes X between our hash
    read and our write transaction; the write must encode X instead of storing a placeholder."""
    path = tmp_path / "s.db"
    store = _open(path)
    coll = store.collection("c")
    coll.upsert(ids=["X"], texts=["original text"])
    original = coll.backend.hashes

    def hashes_then_another_process_writes(ids):
        stored = original(ids)  # we now believe X is unchanged ...
        other = _open(path)  # ... and another process changes it before our transaction begins
        other.collection("c").upsert(ids=["X"], texts=["changed by someone else"])
        other.close()
        coll.backend.hashes = original
        return stored

    coll.backend.hashes = hashes_then_another_process_writes
    coll.upsert(ids=["X"], texts=["original text"])
    assert coll.get("X").text == "original text"
    vector = np.frombuffer(store.db.conn.execute(
        "SELECT vector FROM docs WHERE doc_id = 'X'").fetchone()[0], dtype=np.float32)
    assert np.allclose(vector, HashingEncoder().encode(["original text"])[0], atol=1e-5)
    assert coll.search("original text", k=1, mode="dense")[0].id == "X"
    store.close()


def test_backup_restored_under_a_live_reader_is_not_served_from_its_memory(tmp_path):
    """A process that caught up with the old history must notice the restored one, even when
    new writes bring the change log back to (or past) the sequence it had covered."""
    from nearspace.store.sqlite.backup import backup, restore

    path = tmp_path / "s.db"
    writer = _store(path)
    wcoll = writer.collection("c")
    wcoll.upsert(ids=[f"a{i}" for i in range(250)], texts=_texts("base", 250))
    backup(path, tmp_path / "backup.db")
    reader = _store(path)
    rcoll = reader.collection("c")
    later_ids, later_texts = [f"b{i}" for i in range(5)], _texts("later", 5)
    for doc_id, text in zip(later_ids, later_texts):  # five commits the backup never saw
        wcoll.upsert(ids=[doc_id], texts=[text])
    assert rcoll.search(later_texts[0], k=1, mode="dense")[0].id == "b0"  # the reader covers them
    writer.close()
    restore(tmp_path / "backup.db", path, overwrite=True)  # the reader stays open
    writer = _store(path)
    wcoll = writer.collection("c")
    new_ids, new_texts = [f"n{i}" for i in range(5)], _texts("fresh", 5)
    for doc_id, text in zip(new_ids, new_texts):  # the same sequence numbers, other documents
        wcoll.upsert(ids=[doc_id], texts=[text])
    assert _finds_itself(rcoll, new_ids, new_texts) == 5
    assert not {r.id for r in rcoll.search(later_texts[0], k=20, mode="dense")} & set(later_ids)
    assert len(rcoll.search("basedoc", k=1000, mode="dense")) == rcoll.count() == 255
    reader.close()
    writer.close()


def test_a_commit_between_reads_is_applied_once(tmp_path):
    path = tmp_path / "s.db"
    store = _store(path)
    coll = store.collection("c")
    coll.upsert(ids=[f"a{i}" for i in range(50)], texts=_texts("base", 50))
    coll.search("base", k=5, mode="dense")  # index covers the first batch
    writer = _store(path)
    wcoll = writer.collection("c")
    original = coll.backend.data.changes_since

    def racing_changes_since(seq):
        # another process commits an update between refresh's reads
        wcoll.upsert(ids=["a1", "new1"], texts=["a1 rewritten entirely", "brand new"])
        coll.backend.data.changes_since = original
        return original(seq)

    coll.backend.data.changes_since = racing_changes_since
    coll.upsert(ids=["a2"], texts=["a2 changed so refresh has work"])
    results = coll.search("document", k=200, mode="dense")
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)), "an id appeared twice in one result"
    results = coll.search("document", k=200, mode="dense")
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)) == coll.count()
    store.close()
    writer.close()


def test_one_store_shared_by_threads(tmp_path):
    store = _open(tmp_path / "s.db")
    coll = store.collection("c")
    errors: list[BaseException] = []
    acknowledged: list[str] = []
    lock = threading.Lock()

    def write(label):
        try:
            for i in range(40):
                coll.upsert(ids=[f"{label}-{i}"], texts=[f"text {label} {i}"])
                with lock:
                    acknowledged.append(f"{label}-{i}")
        except BaseException as exc:
            errors.append(exc)

    def read():
        try:
            for _ in range(40):
                coll.search("text", k=5, mode="hybrid")
                coll.count()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(3)]
    threads += [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert coll.count() == len(acknowledged) == 120
    store.close()


def test_given_vectors_are_normalised_and_bad_ones_refused(tmp_path):
    store = _open(tmp_path / "s.db")
    coll = store.collection("c")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 32)).astype(np.float32)
    vectors[0] *= 1959.0
    coll.upsert(ids=["big", "b", "c"], texts=["one", "two", "three"], vectors=vectors)
    hits = coll.search("anything at all", k=3, mode="dense")
    assert all(-1.0001 <= h.score <= 1.0001 for h in hits)
    stored = np.frombuffer(store.db.conn.execute("SELECT vector FROM docs WHERE doc_id = 'big'").fetchone()[0],
                           dtype=np.float32)
    assert abs(np.linalg.norm(stored) - 1.0) < 1e-5
    before = coll.count()
    for bad, word in ((np.zeros((1, 32)), "zeros"), (np.full((1, 32), np.nan), "NaN")):
        with pytest.raises(InputError, match=word):
            coll.upsert(ids=["bad"], texts=["bad"], vectors=bad)
    assert coll.count() == before and coll.get("bad") is None
    store.close()


def _flusher(path: str, label: str, rounds: int) -> None:
    store = _store(path)
    coll = store.collection("c")
    for r in range(rounds):
        coll.upsert(ids=[f"{label}{r}"], texts=[f"{label} flush round {r} {label}x{r}"])
        coll.flush()
    store.close()


def test_processes_flushing_one_collection_at_once(tmp_path, caplog):
    """Two processes saving the same graph used one temporary name: one moved the other's
    half-written file away (FileNotFoundError) or paired a graph with the other's sidecar."""
    path = str(tmp_path / "s.db")
    store = _store(path)
    store.collection("c").upsert(ids=[f"a{i}" for i in range(250)], texts=_texts("base", 250))
    store.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_flusher, args=(path, label, 15)) for label in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert not list((tmp_path / "s.db.ann").glob("*.tmp"))
    store = _store(path)
    coll = store.collection("c")
    with caplog.at_level("WARNING", logger="nearspace"):
        assert coll.search("A flush round 14 Ax14", k=1, mode="dense")[0].id == "A14"
    assert not [r for r in caplog.records if "rebuilding" in r.getMessage()]  # the last save is whole
    assert len(coll.search("base", k=1000, mode="dense")) == coll.count() == 280
    store.close()


def test_fsync_policy_is_normal_unless_asked(tmp_path, monkeypatch):
    """NORMAL by default (the change tokens make it safe for the derived index); FULL on request."""
    store = _open(tmp_path / "s.db")
    assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    store.close()
    monkeypatch.setenv("NEARSPACE_SYNCHRONOUS", "full")
    store = _open(tmp_path / "s.db")
    assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    store.close()
    monkeypatch.setenv("NEARSPACE_SYNCHRONOUS", "sometimes")
    with pytest.raises(InputError, match="NEARSPACE_SYNCHRONOUS"):
        _open(tmp_path / "s.db")


def test_save_and_load_in_two_threads_of_one_store_do_not_deadlock(tmp_path, monkeypatch):
    """One Store, two Collection objects for one collection: a save holding the graph's file
    lock must not then wait for the store's connection, which a loading thread holds while it
    waits for that file lock."""
    from nearspace.store.sqlite import vectors

    store = _store(tmp_path / "s.db")
    first = store.collection("c")
    first.upsert(ids=[f"a{i}" for i in range(250)], texts=_texts("base", 250))
    assert first.flush()  # a saved graph (and its lock file) for the second object to load
    first.upsert(ids=["late"], texts=["late arrival"])
    second = store.collection("c")
    saving = threading.Event()
    original = vectors.remove_stale_temporaries

    def slow_start_of_save(path):  # runs under the exclusive file lock
        saving.set()
        threading.Event().wait(0.5)  # the loader takes the connection and waits for the file lock
        original(path)

    monkeypatch.setattr(vectors, "remove_stale_temporaries", slow_start_of_save)
    results: list = []
    saver = threading.Thread(target=lambda: results.append(first.flush()), daemon=True)
    loader = threading.Thread(target=lambda: (saving.wait(10), results.append(
        second.search(_texts("base", 250)[5], k=1, mode="dense")[0].id)), daemon=True)
    saver.start()
    loader.start()
    saver.join(30)
    loader.join(30)
    assert not saver.is_alive() and not loader.is_alive(), "save and load deadlocked"
    assert sorted(map(str, results)) == ["True", "a5"]
