"""Backups under load, restores, schema versions and migrations, on real SQLite files."""
from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import nearspace
from nearspace.errors import InputError, StoreError, StoreTooNew
from nearspace.store.sqlite import schema
from nearspace.store.sqlite.backup import backup, restore
from nearspace.store.sqlite.database import Database, Document
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "store-v1.db"
ENCODER, DIM = "all-MiniLM-L6-v2", 384
BATCH = 10


def write_batches(path: Path, stop: threading.Event, written: list[int], errors: list[str]) -> None:
    db = Database(path)
    data = db.collection("c", encoder=ENCODER, dim=DIM, create=True)
    rng = np.random.default_rng(0)
    n = 0
    try:
        while not stop.is_set():
            docs = [Document(f"d{n + i}", f"document {n + i} about tides", {"n": n + i}) for i in range(BATCH)]
            data.write(docs, rng.standard_normal((BATCH, DIM)).astype(np.float32), replace=True)
            n += BATCH
            written.append(n)
    except Exception as exc:  # reported by the test, never swallowed
        errors.append(repr(exc))
    finally:
        db.close()


def read_loop(path: Path, stop: threading.Event, reads: list[int], errors: list[str]) -> None:
    store = nearspace.open_store(path)
    try:
        while not stop.is_set():
            if "c" in store.list_collections():
                store.get_collection("c").search("tides", mode="keyword", k=5)
                reads.append(1)
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        store.close()


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM docs").fetchone()[0]
    finally:
        conn.close()


def test_backup_under_a_live_writer_and_reader_is_consistent(tmp_path):
    store = tmp_path / "live.db"
    Database(store).close()
    stop, written, reads, errors = threading.Event(), [], [], []
    threads = [threading.Thread(target=write_batches, args=(store, stop, written, errors)),
               threading.Thread(target=read_loop, args=(store, stop, reads, errors))]
    for thread in threads:
        thread.start()
    copies = []
    try:
        while len(written) < 5 and not errors:
            time.sleep(0.05)
        for i in range(3):
            before = written[-1] if written else 0
            done = backup(store, tmp_path / f"copy{i}.db")
            after = written[-1]
            copies.append((done, before, after))
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert reads, "the reader never ran"
    for done, before, after in copies:
        path = Path(done["backup"])
        n = count(path)
        # one committed state: whole batches only, between what was acknowledged before and after
        assert n % BATCH == 0 and before <= n <= after + BATCH, (n, before, after)
        assert done["documents"] == n
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # self-contained file
        conn.close()
        assert not Path(f"{path}-wal").exists()
        with nearspace.open_store(path) as opened:  # a backup is a working store
            assert opened.get_collection("c").count() == n
    assert count(Path(copies[-1][0]["backup"])) > count(Path(copies[0][0]["backup"]))  # taken while writing


def test_restore_rebuilds_derived_files_and_refuses_to_clobber(tmp_path):
    store = tmp_path / "s.db"
    opened = nearspace.Store(store, exact_threshold=100)
    db = opened.db
    data = db.collection("c", encoder=ENCODER, dim=DIM, create=True)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    data.write([Document(f"d{i}", f"text {i}") for i in range(300)], vectors, replace=True)
    coll = opened.collection("c", create=False)
    assert coll.flush()  # an ANN graph on disk
    ann = store.with_name(store.name + ".ann")
    assert any(ann.iterdir())
    (tmp_path / "backups").mkdir()
    copy = backup(store, tmp_path / "backups")  # a folder: the copy keeps the store's name
    assert Path(copy["backup"]) == tmp_path / "backups" / "s.db"
    assert not (tmp_path / "backups" / "s.db.ann").exists()  # derived files are not copied
    data.delete([f"d{i}" for i in range(100)])  # the store moves on after the backup
    opened.close()
    with pytest.raises(InputError, match="--force"):
        restore(copy["backup"], store)
    restore(copy["backup"], store, overwrite=True)
    assert not ann.exists()  # stale graph dropped; rebuilt from the restored vectors on use
    with nearspace.Store(store, exact_threshold=100) as reopened:
        coll = reopened.collection("c", create=False)
        assert coll.count() == 300
        hits = coll.backend.vectors.search(vectors[150], 1)
        assert hits and coll.backend.data.rows_to_documents([hits[0][0]])[hits[0][0]].id == "d150"
    with pytest.raises(InputError, match="exists"):
        backup(store, copy["backup"])
    with pytest.raises(InputError, match="not a nearspace store"):
        junk = tmp_path / "other.db"
        conn = sqlite3.connect(junk)
        conn.execute("CREATE TABLE t(x)")
        conn.commit()
        conn.close()
        backup(junk, tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


def fixture_copy(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, path)
    return path


def rows(path: Path) -> list:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("SELECT doc_id, title, text, metadata, hash, vector FROM docs ORDER BY doc_id"))
    finally:
        conn.close()


def test_an_older_store_is_migrated_on_open(tmp_path):
    path = fixture_copy(tmp_path)
    before = rows(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0  # written before versioning
    conn.close()
    with nearspace.open_store(path) as store:
        assert store.db.conn.execute("PRAGMA user_version").fetchone()[0] == schema.CURRENT_VERSION
        steps = list(store.db.conn.execute("SELECT from_version, to_version FROM migrations"))
        assert steps == [(v, v + 1) for v in range(1, schema.CURRENT_VERSION)]
        tables = {r[0] for r in store.db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not {t for t in tables if t.startswith("fts_")}  # v4 dropped the FTS5 keyword tables
        coll = store.get_collection("notes")
        assert [h.id for h in coll.search("regularisation dropout", mode="keyword", k=1)] == ["a"]
        assert coll.backend.config()["note"] == "fixture"
    assert rows(path) == before  # documents, metadata and vectors untouched
    with nearspace.open_store(path) as store:  # a second open does not migrate again
        assert len(list(store.db.conn.execute("SELECT * FROM migrations"))) == schema.CURRENT_VERSION - 1


def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = fixture_copy(tmp_path)

    def broken(conn: sqlite3.Connection) -> None:
        schema._v1_to_v2(conn)
        conn.execute("CREATE TABLE half_done(x)")
        raise sqlite3.OperationalError("database or disk is full")  # as a real fault mid-migration would

    monkeypatch.setitem(schema.MIGRATIONS, 1, broken)
    with pytest.raises(StoreError, match="disk is full"):
        nearspace.open_store(path)
    monkeypatch.undo()
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    assert "half_done" not in tables and "migrations" not in tables
    assert rows(path) == rows(FIXTURE)
    with nearspace.open_store(path) as store:  # and the real migration still runs afterwards
        assert store.get_collection("notes").count() == 4


def test_a_newer_store_is_refused_unchanged(tmp_path):
    path = fixture_copy(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.CURRENT_VERSION + 1}")
    conn.commit()
    conn.close()
    content = path.read_bytes()
    with pytest.raises(StoreTooNew, match="newer nearspace"):
        nearspace.open_store(path)
    assert path.read_bytes() == content
    copy = tmp_path / "newer-backup.db"
    shutil.copyfile(path, copy)
    with pytest.raises(StoreTooNew):
        restore(copy, tmp_path / "target.db")
    assert not (tmp_path / "target.db").exists() or (tmp_path / "target.db").stat().st_size == 0


def test_backup_and_restore_commands(tmp_path):
    from tests.cli.test_errors import cli, one_error_line

    path = fixture_copy(tmp_path)
    done = cli("backup", str(path), str(tmp_path / "b.db"))
    assert done.returncode == 0 and "4 documents" in done.stderr and "check ok" in done.stderr, done.stderr
    line = one_error_line(cli("backup", str(path), str(tmp_path / "b.db")))
    assert "--force" in line
    done = cli("restore", str(tmp_path / "b.db"), str(tmp_path / "restored.db"))
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "restored.db") == rows(FIXTURE)
    line = one_error_line(cli("restore", str(tmp_path / "missing.db"), str(tmp_path / "r2.db")))
    assert "no backup" in line
