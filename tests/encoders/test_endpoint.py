"""The OpenAI-compatible endpoint encoder against ``nearspace serve`` on loopback, through a
proxy that injects 429s with Retry-After, 500s, slow answers and dropped connections."""
from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from nearspace.encoders.endpoint import EndpointEncoder, EndpointError, retry_after_seconds
from tests.conftest import EXAMPLES, ROOT, SEED_QUERY
from tests.server.conftest import start_server

KEY = "sk-test-3b9d1e7f"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("endpoint") / "store.db", "--precision", "fp32", api_key=KEY)
    yield server
    server.stop()


class FaultProxy:
    """Forwards to the server, after playing the queued faults one request at a time."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: collections.deque[str] = collections.deque()
        self.seen: list[tuple[float, str, str]] = []  # (time, fault, Authorization header)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = proxy.faults.popleft() if proxy.faults else ""
                proxy.seen.append((time.monotonic(), fault, self.headers.get("Authorization", "")))
                if fault == "429":
                    self._answer(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "1"})
                elif fault == "500":
                    self._answer(500, b'{"error": {"message": "boom"}}')
                elif fault == "400":
                    self._answer(400, b'{"error": {"message": "bad input"}}')
                elif fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                else:
                    if fault == "slow":
                        time.sleep(2.5)
                    request = urllib.request.Request(proxy.upstream + self.path, data=body, method="POST",
                                                     headers={k: v for k, v in self.headers.items()
                                                              if k.lower() in ("content-type", "authorization")})
                    try:
                        with urllib.request.urlopen(request, timeout=60) as response:
                            self._answer(response.status, response.read())
                    except urllib.error.HTTPError as exc:
                        self._answer(exc.code, exc.read())

            def _answer(self, status, payload, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:  # the client timed out and left
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture()
def proxy(served, monkeypatch):
    monkeypatch.setenv("NEARSPACE_EMBEDDINGS_KEY", KEY)
    p = FaultProxy(served.url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def local():
    from nearspace.encoders import load_encoder

    return load_encoder(precision="fp32")


def _texts() -> list[str]:
    return [json.loads(line)["text"] for line in EXAMPLES.read_text().splitlines() if line.strip()]


def test_faults_are_retried_and_the_vectors_are_the_models(proxy, local):
    # one batch in flight, so the request after a 429 is its retry (the timing check below)
    enc = EndpointEncoder(MODEL, base_url=proxy.url, batch_size=8, timeout=2.0, backoff=0.05, concurrency=1)
    assert enc.dim == 384
    proxy.faults.extend(["429", "500", "drop", "slow", "500"])
    texts = _texts()
    vectors = enc.encode(texts)
    np.testing.assert_allclose(vectors, local.encode(texts), atol=1e-5)
    assert not proxy.faults and enc.requests >= 1 + 8 + 5  # probe, 8 batches, 5 faults retried
    assert all(auth == f"Bearer {KEY}" for _, _, auth in proxy.seen)
    # Retry-After: 1 was honoured: the request after the 429 came at least a second later
    times = [t for t, _, _ in proxy.seen]
    after = [times[i + 1] - times[i] for i, (_, f, _) in enumerate(proxy.seen[:-1]) if f == "429"]
    assert after and min(after) >= 0.95


def test_batches_respect_count_and_token_budget_and_keep_order_in_parallel(proxy, local):
    texts = _texts()
    parallel = EndpointEncoder(MODEL, base_url=proxy.url, dim=384, batch_size=5, concurrency=3)
    np.testing.assert_allclose(parallel.encode(texts), local.encode(texts), atol=1e-5)
    enc = EndpointEncoder(MODEL, base_url=proxy.url, dim=384, batch_size=50, max_batch_tokens=100)
    batches = enc._batches(["x" * 200] * 3 + ["short"] * 4)
    # 51 estimated tokens per long text: two never share a request; the short ones fill the last
    assert [len(b) for _, b in batches] == [1, 1, 5] and [s for s, _ in batches] == [0, 1, 2]
    counted = EndpointEncoder(MODEL, base_url=proxy.url, dim=384, batch_size=3)._batches(["a"] * 7)
    assert [len(b) for _, b in counted] == [3, 3, 1]


def test_refusals_name_the_problem_never_the_key(proxy):
    proxy.faults.append("400")
    with pytest.raises(EndpointError, match="HTTP 400: bad input") as caught:
        EndpointEncoder(MODEL, base_url=proxy.url, retries=2)
    assert KEY not in str(caught.value)
    with pytest.raises(EndpointError, match="384-dimensional vector.*128-dimensional"):
        EndpointEncoder(MODEL, base_url=proxy.url, dim=128).encode(["hello"])
    proxy.faults.extend(["500"] * 3)
    with pytest.raises(EndpointError, match="kept failing after 3 attempts"):
        EndpointEncoder(MODEL, base_url=proxy.url, dim=384, retries=3, backoff=0.01).encode(["hello"])
    assert KEY not in repr(EndpointEncoder(MODEL, base_url=proxy.url, dim=384))


def test_a_collection_on_an_endpoint_reopens_from_its_spec_and_resends_nothing(proxy, tmp_path):
    from nearspace import open_store

    enc = EndpointEncoder(MODEL, base_url=proxy.url, batch_size=16)
    docs = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    path = tmp_path / "s.db"
    with open_store(path, encoder=enc) as store:
        coll = store.collection("remote")
        coll.upsert([d["id"] for d in docs], [d["text"] for d in docs], titles=[d["title"] for d in docs])
        sent = enc.texts_sent
        again = coll.upsert([d["id"] for d in docs], [d["text"] for d in docs], titles=[d["title"] for d in docs])
        assert again["unchanged"] == len(docs) and enc.texts_sent == sent  # unchanged hashes: nothing sent
        spec = coll.spec
        assert spec.kind == "openai" and spec.options["base_url"] == proxy.url and spec.dim == 384
        assert KEY not in json.dumps(coll.backend.config())
    # a new process: the spec alone finds the endpoint (the key from the environment)
    code = ("import sys, nearspace; s = nearspace.open_store(sys.argv[1]); c = s.get_collection('remote'); "
            "print(c.search(sys.argv[2], k=1, mode='dense')[0].id)")
    out = subprocess.run([sys.executable, "-c", code, str(path), SEED_QUERY], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**__import__("os").environ, "NEARSPACE_EMBEDDINGS_KEY": KEY})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "regularization-techniques"


def test_retry_after_forms():
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("garbage") is None
    soon = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
    assert 3.0 <= retry_after_seconds(soon) <= 5.5
