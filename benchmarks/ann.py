"""ANN at scale: nearspace's vector search path vs raw hnswlib, 100,000 vectors.

DATA: vectors SYNTHESISED FROM REAL MiniLM VECTORS. Encoding 100k real passages is out of
reach on a slow CPU, so a pool of real all-MiniLM-L6-v2 vectors (SciFact + NFCorpus
passages, --pool, cached as .npy in benchmarks/results/) is expanded: each vector is
normalize(a*v_i + (1-a)*v_j + N(0, noise^2)) for a random pool pair (i, j), a ~ U(0.5, 1).
The 1000 queries are produced the same way (fresh draws, never inserted). Ground truth is
exact (numpy) inner-product top-10.

Measured side by side, one query at a time on one thread:
  (a) reference: raw hnswlib (space="ip", M=16, ef_construction=200, ef=96; the same
      parameters as nearspace.store.sqlite.vectors), knn_query(num_threads=1)
  (b) nearspace: Store + Collection.upsert(vectors=...), then
        - collection.backend.vectors.search(qvec, 10)          (VectorIndex; no text encoding)
        - nearspace.search.engine.search(..., mode="dense") with the query encoder bypassed
          (adds result materialisation from SQLite)
Target: nearspace q/s >= 0.8x raw at recall@10 >= 0.95.
Also: filtered search (where={"group": 3}; where={"year": {"$gte": 2000, "$lt": 2003}}) p50
and recall vs exact filtered ground truth, ingest rows/s, HNSW build time, store size on
disk, and cold open (new Store object, ANN graph loaded from the file saved by flush()).

    python benchmarks/ann.py --pool 200 --n 5000 --queries 200 --exact-threshold 1000   # smoke
    python benchmarks/ann.py                                                            # full
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import (NFCORPUS, RESULTS_DIR, SCIFACT, fmt_latency, latency_summary, passage_text,  # noqa: E402
                     read_corpus, require, verdict, write_result)

TARGET_RATIO = 0.8
TARGET_RECALL = 0.95
DATA_NOTE = ("vectors synthesised from real MiniLM vectors: normalize(a*v_i + (1-a)*v_j + gaussian noise), "
             "a ~ U(0.5, 1), (v_i, v_j) drawn from a pool of real all-MiniLM-L6-v2 passage vectors "
             "(SciFact + NFCorpus)")


class PrecomputedOnly:
    """Stand-in encoder so creating the collection does not load MiniLM: vectors are given."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def encode(self, texts, *, batch_size: int = 64, show_progress=None):
        raise RuntimeError("this benchmark passes precomputed vectors; nothing should be encoded")


def pool_texts(size: int) -> list[str]:
    """Half NFCorpus (as far as it goes), the rest SciFact, interleaved."""
    nf = read_corpus(NFCORPUS / "corpus.jsonl", size // 2)
    sf = read_corpus(SCIFACT / "corpus.jsonl", size - len(nf))
    out: list[str] = []
    for i in range(max(len(nf), len(sf))):
        if i < len(sf):
            out.append(passage_text(sf[i]))
        if i < len(nf):
            out.append(passage_text(nf[i]))
    return out[:size]


def pool_from_store(path: Path) -> np.ndarray:
    """Every vector already stored in a nearspace store (e.g. the one `nearspace eval` fills)."""
    from nearspace.store.sqlite.database import Database

    db = Database(path)
    parts = [db.collection(name).vectors()[1] for name in db.collection_names()]
    db.close()
    return np.concatenate(parts).astype(np.float32)


def load_pool(size: int, rebuild: bool, store: Path | None = None) -> tuple[np.ndarray, float | None]:
    if store is not None and store.exists():
        vecs = pool_from_store(store)
        print(f"pool: {len(vecs)} real MiniLM vectors read from {store}")
        return vecs, None
    cache = RESULTS_DIR / f"ann_pool_minilm_{size}.npy"
    if cache.exists() and not rebuild:
        print(f"reusing cached pool vectors {cache.relative_to(RESULTS_DIR.parent.parent)}")
        return np.load(cache), None
    texts = pool_texts(size)
    print(f"encoding a pool of {len(texts)} real passages with all-MiniLM-L6-v2 (cached to {cache.name}) ...")
    from nearspace.encoders.sentence import SentenceEncoder

    enc = SentenceEncoder(precision="auto", device="cpu")
    started = time.perf_counter()
    vecs = enc.encode(texts, batch_size=64, show_progress=len(texts) >= 512).astype(np.float32)
    took = time.perf_counter() - started
    print(f"  {len(texts)} passages in {took:.1f}s ({len(texts) / took:.1f}/s, {enc.precision})")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs)
    return vecs, took


def synthesise(pool: np.ndarray, m: int, noise: float, rng: np.random.Generator, chunk: int = 20_000) -> np.ndarray:
    out = np.empty((m, pool.shape[1]), dtype=np.float32)
    for start in range(0, m, chunk):
        size = min(chunk, m - start)
        i = rng.integers(0, len(pool), size)
        j = rng.integers(0, len(pool), size)
        a = rng.uniform(0.5, 1.0, size).astype(np.float32)[:, None]
        v = a * pool[i] + (1.0 - a) * pool[j] + rng.normal(0.0, noise, (size, pool.shape[1])).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start:start + size] = v
    return out


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> np.ndarray:
    """Indices (into ``data``) of the exact top-k by inner product; ``subset`` restricts the candidates."""
    base = data if subset is None else data[subset]
    k = min(k, len(base))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):
        scores = queries[start:start + 100] @ base.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        out[start:start + 100] = top if subset is None else subset[top]
    return out


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = [len(set(f) & set(t.tolist())) / max(1, len(t)) for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else float("nan")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="vectors in the index (default 100000)")
    parser.add_argument("--pool", type=int, default=8000, help="real MiniLM passage vectors to synthesise from (default 8000)")
    parser.add_argument("--queries", type=int, default=1000, help="held-out query vectors (default 1000)")
    parser.add_argument("--filter-queries", type=int, default=200, help="queries per filtered search (default 200)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.01, help="gaussian noise sigma per dimension (default 0.01)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-threshold", type=int, default=None,
                        help="nearspace's exact/HNSW switch (default: nearspace's own, 20000); lower it for "
                             "small smoke runs so the HNSW path is exercised")
    parser.add_argument("--rebuild-pool", action="store_true", help="re-encode the pool even if cached")
    parser.add_argument("--pool-store", type=Path, default=None,
                        help="take the pool from every vector in this nearspace store (e.g. .nearspace/eval.db "
                             "after `nearspace eval` on SciFact and NFCorpus) instead of encoding one")
    parser.add_argument("--keep-store", action="store_true", help="keep the temporary store (prints its path)")
    args = parser.parse_args(argv)

    require(SCIFACT / "corpus.jsonl", NFCORPUS / "corpus.jsonl")
    import hnswlib

    from nearspace.api import Store
    from nearspace.search.engine import search as engine_search
    from nearspace.store.sqlite import vectors as nv

    threshold = nv.EXACT_THRESHOLD if args.exact_threshold is None else args.exact_threshold
    k = args.k

    pool, pool_encode_s = load_pool(args.pool, args.rebuild_pool, args.pool_store)
    dim = pool.shape[1]
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    data = synthesise(pool, args.n, args.noise, rng)
    queries = synthesise(pool, args.queries, args.noise, rng)
    synth_s = time.perf_counter() - t0
    print(f"\nDATA: {args.n} index vectors + {args.queries} query vectors, dim {dim}: {DATA_NOTE}; "
          f"pool {len(pool)}, noise sigma {args.noise}, seed {args.seed} ({synth_s:.1f}s)")
    print(f"HNSW parameters (both sides): space ip, M={nv.HNSW_M}, ef_construction={nv.HNSW_EF_CONSTRUCTION}, "
          f"ef={nv.HNSW_EF_SEARCH}; single query, one thread")

    t0 = time.perf_counter()
    truth = exact_top_k(data, queries, k)
    print(f"exact ground truth in {time.perf_counter() - t0:.1f}s")
    results: dict = {"data": DATA_NOTE, "n": args.n, "pool": len(pool), "pool_encode_s": pool_encode_s,
                     "queries": args.queries, "k": k, "noise": args.noise, "seed": args.seed,
                     "exact_threshold": threshold,
                     "hnsw": {"M": nv.HNSW_M, "ef_construction": nv.HNSW_EF_CONSTRUCTION, "ef": nv.HNSW_EF_SEARCH}}
    warm = min(20, len(queries))

    # ---- (a) raw hnswlib --------------------------------------------------------------------
    raw = hnswlib.Index(space="ip", dim=dim)
    t0 = time.perf_counter()
    raw.init_index(max_elements=args.n, M=nv.HNSW_M, ef_construction=nv.HNSW_EF_CONSTRUCTION)
    raw.add_items(data, np.arange(args.n))
    raw_build = time.perf_counter() - t0
    raw.set_ef(nv.HNSW_EF_SEARCH)

    # ---- (b) nearspace ----------------------------------------------------------------------
    tmp = Path(tempfile.mkdtemp(prefix="nearspace-ann-"))
    try:
        store_path = tmp / "ann.db"
        store = Store(store_path, exact_threshold=threshold)
        col = store.collection("ann", encoder=PrecomputedOnly(dim))
        ids = [f"v{i}" for i in range(args.n)]
        texts = [f"v{i}" for i in range(args.n)]
        metas = [{"group": i % 10, "year": 1990 + i % 35} for i in range(args.n)]
        t0 = time.perf_counter()
        col.upsert(ids, texts, metadatas=metas, vectors=data, show_progress=False)
        ingest_s = time.perf_counter() - t0

        build_times: list[float] = []
        original_build = col.backend.vectors._build_hnsw

        def timed_build() -> None:
            started = time.perf_counter()
            original_build()
            build_times.append(time.perf_counter() - started)

        col.backend.vectors._build_hnsw = timed_build  # instrument (benchmark only)
        t0 = time.perf_counter()
        col.backend.vectors.refresh()  # load the matrix from SQLite, then build HNSW (when above the threshold)
        refresh_s = time.perf_counter() - t0
        uses_hnsw = col.backend.vectors.hnsw is not None
        build_s = build_times[0] if build_times else None
        t0 = time.perf_counter()
        col.flush()
        flush_s = time.perf_counter() - t0
        saved = col.index.ann_path.exists()
        info = store.info()

        row_to_i = {row: int(doc_id[1:]) for row, doc_id in col.backend.data.conn.execute(
            "SELECT doc_row, doc_id FROM docs WHERE collection_id = ?", (col.backend.data.cid,))}

        def dense(qvec: np.ndarray, where=None):
            return engine_search(col.backend, lambda _q: qvec, "x", k=k, mode="dense", where=where)

        for q in queries[:warm]:
            raw.knn_query(q, k=k, num_threads=1)
            col.backend.vectors.search(q, k)
            dense(q)
            col.backend.vectors.refresh()
        # interleaved per query (raw, index, engine, refresh-only) so drift and noise from other
        # processes hit every path alike
        raw_times, raw_found, idx_times, idx_found, eng_times, eng_found, fresh_times = [], [], [], [], [], [], []
        for q in queries:
            t0 = time.perf_counter()
            labels, _ = raw.knn_query(q, k=k, num_threads=1)
            raw_times.append(time.perf_counter() - t0)
            raw_found.append(labels[0].tolist())
            t0 = time.perf_counter()
            hits = col.backend.vectors.search(q, k)
            idx_times.append(time.perf_counter() - t0)
            idx_found.append([row_to_i[r] for r, _ in hits])
            t0 = time.perf_counter()
            res = dense(q)
            eng_times.append(time.perf_counter() - t0)
            eng_found.append([int(r.id[1:]) for r in res])
            t0 = time.perf_counter()
            col.backend.vectors.refresh()
            fresh_times.append(time.perf_counter() - t0)
        raw_lat, idx_lat, eng_lat = (latency_summary(t) for t in (raw_times, idx_times, eng_times))
        fresh_lat = latency_summary(fresh_times)
        raw_recall, idx_recall, eng_recall = (recall(f, truth) for f in (raw_found, idx_found, eng_found))
        del raw

        # ---- filtered ------------------------------------------------------------------------
        groups = np.arange(args.n) % 10
        years = 1990 + np.arange(args.n) % 35
        filters = {
            'group == 3': ({"group": 3}, np.flatnonzero(groups == 3)),
            '2000 <= year < 2003': ({"year": {"$gte": 2000, "$lt": 2003}},
                                    np.flatnonzero((years >= 2000) & (years < 2003))),
        }
        fq = queries[: args.filter_queries]
        filtered = {}
        for label, (where, subset) in filters.items():
            ftruth = exact_top_k(data, fq, k, subset)
            for q in fq[:5]:
                dense(q, where)
            times, found = [], []
            for q in fq:
                t0 = time.perf_counter()
                res = dense(q, where)
                times.append(time.perf_counter() - t0)
                found.append([int(r.id[1:]) for r in res])
            lat = latency_summary(times)
            filtered[label] = {"where": where, "matching": int(len(subset)), "latency": lat,
                               "recall_at_k": recall(found, ftruth),
                               "path": "exact over allowed rows" if (not uses_hnsw or len(subset) <= threshold)
                               else "filtered HNSW walk"}
        store.close()

        # ---- cold open -------------------------------------------------------------------------
        loaded_saved: list[bool] = []
        t0 = time.perf_counter()
        store2 = Store(store_path, exact_threshold=threshold)
        col2 = store2.get_collection("ann")
        original_load = col2.index._load_saved

        def watched_load():
            got = original_load()
            loaded_saved.append(got[0] is not None)
            return got

        col2.index._load_saved = watched_load
        hits = col2.index.search(queries[0], k)
        cold_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        col2.index.search(queries[1 % len(queries)], k)
        cold_second = time.perf_counter() - t0
        cold_ok = [row_to_i.get(r) for r, _ in hits] == idx_found[0]
        store2.close()
        store_bytes = dir_bytes(tmp)
        if args.keep_store:
            print(f"store kept at {store_path}")
    finally:
        if not args.keep_store:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- report -----------------------------------------------------------------------------
    print(f"\n{'path':<34} {'recall@' + str(k):>10} {'q/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'vs raw q/s':>11}")
    rows = [("raw hnswlib (reference)", raw_recall, raw_lat),
            ("nearspace VectorIndex.search", idx_recall, idx_lat),
            ("nearspace engine dense (+SQLite)", eng_recall, eng_lat)]
    for label, rec, lat in rows:
        print(f"{label:<34} {rec:>10.4f} {lat['qps']:>9.1f} {lat['p50_ms']:>8.3f} {lat['p95_ms']:>8.3f} "
              f"{lat['qps'] / raw_lat['qps']:>10.2f}x")
    print(f"  (diagnostic: VectorIndex.refresh() alone, the per-query freshness check against SQLite: "
          f"p50 {fresh_lat['p50_ms']:.3f} ms)")
    if not uses_hnsw:
        print(f"  note: {args.n} vectors < exact threshold {threshold}: nearspace searched EXACTLY (no HNSW); "
              "pass --exact-threshold lower to exercise its HNSW path")
    ratio_idx = idx_lat["qps"] / raw_lat["qps"]
    ratio_eng = eng_lat["qps"] / raw_lat["qps"]
    met_idx = ratio_idx >= TARGET_RATIO and idx_recall >= TARGET_RECALL
    met_eng = ratio_eng >= TARGET_RATIO and eng_recall >= TARGET_RECALL
    print(f"target: nearspace >= {TARGET_RATIO}x raw q/s at recall@{k} >= {TARGET_RECALL}: "
          f"VectorIndex {ratio_idx:.2f}x / {idx_recall:.3f} {verdict(met_idx)}; "
          f"engine dense {ratio_eng:.2f}x / {eng_recall:.3f} {verdict(met_eng)}")

    print("\nfiltered dense search (engine path, exact filtered ground truth):")
    for label, f in filtered.items():
        print(f"  where {label:<20} {f['matching']:>7} rows  recall@{k} {f['recall_at_k']:.4f}  "
              f"{fmt_latency(f['latency'])}  [{f['path']}]")

    print(f"\ningest (upsert with vectors + metadata): {ingest_s:.2f}s, {args.n / ingest_s:,.0f} rows/s")
    print(f"first refresh (load matrix from SQLite + HNSW build): {refresh_s:.2f}s"
          + (f"; HNSW build {build_s:.2f}s" if build_s is not None else "; no HNSW (exact)")
          + f"  | raw hnswlib build {raw_build:.2f}s")
    print(f"flush (save ANN graph): {flush_s:.2f}s, ANN file written: {saved}")
    print(f"store on disk: {store_bytes / 2**20:.1f} MiB (SQLite {info['sqlite_bytes'] / 2**20:.1f} MiB, "
          f"ANN {(store_bytes - info['sqlite_bytes']) / 2**20:.1f} MiB)")
    print(f"cold open + first query: {cold_first * 1e3:.0f} ms (ANN loaded from saved file: "
          f"{bool(loaded_saved and loaded_saved[0]) if uses_hnsw else 'n/a (exact)'}; same top-{k} as warm: {cold_ok}); "
          f"second query {cold_second * 1e3:.2f} ms")
    print(f"\nDATA NOTE: {DATA_NOTE}.")

    results.update({
        "raw_hnswlib": {"recall_at_k": raw_recall, "latency": raw_lat, "build_s": raw_build},
        "nearspace_index": {"recall_at_k": idx_recall, "latency": idx_lat, "qps_ratio_vs_raw": ratio_idx,
                            "uses_hnsw": uses_hnsw, "refresh_only_latency": fresh_lat},
        "nearspace_engine_dense": {"recall_at_k": eng_recall, "latency": eng_lat, "qps_ratio_vs_raw": ratio_eng},
        "filtered": filtered,
        "ingest_s": ingest_s, "ingest_rows_per_s": args.n / ingest_s,
        "first_refresh_s": refresh_s, "hnsw_build_s": build_s, "flush_s": flush_s,
        "store_bytes": store_bytes, "sqlite_bytes": info["sqlite_bytes"],
        "cold_open_first_query_s": cold_first, "cold_second_query_s": cold_second,
        "cold_loaded_saved_ann": bool(loaded_saved and loaded_saved[0]), "cold_same_results": cold_ok,
        "target": {"qps_ratio": TARGET_RATIO, "recall": TARGET_RECALL, "met_index": met_idx, "met_engine": met_eng},
    })
    write_result("ann", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
