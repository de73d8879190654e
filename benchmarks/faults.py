"""Counted fault injection: ``kill -9`` at random moments of ``nearspace index``.

Each trial starts a real ``nearspace index`` of a JSONL corpus (real model, real SQLite file,
HNSW graph on the path via NEARSPACE_EXACT_THRESHOLD), kills it with SIGKILL after a random
delay, or (every ``--save-every``th trial) the moment a temporary file of the graph save appears,
then checks the invariants:

* ``PRAGMA integrity_check`` is ok and the store's tables pass ``nearspace.store.sqlite.audit`` (hashes, metadata index, change log);
* FTS and metadata rows match the documents, every stored text equals its source;
* no stored vector is a zero placeholder, and the derived index finds each sampled document's
  own vector first (the graph, when one was saved, agrees with SQLite);

and finally resumes with a second, uninterrupted run that must end with every document stored.

    python benchmarks/faults.py --trials 100          # the full count (slow: model load per run)
    python benchmarks/faults.py --trials 10 --docs 300
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("river mountain engine protein galaxy market violin harvest circuit glacier poem vaccine "
         "satellite bridge forest algorithm volcano orchestra desert ocean lantern copper").split()


def write_corpus(path: Path, n: int) -> dict[str, str]:
    texts = {}
    with path.open("w") as handle:
        for i in range(n):
            words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(10)]
            text = f"Record {i} on " + " ".join(words) + f" number {i * 31 % 997}."
            texts[f"r{i:05d}"] = text
            handle.write(json.dumps({"id": f"r{i:05d}", "text": text, "metadata": {"n": i}}) + "\n")
    return texts


def run_index(db: Path, corpus: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nearspace.cli", "--store", str(db), "index", str(corpus),
                             "--batch-size", "50"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_during_save(proc: subprocess.Popen, ann_dir: Path, extra: float) -> tuple[float, bool]:
    """SIGKILL ``proc`` once a temporary file of the graph save exists; returns (seconds after
    start, whether a save was under way). A run that ends first is not killed."""
    started = time.perf_counter()
    while proc.poll() is None:
        try:
            saving = any(name.endswith(".tmp") for name in os.listdir(ann_dir))
        except OSError:  # the folder is made by the first save
            saving = False
        if saving:
            time.sleep(extra)
            proc.send_signal(signal.SIGKILL)
            return time.perf_counter() - started, saving
        time.sleep(0.0002)
    return time.perf_counter() - started, False


def check(db: Path, texts: dict[str, str], threshold: int) -> tuple[int, list[str]]:
    """Returns (stored rows, problems)."""
    problems: list[str] = []
    if not db.exists():
        return 0, problems
    conn = sqlite3.connect(db, timeout=30)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("integrity_check failed")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "docs" not in tables:
            return 0, problems
        rows = conn.execute("SELECT doc_row, doc_id, text, vector FROM docs").fetchall()
        for _, doc_id, text, vector in rows:
            if texts.get(doc_id) != text:
                problems.append(f"{doc_id}: stored text differs from its source")
            if not np.any(np.frombuffer(vector, dtype=np.float32)):
                problems.append(f"{doc_id}: zero placeholder vector stored")
        cid = conn.execute("SELECT id FROM collections").fetchone()
        if cid:
            from nearspace.store.sqlite.audit import audit

            problems.extend(audit(conn))
            if conn.execute("SELECT count(DISTINCT doc) FROM meta_index").fetchone()[0] != len(rows):
                problems.append("metadata rows differ from documents")
    except sqlite3.DatabaseError as exc:
        problems.append(f"sqlite: {exc}")
        return 0, problems
    finally:
        conn.close()
    if rows:
        from nearspace.api import Store

        with Store(db, exact_threshold=threshold) as store:  # loads the saved graph as a reader would
            coll = store.get_collection("default")
            for row, doc_id, _, vector in random.Random(len(rows)).sample(rows, min(30, len(rows))):
                hits = coll.backend.vectors.search(np.frombuffer(vector, dtype=np.float32), 1)
                if not hits or hits[0][0] != row:
                    problems.append(f"{doc_id}: the derived index does not find its own vector")
            stored = {doc_id for _, doc_id, _, _ in rows}
            for _, doc_id, text, _ in random.Random(len(rows) + 1).sample(rows, min(5, len(rows))):
                # the keyword index (also derived, saved beside the graph) must agree with SQLite too
                found = [r.id for r in coll.search(text, k=10, mode="keyword")]
                if doc_id not in found or not set(found) <= stored:
                    problems.append(f"{doc_id}: keyword search disagrees with SQLite ({found[:3]})")
    return len(rows), problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--threshold", type=int, default=100, help="exact-search threshold (graph above it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-every", type=int, default=4,
                        help="every Nth trial kills during the graph save instead of at a random moment")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "NEARSPACE_EXACT_THRESHOLD": str(args.threshold), "HF_HUB_OFFLINE": "1"}
    tally = {"trials": 0, "killed_mid_run": 0, "killed_during_save": 0, "finished_before_kill": 0,
             "consistent_after_kill": 0,
             "resumed_to_full": 0, "problems": 0}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        texts = write_corpus(corpus, args.docs)
        started = time.perf_counter()
        clean = run_index(Path(tmp) / "timing.db", corpus, env)
        clean.wait()
        full = time.perf_counter() - started
        print(f"one uninterrupted run: {full:.1f} s for {args.docs} documents")
        for trial in range(args.trials):
            db = Path(tmp) / f"t{trial}.db"
            proc = run_index(db, corpus, env)
            if trial % args.save_every == args.save_every - 1:
                # aim at the graph save: kill as soon as a temporary graph/sidecar file appears
                # (hnswlib writing, fsync, checksum, the two renames), after 0-3 ms more
                delay, in_save = kill_during_save(proc, Path(f"{db}.ann"), rng.uniform(0.0, 0.003))
            else:
                delay, in_save = rng.uniform(0.05, 0.95) * full, False
                time.sleep(delay)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            if proc.wait() == -signal.SIGKILL:
                tally["killed_mid_run"] += 1
                tally["killed_during_save"] += in_save
            else:
                tally["finished_before_kill"] += 1
            tally["trials"] += 1
            _, problems = check(db, texts, args.threshold)
            if not problems:
                tally["consistent_after_kill"] += 1
            resumed = run_index(db, corpus, env)
            _, err = resumed.communicate()
            count, after = check(db, texts, args.threshold)
            if resumed.returncode == 0 and count == args.docs and not after:
                tally["resumed_to_full"] += 1
            for problem in problems + after:
                tally["problems"] += 1
                print(f"trial {trial} (kill after {delay:.2f} s): {problem}")
            if resumed.returncode != 0:
                print(f"trial {trial}: resumed run failed: {err.decode()[-300:]}")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            print(f"trial {trial + 1}/{args.trials}: {json.dumps(tally)}", flush=True)
    print("tallies:", json.dumps(tally))
    sys.exit(0 if tally["problems"] == 0 and tally["resumed_to_full"] == tally["trials"] else 1)


if __name__ == "__main__":
    main()
