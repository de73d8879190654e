"""The store's derived vector file (memory-mapped) and its index kinds, through the real Store.

The vector file is rebuilt from SQLite when missing, stale or damaged, with a one-line
warning when a file was there but could not be trusted; a reopened collection reads its
vectors through the memory map; ``index=`` picks any registry backend per collection.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nearspace.api import Store
from nearspace.errors import InputError

DIM = 32


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fill(path, n=600, index=None, threshold=20_000):
    store = Store(path, exact_threshold=threshold)
    coll = store.collection("c", dim=DIM, index=index)
    V = _vectors(n)
    coll.upsert(ids=[f"v{i}" for i in range(n)], vectors=V,
                metadatas=[{"group": i % 10, "price": i} for i in range(n)])
    return store, coll, V


def _rebuilds(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]


def test_reopen_reads_vectors_through_the_memory_map(tmp_path, caplog):
    store, coll, V = _fill(tmp_path / "s.db")
    coll.flush()
    store.close()
    store = Store(tmp_path / "s.db")
    coll = store.collection("c")
    with caplog.at_level("WARNING", logger="nearspace"):
        hits = coll.search(vector=V[17], k=3)
    assert hits[0].id == "v17" and not _rebuilds(caplog)
    assert isinstance(coll.backend.vectors.flat.base, np.memmap)
    # rows written after the file was saved are caught up from SQLite, the file stays mapped
    extra = _vectors(1, seed=9)
    coll.upsert(ids=["late"], vectors=extra)
    assert coll.search(vector=extra[0], k=1)[0].id == "late"
    assert isinstance(coll.backend.vectors.flat.base, np.memmap)
    coll.delete(["v17"])
    assert all(h.id != "v17" for h in coll.search(vector=V[17], k=5))
    np.testing.assert_allclose(coll.backend.vectors.vectors_for([coll.backend.data.rows_for_ids(["v3"])["v3"]])[0], V[3], atol=1e-6)
    store.close()


@pytest.mark.parametrize("how", ["missing", "stale", "damaged", "garbage header"])
def test_vector_file_rebuilt_when_it_cannot_be_trusted(tmp_path, caplog, how):
    store, coll, V = _fill(tmp_path / "s.db")
    coll.flush()
    folder = store.ann_dir / "vectors"
    header, data = folder / "c.json", folder / "c.vectors.npy"
    assert header.exists() and data.exists()
    if how == "stale":  # a file from another history: the token of its change is not SQLite's
        meta = json.loads(header.read_text())
        meta["extra"]["token"] = meta["token"] = meta["token"] + 1
        header.write_text(json.dumps(meta))
    store.close()
    if how == "missing":
        data.unlink()
    elif how == "damaged":  # same size, other bytes (the mtime changes: the CRC is recomputed)
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2: len(raw) // 2 + 64] = os.urandom(64)
        data.write_bytes(bytes(raw))
    elif how == "garbage header":
        header.write_text("{not json")
    store = Store(tmp_path / "s.db")
    coll = store.collection("c")
    with caplog.at_level("WARNING", logger="nearspace"):
        hits = coll.search(vector=V[5], k=1)
    assert hits[0].id == "v5" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    warnings = _rebuilds(caplog)
    assert len(warnings) == 1 and "vector file" in warnings[0] and "\n" not in warnings[0]
    store.close()
    # the rebuild wrote a good file: the next open trusts it
    caplog.clear()
    store = Store(tmp_path / "s.db")
    with caplog.at_level("WARNING", logger="nearspace"):
        assert store.collection("c").search(vector=V[6], k=1)[0].id == "v6"
    assert not _rebuilds(caplog)
    store.close()


def test_vector_file_of_a_restored_history_is_not_trusted(tmp_path, caplog):
    """A file saved after the backup was taken covers commits the restored SQLite never saw."""
    import shutil

    path = tmp_path / "s.db"
    store, coll, V = _fill(path)
    store.close()
    shutil.copy(path, tmp_path / "backup.db")
    store = Store(path)
    coll = store.collection("c")
    later = _vectors(30, seed=4)
    coll.upsert(ids=[f"later{i}" for i in range(30)], vectors=later)
    coll.flush()
    store.close()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"s.db{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", path)
    store = Store(path)
    coll = store.collection("c")
    fresh = _vectors(30, seed=5)
    coll.upsert(ids=[f"fresh{i}" for i in range(30)], vectors=fresh)  # same sequence numbers
    assert all(coll.search(vector=fresh[i], k=1)[0].id == f"fresh{i}" for i in range(30))
    assert not any(h.id.startswith("later") for h in coll.search(vector=later[0], k=50))
    assert len(coll.search(vector=V[0], k=10_000)) == coll.count() == 630
    store.close()


@pytest.mark.parametrize("kind", ["exact", "hnsw", "int8", "binary"])
def test_index_kind_is_a_collection_option(tmp_path, kind):
    store, coll, V = _fill(tmp_path / "s.db", n=1500, index=kind)
    assert coll.backend.config()["index"] == kind
    queries = V[:40] + 0.05 * _vectors(40, seed=3)
    exact = {i: set(np.argsort(-(V @ q))[:10]) for i, q in enumerate(queries)}
    found = [{int(h.id[1:]) for h in coll.search(vector=q, k=10)} for q in queries]
    recall = np.mean([len(f & exact[i]) / 10 for i, f in enumerate(found)])
    assert recall >= (0.95 if kind == "binary" else 0.98)
    backend = coll.backend.vectors.ann if kind != "exact" else coll.backend.vectors.flat
    assert backend.kind == kind
    # filtered: never short, only matching rows
    for q in queries[:5]:
        hits = coll.search(vector=q, k=10, where={"group": 3, "price": {"$lt": 900}})
        assert len(hits) == 10 and all(h.metadata["group"] == 3 and h.metadata["price"] < 900 for h in hits)
    saved = coll.flush()
    assert saved == (kind != "exact")
    store.close()
    store = Store(tmp_path / "s.db")
    coll = store.collection("c")  # the option is remembered
    assert coll.search(vector=V[7], k=1)[0].id == "v7"
    assert (coll.backend.vectors.ann.kind if coll.backend.vectors.ann is not None else "exact") == kind
    store.close()


def test_unknown_index_kind_is_one_clear_error(tmp_path):
    store = Store(tmp_path / "s.db")
    with pytest.raises(InputError, match="index must be one of"):
        store.collection("c", dim=DIM, index="annoy")
    assert "c" not in store.list_collections()
    store.close()


def test_drop_collection_removes_every_derived_file(tmp_path):
    store, coll, _ = _fill(tmp_path / "s.db", n=300, index="hnsw")
    other = store.collection("c.vectors", dim=DIM)  # names that look like another's files
    other.upsert(ids=["x"], vectors=_vectors(1))
    coll.flush()
    other.flush()
    store.drop_collection("c")
    left = sorted(p.relative_to(store.ann_dir).as_posix() for p in store.ann_dir.rglob("*") if p.is_file())
    assert left and all(name.startswith(("c.vectors.", "vectors/c.vectors.")) for name in left), left
    assert store.collection("c.vectors").search(vector=_vectors(1)[0], k=1)[0].id == "x"
    store.close()


def test_large_filtered_subsets_of_an_hnsw_collection_scan_int8_codes(tmp_path, monkeypatch):
    """Filtered subsets of COARSE_MIN rows or more are scanned with int8 codes and rescored from
    the vector file: never short, only matching rows, as good as exact, and in step with writes."""
    from nearspace.index import hnsw

    monkeypatch.setattr(hnsw, "COARSE_MIN", 100)
    store, coll, V = _fill(tmp_path / "s.db", n=1500, index="hnsw")
    where = {"price": {"$lt": 1200}}
    queries = V[:30] + 0.05 * _vectors(30, seed=3)
    subset = np.arange(1200)
    hits = [[int(h.id[1:]) for h in coll.search(vector=q, k=10, where=where)] for q in queries]
    coarse = coll.backend.vectors.ann._coarse
    assert coarse is not None and coarse.kind == "int8" and coarse.flat is coll.backend.vectors.flat
    exact = [set(subset[np.argsort(-(V[subset] @ q))[:10]]) for q in queries]
    assert all(len(h) == 10 and max(h) < 1200 for h in hits)
    assert np.mean([len(set(h) & e) / 10 for h, e in zip(hits, exact)]) >= 0.98
    top = hits[0][0]
    coll.delete([f"v{top}"])
    new = _vectors(1, seed=11)
    coll.upsert(ids=["new"], vectors=new, metadatas=[{"price": 5}])
    after = [h.id for h in coll.search(vector=queries[0], k=10, where=where)]
    assert f"v{top}" not in after and len(after) == 10
    assert coll.search(vector=new[0], k=1, where=where)[0].id == "new"
    coll.flush()  # the vector file is rewritten and mapped again: the codes rescore from the new map
    assert coll.backend.vectors.ann._coarse.flat is coll.backend.vectors.flat
    assert [h.id for h in coll.search(vector=queries[0], k=10, where=where)] == after
    store.close()


def test_compact_gives_back_the_space_of_deleted_rows(tmp_path):
    store, coll, V = _fill(tmp_path / "s.db", n=1200, index="hnsw")
    coll.flush()

    def sizes():
        derived = sum(p.stat().st_size for p in store.ann_dir.rglob("*") if p.is_file())
        sqlite = sum(p.stat().st_size for p in tmp_path.glob("s.db*") if p.is_file())
        return sqlite, derived

    before = sizes()
    coll.delete([f"v{i}" for i in range(0, 1200, 2)])  # half
    coll.flush()
    store.compact()
    after = sizes()
    assert after[0] < 0.75 * before[0] and after[1] < 0.75 * before[1], (before, after)
    graph = coll.backend.vectors.hnsw
    store.close()
    store = Store(tmp_path / "s.db")
    coll = store.collection("c")
    assert coll.search(vector=V[1], k=1)[0].id == "v1"
    assert all(h.id != "v2" for h in coll.search(vector=V[2], k=5))
    assert coll.backend.vectors.hnsw.get_current_count() == 600 and graph is not None
    store.close()


def test_a_repeated_filter_is_served_from_its_cache_until_anything_changes(tmp_path):
    """filter_rows keeps recent matches; a write by this connection or a commit by another
    (metadata-only updates write no change-log row) must never be answered from the cache."""
    store, coll, V = _fill(tmp_path / "s.db", n=200)
    where = {"group": 3}
    first = coll.backend.data.filter_rows(where)
    assert coll.backend.data.filter_rows(where) is first and not first.flags.writeable
    coll.upsert(ids=["v0"], vectors=V[:1], metadatas=[{"group": 3, "price": 0}])  # metadata only
    assert len(coll.backend.data.filter_rows(where)) == len(first) + 1
    other = Store(tmp_path / "s.db")
    other.collection("c").upsert(ids=["v1"], vectors=V[1:2], metadatas=[{"group": 3, "price": 1}])
    other.close()
    assert len(coll.backend.data.filter_rows(where)) == len(first) + 2
    assert {h.id for h in coll.search(vector=V[1], k=50, where=where)} >= {"v0", "v1"}
    store.close()


def test_ef_search_is_a_stored_collection_option(tmp_path):
    """Unset, the HNSW breadth follows auto_ef; set, it is used now, after reopen and after a
    rebuild, and bad values are refused without changing the stored one."""
    from nearspace.index.hnsw import auto_ef

    path = tmp_path / "s.db"
    store, coll, V = _fill(path, n=400, index="hnsw")
    coll.search(vector=V[0], k=5)
    assert coll.backend.vectors.ann.ef == auto_ef(400)
    coll = store.collection("c", dim=DIM, ef_search=37)
    coll.search(vector=V[0], k=5)
    assert coll.backend.vectors.ann.ef == 37
    other = Store(path).collection("c")  # an open Collection of another connection follows a change
    other.search(vector=V[0], k=5)
    assert other.backend.vectors.ann.ef == 37
    store.collection("c", dim=DIM, ef_search=41)
    other.search(vector=V[0], k=5)
    assert other.backend.vectors.ann.ef == 41
    coll = store.collection("c", dim=DIM, ef_search=37)
    with pytest.raises(InputError, match="ef_search must be"):
        store.collection("c", dim=DIM, ef_search=0)
    with pytest.raises(InputError, match="ef_search must be"):
        store.collection("c", dim=DIM, ef_search="wide")
    coll.flush()
    store.close()
    store = Store(path)
    reopened = store.collection("c")
    assert [h.id for h in reopened.search(vector=V[3], k=3)][0] == "v3"
    assert reopened.backend.vectors.ann.ef == 37  # stored with the collection, read by the loaded graph
    for p in store.ann_dir.glob("c.*"):  # the graph is gone: the rebuilt one keeps the option
        p.unlink()
    rebuilt = Store(path).collection("c")
    rebuilt.search(vector=V[1], k=3)
    assert rebuilt.backend.vectors.ann.ef == 37
    store.close()
