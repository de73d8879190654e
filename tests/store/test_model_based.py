"""Model-based test of the store (Hypothesis state machine, after Chroma's persistence tests).

Random add / upsert (text changed, metadata only, identical) / delete / get / filtered search /
flush / compact / close-and-reopen / restore-an-earlier-copy (a file copy with the store closed,
or ``nearspace restore`` under the open store) / damage-or-delete-a-derived-file steps run
against a real SQLite store, and after every step the store is checked against a plain dict:
ids, texts, metadata, counts, exact filter results, and that every stored document finds itself
by its own text. A low exact threshold puts the HNSW graph on the path.

Bounded for ``make test``; NEARSPACE_MODEL_EXAMPLES=500 (and NEARSPACE_MODEL_STEPS) runs a
larger profile. A multi-process variant runs two writers and a reader on one store.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from nearspace.api import Store
from nearspace.errors import InputError
from tests.store.hashing import HashingEncoder

EXAMPLES = int(os.environ.get("NEARSPACE_MODEL_EXAMPLES", "25"))
STEPS = int(os.environ.get("NEARSPACE_MODEL_STEPS", "30"))
THRESHOLD = 6

ids = st.sampled_from([f"d{i}" for i in range(14)])
topics = st.sampled_from(["ml", "cooking", "space"])
years = st.integers(min_value=2000, max_value=2003)


def _text(doc_id: str, version: int) -> str:
    # distinct words per (id, version): a document's own text is its unique nearest neighbour
    return f"{doc_id}w{version} {doc_id}v{version}x {doc_id}z{version}"


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="nearspace-model-"))
        self.path = self.dir / "s.db"
        self.model: dict[str, tuple[str, dict]] = {}
        self.version = 0
        self.backups: list[tuple[Path, dict]] = []
        self._open()

    def _open(self) -> None:
        self.store = Store(self.path, encoder=HashingEncoder(), exact_threshold=THRESHOLD)
        self.coll = self.store.collection("c")

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- writes -------------------------------------------------------------------------------
    @rule(doc_id=ids, topic=topics, year=years)
    def add(self, doc_id, topic, year):
        self.version += 1
        text, meta = _text(doc_id, self.version), {"topic": topic, "year": year}
        if doc_id in self.model:
            with pytest.raises(InputError, match="already stored"):
                self.coll.add(ids=[doc_id], texts=[text], metadatas=[meta])
            return
        self.coll.add(ids=[doc_id], texts=[text], metadatas=[meta])
        self.model[doc_id] = (text, meta)

    @rule(doc_id=ids, topic=topics, year=years)
    def upsert_changed_text(self, doc_id, topic, year):
        self.version += 1
        text, meta = _text(doc_id, self.version), {"topic": topic, "year": year}
        counts = self.coll.upsert(ids=[doc_id], texts=[text], metadatas=[meta])
        assert counts["added" if doc_id not in self.model else "updated"] == 1
        self.model[doc_id] = (text, meta)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), topic=topics, year=years)
    def upsert_metadata_only(self, data, topic, year):
        doc_id = data.draw(st.sampled_from(sorted(self.model)))
        text, old = self.model[doc_id]
        meta = {"topic": topic, "year": year}
        counts = self.coll.upsert(ids=[doc_id], texts=[text], metadatas=[meta])
        assert counts["metadata" if meta != old else "unchanged"] == 1
        self.model[doc_id] = (text, meta)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def upsert_identical(self, data):
        doc_id = data.draw(st.sampled_from(sorted(self.model)))
        text, meta = self.model[doc_id]
        assert self.coll.upsert(ids=[doc_id], texts=[text], metadatas=[meta])["unchanged"] == 1

    @rule(doc_id=ids)
    def delete(self, doc_id):
        assert self.coll.delete([doc_id]) == (1 if doc_id in self.model else 0)
        self.model.pop(doc_id, None)

    # -- lifecycle ----------------------------------------------------------------------------
    @rule()
    def flush(self):
        self.coll.flush()

    @rule()
    def compact(self):
        self.store.compact()

    @rule()
    def reopen(self):
        self.store.close()
        self._open()

    @rule()
    def take_backup(self):
        self.coll.flush()
        target = self.dir / f"backup{len(self.backups)}.db"
        from nearspace.store.sqlite.backup import backup

        backup(self.path, target)
        self.backups.append((target, dict(self.model)))

    @precondition(lambda self: self.backups)
    @rule(data=st.data())
    def restore_earlier_copy(self, data):
        source, model = data.draw(st.sampled_from(self.backups))
        self.store.close()
        for suffix in ("", "-wal", "-shm"):  # a plain file copy, derived files left in place
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copy(source, self.path)
        self.model = dict(model)
        self._open()

    @precondition(lambda self: self.backups)
    @rule(data=st.data(), writes=st.lists(st.tuples(ids, topics), max_size=6))
    def restore_under_the_open_store(self, data, writes):
        # `nearspace restore` through SQLite while this process keeps its store (and index) open,
        # then another process writes before this one reads again: the change log may be back at
        # (or past) the sequence this process had covered, with other documents behind it
        source, model = data.draw(st.sampled_from(self.backups))
        from nearspace.store.sqlite.backup import restore

        restore(source, self.path, overwrite=True)
        self.model = dict(model)
        other = Store(self.path, encoder=HashingEncoder(), exact_threshold=THRESHOLD)
        try:
            for doc_id, topic in writes:
                self.version += 1
                text, meta = _text(doc_id, self.version), {"topic": topic, "year": 2000}
                other.collection("c").upsert(ids=[doc_id], texts=[text], metadatas=[meta])
                self.model[doc_id] = (text, meta)
        finally:
            other.close()

    @rule(how=st.sampled_from(["delete", "truncate", "garble", "sidecar"]))
    def damage_derived_file(self, how):
        self.coll.flush()
        graph = self.store.ann_dir / "c.hnsw"
        sidecar = self.store.ann_dir / "c.json"
        if not graph.exists():
            return
        self.store.close()
        if how == "delete":
            graph.unlink()
        elif how == "truncate":
            with open(graph, "r+b") as handle:
                handle.truncate(graph.stat().st_size // 2)
        elif how == "garble":
            size = graph.stat().st_size
            with open(graph, "r+b") as handle:
                handle.seek(size // 3)
                handle.write(os.urandom(max(1, size // 3)))
        else:
            sidecar.write_text("{not json")
        self._open()

    # -- reads, checked against the model ----------------------------------------------------
    @rule(topic=topics, low=years)
    def filtered_search(self, topic, low):
        where = {"topic": topic, "year": {"$gte": low}}
        expected = {i for i, (_, m) in self.model.items() if m["topic"] == topic and m["year"] >= low}
        got = {r.id for r in self.coll.search("anything", k=100, mode="dense", where=where)}
        assert got == expected

    @invariant()
    def matches_model(self):
        assert self.coll.count() == len(self.model)
        stored = self.coll.get(sorted(self.model))
        for doc_id, doc in zip(sorted(self.model), stored):
            assert doc is not None, doc_id
            assert (doc.text, doc.metadata) == self.model[doc_id]
        for doc_id, (text, _) in self.model.items():
            hits = self.coll.search(text, k=1, mode="dense")
            assert hits and hits[0].id == doc_id, (doc_id, [h.id for h in hits])


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                                     suppress_health_check=list(HealthCheck), derandomize=True)


# -- two writers and a reader in separate processes ------------------------------------------
def _process_writer(path: str, label: str, rounds: int, done) -> None:
    store = Store(path, encoder=HashingEncoder(), exact_threshold=THRESHOLD)
    coll = store.collection("c")
    for r in range(rounds):
        doc_id = f"{label}{r % 7}"
        if r % 5 == 4:
            coll.delete([doc_id])
        else:
            coll.upsert(ids=[doc_id, "shared"], texts=[_text(doc_id, r), _text(f"shared{label}", r)],
                        metadatas=[{"topic": label, "year": r}, {"topic": "shared", "year": r}])
        if r % 10 == 9:
            coll.flush()
    store.close()
    done.put(label)


def _process_reader(path: str, stop, problems) -> None:
    store = Store(path, encoder=HashingEncoder(), exact_threshold=THRESHOLD)
    coll = store.collection("c")
    while stop.empty():
        results = coll.search("sharedA0w1", k=50, mode="dense")
        found = [r.id for r in results]
        if len(found) != len(set(found)):
            problems.put(f"duplicate ids {found}")
    store.close()


def test_two_writers_and_a_reader_keep_the_invariants(tmp_path):
    path = str(tmp_path / "s.db")
    Store(path, encoder=HashingEncoder(), exact_threshold=THRESHOLD).collection("c")
    ctx = multiprocessing.get_context("spawn")
    done, stop, problems = ctx.Queue(), ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=_process_reader, args=(path, stop, problems))
    reader.start()
    writers = [ctx.Process(target=_process_writer, args=(path, label, 40, done)) for label in ("A", "B")]
    try:
        for w in writers:
            w.start()
        for w in writers:
            w.join(300)
            assert w.exitcode == 0
    finally:  # a failed writer must not leave the reader looping (pytest would wait for it)
        stop.put(True)
        reader.join(60)
        if reader.is_alive():
            reader.kill()
    assert reader.exitcode == 0
    assert problems.empty(), problems.get()
    store = Store(path, encoder=HashingEncoder(), exact_threshold=THRESHOLD)
    coll = store.collection("c")
    conn = store.db.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = list(coll.backend.ids())
    assert len(ids) == coll.count() and len(set(ids)) == len(ids)
    encoder = HashingEncoder()
    for doc in coll.get(ids):
        hits = coll.search(doc.text, k=1, mode="dense")
        assert hits[0].id == doc.id
        stored = conn.execute("SELECT vector FROM docs WHERE doc_id = ?", (doc.id,)).fetchone()[0]
        import numpy as np

        assert np.allclose(np.frombuffer(stored, dtype=np.float32), encoder.encode([doc.text])[0], atol=1e-5)
    store.close()
