"""``nearspace serve`` on a milvus-lite store, end to end: a real server process on loopback,
real HTTP, the real model, the real milvus-lite engine (no mocks).

The same requests go to a SQLite-backed server's reference (an in-process SQLite store holding
the same documents) where results must agree: dense top results and hybrid #1 on the seed
example, and exact filter matches. BM25 scores differ by nature between FTS5 and Milvus's
analyzer, so keyword results are checked for what must hold (every hit shares a query stem and
passes the filter), not compared score by score.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest

from tests.conftest import SEED_QUERY
from tests.server.conftest import Server, call, start_server
from tests.store.test_milvus import _matching, milvus_lite_available

SEED_ID = "regularization-techniques"
FILTERS = [{"topic": "machine-learning"}, {"level": {"$in": ["beginner", "advanced"]}},
           {"year": {"$gte": 2016}}, {"$and": [{"topic": {"$ne": "cooking"}}, {"year": {"$lt": 2018}}]}]


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory) -> Iterator[Server]:
    reason = milvus_lite_available()
    if reason:
        pytest.skip(f"milvus-lite cannot start: {reason}")
    folder = tmp_path_factory.mktemp("served-milvus")
    served = start_server(f"milvus-lite:{folder / 'milvus.db'}", "--max-batch", "64",  # type: ignore[arg-type]
                          log=folder / "server.log")
    yield served
    code = served.stop()
    assert code == 0, f"server exit status {code} after SIGTERM:\n{served.log_tail()}"
    assert "Traceback" not in served.log.read_text(), served.log_tail()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, encoder, example_docs, example_vectors):
    """The example corpus in a SQLite store (what a SQLite-backed server would answer)."""
    from nearspace import open_store
    from tests.store.test_milvus import load_examples

    store = open_store(tmp_path_factory.mktemp("reference") / "store.db", encoder=encoder)
    yield load_examples(store, example_docs, example_vectors)
    store.close()


def _post_docs(server: Server, docs: list[dict], mode: str) -> tuple[int, dict]:
    body = {"mode": mode, "documents": [{"id": d["id"], "title": d["title"], "text": d["text"],
                                         "metadata": d["metadata"]} for d in docs]}
    status, payload, _ = call(f"{server.url}/v1/collections/examples/documents", "POST", body, timeout=600)
    return status, payload


def _search(server: Server, query: str, mode: str, k: int = 10, where: dict | None = None) -> list[dict]:
    body = {"query": query, "mode": mode, "k": k, **({"where": where} if where else {})}
    status, payload, _ = call(f"{server.url}/v1/collections/examples/search", "POST", body)
    assert status == 200, payload
    return payload["results"]


def test_serve_on_milvus_lite_end_to_end(milvus_server, reference, encoder, example_docs):
    url = milvus_server.url
    # -- add: the server encodes with its own copy of the model and writes to Milvus
    status, payload = _post_docs(milvus_server, example_docs, "add")
    assert status == 200, payload
    assert payload["added"] == len(example_docs) and payload["count"] == len(example_docs)
    status, payload = _post_docs(milvus_server, example_docs[:1], "add")
    assert status == 409, payload  # an id already stored is refused in mode 'add'
    status, listed, _ = call(f"{url}/v1/collections")
    shown = [{k: c[k] for k in ("name", "count", "encoder", "dim")} for c in listed["collections"]]
    assert status == 200 and shown == [
        {"name": "examples", "count": len(example_docs), "encoder": reference.backend.encoder, "dim": 384}]
    assert listed["collections"][0]["model"]["kind"] == "minilm"  # the stamp

    # -- upsert: unchanged skipped, metadata-only change kept without re-encoding, new text updated
    status, payload = _post_docs(milvus_server, example_docs[:5], "upsert")
    assert status == 200 and payload["unchanged"] == 5, payload
    changed = [dict(example_docs[0], metadata={**example_docs[0]["metadata"], "reviewed": True}),
               dict(example_docs[1], text=example_docs[1]["text"] + " Revised.")]
    status, payload = _post_docs(milvus_server, changed, "upsert")
    assert status == 200 and (payload["metadata"], payload["updated"]) == (1, 1), payload
    status, doc, _ = call(f"{url}/v1/collections/examples/documents/{example_docs[0]['id']}")
    assert status == 200 and doc["metadata"]["reviewed"] is True and doc["text"] == example_docs[0]["text"]
    _post_docs(milvus_server, example_docs[:2], "upsert")  # back to the reference's content

    # -- dense: same top 5 and cosines as SQLite on the seed example
    dense = _search(milvus_server, SEED_QUERY, "dense", k=5)
    want = reference.search(SEED_QUERY, k=5, mode="dense")
    assert [r["id"] for r in dense] == [r.id for r in want]
    np.testing.assert_allclose([r["score"] for r in dense], [r.score for r in want], atol=1e-4)
    assert dense[0]["id"] == SEED_ID
    # -- hybrid: the same #1 (BM25 differs by nature, so lower ranks may differ)
    hybrid = _search(milvus_server, SEED_QUERY, "hybrid", k=5)
    assert hybrid[0]["id"] == reference.search(SEED_QUERY, k=5, mode="hybrid")[0].id == SEED_ID
    # -- keyword: every hit shares a stem of the query's words
    keyword = _search(milvus_server, "dropout overfitting", "keyword", k=10)
    assert keyword and all(("dropout" in (r["title"] + r["text"]).lower()
                            or "overfit" in (r["title"] + r["text"]).lower()) for r in keyword)

    # -- filters: exactly the matching documents, in every mode
    for where in FILTERS:
        expected = _matching(example_docs, where)
        assert expected, where
        for mode in ("dense", "hybrid"):
            got = {r["id"] for r in _search(milvus_server, "learning and travel and food", mode, k=60, where=where)}
            assert got == expected == {r.id for r in reference.search("learning and travel and food", k=60,
                                                                         mode=mode, where=where)}, (where, mode)
        got = {r["id"] for r in _search(milvus_server, "learning travel food", "keyword", k=60, where=where)}
        assert got and got <= expected, where
    status, payload, _ = call(f"{url}/v1/collections/examples/search", "POST",
                              {"query": "x", "where": {"year": {"$regex": "1"}}})
    assert status == 422 and "$regex" in payload["error"]["message"], payload  # one clear error

    # -- ask works through the server on Milvus
    status, answer, _ = call(f"{url}/v1/collections/examples/ask", "POST", {"question": SEED_QUERY, "k": 3})
    assert status == 200 and SEED_ID in answer["passages"][0]["ids"], answer
    # -- the map reads every stored vector from Milvus
    status, mapped, _ = call(f"{url}/v1/collections/examples/map?method=pca")
    assert status == 200, mapped
    assert sorted(p["id"] for p in mapped["points"]) == sorted(d["id"] for d in example_docs)

    # -- delete: gone from get, search and count; a second delete is a 404
    status, payload, _ = call(f"{url}/v1/collections/examples/documents/{SEED_ID}", "DELETE")
    assert status == 200 and payload["count"] == len(example_docs) - 1, payload
    assert call(f"{url}/v1/collections/examples/documents/{SEED_ID}")[0] == 404
    assert call(f"{url}/v1/collections/examples/documents/{SEED_ID}", "DELETE")[0] == 404
    assert SEED_ID not in {r["id"] for r in _search(milvus_server, SEED_QUERY, "hybrid", k=10)}

    # -- /v1/embeddings answers from the same model whatever the store
    texts = [SEED_QUERY, "Cats sleep a lot."]
    status, payload, _ = call(f"{url}/v1/embeddings", "POST", {"input": texts, "model": "all-MiniLM-L6-v2"})
    assert status == 200, payload
    got = np.asarray([d["embedding"] for d in payload["data"]])
    assert np.abs(got - encoder.encode(texts)).max() < 1e-4


def test_written_data_outlives_the_server(milvus_server, example_docs, tmp_path):
    """After SIGTERM the milvus-lite file holds everything the server acknowledged."""
    from nearspace import open_store

    count = call(f"{milvus_server.url}/v1/collections")[1]["collections"][0]["count"]
    assert milvus_server.stop() == 0, milvus_server.log_tail()
    uri = str(milvus_server.store)
    with open_store(uri) as store:
        coll = store.get_collection("examples")
        assert coll.count() == count == len(example_docs) - 1
        ids = [d["id"] for d in example_docs if d["id"] != SEED_ID]
        for doc, got in zip([d for d in example_docs if d["id"] != SEED_ID], coll.get(ids)):
            assert (got.title, got.text, got.metadata) == (doc["title"], doc["text"], doc["metadata"])
