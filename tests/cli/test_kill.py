"""kill -9 during ``nearspace index``: committed batches survive and a rerun finishes the job."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nearspace.store.sqlite.audit import audit

BATCH = 40
N_DOCS = 1200
WORDS = ("river mountain engine protein galaxy market violin harvest circuit glacier poem "
         "vaccine satellite bridge forest algorithm volcano orchestra desert ocean").split()


def _corpus(path: Path) -> dict[str, str]:
    texts = {}
    with path.open("w") as handle:
        for i in range(N_DOCS):
            words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(12)]
            text = f"Document {i} is about " + " ".join(words) + f" and item number {i * 31 % 997}."
            texts[f"doc-{i:05d}"] = text
            handle.write(json.dumps({"id": f"doc-{i:05d}", "text": text, "metadata": {"n": i}}) + "\n")
    return texts


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM docs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # schema not created yet


def _check_consistent(db: Path, texts: dict[str, str]) -> int:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT doc_id, text FROM docs").fetchall()
        for doc_id, text in rows:
            assert texts[doc_id] == text
        (cid,) = conn.execute("SELECT id FROM collections").fetchone() or (None,)
        if cid is not None:
            assert audit(conn) == []  # hashes, metadata index and change log agree with the documents
            meta = conn.execute("SELECT count(DISTINCT doc) FROM meta_index").fetchone()[0]
            assert meta == len(rows)
    # every committed batch is whole: batches are written in input order, BATCH at a time
    assert len(rows) % BATCH == 0, f"{len(rows)} rows is not a whole number of batches"
    return len(rows)


def _index(db: Path, corpus: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nearspace.cli", "--store", str(db), "index",
                             str(corpus), "--batch-size", str(BATCH)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_nine_mid_ingest_then_resume(tmp_path):
    corpus = tmp_path / "big.jsonl"
    texts = _corpus(corpus)
    db = tmp_path / "store.db"
    stored = 0
    # kill moments: before anything is committed, then after increasing progress
    for target in (0, BATCH, N_DOCS // 3, 2 * N_DOCS // 3):
        proc = _index(db, corpus)
        deadline = time.monotonic() + 300
        if target == 0:
            time.sleep(1.0)  # still importing torch / loading the model
        else:
            while _count(db) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.137 * (target % 3))  # land at different points within a batch
        if proc.poll() is not None:
            pytest.fail(f"indexing finished before the kill at {target}: {proc.stderr.read()}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        now = _check_consistent(db, texts) if db.exists() else 0
        assert now >= stored  # committed batches are never lost
        stored = now
    assert 0 < stored < N_DOCS
    done = _index(db, corpus)
    _, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    # the rerun re-embedded nothing that was already stored unchanged
    assert f"{N_DOCS - stored} added" in err and f"{stored} unchanged" in err, err
    assert _check_consistent(db, texts) == N_DOCS
    search = subprocess.run([sys.executable, "-m", "nearspace.cli", "--store", str(db), "search",
                             "glacier violin", "--mode", "keyword", "--json"], capture_output=True, text=True)
    assert search.returncode == 0 and json.loads(search.stdout)
