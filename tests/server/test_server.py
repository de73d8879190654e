"""``nearspace serve`` end to end: real model, real SQLite file, real HTTP server on loopback,
the official ``openai`` client, schemathesis and a real headless Chromium."""
from __future__ import annotations

import base64
import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SEED_QUERY
from tests.server.conftest import API_KEY, call, server_env, snapshot, start_server

MODEL = "all-MiniLM-L6-v2"
SEED_ID = "regularization-techniques"


def openai_client(url: str, key: str = "not-needed"):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def error_of(payload) -> dict:
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    assert payload["error"]["message"] and payload["error"]["type"], payload
    return payload["error"]


# -- OpenAI-compatible embeddings ------------------------------------------------------------------
def test_openai_client_gets_nearspace_vectors(server, encoder, example_docs):
    client = openai_client(server.url)
    single = "Dropout randomly silences units while training."
    batch = [f"{d['title']} {d['text']}" for d in example_docs[:6]] + ["short one"]
    expected_single = encoder.encode([single])[0]
    expected_batch = encoder.encode(batch)

    got = client.embeddings.create(input=single, model=MODEL, encoding_format="float")
    assert got.model == MODEL and len(got.data) == 1 and len(got.data[0].embedding) == 384
    assert np.abs(np.asarray(got.data[0].embedding) - expected_single).max() < 1e-4
    tokens = len(encoder.tokenizer([single], truncation=True, max_length=encoder.max_seq_length)["input_ids"][0])
    assert got.usage.prompt_tokens == got.usage.total_tokens == tokens

    got = client.embeddings.create(input=batch, model=MODEL, encoding_format="float")
    assert [d.index for d in got.data] == list(range(len(batch)))
    assert np.abs(np.asarray([d.embedding for d in got.data]) - expected_batch).max() < 1e-4
    assert got.usage.prompt_tokens > len(batch) * 10

    raw = client.embeddings.create(input=batch, model=MODEL, encoding_format="base64")
    decoded = np.stack([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in raw.data])
    assert decoded.shape == (len(batch), 384)
    assert np.abs(decoded - expected_batch).max() < 1e-4

    # no encoding_format: the client asks for base64 and decodes it itself
    default = client.embeddings.create(input=[single], model=MODEL)
    assert np.abs(np.asarray(default.data[0].embedding) - expected_single).max() < 1e-4

    assert MODEL in [m.id for m in client.models.list().data]


def test_large_embedding_requests_get_fp32_vectors(encoder):
    # `auto` may hand 256+ texts to torch bf16 on CPUs with native bf16 (up to 3e-3 off); what
    # /v1/embeddings returns (LockedEncoder.encode_with_usage) must not depend on the batch size
    from nearspace.encoders.auto import BF16_MIN_TEXTS
    from nearspace.encoders.locked import LockedEncoder

    texts = [f"note {i}: {'orbit ' * (i % 7)}comet" for i in range(BF16_MIN_TEXTS + 4)]
    fp32 = getattr(encoder, "onnx", encoder)
    vectors, tokens = LockedEncoder().encode_with_usage(texts)
    assert np.abs(vectors[:8] - fp32.encode(texts[:8])).max() < 1e-4
    assert np.abs(vectors - fp32.encode(texts)).max() < 1e-4 and tokens > len(texts)


def test_openai_client_sees_openai_errors(server):
    import openai

    client = openai_client(server.url)
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(input="x", model="text-embedding-3-small")
    assert caught.value.code == "model_not_found" and "text-embedding-3-small" in caught.value.message
    with pytest.raises(openai.UnprocessableEntityError):
        client.embeddings.create(input=[], model=MODEL)


# -- collections over HTTP equal the Python API -----------------------------------------------------
@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_search_equals_the_python_api(server, encoder, mode):
    from nearspace import open_store

    calls = [{"query": SEED_QUERY, "k": 10, "mode": mode},
             {"query": "stars and planets", "k": 5, "mode": mode, "where": {"topic": "astronomy", "year": {"$gte": 2015}}}]
    with open_store(server.store, encoder=encoder) as opened:
        coll = opened.get_collection("examples")
        for body in calls:
            status, payload, _ = call(f"{server.url}/v1/collections/examples/search", "POST", body)
            assert status == 200, payload
            expected = [r.to_dict() for r in coll.search(body["query"], k=body["k"], mode=mode, where=body.get("where"))]
            got = payload["results"]
            assert [h["id"] for h in got] == [h["id"] for h in expected] and got
            for h, e in zip(got, expected):
                assert h["score"] == pytest.approx(e["score"], abs=1e-6)
                assert h["ranks"] == e["ranks"] and h["metadata"] == e["metadata"] and h["text"] == e["text"]
            if mode != "keyword" and "where" not in body:
                assert SEED_ID in [h["id"] for h in got]


def test_documents_round_trip(server):
    base = f"{server.url}/v1/collections/notes/documents"
    docs = [{"id": "tides", "text": "The Moon's gravity raises tides in the oceans.", "metadata": {"topic": "sea"}},
            {"id": "bread/yeast", "text": "Yeast makes bread rise.", "title": "Bread", "metadata": {"topic": "food"}}]
    status, written, _ = call(base, "POST", {"documents": docs})
    assert status == 200 and written["added"] == 2 and written["count"] == 2, written
    status, again, _ = call(base, "POST", {"documents": docs})
    assert again["unchanged"] == 2 and again["count"] == 2
    status, doc, _ = call(f"{base}/bread/yeast")
    assert status == 200 and doc == {"id": "bread/yeast", "text": "Yeast makes bread rise.", "title": "Bread",
                                     "metadata": {"topic": "food"}}
    status, clash, _ = call(base, "POST", {"documents": docs[:1], "mode": "add"})
    assert status == 409 and "already stored" in error_of(clash)["message"]

    # a vector from /v1/embeddings can be stored as is, and search finds the document by it
    _, emb, _ = call(f"{server.url}/v1/embeddings", "POST", {"input": "Orbits of comets are long ellipses.", "model": MODEL})
    status, written, _ = call(base, "POST", {"documents": [{"id": "comet", "text": "Orbits of comets are long ellipses.",
                                                            "vector": emb["data"][0]["embedding"]}]})
    assert status == 200 and written["added"] == 1
    _, found, _ = call(f"{server.url}/v1/collections/notes/search", "POST", {"query": "comet orbits", "mode": "dense", "k": 1})
    assert found["results"][0]["id"] == "comet"

    status, gone, _ = call(f"{base}/tides", "DELETE")
    assert status == 200 and gone["deleted"] and gone["count"] == 2
    assert call(f"{base}/tides")[0] == 404
    assert call(f"{base}/tides", "DELETE")[0] == 404
    _, listed, _ = call(f"{server.url}/v1/collections")
    shown = [{k: c[k] for k in ("name", "count", "encoder", "dim")} for c in listed["collections"]]
    assert {"name": "notes", "count": 2, "encoder": MODEL, "dim": 384} in shown


def test_ask_and_map(server, encoder):
    from nearspace import open_store

    status, answer, _ = call(f"{server.url}/v1/collections/examples/ask", "POST", {"question": SEED_QUERY, "k": 3})
    assert status == 200, answer
    with open_store(server.store, encoder=encoder) as opened:
        expected = opened.get_collection("examples").ask(SEED_QUERY, k=3).to_dict()
    assert [p["citation"] for p in answer["passages"]] == [p["citation"] for p in expected["passages"]]
    assert answer["tokens"] == expected["tokens"] and 0 < answer["tokens"] <= 1000
    assert SEED_ID in [i for p in answer["passages"] for i in p["ids"]]

    status, drawn, _ = call(f"{server.url}/v1/collections/examples/map")
    assert status == 200, drawn
    assert len(drawn["points"]) == 60 and all(p["label"] for p in drawn["points"])
    assert sum(entry["count"] for entry in drawn["legend"]) == 60
    status, payload, _ = call(f"{server.url}/v1/collections/examples/map?method=tsne")
    assert status == 422 and "method" in error_of(payload)["message"]


# -- bad input: a clear 4xx, and nothing stored changes --------------------------------------------------
def test_bad_input_is_a_clear_4xx_and_changes_nothing(server):
    url = server.url
    docs_url = f"{url}/v1/collections/examples/documents"
    search_url = f"{url}/v1/collections/examples/search"
    one_doc = {"id": "x", "text": "fine text"}
    cases = [
        ("oversized body", docs_url, {"raw": json.dumps({"documents": [{"id": "big", "text": "a" * 1_200_000}]}).encode()},
         413, "exceeds the limit"),
        ("malformed JSON", docs_url, {"raw": b'{"documents": [{"id": "x", "text": '}, 422, "not valid JSON"),
        ("not JSON at all", search_url, {"raw": b"query=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
         415, "Content-Type: application/json"),
        ("unknown collection", f"{url}/v1/collections/nope/search", {"body": {"query": "x"}}, 404, "unknown collection 'nope'"),
        ("wrong vector dimension, existing collection", docs_url,
         {"body": {"documents": [{**one_doc, "vector": [0.1, 0.2, 0.3]}]}}, 422, "3 dimensions"),
        ("wrong vector dimension, new collection", f"{url}/v1/collections/fresh/documents",
         {"body": {"documents": [{**one_doc, "vector": [0.1] * 10}]}}, 422, "10 dimensions"),
        ("vectors on some documents only", docs_url,
         {"body": {"documents": [{**one_doc, "vector": [0.1] * 384}, {"id": "y", "text": "t"}]}}, 422, "every document"),
        ("empty input list", f"{url}/v1/embeddings", {"body": {"input": [], "model": MODEL}}, 422, "empty list"),
        ("empty document list", docs_url, {"body": {"documents": []}}, 422, "documents"),
        ("batch over the limit", docs_url,
         {"body": {"documents": [{"id": f"d{i}", "text": "t"} for i in range(17)]}}, 422, "at most 16"),
        ("k over the limit", search_url, {"body": {"query": "x", "k": 51}}, 422, "less than or equal to 50"),
        ("unknown mode", search_url, {"body": {"query": "x", "mode": "fuzzy"}}, 422, "mode"),
        ("blank query", search_url, {"body": {"query": "   "}}, 422, "empty"),
        ("bad filter operator", search_url, {"body": {"query": "x", "where": {"year": {"$near": 3}}}}, 422, "$near"),
        ("NUL in text", docs_url, {"body": {"documents": [{"id": "n", "text": "a\u0000b"}]}}, 422, "NUL"),
        ("lone surrogate", docs_url, {"raw": b'{"documents": [{"id": "s", "text": "bad \\ud800 text"}]}'}, 422, "unicode"),
        ("integer too large", docs_url, {"body": {"documents": [{**one_doc, "metadata": {"n": 10 ** 400}}]}}, 422, "too large"),
        # the library's 64-bit rule, not JSON's 1e308 ([14/20]: the server accepted 2**63 before)
        ("integer just past 64 bits", docs_url, {"body": {"documents": [{**one_doc, "metadata": {"n": 2 ** 63}}]}},
         422, "too large"),
        ("filter bound beyond 64 bits", search_url, {"body": {"query": "x", "where": {"year": {"$gt": 2 ** 70}}}}, 422, "too large"),
        ("repeated id with mode add", f"{url}/v1/collections/fresh/documents",
         {"body": {"documents": [one_doc, one_doc], "mode": "add"}}, 422, "more than once"),
        ("bad collection name", f"{url}/v1/collections/bad%20name!/documents", {"body": {"documents": [one_doc]}},
         422, "invalid collection name"),
        ("unknown model", f"{url}/v1/embeddings", {"body": {"input": "x", "model": "gpt-embed"}}, 404, "gpt-embed"),
        ("wrong dimensions for the model", f"{url}/v1/embeddings",
         {"body": {"input": "x", "model": MODEL, "dimensions": 256}}, 422, "384"),
    ]
    before = snapshot(server.store)
    for label, target, kwargs, want, phrase in cases:
        status, payload, _ = call(target, "POST", **kwargs)
        assert status == want, (label, status, payload)
        assert phrase in error_of(payload)["message"], (label, payload)
    # chunked upload without Content-Length is cut off at the limit too
    status, payload = chunked_post(docs_url, b"{" + b" " * 1_100_000 + b"}")
    assert status == 413 and "exceeds the limit" in error_of(payload)["message"]
    assert call(f"{url}/v1/collections/examples/documents/nope")[0] == 404
    assert call(f"{url}/v1/collections/nope/documents/x", "DELETE")[0] == 404
    assert snapshot(server.store) == before
    assert "fresh" not in [c["name"] for c in call(f"{url}/v1/collections")[1]["collections"]]


def chunked_post(url: str, payload: bytes) -> tuple[int, dict]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    chunks = (payload[i:i + 65536] for i in range(0, len(payload), 65536))
    conn.request("POST", parts.path, body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


# -- auth ---------------------------------------------------------------------------------------------
def test_api_key_is_required_and_checked(keyed_server):
    url = keyed_server.url
    assert call(f"{url}/health")[0] == 200
    status, page, _ = call(f"{url}/")
    assert status == 200 and "<title>nearspace</title>" in page
    assert call(f"{url}/static/app.js")[0] == 200
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {API_KEY}"},
                    {"Authorization": f"Bearer {API_KEY}x"}):
        for method, path, body in (("GET", "/v1/collections", None), ("GET", "/openapi.json", None),
                                   ("POST", "/v1/collections/examples/search", {"query": "x"}),
                                   ("POST", "/v1/embeddings", {"input": "x", "model": MODEL})):
            status, payload, got = call(f"{url}{path}", method, body, headers=headers)
            assert status == 401, (headers, path, payload)
            assert error_of(payload)["type"] == "authentication_error"
            assert got.get("www-authenticate", "").startswith("Bearer")
    good = {"Authorization": f"Bearer {API_KEY}"}
    status, payload, _ = call(f"{url}/v1/collections/examples/search", "POST", {"query": SEED_QUERY, "mode": "dense"},
                              headers=good)
    assert status == 200 and payload["results"][0]["id"] == SEED_ID

    import openai

    assert len(openai_client(url, API_KEY).embeddings.create(input="x", model=MODEL).data[0].embedding) == 384
    with pytest.raises(openai.AuthenticationError):
        openai_client(url, "wrong").embeddings.create(input="x", model=MODEL)


def test_public_bind_without_key_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nearspace.cli", "--store", str(tmp_path / "s.db"), "serve",
                           "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60,
                          env=server_env(None))
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "API key" in lines[0] and "0.0.0.0" in lines[0], proc.stderr
    assert "Uvicorn running" not in proc.stderr + proc.stdout
    assert not (tmp_path / "s.db").exists()  # refused before anything is opened


# -- the OpenAPI schema, fuzzed ------------------------------------------------------------------------
def test_openapi_schema_holds_under_fuzzing(keyed_server, artifacts, tmp_path):
    """schemathesis (its CLI: the pytest plugin does not load under pytest 9) against the live
    schema, with the key: no 5xx, and every status code, content type and body is documented.
    Bounded: 40 generated cases (valid and invalid) per operation, 6 for the costly ask and map.
    The coverage phase (boundary cases) runs on its own in test_hardening.py."""
    st = Path(sys.executable).with_name("st")
    costly = "/ask$|/map$"
    # the second run includes the collection list, from which schemathesis learns a real collection name
    for examples, selection in (("40", ["--exclude-path-regex", costly]),
                                ("6", ["--include-path-regex", f"{costly}|^/v1/collections$"])):
        report = artifacts / f"schemathesis-{examples}.xml"
        proc = subprocess.run(
            [str(st), "run", f"{keyed_server.url}/openapi.json", "-H", f"Authorization: Bearer {API_KEY}",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                         "response_schema_conformance,response_headers_conformance",
             "--phases", "examples,fuzzing", "--max-examples", examples, "--generation-deterministic",
             *selection, "--workers", "1", "--request-timeout", "120", "--no-color",
             "--report", "junit", "--report-junit-path", str(report)],
            capture_output=True, text=True, timeout=300, env=server_env(None), cwd=tmp_path)  # caches go to tmp
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        assert "Failures:" not in proc.stdout and "Errors:" not in proc.stdout, proc.stdout[-3000:]
        tested = re.search(r"Tested:\s+(\d+)", proc.stdout)
        assert tested and int(tested.group(1)) >= 2, proc.stdout[-3000:]
    assert "Traceback" not in keyed_server.log.read_text()


def test_openapi_schema_documents_every_endpoint(keyed_server):
    _, spec, _ = call(f"{keyed_server.url}/openapi.json", headers={"Authorization": f"Bearer {API_KEY}"})
    paths = spec["paths"]
    for path, method in [("/v1/embeddings", "post"), ("/v1/models", "get"), ("/v1/collections", "get"),
                         ("/v1/collections/{name}/ask", "post"), ("/v1/collections/{name}/map", "get"),
                         ("/v1/collections/{name}/documents", "post"), ("/v1/collections/{name}/search", "post"),
                         ("/v1/collections/{name}/documents/{doc_id}", "get"),
                         ("/v1/collections/{name}/documents/{doc_id}", "delete"), ("/health", "get")]:
        operation = paths[path][method]
        assert "200" in operation["responses"]
        if path != "/health":
            assert operation["security"] == [{"bearer": []}] and "401" in operation["responses"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    search = spec["components"]["schemas"]["SearchRequest"]["properties"]["k"]
    assert search["maximum"] == 50  # the published limit is the enforced one


# -- the page in a real browser ----------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def test_page_shows_three_modes_side_by_side(server, artifacts):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium)")
    from urllib.parse import urlencode

    from playwright.sync_api import sync_playwright

    link = f"{server.url}/?{urlencode({'collection': 'examples', 'q': SEED_QUERY})}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(link)
            page.wait_for_selector("#columns[data-ready='true']", timeout=60_000)
            for mode in ("dense", "hybrid"):
                ids = page.eval_on_selector_all(f".column[data-mode='{mode}'] .hit", "els => els.map(e => e.dataset.id)")
                assert SEED_ID in ids, (mode, ids)
                assert len(ids) == 10
            seed = page.locator(f".column[data-mode='dense'] .hit[data-id='{SEED_ID}']")
            assert "dense #1" in seed.inner_text()
            # keyword search only returns documents sharing a word with the query (5 of them here)
            assert 1 <= page.locator(".column[data-mode='keyword'] .hit").count() <= 10
            assert page.input_value("#q") == SEED_QUERY
            seed.hover()  # the same document lights up in the other columns
            assert page.locator(f".hit.linked[data-id='{SEED_ID}']").count() >= 2
            page.wait_for_selector("#ask:not([hidden]) #answer li", timeout=60_000)
            assert page.locator("#passages li").count() >= 1
            page.click("#show-map")
            page.wait_for_selector("#map-svg circle.hit", timeout=60_000)
            assert page.locator("#map-svg circle").count() == 60
            assert page.locator("#map-svg circle.hit").count() == 10
            assert not page.locator("#key-panel").is_visible()  # no key on this server
            page.mouse.move(5, 5)
            page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of the picture
            page.screenshot(path=str(artifacts / "server-page.png"), full_page=True)

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
            phone.goto(link)
            phone.wait_for_selector("#columns[data-ready='true']", timeout=60_000)
            assert phone.locator(".column[data-mode='hybrid']").is_visible()
            assert not phone.locator(".column[data-mode='keyword']").is_visible()
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
            phone.click("button[data-tab='dense']")
            assert phone.locator(f".column[data-mode='dense'] .hit[data-id='{SEED_ID}']").is_visible()
            phone.screenshot(path=str(artifacts / "server-page-phone.png"))
            assert not errors, errors
        finally:
            browser.close()


# -- load ------------------------------------------------------------------------------------------------------
def test_concurrent_clients_lose_nothing(server):
    from nearspace.server.loadtest import run_load

    seed = [{"id": f"seed-{i}", "text": t} for i, t in enumerate(["dropout and weight decay", "bread and yeast",
                                                                   "comets and planets", "rivers and valleys"])]
    assert call(f"{server.url}/v1/collections/load/documents", "POST", {"documents": seed})[0] == 200
    report = run_load(server.url, "load", clients=8, seconds=30, max_requests=20_000)
    summary = report.summary()
    print(json.dumps(summary, indent=2))
    assert not report.server_errors, report.server_errors[:5]
    assert not report.transport_errors, report.transport_errors[:5]
    assert not report.missing_reads, report.missing_reads[:5]
    assert report.kinds["upsert"] >= 20 and report.kinds["search"] >= 40, summary
    assert set(report.statuses) == {200}, summary
    _, listed, _ = call(f"{server.url}/v1/collections")
    count = {c["name"]: c["count"] for c in listed["collections"]}["load"]
    assert count == len(seed) + len(report.written)
    with sqlite3.connect(server.store) as conn:
        stored = {row[0] for row in conn.execute(
            "SELECT doc_id FROM docs JOIN collections ON collections.id = docs.collection_id WHERE name = 'load'")}
    assert report.written <= stored


# -- graceful shutdown ---------------------------------------------------------------------------------------
def test_sigterm_finishes_the_write_in_flight(tmp_path, example_docs):
    served = start_server(tmp_path / "store.db", "--max-batch", "256")
    # 240 window-length documents: seconds of encoding even on a fast CPU, so SIGTERM lands mid-write
    docs = [{"id": f"{d['id']}-{n}", "text": " ".join([d["text"]] * 4), "title": d["title"]}
            for n in range(4) for d in example_docs]
    outcome: dict = {}

    def write() -> None:
        outcome["result"] = call(f"{served.url}/v1/collections/big/documents", "POST", {"documents": docs})
        outcome["at"] = time.monotonic()

    try:
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)
        signalled = time.monotonic()
        code = served.stop(timeout=120)
        writer.join(120)
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
    status, payload, _ = outcome["result"]
    assert outcome["at"] > signalled, "the write finished before SIGTERM: the test needs a longer write"
    assert status == 200 and payload["added"] == len(docs), payload
    assert code == 0, served.log_tail()
    with sqlite3.connect(served.store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM docs").fetchone() == (len(docs),)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{served.url}/health", timeout=5)
