"""``ask`` over a real folder of mixed files, through the API and the CLI."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from nearspace.ingest.folder import FolderIndexer
from tests.cli.test_cli import run
from tests.ingest.samples import make_folder


@pytest.fixture()
def indexed(store, tmp_path):
    docs = make_folder(tmp_path / "docs")
    coll = store.collection("rag")
    FolderIndexer(coll).index([docs], show_progress=False)
    return coll


def test_passages_carry_citations_and_the_answer_sentence(indexed):
    answer = indexed.ask("how hot should the water be for green tea", k=3)
    top = answer.passages[0]
    assert top.source == "docs/tea.html" and top.citation.startswith("docs/tea.html:")
    assert "80 degrees" in answer.answer_sentences[0].text
    # the sentence cites its own lines, inside the passage's range
    first, last = map(int, top.citation.rsplit(":", 1)[1].split("-"))
    s_first, s_last = map(int, answer.answer_sentences[0].citation.rsplit(":", 1)[1].split("-"))
    assert answer.answer_sentences[0].citation.startswith("docs/tea.html:") and first <= s_first <= s_last <= last
    pdf = indexed.ask("which planet is the largest", k=3).passages[0]
    assert pdf.citation.startswith("docs/astronomy.pdf#page=1")


def test_neighbouring_chunks_merge_and_budget_is_respected(store, tmp_path):
    folder = tmp_path / "long"
    folder.mkdir()
    sentences = [f"Fact {i}: the lighthouse keeper logged {i} ships passing the northern reef." for i in range(40)]
    (folder / "log.txt").write_text(" ".join(sentences))
    coll = store.collection("long")
    FolderIndexer(coll, chunk_tokens=60, overlap_tokens=15).index([folder], show_progress=False)
    assert coll.count() > 4
    answer = coll.ask("ships passing the northern reef lighthouse log", k=2, budget=400)
    merged = [p for p in answer.passages if len(p.ids) > 1]
    assert merged, "adjacent chunks of one file should come back as one passage"
    text = merged[0].text
    assert text.count("Fact 1:") <= 1  # the overlap between chunks is not repeated
    small = coll.ask("ships passing the northern reef", k=5, budget=80)
    tokens = sum(len(coll.encoder.tokenizer(p.text, add_special_tokens=False)["input_ids"]) for p in small.passages)
    assert tokens <= 80 and small.tokens == tokens


def test_near_duplicates_are_dropped(store):
    coll = store.collection("dups")
    text = "Octopuses have three hearts and blue blood rich in hemocyanin."
    coll.upsert(["a", "b", "c"], [text, text + " ", "Starfish can regrow lost arms over months."])
    answer = coll.ask("how many hearts does an octopus have", k=3)
    assert sum("three hearts" in p.text for p in answer.passages) == 1


def test_cli_json_shape(indexed, tmp_path):
    out = json.loads(run("--store", str(indexed.store.path), "-c", "rag", "ask", "how do I keep tea fresh",
                         "--format", "json").stdout)
    assert set(out) >= {"answer_sentences", "passages"}
    for passage in out["passages"]:
        assert {"text", "source", "citation", "score"} <= set(passage)
    md = run("--store", str(indexed.store.path), "-c", "rag", "ask", "how do I keep tea fresh", "--format", "markdown").stdout
    assert "**" in md and "docs/tea.html" in md
    bad = run("--store", str(indexed.store.path), "-c", "rag", "ask", "  ", check=False)
    assert bad.returncode == 1 and "question is empty" in bad.stderr


class _ChatHandler(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatHandler.received.append((self.path, body))
        context = body["messages"][-1]["content"]
        reply = {"choices": [{"message": {"role": "assistant",
                                          "content": "Use water at about 80 degrees [1]." if "80 degrees" in context
                                          else "The passages do not say."}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_generation_goes_to_the_configured_endpoint(indexed, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("NEARSPACE_LLM_URL", f"http://127.0.0.1:{server.server_port}/v1")
        answer = indexed.ask("how hot should the water be for green tea", k=2, generate=True)
    finally:
        server.shutdown()
    path, body = _ChatHandler.received[-1]
    assert path == "/v1/chat/completions"
    assert "green tea" in body["messages"][-1]["content"] and "docs/tea.html" in body["messages"][-1]["content"]
    assert answer.generated == "Use water at about 80 degrees [1]."


def test_generation_without_endpoint_is_a_clear_error(indexed, monkeypatch):
    from nearspace.errors import NearspaceError

    monkeypatch.delenv("NEARSPACE_LLM_URL", raising=False)
    with pytest.raises(NearspaceError, match="NEARSPACE_LLM_URL"):
        indexed.ask("anything", generate=True)
