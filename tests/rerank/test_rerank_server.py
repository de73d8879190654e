"""``nearspace serve --rerank``: POST /v1/rerank in the common shape, and ``rerank: true`` in
search; the endpoint reranker client against it on loopback."""
from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from tests.conftest import EXAMPLES, SEED_QUERY
from tests.rerank.test_rerank import tiny_cross_encoder  # noqa: F401 (fixture)
from tests.server.conftest import start_server


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_cross_encoder):  # noqa: F811
    from tests.cli.test_cli import run

    store = tmp_path_factory.mktemp("rerank") / "store.db"
    run("--store", str(store), "index", str(EXAMPLES))
    server = start_server(store, "--rerank", f"ce:{tiny_cross_encoder}")
    yield server
    server.stop()


def _post(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_rerank_endpoint_and_its_client_agree_with_the_model(served, tiny_cross_encoder):  # noqa: F811
    from sentence_transformers import CrossEncoder

    from nearspace.rerank import load_reranker

    docs = ["Dropout silences units during training.", "Cats sleep all day.", "Weight decay shrinks weights."]
    expected = CrossEncoder(str(tiny_cross_encoder), device="cpu").predict([(SEED_QUERY, d) for d in docs])
    status, answer = _post(f"{served.url}/v1/rerank", {"model": "tiny-ce", "query": SEED_QUERY, "documents": docs,
                                                       "top_n": 2, "return_documents": True})
    assert status == 200 and [r["index"] for r in answer["results"]] == list(np.argsort(-expected)[:2])
    assert answer["results"][0]["document"]["text"] == docs[int(np.argmax(expected))]
    client = load_reranker(f"rerank:tiny-ce@{served.url}/v1")
    np.testing.assert_allclose(client.score(SEED_QUERY, docs), expected, atol=1e-5)
    status, refused = _post(f"{served.url}/v1/rerank", {"model": "other", "query": "q", "documents": ["d"]})
    assert status == 404 and "tiny-ce" in json.dumps(refused)


def test_search_with_rerank_true_uses_the_servers_reranker(served, tiny_cross_encoder):  # noqa: F811
    from nearspace import open_store

    status, plain = _post(f"{served.url}/v1/collections/default/search", {"query": SEED_QUERY, "k": 5})
    status2, reranked = _post(f"{served.url}/v1/collections/default/search",
                              {"query": SEED_QUERY, "k": 5, "rerank": True, "rerank_k": 20})
    assert status == status2 == 200
    assert all(h["ranks"].get("rerank") for h in reranked["results"]) and "rerank" not in plain["results"][0]["ranks"]
    with open_store(served.store) as store:
        local = store.get_collection("default").search(SEED_QUERY, k=5, rerank=f"ce:{tiny_cross_encoder}", rerank_k=20)
    assert [h["id"] for h in reranked["results"]] == [h.id for h in local]


def test_a_server_without_a_reranker_says_how_to_start_one(tmp_path):
    server = start_server(tmp_path / "plain.db")
    try:
        _post(f"{server.url}/v1/collections/c/documents", {"documents": [{"id": "a", "text": "hello there"}]})
        status, answer = _post(f"{server.url}/v1/collections/c/search", {"query": "hello", "rerank": True})
        assert status == 400 and "--rerank" in json.dumps(answer)
        status, _ = _post(f"{server.url}/v1/rerank", {"model": "x", "query": "q", "documents": ["d"]})
        assert status == 400
    finally:
        server.stop()


def test_the_server_shows_each_collections_stamp(served):
    with urllib.request.urlopen(f"{served.url}/v1/collections", timeout=30) as response:
        listed = json.loads(response.read())["collections"]
    stamp = next(c for c in listed if c["name"] == "default")["model"]
    assert stamp["kind"] == "minilm" and stamp["dim"] == 384 and len(stamp["fingerprint"]) == 16
