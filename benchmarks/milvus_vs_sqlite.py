"""The same collection on SQLite and on milvus-lite, side by side in one run.

DATA (say it with every figure): real all-MiniLM-L6-v2 passage vectors (SciFact + NFCorpus,
``--pool`` of them, cached by benchmarks/ann.py's helper in benchmarks/results/) topped up
with noise to ``--n`` exactly as benchmarks/scale.py does (normalize(a*v_i + (1-a)*v_j +
N(0, noise^2)), a ~ U(0.5, 1)); queries drawn the same way, never inserted. Each row carries
metadata ``{"group": i % 10, "year": 2000 + i % 25}``. Ground truth: exact top-10 by cosine.

Both engines are driven through the public API only (``store.collection(name, dim=384)``,
``upsert(ids, vectors=, metadatas=)``, ``search(vector=..., k=10, where=...)``), so the figures
include what a user pays: metadata indexing, id/hash checks, fetching the hits' documents.

  ingest       rows/s of upsert in batches of ``--batch`` (each batch committed), then the
               first query (SQLite builds its vector index then: exact below 20k, HNSW above;
               milvus-lite builds its own index as it seals segments)
  query p50    one query at a time, k=10, and recall@10 against exact
  filtered p50 where {"group": 3} (10% of rows) and {"year": {"$gte": 2022}} (12%), recall@10
               against the exact top-10 of the matching rows

    python benchmarks/milvus_vs_sqlite.py                 # smoke: 20k vectors
    python benchmarks/milvus_vs_sqlite.py --n 100000      # the issue's 100k
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR  # noqa: E402

FILTERS = {"group=3 (10%)": ({"group": 3}, lambda i: i % 10 == 3),
           "year>=2022 (12%)": ({"year": {"$gte": 2022}}, lambda i: 2000 + i % 25 >= 2022)}


def exact_top(data: np.ndarray, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> list[set[int]]:
    base = data if subset is None else data[subset]
    scores = queries @ base.T
    top = np.argsort(-scores, axis=1)[:, :k]
    return [set((top[q] if subset is None else subset[top[q]]).tolist()) for q in range(len(queries))]


def recall(found: list[list[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(set(f) & t) / max(1, len(t)) for f, t in zip(found, truth)]))


def run_engine(spec: str, data: np.ndarray, queries: np.ndarray, batch: int, truths: dict) -> dict:
    from nearspace import open_store

    out: dict = {}
    store = open_store(spec)
    try:
        coll = store.collection("bench", dim=data.shape[1])
        ids = [str(i) for i in range(len(data))]
        metas = [{"group": i % 10, "year": 2000 + i % 25} for i in range(len(data))]
        started = time.perf_counter()
        for start in range(0, len(data), batch):
            end = min(start + batch, len(data))
            coll.upsert(ids[start:end], vectors=data[start:end], metadatas=metas[start:end], show_progress=False)
        if hasattr(coll, "flush"):
            coll.flush()
        took = time.perf_counter() - started
        out["ingest_s"], out["ingest_rows_per_s"] = took, len(data) / took
        print(f"  ingested {len(data):,} rows in {took:.1f}s; querying ...", flush=True)
        started = time.perf_counter()
        coll.search(vector=queries[0], k=10)
        out["first_query_s"] = time.perf_counter() - started

        def timed(where) -> tuple[float, list[list[int]]]:
            times, found = [], []
            for q in queries:
                t0 = time.perf_counter()
                hits = coll.search(vector=q, k=10, where=where)
                times.append(time.perf_counter() - t0)
                found.append([int(h.id) for h in hits])
            return 1000 * float(np.median(times)), found

        p50, found = timed(None)
        out["query_p50_ms"], out["recall@10"] = p50, recall(found, truths[None])
        for label, (where, _) in FILTERS.items():
            p50, found = timed(where)
            out[f"filtered {label} p50_ms"], out[f"filtered {label} recall@10"] = p50, recall(found, truths[label])
        out["count"] = coll.count()
    finally:
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--pool", type=int, default=2000, help="real MiniLM vectors to top up from")
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--batch", type=int, default=1000, help="rows per committed upsert")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "milvus_vs_sqlite.json")
    args = parser.parse_args()
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        print(f"milvus-lite is not installed ({exc}): pip install 'nearspace[milvus]'. Skipping this benchmark.")
        return
    from ann import load_pool, synthesise

    load_before = os.getloadavg()
    rng = np.random.default_rng(args.seed)
    pool, _ = load_pool(args.pool, False)
    data = synthesise(pool, args.n, args.noise, rng)
    queries = synthesise(pool, args.queries, args.noise, rng)
    note = (f"{len(pool)} real MiniLM passage vectors (SciFact+NFCorpus) topped up with noise "
            f"(pairwise mix + N(0,{args.noise}^2)) to {args.n:,}; {args.queries} queries drawn the same way")
    print(f"data: {note}")
    rows = np.arange(args.n)
    truths = {None: exact_top(data, queries, 10)}
    for label, (_, keep) in FILTERS.items():
        truths[label] = exact_top(data, queries, 10, rows[keep(rows)])

    results = {}
    with tempfile.TemporaryDirectory(prefix="nearspace-milvus-bench-") as tmp:
        for engine, spec in (("sqlite", str(Path(tmp) / "store.db")), ("milvus-lite", f"milvus-lite:{tmp}/milvus.db")):
            print(f"running {engine} ...", flush=True)
            results[engine] = run_engine(spec, data, queries, args.batch, truths)
    load_after = os.getloadavg()

    sq, mv = results["sqlite"], results["milvus-lite"]
    assert sq["count"] == mv["count"] == args.n, (sq["count"], mv["count"])  # nothing lost on either
    print(f"\n{args.n:,} x {data.shape[1]}-d vectors, k=10, one query at a time "
          f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; the cores are shared)")
    print(f"{'':34s} {'SQLite':>12s} {'milvus-lite':>12s} {'milvus/sqlite':>14s}")
    for key in sq:
        if key == "count":
            continue
        a, b = sq[key], mv[key]
        better = "" if "recall" in key else "  (higher is better)" if "per_s" in key else ""
        ratio = f"{b / a:.2f}x" if a else "n/a"
        fmt = "{:12.3f}" if "recall" in key else "{:12.1f}"
        print(f"{key:34s} {fmt.format(a)} {fmt.format(b)} {ratio:>14s}{better}")
    summary = {"n": args.n, "queries": args.queries, "data": note, "batch": args.batch,
               "load_average": {"before": load_before, "after": load_after}, "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
