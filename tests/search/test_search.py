import pytest

from nearspace.errors import InputError
from nearspace.search import reciprocal_rank_fusion
from tests.conftest import SEED_QUERY


def test_seed_example_dense_and_hybrid_find_the_regularisation_doc(examples):
    # the document never says "overfitting" or "neural network"; keyword search cannot rank it first
    doc = examples.get("regularization-techniques")
    assert "overfit" not in doc.text.lower() and "neural" not in doc.text.lower()
    dense = [r.id for r in examples.search(SEED_QUERY, k=3, mode="dense")]
    hybrid = [r.id for r in examples.search(SEED_QUERY, k=3, mode="hybrid")]
    keyword = [r.id for r in examples.search(SEED_QUERY, k=3, mode="keyword")]
    assert "regularization-techniques" in dense
    assert "regularization-techniques" in hybrid
    assert "regularization-techniques" not in keyword


def test_results_are_typed_and_explain_their_ranks(examples):
    results = examples.search("black holes and stars", k=5)
    assert len(results) == 5
    top = results[0]
    assert set(top.ranks) == {"dense", "keyword"}
    assert any(r is not None for r in top.ranks.values())
    assert top.metadata["topic"] == "astronomy" and top.text and top.title
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert top.to_dict()["id"] == top.id


def test_keyword_mode_is_bm25_and_needs_no_encoder(store, example_docs):
    from nearspace import open_store

    coll = store.collection("kw")
    coll.add([d["id"] for d in example_docs], [d["text"] for d in example_docs])
    fresh = open_store(store.path).get_collection("kw")  # no encoder given: keyword must not load one
    hits = fresh.search("sourdough", k=3, mode="keyword")
    assert fresh._encoder is None
    assert hits and "sourdough" in hits[0].text.lower()
    assert hits[0].ranks == {"keyword": 1}


def test_where_filters_every_mode(examples):
    for mode in ("dense", "keyword", "hybrid"):
        hits = examples.search("laws of physics, energy and light", k=10, mode=mode,
                               where={"topic": {"$in": ["history", "physics"]}, "year": {"$gte": 2000}})
        assert hits, mode
        assert all(h.metadata["topic"] in ("history", "physics") and h.metadata["year"] >= 2000 for h in hits)
    assert examples.search("anything", where={"topic": "no-such-topic"}) == []


def test_filtered_dense_search_is_never_short(examples, example_docs):
    astronomy = sum(d["metadata"]["topic"] == "astronomy" for d in example_docs)
    hits = examples.search("cooking recipes", k=50, mode="dense", where={"topic": "astronomy"})
    assert len(hits) == astronomy


def test_hybrid_weights_tilt_the_fusion(examples):
    dense_only = examples.search(SEED_QUERY, k=5, mode="hybrid", weights={"dense": 1.0, "keyword": 0.0})
    assert [r.id for r in dense_only] == [r.id for r in examples.search(SEED_QUERY, k=5, mode="dense")]


def test_rrf_formula():
    fused = reciprocal_rank_fusion({"a": ["x", "y"], "b": ["y", "z"]}, k=60)
    scores = dict(fused)
    assert scores["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["x"] == pytest.approx(1 / 61)
    assert fused[0][0] == "y"
    with pytest.raises(ValueError):
        reciprocal_rank_fusion({"a": ["x"]}, weights={"a": -1})


@pytest.mark.parametrize("kwargs, message", [
    ({"query": "  "}, "empty"),
    ({"query": "x", "mode": "fuzzy"}, "unknown search mode"),
    ({"query": "x", "k": 0}, "positive integer"),
])
def test_bad_queries_are_explained(examples, kwargs, message):
    with pytest.raises(InputError, match=message):
        examples.search(**kwargs)


def test_upsert_and_delete_are_visible_to_search(examples):
    examples.upsert(["zebra-doc"], ["Zebras have black and white stripes that confuse biting flies."],
                    metadatas=[{"topic": "biology"}])
    assert examples.search("why do zebras have stripes", k=1, mode="dense")[0].id == "zebra-doc"
    examples.delete("zebra-doc")
    assert all(r.id != "zebra-doc" for r in examples.search("zebra stripes", k=10))


def test_api_validation_writes_nothing(examples):
    before = examples.count()
    with pytest.raises(InputError, match="text is empty"):
        examples.upsert(["ok", "empty"], ["fine text", "   "])
    with pytest.raises(InputError, match="already stored"):
        examples.add(["regularization-techniques"], ["duplicate"])
    with pytest.raises(InputError, match="more than once"):
        examples.add(["n1", "n1"], ["a", "b"])
    with pytest.raises(InputError, match="shape"):
        import numpy as np

        examples.add(["n2"], ["text"], vectors=np.zeros((1, 5)))
    with pytest.raises(InputError, match="JSON"):
        examples.add(["n3"], ["text"], metadatas=[{"bad": object()}])
    assert examples.count() == before


def test_repeated_ids_in_one_upsert_keep_the_last(examples):
    examples.upsert(["dup", "dup"], ["first version", "second version"])
    assert examples.get("dup").text == "second version"


def test_convex_fusion_and_normalisations():
    from nearspace.search.fusion import convex_fusion, fuse, normalise_scores

    assert normalise_scores([("a", 10.0), ("b", 5.0), ("c", 0.0)], "minmax") == {"a": 1.0, "b": 0.5, "c": 0.0}
    z = normalise_scores([("a", 3.0), ("b", 1.0)], "zscore")
    assert z["a"] == pytest.approx(1.0) and z["b"] == pytest.approx(-1.0)
    fused = convex_fusion({"dense": [("a", 0.9), ("b", 0.8), ("d", 0.1)], "keyword": [("b", 12.0), ("c", 3.0)]},
                          weights={"dense": 0.5, "keyword": 0.5})
    assert fused[0][0] == "b"  # found by both
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse({"dense": []}, method="magic")


def test_tuned_fusion_in_config_is_used_by_search(examples):
    examples.backend.set_config(fusion={"method": "convex", "norm": "minmax", "weights": {"dense": 1.0, "keyword": 0.0}})
    hybrid = [r.id for r in examples.search(SEED_QUERY, k=5)]
    assert hybrid == [r.id for r in examples.search(SEED_QUERY, k=5, mode="dense")]
    with pytest.raises(InputError, match="unknown fusion"):
        examples.search(SEED_QUERY, fusion={"method": "magic"})


def test_diversity_removes_near_duplicates(examples):
    base = examples.get("regularization-techniques")
    examples.upsert(["reg-copy-1", "reg-copy-2"], [base.text + " Copy one.", base.text + " Copy two."],
                    titles=[base.title, base.title])
    plain = [r.id for r in examples.search(SEED_QUERY, k=3, mode="dense")]
    assert {"regularization-techniques", "reg-copy-1", "reg-copy-2"} == set(plain)
    diverse = [r.id for r in examples.search(SEED_QUERY, k=3, mode="dense", diversity=0.7)]
    assert len({"regularization-techniques", "reg-copy-1", "reg-copy-2"} & set(diverse)) == 1
    with pytest.raises(InputError, match="diversity"):
        examples.search(SEED_QUERY, diversity=2.0)
