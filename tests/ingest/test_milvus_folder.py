"""Folder indexing (``nearspace index PATH``) on a milvus-lite store, side by side with SQLite.

The same folder, the same edits (a file changed, one renamed, one deleted, one only touched)
go into a SQLite store and a milvus-lite store through the normal ``FolderIndexer``: both must
end with the same ids, texts, metadata and vectors, report the same summary, encode only what
changed, and keep the file bookkeeping in Milvus itself (a fresh process resumes from it).
Real model, real milvus-lite, the real CLI for the first run.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.store.test_milvus import open_backend

PARAGRAPHS = [
    "Dropout randomly switches off hidden units during training so the network cannot rely on one feature.",
    "Weight decay adds a penalty on large weights, which favours simpler models that generalise better.",
    "Sourdough needs a lively starter, a long cold proof and a very hot oven for a crisp crust.",
    "The Kuiper belt lies beyond Neptune and holds icy bodies left over from the formation of the planets.",
    "Early stopping halts training when the validation loss stops improving for several epochs.",
]


def write_corpus(root):
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "ml.md").write_text("# Regularisation\n\n" + "\n\n".join(PARAGRAPHS[i] for i in (0, 1, 4)) * 12)
    (root / "notes" / "bread.txt").write_text(PARAGRAPHS[2] * 3)
    (root / "notes" / "space.md").write_text("# Space\n\n" + PARAGRAPHS[3])
    (root / "notes" / "old.txt").write_text("A file that will be deleted. " + PARAGRAPHS[1])
    return root / "notes"


def state(coll) -> dict:
    ids = sorted(coll.backend.ids())
    docs = coll.get(ids)
    vectors = coll.vectors_of(ids)  # the same public call on both engines
    return {i: (d.title, d.text, d.metadata, vectors[i]) for i, d in zip(ids, docs)}


def assert_same(sqlite, milvus) -> None:
    want, got = state(sqlite), state(milvus)
    assert sorted(got) == sorted(want)
    for doc_id, (title, text, meta, vector) in want.items():
        assert got[doc_id][:3] == (title, text, meta), doc_id
        assert np.abs(got[doc_id][3] - vector).max() < 1e-5, doc_id


def summary_of(s) -> tuple:
    return (s.files_seen, s.added, s.changed, s.unchanged, s.renamed, s.deleted, s.chunks_written,
            s.chunks_deleted, s.chunks_encoded)


def test_folder_indexing_on_milvus_equals_sqlite(tmp_path, encoder):
    from nearspace import open_store
    from nearspace.ingest.folder import FolderIndexer

    folder = write_corpus(tmp_path / "corpus")
    milvus_spec = f"milvus-lite:{tmp_path / 'milvus.db'}"
    probe = open_backend("milvus-lite", tmp_path, encoder)  # skips with the reason if milvus-lite cannot start
    probe.close()

    # first run through the real CLI on Milvus (it used to refuse folders on Milvus)
    env = {k: v for k, v in os.environ.items() if k != "NEARSPACE_STORE"}
    done = subprocess.run([sys.executable, "-m", "nearspace.cli", "--store", milvus_spec, "index", str(folder)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 files: 4 added" in done.stderr, done.stderr

    sqlite_store = open_store(tmp_path / "store.db", encoder=encoder)
    milvus_store = open_store(milvus_spec, encoder=encoder)
    try:
        sqlite, milvus = sqlite_store.collection("default"), milvus_store.collection("default")
        first = FolderIndexer(sqlite).index([folder], show_progress=False)
        assert first.added == 4 and first.chunks_written > 6  # ml.md is long enough for several chunks
        assert_same(sqlite, milvus)
        # the bookkeeping lives in Milvus: a second process (this one) sees every file unchanged
        assert set(milvus.backend.tracked_files()) == set(sqlite.backend.tracked_files())
        again = FolderIndexer(milvus).index([folder], show_progress=False)
        assert (again.unchanged, again.chunks_encoded, again.chunks_written) == (4, 0, 0)

        # edits: changed, renamed, deleted, touched only
        (folder / "ml.md").write_text((folder / "ml.md").read_text() + "\n\nA closing paragraph about data augmentation.")
        (folder / "space.md").rename(folder / "astronomy.md")
        (folder / "old.txt").unlink()
        os.utime(folder / "bread.txt", ns=(1, 1))
        results = [FolderIndexer(coll).index([folder], show_progress=False) for coll in (sqlite, milvus)]
        assert summary_of(results[1]) == summary_of(results[0])
        s = results[1]
        assert (s.changed, s.renamed, s.deleted, s.unchanged) == (1, 1, 1, 0)  # the touched file is re-hashed
        assert 0 < s.chunks_encoded < s.chunks_written  # the rename keeps its vectors; unchanged chunks too
        assert_same(sqlite, milvus)
        assert not milvus.backend.ids_with_prefix("notes/space.md") and not milvus.backend.ids_with_prefix("notes/old.txt")
        assert set(milvus.backend.tracked_files()) == {"notes/ml.md", "notes/bread.txt", "notes/astronomy.md"}
        hits = milvus.search("icy bodies beyond Neptune", k=1, mode="hybrid")
        assert hits[0].metadata["source"] == "notes/astronomy.md"

        # dropping the collection forgets its file records too
        milvus_store.drop_collection("default")
        assert milvus_store.collection("default").backend.tracked_files() == {}
    finally:
        sqlite_store.close()
        milvus_store.close()
