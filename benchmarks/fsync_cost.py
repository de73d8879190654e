"""What WAL ``synchronous=FULL`` would cost on ingest, measured against the shipped ``NORMAL``.

nearspace keeps ``synchronous=NORMAL`` (no fsync per commit; SQLite stays consistent after a
power loss but may lose its last commits) because the derived index proves what it covers
(change tokens, see store/vectors.py): a lost commit is detected and the graph rebuilt, never
trusted. This script measures what the alternative, an fsync on every commit, would cost:
the same documents are written through ``Collection.upsert`` (vectors given, so no model runs
and the figure is the store's own cost) at several batch sizes, on a real file in --dir,
once per mode, alternating modes per repetition.

    python benchmarks/fsync_cost.py                    # 2,000 docs, batches of 1, 16, 256
    python benchmarks/fsync_cost.py --docs 20000 --reps 3 --dir /path/on/the/disk/you/care/about
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


class _NoModel:
    name = "bench-no-model"
    dim = 384

    def encode(self, texts, **_):  # never called: vectors are given
        raise AssertionError("vectors are given; nothing should be encoded")


def ingest(path: Path, mode: str, ids: list[str], texts: list[str], vectors: np.ndarray, batch: int) -> float:
    from nearspace.api import Store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(path, encoder=_NoModel())
    store.db.conn.execute(f"PRAGMA synchronous={mode}")
    coll = store.collection("c")
    started = time.perf_counter()
    for start in range(0, len(ids), batch):
        end = start + batch
        coll.upsert(ids=ids[start:end], texts=texts[start:end], vectors=vectors[start:end], show_progress=False)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--batches", default="1,16,256")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--dir", default=None, help="folder for the store (default: a temp folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.docs, _NoModel.dim)).astype(np.float32)
    texts = [f"document {i} about topic {i % 97} with some words w{i * 7 % 1009}" for i in range(args.docs)]
    ids = [f"d{i}" for i in range(args.docs)]
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "s.db"
        for batch in (int(b) for b in args.batches.split(",")):
            n = min(args.docs, 400) if batch == 1 else args.docs  # one commit per doc is slow by nature
            times: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
            for _ in range(args.reps):
                for mode in ("NORMAL", "FULL"):
                    times[mode].append(ingest(path, mode, ids[:n], texts[:n], vectors[:n], batch))
            normal, full = statistics.median(times["NORMAL"]), statistics.median(times["FULL"])
            row = {"batch": batch, "docs": n, "commits": -(-n // batch),
                   "normal_docs_per_s": round(n / normal), "full_docs_per_s": round(n / full),
                   "full_over_normal_time": round(full / normal, 2),
                   "fsync_ms_per_commit": round((full - normal) * 1000 / -(-n // batch), 2)}
            results.append(row)
            if not args.json:
                print(f"batch {batch:>4}: {n} docs, {row['commits']} commits | NORMAL {row['normal_docs_per_s']:>7} docs/s"
                      f" | FULL {row['full_docs_per_s']:>7} docs/s | FULL/NORMAL time {row['full_over_normal_time']}x"
                      f" | +{row['fsync_ms_per_commit']} ms per commit", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
