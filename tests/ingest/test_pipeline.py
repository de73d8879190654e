"""The one ingest pipeline (``Collection.index``): one chunking rule for every source, stale
chunks removed in the same transaction as the write, a replaceable encode step."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nearspace.errors import InputError

LONG = " ".join(f"Sentence {i} says the gradient of the loss shrinks as training goes on." for i in range(80))


def _records(path, text=LONG):
    path.write_text(json.dumps({"id": "long", "text": text, "metadata": {"k": 1}}) + "\n"
                    + json.dumps({"id": "short", "text": "A short record."}) + "\n")
    return path


def test_a_long_record_is_chunked_alike_named_directly_or_inside_a_folder(store, tmp_path):
    direct = store.collection("direct")
    summary = direct.index(_records(tmp_path / "r.jsonl"), show_progress=False)
    assert summary.chunked == 1 and summary.pieces > 2
    folder = tmp_path / "docs"
    folder.mkdir()
    _records(folder / "r.jsonl")
    walked = store.collection("walked")
    walked.index([folder], show_progress=False)
    direct_ids, walked_ids = sorted(direct.ids()), sorted(walked.ids())
    assert direct_ids == walked_ids and "long#0" in walked_ids and "long" not in walked_ids
    # nothing is cut off: the chunks cover the record's whole text, in both collections
    for coll in (direct, walked):
        chunks = sorted((d for d in coll.get([i for i in coll.ids() if i.startswith("long#")])),
                        key=lambda d: d.metadata["start"])
        assert chunks[0].metadata["start"] == 0 and chunks[-1].metadata["end"] == len(LONG)
        assert all(d.metadata["parent"] == "long" and d.metadata["k"] == 1 for d in chunks)


def test_stale_chunks_go_in_the_writes_own_transaction(store, tmp_path):
    coll = store.collection("c")
    path = _records(tmp_path / "r.jsonl")
    coll.index(path, show_progress=False)
    before = coll.backend.version()
    assert len([i for i in coll.ids() if i.startswith("long#")]) > 2
    summary = coll.index(_records(path, "Now the long record is short."), show_progress=False)
    assert sorted(coll.ids()) == ["long", "short"] and summary.chunks_deleted > 2
    # the new 'long' and the removal of its old chunks carry one write-transaction token
    tokens = coll.backend.data.conn.execute(
        "SELECT DISTINCT txn FROM changes WHERE collection_id = ? AND seq > ?", (coll.backend.data.cid, before)).fetchall()
    assert len(tokens) == 1


def test_a_replaced_encode_step_encodes_only_what_changed(store, tmp_path, encoder):
    calls: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return encoder.encode_documents(texts, show_progress=False)

    reference = store.collection("reference")
    reference.index(_records(tmp_path / "r.jsonl"), show_progress=False)
    coll = store.collection("stepped")
    coll.index(tmp_path / "r.jsonl", show_progress=False, encode=encode)
    assert sum(calls) == coll.count() == reference.count()
    for doc_id in reference.ids():
        np.testing.assert_allclose(coll.vector_of(doc_id), reference.vector_of(doc_id), atol=1e-6)
    calls.clear()
    coll.index(tmp_path / "r.jsonl", show_progress=False, encode=encode)
    assert calls == []  # nothing changed: nothing encoded


def test_bad_records_write_nothing(store, tmp_path):
    coll = store.collection("c")
    coll.index(_records(tmp_path / "good.jsonl"), show_progress=False)
    count = coll.count()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "new", "text": "fine"}) + "\n" + json.dumps({"text": "no id"}) + "\n")
    with pytest.raises(InputError, match="bad.jsonl"):
        coll.index(bad, show_progress=False)
    assert coll.count() == count and coll.get("new") is None
    with pytest.raises(InputError, match="chunk"):
        coll.index(_records(tmp_path / "r2.jsonl"), chunk_tokens=8, show_progress=False)
