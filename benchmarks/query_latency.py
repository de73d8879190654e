"""Query latency of Collection.search per mode (keyword, dense, hybrid) on SciFact.

A store holding the first N SciFact documents is built once and cached at
benchmarks/results/query_latency_scifact_<N>.db (reruns reuse it; --rebuild forces a new
one). The SciFact test queries (ids from qrels/test.tsv, 300) are then run one at a time
through Collection.search(query, k=10, mode=...), query encoding included.

Reference, measured in the same run: the same query encoder + exact numpy top-10
(matrix product over the same stored vectors, no SQLite, no result materialisation).
Dense is compared to it; every mode also reports its latency over that floor.
With all 5183 documents, nDCG@10 per mode is printed as a sanity check.

    python benchmarks/query_latency.py --n 200 --queries 30    # smoke
    python benchmarks/query_latency.py                          # full (all docs, 300 queries)
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import (RESULTS_DIR, SCIFACT, fmt_latency, latency_summary, read_corpus, require,  # noqa: E402
                     scifact_test_qrels, scifact_test_queries, write_result)

MODES = ("keyword", "dense", "hybrid")


def ndcg_at_10(ranked: list[str], rels: dict[str, int]) -> float:
    dcg = sum(rels.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10]))
    ideal = sorted(rels.values(), reverse=True)[:10]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def build_store(path: Path, records: list[dict[str, str]], precision: str) -> float:
    from nearspace.api import Store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    ann = path.with_name(path.name + ".ann")
    if ann.exists():
        for p in ann.iterdir():
            p.unlink()
    started = time.perf_counter()
    with Store(path, precision=precision) as store:
        col = store.collection("scifact")
        col.upsert(ids=[r["id"] for r in records], texts=[r["text"] for r in records],
                   titles=[r["title"] for r in records], show_progress=len(records) >= 512)
        col.flush()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help="documents in the store (default: all 5183)")
    parser.add_argument("--queries", type=int, default=None, help="test queries to run (default: all 300)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5, help="untimed queries per mode first (default 5)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached store")
    args = parser.parse_args(argv)

    require(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl", SCIFACT / "qrels" / "test.tsv")
    records = read_corpus(SCIFACT / "corpus.jsonl", args.n)
    n = len(records)
    queries = scifact_test_queries(args.queries)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    store_path = RESULTS_DIR / f"query_latency_scifact_{n}.db"

    from nearspace.api import Store

    build_s = None
    reuse = store_path.exists() and not args.rebuild
    if reuse:
        with Store(store_path) as probe:
            ok = "scifact" in probe.list_collections() and probe.get_collection("scifact").count() == n
        reuse = ok
    if not reuse:
        print(f"building the store {store_path.name} ({n} documents; cached for reruns) ...")
        build_s = build_store(store_path, records, args.precision)
        print(f"  built in {build_s:.1f}s ({n / build_s:.1f} docs/s)")
    else:
        print(f"reusing cached store {store_path.name}")

    store = Store(store_path, precision=args.precision)
    col = store.get_collection("scifact")
    encoder = col.encoder  # load outside the timings (the first query would otherwise pay it)
    print(f"query latency: {len(queries)} SciFact test queries, k={args.k}, {n} documents, "
          f"encoder {getattr(encoder, 'precision', '?')}, index {'HNSW' if n >= store.backend.exact_threshold else 'exact'}")

    texts = [q for _, q in queries]
    for mode in MODES:
        for q in texts[: args.warmup]:
            col.search(q, k=args.k, mode=mode)

    # reference: encode + exact numpy top-k over the same vectors (no SQLite, no result objects)
    ids, matrix = col.vector_matrix()

    def reference(q: str) -> list[str]:
        v = encoder.encode([q], show_progress=False)[0]
        scores = matrix @ v
        kk = min(args.k, len(scores))
        top = np.argpartition(-scores, kk - 1)[:kk]
        top = top[np.argsort(-scores[top])]
        return [ids[int(i)] for i in top]

    for q in texts[: args.warmup]:
        reference(q)
        encoder.encode([q], show_progress=False)

    timings: dict[str, list[float]] = {m: [] for m in (*MODES, "reference", "encode only")}
    ranked: dict[str, dict[str, list[str]]] = {m: {} for m in (*MODES, "reference")}
    for qid, q in queries:  # modes interleaved per query, so drift affects all alike
        for mode in MODES:
            t0 = time.perf_counter()
            hits = col.search(q, k=args.k, mode=mode)
            timings[mode].append(time.perf_counter() - t0)
            ranked[mode][qid] = [h.id for h in hits]
        t0 = time.perf_counter()
        ranked["reference"][qid] = reference(q)
        timings["reference"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        encoder.encode([q], show_progress=False)
        timings["encode only"].append(time.perf_counter() - t0)
    store.close()

    summaries = {m: latency_summary(ts) for m, ts in timings.items()}
    ref = summaries["reference"]
    full = n == len(read_corpus(SCIFACT / "corpus.jsonl"))
    qrels = scifact_test_qrels() if full else {}
    print()
    for mode in (*MODES, "reference", "encode only"):
        s = summaries[mode]
        extra = ""
        if mode in ("dense", "hybrid"):  # keyword never encodes: no like-for-like reference
            s["p50_ratio_vs_reference"] = s["p50_ms"] / ref["p50_ms"]
            s["qps_ratio_vs_reference"] = s["qps"] / ref["qps"]
            extra = f"  | p50 {s['p50_ratio_vs_reference']:.2f}x ref, q/s {s['qps_ratio_vs_reference']:.2f}x ref"
        if qrels and mode in ranked:
            s["ndcg@10"] = float(np.mean([ndcg_at_10(ranked[mode][qid], qrels.get(qid, {})) for qid, _ in queries]))
            extra += f"  | nDCG@10 {s['ndcg@10']:.3f}"
        label = {"reference": "ref: encode+numpy", "encode only": "query encode only"}.get(mode, mode)
        print(f"{label:<18} {fmt_latency(s)}{extra}")
    overlap = float(np.mean([len(set(ranked["dense"][qid]) & set(ranked["reference"][qid])) / max(1, len(ranked["reference"][qid]))
                             for qid, _ in queries]))
    print(f"\ndense vs reference top-{args.k} overlap: {overlap:.3f} (1.0 = identical results)")
    print("reference = the same query encoder + exact numpy top-k over the same vectors; nearspace adds "
          "filtering hooks, SQLite result materialisation and (keyword/hybrid) FTS5 BM25")
    write_result("query_latency", {
        "n_docs": n, "n_queries": len(queries), "k": args.k, "store": str(store_path.name),
        "store_build_s": build_s, "reused_store": reuse, "modes": summaries, "dense_reference_overlap": overlap,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
