"""The backend contract (``store/base.py``), checked the same way on SQLite and on milvus-lite.

These tests speak to ``CollectionBackend``/``StoreBackend`` directly (shapes: string ids,
``(id, score)`` hits best first, WriteCounts) and through the consumers that must work on any
backend by the contract alone: export (``to_arrow``/Parquet), copy, words. The filter test is
a Hypothesis search for a filter on which a backend and an in-Python reference of the filter
language disagree, in the style of Chroma's ``test_filtering.py``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nearspace.errors import CollectionNotFound, InputError
from nearspace.store.base import CollectionBackend, Selection, StoreBackend, StoredRow
from nearspace.store.filters import flatten_metadata, index_columns
from tests.store.test_milvus import BACKENDS, open_backend

DIM = 8
TOPICS = ["ml", "cooking", "travel", "ML"]
TAGS = ["a", "b", "c", "d"]
NAMES = ["Ada", "Grace", "Alan"]


def _corpus(n: int = 30) -> tuple[list[str], list[str], list[dict], np.ndarray]:
    rng = np.random.default_rng(7)
    ids, texts, metas = [], [], []
    for i in range(n):
        meta: dict = {}
        if i % 5 != 0:
            meta["topic"] = TOPICS[i % len(TOPICS)]
        if i % 3 != 1:
            meta["year"] = 2000 + (i * 7) % 9
        if i % 4 != 3:
            meta["tags"] = [TAGS[(i + k) % len(TAGS)] for k in range(i % 3)]
        if i % 2 == 0:
            meta["score"] = round(float(i) / 7, 3)
        if i % 6 == 0:
            meta["draft"] = bool(i % 12)
        if i % 3 == 0:
            meta["author"] = {"name": NAMES[i % len(NAMES)]}
        ids.append(f"d{i:02d}")
        texts.append(f"document {i} about {meta.get('topic', 'nothing')} and tag {' '.join(meta.get('tags', []))}")
        metas.append(meta)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return ids, texts, metas, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


CORPUS = _corpus()


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path, encoder):
    opened = open_backend(request.param, tmp_path, encoder)
    yield opened
    opened.close()


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request, tmp_path_factory, encoder):
    """The corpus in one collection of each backend (module-wide: the filter search reuses it)."""
    opened = open_backend(request.param, tmp_path_factory.mktemp(request.param), encoder)
    coll = opened.collection("corpus", dim=DIM)
    ids, texts, metas, vectors = CORPUS
    coll.upsert(ids, texts, metadatas=metas, vectors=vectors)
    yield coll
    opened.close()


# -- shapes ---------------------------------------------------------------------------------
def test_backends_satisfy_the_protocols(loaded):
    assert isinstance(loaded.store.backend, StoreBackend)
    assert isinstance(loaded.backend, CollectionBackend)
    assert (loaded.backend.name, loaded.backend.dim) == ("corpus", DIM)


def test_candidates_are_id_keyed_best_first(loaded):
    ids, _, _, vectors = CORPUS
    dense = loaded.backend.dense_candidates(vectors[3], 5)
    assert dense[0][0] == "d03" and all(isinstance(i, str) and isinstance(s, float) for i, s in dense)
    assert [s for _, s in dense] == sorted((s for _, s in dense), reverse=True)
    keyword = loaded.backend.keyword_candidates("cooking", 50)
    assert keyword and all(isinstance(i, str) for i, _ in keyword)
    assert {i for i, _ in keyword} == {i for i, t in zip(ids, CORPUS[1]) if "cooking" in t}
    selection = loaded.backend.select({"topic": "ml"})
    assert isinstance(selection, Selection) and not selection.empty
    allowed = set(loaded.backend.selected_ids(selection))
    assert {i for i, _ in loaded.backend.dense_candidates(vectors[3], 30, selection)} <= allowed
    assert {i for i, _ in loaded.backend.keyword_candidates("document", 30, selection)} == allowed


def test_rows_stream_every_document_with_its_vector(loaded):
    ids, texts, metas, vectors = CORPUS
    batches = list(loaded.backend.rows(batch_size=7))
    assert all(isinstance(r, StoredRow) for b in batches for r in b) and max(len(b) for b in batches) <= 7
    got = {r.document.id: r for b in batches for r in b}
    assert sorted(got) == ids
    for i, doc_id in enumerate(ids):
        assert got[doc_id].document.metadata == metas[i] and got[doc_id].document.text == texts[i]
        np.testing.assert_allclose(got[doc_id].vector, vectors[i], atol=1e-6)
    by_id = loaded.backend.vectors_for_ids(["d05", "missing", "d01"])
    assert sorted(by_id) == ["d01", "d05"]
    np.testing.assert_allclose(by_id["d05"], vectors[5], atol=1e-6)
    assert sorted(loaded.backend.ids()) == ids and loaded.backend.count() == len(ids)
    assert sorted(loaded.backend.ids_with_prefix("d1")) == [i for i in ids if i.startswith("d1")]


def test_version_moves_with_writes_only(store):
    coll = store.collection("v", dim=DIM)
    first = coll.backend.version()
    assert coll.backend.version() == first  # reading changes nothing
    coll.upsert(["x"], ["some text"], vectors=np.eye(DIM, dtype=np.float32)[:1])
    second = coll.backend.version()
    assert second != first and coll.backend.version() == second
    coll.delete(["x"])
    assert coll.backend.version() != second


def test_write_counts_config_artifacts_and_file_records(store):
    coll = store.collection("w", dim=DIM)
    vectors = np.eye(DIM, dtype=np.float32)[:2]
    assert coll.upsert(["a", "b"], ["one", "two"], vectors=vectors) == \
        {"added": 2, "updated": 0, "metadata": 0, "unchanged": 0}
    assert coll.upsert(["a", "b"], ["one", "two!"], metadatas=[{"k": 1}, {}], vectors=vectors) == \
        {"added": 0, "updated": 1, "metadata": 1, "unchanged": 0}
    backend = coll.backend
    assert backend.set_config(fusion={"method": "rrf"})["fusion"] == {"method": "rrf"}
    assert backend.config()["fusion"] == {"method": "rrf"} and "encoder_spec" in backend.config()
    backend.put_artifact("blob", b"\x00\x01" * 40_000, {"n": 1})
    assert backend.get_artifact("blob") == (b"\x00\x01" * 40_000, {"n": 1})
    assert backend.artifact_version("blob") is not None and backend.delete_artifact("blob")
    assert backend.get_artifact("blob") is None and backend.artifact_version("blob") is None
    with backend.transaction():
        backend.track_file("docs/a.md", "h1", 10, 5, ["a"])
    assert backend.tracked_files() == {"docs/a.md": ("h1", 10, 5, ["a"])}
    with backend.transaction():
        assert backend.delete_in_transaction(["a", "zz"]) == 1
        backend.untrack_file("docs/a.md")
    assert backend.tracked_files() == {} and backend.count() == 1


def test_store_backend_lists_creates_and_drops(store):
    backend = store.backend
    made = backend.create_collection("made", "some-model", DIM)
    assert made.encoder == "some-model" and "made" in backend.collection_names()
    assert backend.open_collection("made").dim == DIM
    backend.drop_collection("made")
    with pytest.raises(CollectionNotFound, match="made"):
        backend.open_collection("made")
    assert store.info()["collections"] == []


# -- consumers that must work through the contract alone -----------------------------------
def test_to_arrow_and_parquet_export_work_on_every_backend(loaded, tmp_path):
    pytest.importorskip("pyarrow", reason="install nearspace[parquet]")
    from nearspace.integrations.arrow import export_parquet, read_parquet

    table = loaded.to_arrow()
    assert table.num_rows == len(CORPUS[0])
    rows = {r["id"]: r for r in table.to_pylist()}
    assert json.loads(rows["d06"]["metadata"]) == CORPUS[2][6]
    np.testing.assert_allclose(rows["d06"]["vector"], CORPUS[3][6], atol=1e-6)
    assert export_parquet(loaded, tmp_path / "out.parquet") == len(CORPUS[0])
    docs, vectors, info = read_parquet(tmp_path / "out.parquet")
    assert sorted(d.id for d in docs) == CORPUS[0] and info["dim"] == DIM and vectors.shape == (30, DIM)


def test_search_is_the_same_engine_on_every_backend(loaded):
    """One search function: argument checks, filters and MMR behave alike whatever the engine."""
    _, _, _, vectors = CORPUS
    hits = loaded.search(vector=vectors[8], k=3, where={"year": {"$gte": 2003}})
    assert hits and all(h.metadata.get("year", 0) >= 2003 for h in hits)
    assert loaded.search(vector=vectors[8], k=3, where={"topic": "nowhere"}) == []
    diverse = loaded.search(vector=vectors[8], k=4, diversity=0.9)
    assert len(diverse) == 4 and len({h.id for h in diverse}) == 4
    with pytest.raises(InputError, match="k must be"):
        loaded.search(vector=vectors[8], k=0)
    with pytest.raises(InputError, match="diversity"):
        loaded.search(vector=vectors[8], diversity=2.0)
    keyword = loaded.search("cooking", mode="keyword", k=50)
    assert keyword and all("cooking" in h.text for h in keyword)


# -- filters against an in-Python reference --------------------------------------------------
def _values(meta: dict, key: str) -> list:
    return [index_columns(v) for k, v in flatten_metadata(meta) if k == key]


def _leaf_matches(meta: dict, key: str, op: str, value) -> bool:
    held = _values(meta, key)
    if op == "$eq":
        return index_columns(value) in held
    if op == "$ne":
        return index_columns(value) not in held
    if op == "$in":
        return any(index_columns(v) in held for v in value)
    if op == "$nin":
        return not any(index_columns(v) in held for v in value)
    num, text = index_columns(value)
    compare = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
               "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}[op]
    side = 0 if text is None else 1
    bound = num if text is None else text
    return any(h[side] is not None and compare(h[side], bound) for h in held)


def reference(meta: dict, where: dict) -> bool:
    """The filter language as documented in ``store/filters.py``, over one document's metadata."""
    for key, cond in where.items():
        if key == "$and":
            ok = all(reference(meta, sub) for sub in cond)
        elif key == "$or":
            ok = any(reference(meta, sub) for sub in cond)
        elif isinstance(cond, dict):
            ok = all(_leaf_matches(meta, key, op, value) for op, value in cond.items())
        else:
            ok = _leaf_matches(meta, key, "$eq", cond)
        if not ok:
            return False
    return True


# values drawn mostly from those the corpus holds, so boundaries ($gt vs $gte) are hit
_SCALARS = {"topic": st.sampled_from(TOPICS + ["none"]), "year": st.sampled_from(range(1999, 2010)),
            "score": st.one_of(st.sampled_from(sorted({m["score"] for m in CORPUS[2] if "score" in m})),
                               st.floats(0, 5, allow_nan=False).map(lambda x: round(x, 2))),
            "draft": st.booleans(), "author.name": st.sampled_from(NAMES + ["Bob"])}


@st.composite
def _leaf(draw) -> dict:
    key = draw(st.sampled_from(sorted(_SCALARS) + ["tags"]))
    values = st.sampled_from(TAGS + ["z"]) if key == "tags" else _SCALARS[key]
    ops = ["$eq", "$ne", "$in", "$nin", "plain"]
    if key in ("year", "score", "topic", "author.name"):  # ranges on single-valued keys only (Milvus's rule)
        ops += ["$gt", "$gte", "$lt", "$lte", "range"]
    op = draw(st.sampled_from(ops))
    if op == "plain":
        return {key: draw(values)}
    if op in ("$in", "$nin"):
        return {key: {op: draw(st.lists(values, min_size=1, max_size=3))}}
    if op == "range":
        low, high = sorted([draw(values), draw(values)])
        return {key: {"$gte": low, "$lt": high}}
    return {key: {op: draw(values)}}


_FILTERS = st.recursive(_leaf(), lambda inner: st.one_of(
    st.builds(lambda subs: {"$and": subs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda subs: {"$or": subs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda a, b: {**a, **b}, _leaf(), _leaf())), max_leaves=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=_FILTERS)
def test_filters_match_the_reference(loaded, where):
    ids, _, metas, _ = CORPUS
    expected = sorted(i for i, m in zip(ids, metas) if reference(m, where))
    assert sorted(loaded.ids(where)) == expected, where


def test_the_ingest_pipeline_runs_on_every_backend(store, tmp_path):
    """``Collection.index`` (records and a tracked folder) writes the same ids on any backend."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Title\n\nDropout randomly silences units during training.\n")
    (folder / "b.txt").write_text("Cats sleep for most of the day.\n")
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"id": "r1", "text": "A record about gradients."}) + "\n")
    coll = store.collection("ingest")
    summary = coll.index([records, folder], show_progress=False)
    assert summary.added == 1 and summary.files.added == 2
    assert sorted(coll.ids()) == ["docs/a.md#0", "docs/b.txt#0", "r1"]
    assert sorted(coll.backend.tracked_files()) == ["docs/a.md", "docs/b.txt"]
    (folder / "b.txt").unlink()
    again = coll.index([records, folder], show_progress=False)
    assert again.unchanged == 1 and again.files.deleted == 1
    assert sorted(coll.ids()) == ["docs/a.md#0", "r1"]
