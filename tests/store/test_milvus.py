"""One collection-level conformance set, run against SQLite and against milvus-lite.

Where the engines differ by nature it is said at the check: BM25 scores (FTS5's bm25() vs
Milvus's analyzer + BM25 function, different tokenisers and statistics) are not compared,
only that the keyword list finds the documents that share the query's words; the dense
list and the hybrid's top result must agree on the seed example; filters must match
exactly the same ids; nothing written may be lost.
"""
from __future__ import annotations

import numpy as np
import pytest

from nearspace.errors import CollectionNotFound, InputError
from tests.conftest import SEED_QUERY

BACKENDS = ["sqlite", "milvus-lite"]


def milvus_lite_available() -> str | None:
    """None when milvus-lite starts here, else the reason it cannot."""
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return f"the 'milvus' extra is not installed ({exc})"
    return None


def open_backend(kind: str, tmp_path, encoder):
    from nearspace import open_store

    if kind == "sqlite":
        return open_store(tmp_path / "store.db", encoder=encoder)
    reason = milvus_lite_available()
    if reason:  # the one documented skip: the extra is absent; a backend that fails to start fails
        pytest.skip(reason)
    return open_store(f"milvus-lite:{tmp_path / 'milvus.db'}", encoder=encoder)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, encoder):
    opened = open_backend(request.param, tmp_path, encoder)
    yield opened
    opened.close()


def load_examples(store, example_docs, example_vectors, name="examples"):
    coll = store.collection(name)
    coll.upsert(ids=[d["id"] for d in example_docs], texts=[d["text"] for d in example_docs],
                titles=[d["title"] for d in example_docs], metadatas=[d["metadata"] for d in example_docs],
                vectors=example_vectors)
    return coll


@pytest.fixture()
def both(tmp_path, encoder, example_docs, example_vectors):
    """The example corpus in a SQLite store and in a milvus-lite store, side by side."""
    sqlite = open_backend("sqlite", tmp_path, encoder)
    milvus = open_backend("milvus-lite", tmp_path, encoder)
    yield (load_examples(sqlite, example_docs, example_vectors),
           load_examples(milvus, example_docs, example_vectors))
    sqlite.close()
    milvus.close()


def test_nothing_lost_and_round_trip(backend, example_docs, example_vectors):
    coll = load_examples(backend, example_docs, example_vectors)
    assert coll.count() == len(example_docs)
    for doc, got in zip(example_docs, coll.get([d["id"] for d in example_docs])):
        assert (got.id, got.title, got.text, got.metadata) == (doc["id"], doc["title"], doc["text"], doc["metadata"])
    assert coll.get("no-such-id") is None
    assert backend.list_collections() == ["examples"]


def test_upsert_semantics(backend, encoder):
    coll = backend.collection("notes")
    first = coll.upsert(["a", "b"], ["Dropout silences units during training.", "Cats sleep a lot."],
                        metadatas=[{"topic": "ml"}, {"topic": "pets"}])
    assert first == {"added": 2, "updated": 0, "metadata": 0, "unchanged": 0}
    vector_a = coll.embed_queries(["Dropout silences units during training."], use_adapter=False)[0]
    # the same documents again: skipped
    assert coll.upsert(["a", "b"], ["Dropout silences units during training.", "Cats sleep a lot."],
                       metadatas=[{"topic": "ml"}, {"topic": "pets"}])["unchanged"] == 2
    # metadata only: no re-encoding (a stale vector proves it: we give none, and the stored one stays)
    calls = []
    real_encode = coll.encoder.encode
    coll.encoder.encode = lambda texts, **kw: calls.append(list(texts)) or real_encode(texts, **kw)
    try:
        counts = coll.upsert(["a"], ["Dropout silences units during training."], metadatas=[{"topic": "dl"}])
    finally:
        coll.encoder.encode = real_encode
    assert counts == {"added": 0, "updated": 0, "metadata": 1, "unchanged": 0}
    assert calls == []
    assert coll.get("a").metadata == {"topic": "dl"}
    hit = coll.search("Dropout silences units during training.", k=1, mode="dense")[0]
    assert hit.id == "a" and hit.score == pytest.approx(float(vector_a @ vector_a), abs=1e-4)
    # changed text: a new vector
    assert coll.upsert(["b"], ["Dogs bark at night."])["updated"] == 1
    assert coll.search("barking dog", k=1, mode="dense")[0].id == "b"
    with pytest.raises(InputError, match="already stored"):
        coll.add(["a"], ["again"])
    assert coll.delete(["a", "missing"]) == 1
    assert coll.count() == 1


def test_encoder_mismatch_refused(backend, encoder):
    from nearspace.errors import EncoderMismatch

    backend.collection("notes").upsert(["a"], ["text"])

    class Other:
        name, dim = "other-model", 8

    with pytest.raises(EncoderMismatch):
        backend.collection("notes", encoder=Other())
    with pytest.raises(CollectionNotFound, match="unknown collection"):
        backend.get_collection("absent")


def test_seed_query_agrees(both):
    sqlite, milvus = both
    dense_s = sqlite.search(SEED_QUERY, k=5, mode="dense")
    dense_m = milvus.search(SEED_QUERY, k=5, mode="dense")
    # dense is exact cosine on both (SQLite below its HNSW threshold, Milvus's index at 60 rows)
    assert [r.id for r in dense_m] == [r.id for r in dense_s]
    assert [r.score for r in dense_m] == pytest.approx([r.score for r in dense_s], abs=1e-4)
    assert dense_s[0].id == "regularization-techniques"
    # BM25 differs by nature (tokeniser, stemmer, statistics): scores are not compared; what
    # must hold is that every keyword hit shares a query word stem with the document
    for result in milvus.search(SEED_QUERY, k=5, mode="keyword"):
        words = (result.title + " " + result.text).lower()
        assert any(stem in words for stem in ("reduc", "overfit", "neural", "network"))
    assert milvus.search(SEED_QUERY, k=1, mode="hybrid")[0].id == sqlite.search(SEED_QUERY, k=1, mode="hybrid")[0].id


FILTERS = [
    {"topic": "machine-learning"},
    {"topic": {"$ne": "machine-learning"}},
    {"topic": {"$in": ["machine-learning", "cooking"]}},
    {"topic": {"$nin": ["machine-learning", "cooking"]}},
    {"$or": [{"topic": "machine-learning"}, {"level": "beginner"}]},
    {"$and": [{"topic": {"$ne": "machine-learning"}}, {"level": {"$in": ["beginner", "advanced"]}}]},
    {"level": {"$gte": "beginner", "$lt": "intermediate"}},  # string ranges compare as strings on both
]


def test_filters_exact(both, example_docs):
    sqlite, milvus = both
    keys = {k for d in example_docs for k in d["metadata"]}
    filters = list(FILTERS)
    # numeric ranges on any numeric scalar key the examples carry
    for key in sorted(keys):
        values = [d["metadata"][key] for d in example_docs if key in d["metadata"]]
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            middle = sorted(values)[len(values) // 2]
            filters += [{key: {"$gte": middle}}, {key: {"$gt": middle, "$lte": max(values)}}, {key: middle}]
    for where in filters:
        for mode in ("dense", "keyword", "hybrid"):
            want = {r.id for r in sqlite.search("learning and travel and food", k=60, mode=mode, where=where)}
            got = {r.id for r in milvus.search("learning and travel and food", k=60, mode=mode, where=where)}
            expected = _matching(example_docs, where)
            assert expected, where  # every filter here selects something
            if mode == "keyword":  # BM25 candidates differ by tokeniser: only docs the filter admits
                assert got <= expected, where
            else:
                assert got == want == expected, (where, mode)


def _matching(docs, where) -> set[str]:
    from nearspace.store.filters import flatten_metadata

    def holds(meta, cond) -> bool:
        values = {}
        for k, v in flatten_metadata(meta):
            values.setdefault(k, []).append(v)
        for key, c in cond.items():
            if key == "$and":
                ok = all(holds(meta, s) for s in c)
            elif key == "$or":
                ok = any(holds(meta, s) for s in c)
            else:
                ops = c if isinstance(c, dict) else {"$eq": c}
                vs = values.get(key, [])
                ok = all({"$eq": lambda x: x in vs, "$ne": lambda x: x not in vs,
                          "$in": lambda x: any(v in x for v in vs), "$nin": lambda x: not any(v in x for v in vs),
                          "$gt": lambda x: any(v > x for v in vs), "$gte": lambda x: any(v >= x for v in vs),
                          "$lt": lambda x: any(v < x for v in vs), "$lte": lambda x: any(v <= x for v in vs),
                          }[op](x) for op, x in ops.items())
            if not ok:
                return False
        return True

    return {d["id"] for d in docs if holds(d["metadata"], where)}


def test_list_metadata_and_dotted_keys(backend):
    coll = backend.collection("tags")
    coll.upsert(["a", "b", "c", "d"], ["one", "two", "three", "four"],
                metadatas=[{"tags": ["x", "y"], "info": {"year": 2020}},
                           {"tags": ["y"], "info": {"year": 2015}, "flag": True},
                           {"tags": "x", "n": 3},
                           {}])

    def ids(where):
        return sorted(r.id for r in coll.search("one two three four", k=10, mode="dense", where=where))

    assert ids({"tags": "x"}) == ["a", "c"]            # a list matches on any element
    assert ids({"tags": {"$ne": "x"}}) == ["b", "d"]   # ... and $ne means no element equals it
    assert ids({"tags": {"$in": ["y"]}}) == ["a", "b"]
    assert ids({"info.year": {"$gte": 2016}}) == ["a"]  # nested objects by dotted key
    assert ids({"flag": True}) == ["b"]
    assert ids({"n": {"$lt": 5}}) == ["c"]
    assert ids({"absent": {"$nin": ["q"]}}) == ["a", "b", "c", "d"]


def test_untranslatable_filter_is_an_error(tmp_path, encoder):
    """A range over a key holding lists cannot be a Milvus expression: refused, never dropped."""
    store = open_backend("milvus-lite", tmp_path, encoder)
    coll = store.collection("lists")
    coll.upsert(["a", "b"], ["one", "two"], metadatas=[{"year": [2019, 2021]}, {"year": 2018}])
    with pytest.raises(InputError, match="cannot be expressed in Milvus"):
        coll.search("one", mode="dense", where={"year": {"$gt": 2020}})
    with pytest.raises(InputError, match="unknown operator"):
        coll.search("one", mode="dense", where={"year": {"$regex": "x"}})
    assert {r.id for r in coll.search("one", mode="dense", where={"year": {"$in": [2021]}})} == {"a"}
    store.close()


def test_tuned_fusion_and_adapter_applied(both):
    """A stored fusion and query adapter change Milvus results exactly as they change SQLite's."""
    from nearspace.learn.adapter import LinearAdapter, save_adapter

    sqlite, milvus = both
    for coll in (sqlite, milvus):
        coll.backend.set_config(fusion={"method": "convex", "norm": "minmax", "weights": {"dense": 1.0, "keyword": 0.0}})
    assert [r.id for r in milvus.search(SEED_QUERY, k=5)] == [r.id for r in milvus.search(SEED_QUERY, k=5, mode="dense")]
    rng = np.random.default_rng(0)
    matrix = np.eye(384, dtype=np.float32) + 0.3 * rng.standard_normal((384, 384)).astype(np.float32)
    for coll in (sqlite, milvus):
        save_adapter(coll.backend, LinearAdapter(matrix, {}))
    q_s, q_m = sqlite.embed_queries([SEED_QUERY]), milvus.embed_queries([SEED_QUERY])
    assert np.allclose(q_s, q_m, atol=1e-5)
    plain = milvus.embed_queries([SEED_QUERY], use_adapter=False)
    assert not np.allclose(q_m, plain, atol=1e-3)
    assert [r.id for r in milvus.search(SEED_QUERY, k=5, mode="dense")] == \
        [r.id for r in sqlite.search(SEED_QUERY, k=5, mode="dense")]


def test_reopen_keeps_everything(tmp_path, encoder, example_docs, example_vectors):
    store = open_backend("milvus-lite", tmp_path, encoder)
    load_examples(store, example_docs, example_vectors).backend.set_config(note="kept")
    store.close()
    again = open_backend("milvus-lite", tmp_path, encoder)
    coll = again.get_collection("examples")
    assert coll.count() == len(example_docs)
    assert coll.backend.config()["note"] == "kept" and coll.spec.kind == "minilm"  # the encoder spec is stored too
    assert coll.search(SEED_QUERY, k=1, mode="dense")[0].id == "regularization-techniques"
    again.drop_collection("examples")
    assert again.list_collections() == []
    again.close()


def test_ask_on_milvus(both):
    sqlite, milvus = both
    answer = milvus.ask(SEED_QUERY, k=3)
    assert answer.passages and answer.passages[0].ids[0] == sqlite.ask(SEED_QUERY, k=3).passages[0].ids[0]


def test_own_vectors_collection_and_search_by_vector(tmp_path, encoder):
    """``collection(name, dim=)`` (no model) and ``search(vector=...)`` answer alike on both engines."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    ids = [f"v{i}" for i in range(40)]
    metas = [{"group": i % 4, "tag": ["odd" if i % 2 else "even"]} for i in range(40)]
    found = {}
    for kind in BACKENDS:
        store = open_backend(kind, tmp_path, encoder)
        try:
            coll = store.collection("own", dim=8)
            assert coll.vectors_only
            assert coll.upsert(ids, vectors=vectors, metadatas=metas)["added"] == 40
            assert store.collection("own", dim=8).count() == 40  # reopened by dimension alone
            with pytest.raises(InputError, match="dimension"):
                store.collection("own", dim=9)
            with pytest.raises(InputError, match="vector="):
                coll.search("a text query", mode="dense")
            hits = coll.search(vector=vectors[5], k=5)
            filtered = coll.search(vector=vectors[5], k=40, where={"$and": [{"group": {"$in": [1, 3]}},
                                                                           {"tag": "odd"}]})
            found[kind] = ([(h.id, round(h.score, 4)) for h in hits], sorted(h.id for h in filtered))
        finally:
            store.close()
    assert found["milvus-lite"] == found["sqlite"]
    assert found["sqlite"][0][0] == ("v5", 1.0)
    assert found["sqlite"][1] == sorted(f"v{i}" for i in range(40) if i % 4 in (1, 3))
