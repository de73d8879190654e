"""Vector backends at scale (nearspace.index) side by side with raw hnswlib and faiss-cpu.

DATA (say it with every figure): real all-MiniLM-L6-v2 passage vectors (SciFact + NFCorpus,
``--pool`` of them, encoded once and cached by benchmarks/ann.py's helper) topped up with
noise to ``--n``: each vector is normalize(a*v_i + (1-a)*v_j + N(0, noise^2)) for a random
pool pair, a ~ U(0.5, 1); queries drawn the same way, never inserted. ``--synthetic`` skips
the encoder and uses seeded clustered Gaussian vectors instead. Ground truth: exact top-10.

What is measured, in one process, one query at a time on one thread:
  build       nearspace hnsw backend add() in 10k batches vs raw hnswlib add_items (same M=16,
              ef_construction=200) vs faiss IndexHNSWFlat (M=16, efConstruction=200)
  ingest      rows/s of the backend's add + save (the store-level committed path is SQLite's
              and is not measured here)
  query p50   k=10, ef=auto_ef(n) (96 up to 250k, 312 at 1M) or --ef: backend vs raw hnswlib vs faiss, recall@10 each
  filtered    10% equality subset (random rows) and 8% range subset (contiguous rows):
              backend search(allowed=...) vs raw hnswlib with a filter callable
  delete 10%  backend remove() vs raw hnswlib mark_deleted loop
  disk        saved files per backend vs hnswlib's save_index (and faiss write_index)
  reopen      fresh subprocess: index.load(prefix) + first query, and RSS above the
              interpreter baseline (after imports) for the backend and for raw hnswlib
  quantised   int8 and binary backends: p50, recall@10 vs exact float, bytes per vector
  exact       one-query p50 of the exact backend (einsum, no BLAS threads) vs numpy matmul

    python benchmarks/scale.py --n 20000 --queries 100     # smoke (~1 min)
    python benchmarks/scale.py                             # 100k
    python benchmarks/scale.py --n 1000000                 # 1M (hours on 2 shared cores)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, RESULTS_DIR  # noqa: E402


def p50_ms(fn, queries) -> float:
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def recall_at(found: list, truth: np.ndarray) -> float:
    return float(np.mean([len(set(np.asarray(f).tolist()) & set(t.tolist())) / max(1, len(t))
                          for f, t in zip(found, truth)]))


def ratio(ours: float, ref: float) -> str:
    return f"{ours / ref:.2f}x" if ref else "n/a"


def dir_bytes(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths if Path(p).exists())


def data(args) -> tuple[np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(args.seed)
    if args.synthetic:
        centres = rng.standard_normal((200, 384)).astype(np.float32)

        def draw(m):
            v = centres[rng.integers(0, 200, m)] + 0.6 * rng.standard_normal((m, 384)).astype(np.float32)
            return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        return draw(args.n), draw(args.queries), "synthetic clustered Gaussian (200 centres, sigma 0.6), 384-d"
    from ann import load_pool, synthesise

    pool, _ = load_pool(args.pool, False)
    note = (f"{len(pool)} real MiniLM passage vectors (SciFact+NFCorpus) topped up with noise "
            f"(pairwise mix + N(0,{args.noise}^2)) to {args.n:,}")
    return synthesise(pool, args.n, args.noise, rng), synthesise(pool, args.queries, args.noise, rng), note


def exact_truth(X, Q, k, subset=None):
    base = X if subset is None else X[subset]
    out = []
    for start in range(0, len(Q), 64):
        s = Q[start:start + 64] @ base.T
        top = np.argsort(-s, axis=1)[:, :k]
        out.append(top if subset is None else subset[top])
    return np.concatenate(out)


REOPEN = r"""
import sys, time, resource, numpy as np
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096
kind, prefix, qpath = sys.argv[1], sys.argv[2], sys.argv[3]
q = np.load(qpath)
if kind == 'raw':
    import hnswlib
else:
    from nearspace import index; import nearspace.index.hnsw, nearspace.index.exact, nearspace.index.quantized, hnswlib
base = rss(); t = time.perf_counter()
if kind == 'raw':
    ix = hnswlib.Index(space='ip', dim=q.shape[0]); ix.load_index(prefix); ix.set_ef(96)
    t_open = time.perf_counter() - t; ix.knn_query(q, k=10, num_threads=1)
else:
    ix = index.load(prefix); t_open = time.perf_counter() - t; ix.search(q, 10)
total = time.perf_counter() - t
print(f"{t_open} {total} {(rss() - base) / 2**20}")
"""


def reopen(kind: str, prefix: str, qpath: str) -> tuple[float, float, float]:
    out = subprocess.run([PYTHON, "-c", REOPEN, kind, prefix, qpath], capture_output=True, text=True, check=True)
    open_s, total_s, rss_mb = map(float, out.stdout.split())
    return open_s, total_s, rss_mb


STORE_REOPEN = r"""
import sys, time, numpy as np
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096
path, qpath = sys.argv[1], sys.argv[2]
q = np.load(qpath)
from nearspace.api import Store; import hnswlib
base = rss(); t = time.perf_counter()
store = Store(path); coll = store.collection("scale"); t_open = time.perf_counter() - t
hits = coll.search(vector=q, k=10)
total = time.perf_counter() - t
assert len(hits) == 10
print(f"{t_open} {total} {(rss() - base) / 2**20}")
"""


def load_avg() -> str:
    return open("/proc/loadavg").read().split()[0]


def store_level(args, X, Q, truth, ref: dict, out: dict) -> None:
    """The same vectors through nearspace's Store/Collection end to end (SQLite + derived files)."""
    import os

    from nearspace.api import Store
    from nearspace.store.sqlite.database import WAL_KEEP

    n, dim = X.shape
    work = Path(tempfile.mkdtemp(prefix="ns-scale-store-"))
    path = work / "s.db"
    ids = [f"d{i}" for i in range(n)]
    # 10 categories (a 10% equality filter) and a price spread over 1000 values (8% range), per row
    metas = [{"cat": f"c{i % 10}", "price": int((i * 7919) % 1000)} for i in range(n)]
    res: dict = {"index": args.store_index}
    print(f"-- store level: nearspace Store/Collection, index={args.store_index} (load average {load_avg()})")
    store = Store(path)
    coll = store.collection("scale", dim=dim, index=args.store_index)
    t = time.perf_counter()
    coll.upsert(ids=ids, vectors=X, metadatas=metas, batch_size=args.store_batch, show_progress=False)
    ingest = time.perf_counter() - t
    t = time.perf_counter()
    first = coll.search(vector=Q[0], k=10)
    build = time.perf_counter() - t
    assert len(first) == 10
    t = time.perf_counter()
    coll.flush()
    flush = time.perf_counter() - t
    raw_ingest = n / ref["raw_build_s"]
    print(f"store ingest committed {n / ingest:9,.0f} rows/s ({ingest:.1f} s, batches of {args.store_batch})   "
          f"raw hnswlib add {raw_ingest:9,.0f} rows/s   ratio {ratio(n / ingest, raw_ingest)}   (load {load_avg()})")
    print(f"store index build (first search after ingest) {build:.1f} s   raw hnswlib build {ref['raw_build_s']:.1f} s   "
          f"ratio {ratio(build, ref['raw_build_s'])}   ingest+build {n / (ingest + build):,.0f} rows/s; flush {flush:.1f} s "
          f"(load {load_avg()})")
    res.update(ingest_rows_s=n / ingest, build_s=build, flush_s=flush)
    row_of = {f"d{i}": i for i in range(n)}
    found = [[row_of[h.id] for h in coll.search(vector=q, k=10)] for q in Q]
    p50 = p50_ms(lambda q: coll.search(vector=q, k=10), Q)
    rec = recall_at(found, truth)
    print(f"store query p50 {p50:6.2f} ms (recall@10 {rec:.3f})   raw hnswlib {ref['raw_query_p50_ms']:6.2f} ms   "
          f"ratio {ratio(p50, ref['raw_query_p50_ms'])}" + (f"   faiss {ref['faiss_query_p50_ms']:.2f} ms ratio "
          f"{ratio(p50, ref['faiss_query_p50_ms'])}" if "faiss_query_p50_ms" in ref else "") + f"   (load {load_avg()})")
    res.update(query_p50_ms=p50, recall=rec)
    cats = np.array([i % 10 for i in range(n)])
    prices = np.array([m["price"] for m in metas])
    fq = Q[: min(100, len(Q))]
    for label, where, subset in (("10% equality", {"cat": "c3"}, np.flatnonzero(cats == 3)),
                                 ("8% range", {"price": {"$gte": 500, "$lt": 580}},
                                  np.flatnonzero((prices >= 500) & (prices < 580)))):
        ftruth = exact_truth(X, fq, 10, subset)
        got = [[row_of[h.id] for h in coll.search(vector=q, k=10, where=where)] for q in fq]
        short = sum(len(g) < 10 for g in got)
        import nearspace.store.sqlite.database as database

        kept, database.FILTER_CACHE = database.FILTER_CACHE, 0  # every query re-reads its matches
        cold = p50_ms(lambda q: coll.search(vector=q, k=10, where=where), fq)
        database.FILTER_CACHE = kept
        fp50 = p50_ms(lambda q: coll.search(vector=q, k=10, where=where), fq)
        rp = ref.get(f"raw_filtered_{label}")
        print(f"store filtered {label:13s} p50 {fp50:6.2f} ms repeated filter (matches cached), {cold:6.2f} ms "
              f"matches re-read each query (recall {recall_at(got, ftruth):.3f}, short {short})"
              + (f"   raw hnswlib+filter {rp:6.2f} ms   ratio {ratio(fp50, rp)}" if rp else "") + f"   (load {load_avg()})")
        res[f"filtered_{label}"] = {"p50_ms": fp50, "uncached_p50_ms": cold, "short": short,
                                    "recall": recall_at(got, ftruth)}
    np.save(work / "q.npy", Q[1])
    store.close()
    runs = []
    for _ in range(3):  # a fresh process each time: open + first query, and RSS above the imports
        proc = subprocess.run([PYTHON, "-c", STORE_REOPEN, str(path), str(work / "q.npy")],
                              capture_output=True, text=True, check=True)
        runs.append(tuple(map(float, proc.stdout.split())))
    o_open, o_total, o_rss = sorted(runs, key=lambda r: r[1])[1]  # the median run
    print(f"store reopen open {o_open:.3f} s + first query = {o_total:.3f} s (median of 3), +{o_rss:.0f} MB RSS   "
          f"raw hnswlib {ref['raw_reopen_total_s']:.3f} s, +{ref['raw_reopen_rss_mb']:.0f} MB   "
          f"ratio {ratio(o_total, ref['raw_reopen_total_s'])}   (load {load_avg()})")
    res.update(reopen_open_s=o_open, reopen_total_s=o_total, reopen_rss_mb=o_rss)
    files = lambda: [p for p in [path, Path(f"{path}-wal")] + list((work / "s.db.ann").rglob("*")) if p.is_file()]
    disk = dir_bytes(files())
    sqlite_disk = dir_bytes([path, Path(f"{path}-wal")])
    store = Store(path)
    coll = store.collection("scale")
    coll.search(vector=Q[0], k=10)
    gone = [f"d{i}" for i in np.random.default_rng(args.seed + 2).choice(n, n // 10, replace=False)]
    t = time.perf_counter()
    coll.delete(gone)
    delete = time.perf_counter() - t
    t = time.perf_counter()
    after = coll.search(vector=Q[0], k=10)
    catch_up = time.perf_counter() - t
    assert not set(h.id for h in after) & set(gone)
    print(f"store delete 10% ({len(gone):,} rows) committed {delete:.3f} s + next search {catch_up:.3f} s   "
          f"raw hnswlib mark_deleted {ref['raw_delete_s']:.3f} s   ratio {ratio(delete + catch_up, ref['raw_delete_s'])}   "
          f"(load {load_avg()})")
    coll.flush()
    wal = Path(f"{path}-wal")
    wal_now = wal.stat().st_size if wal.exists() else 0
    waited = time.perf_counter()
    while wal.exists() and wal.stat().st_size > WAL_KEEP and time.perf_counter() - waited < 10:
        time.sleep(0.05)  # the background checkpoint copies, then truncates, the delete's WAL
    wal_later = wal.stat().st_size if wal.exists() else 0
    print(f"store WAL after the delete: {wal_now / 1e6:.0f} MB at flush, {wal_later / 1e6:.0f} MB "
          f"{time.perf_counter() - waited:.1f} s later (no write in between)")
    res.update(wal_after_delete=wal_now, wal_after_checkpoint=wal_later)
    before_compact = dir_bytes(files())
    t = time.perf_counter()
    store.compact()
    compact = time.perf_counter() - t
    after_compact = dir_bytes(files())
    print(f"store disk {disk / 1e6:.0f} MB (SQLite {sqlite_disk / 1e6:.0f} MB + derived {(disk - sqlite_disk) / 1e6:.0f} MB)   "
          f"after delete+flush {before_compact / 1e6:.0f} MB, after compact {after_compact / 1e6:.0f} MB ({compact:.1f} s)   "
          f"raw hnswlib file {ref['raw_disk_bytes'] / 1e6:.0f} MB   ratio {ratio(disk, ref['raw_disk_bytes'])}")
    res.update(delete_s=delete, delete_catch_up_s=catch_up, disk_bytes=disk, sqlite_bytes=sqlite_disk,
               disk_after_delete=before_compact, disk_after_compact=after_compact, load_avg=load_avg())
    out["store"] = res
    store.close()
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--pool", type=int, default=2000, help="real MiniLM vectors to top up from (default 2000)")
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--ef", type=int, default=None,
                        help="search breadth for every HNSW here (default: nearspace's auto_ef(n), which the store uses)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", action="store_true", help="seeded clustered vectors; no encoder")
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--skip-quantised", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--store-index", default="auto", help="the store's index option (auto|exact|hnsw|int8|binary)")
    parser.add_argument("--store-batch", type=int, default=256, help="upsert batch size (one transaction each)")
    parser.add_argument("--no-store", action="store_true", help="skip the store-level section")
    parser.add_argument("--store-only", action="store_true",
                        help="raw hnswlib (and faiss) references plus the store level; skip the backend-level rows")
    args = parser.parse_args(argv)

    import hnswlib
    from nearspace import index

    X, Q, note = data(args)
    n, dim = X.shape
    rows = np.arange(n, dtype=np.int64)
    print(f"DATA: {note}; {len(Q)} queries. CPU shared with other agents (load average {load_avg()} at start): "
          "timings are pessimistic.")
    truth = exact_truth(X, Q, 10)
    from nearspace.index.hnsw import auto_ef

    ef = args.ef or auto_ef(n)
    print(f"ef_search {ef} for every HNSW below ({'--ef' if args.ef else 'auto_ef(n), as the store uses'})")
    out: dict = {"n": n, "data": note, "ef": ef}
    work = Path(tempfile.mkdtemp(prefix="ns-scale-"))
    np.save(work / "q.npy", Q[0])

    # -- build ------------------------------------------------------------------------------
    t = time.perf_counter()
    raw = hnswlib.Index(space="ip", dim=dim)
    raw.init_index(max_elements=n, M=16, ef_construction=200)
    raw.add_items(X, rows)
    raw_build = time.perf_counter() - t
    print(f"build        raw hnswlib {raw_build:7.1f} s (load {load_avg()})")
    raw.save_index(str(work / "raw.hnsw"))
    out.update(raw_build_s=raw_build)
    ours = None
    if not args.store_only:
        t = time.perf_counter()
        ours = index.create("hnsw", dim, "cosine", M=16, ef_construction=200, ef_search=ef)
        for start in range(0, n, 10_000):
            ours.add(rows[start:start + 10_000], X[start:start + 10_000])
        our_build = time.perf_counter() - t
        t = time.perf_counter()
        ours.save(work / "hnsw")
        our_save = time.perf_counter() - t
        print(f"build        nearspace hnsw backend {our_build:7.1f} s   raw hnswlib {raw_build:7.1f} s   "
              f"ratio {ratio(our_build, raw_build)}")
        print(f"ingest       nearspace add+save {n / (our_build + our_save):9,.0f} rows/s   raw hnswlib add "
              f"{n / raw_build:9,.0f} rows/s   ratio {ratio(n / (our_build + our_save), n / raw_build)}")
        out.update(build_s=our_build, save_s=our_save)

    faiss_index = None
    if not args.no_faiss:
        try:
            import faiss

            faiss.omp_set_num_threads(2)
            t = time.perf_counter()
            faiss_index = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
            faiss_index.hnsw.efConstruction = 200
            faiss_index.add(X)
            faiss_build = time.perf_counter() - t
            faiss_index.hnsw.efSearch = ef
            faiss.write_index(faiss_index, str(work / "faiss.index"))
            print(f"build        faiss HNSWFlat {faiss_build:7.1f} s"
                  + (f"   (nearspace backend ratio {ratio(out['build_s'], faiss_build)})" if ours is not None else ""))
            out["faiss_build_s"] = faiss_build
        except ImportError:
            print("faiss-cpu not installed: faiss column skipped")

    # -- query ------------------------------------------------------------------------------
    sweep = []
    for trial in (64, 96, 128, 192, 256):  # how recall moves with ef at this size (raw hnswlib)
        raw.set_ef(trial)
        sweep.append(f"ef {trial}: {recall_at([raw.knn_query(q, k=10, num_threads=1)[0][0] for q in Q], truth):.3f}")
    print("recall@10 of raw hnswlib by ef   " + "   ".join(sweep))
    raw.set_ef(ef)
    found_raw = [raw.knn_query(q, k=10, num_threads=1)[0][0] for q in Q]
    raw_p50 = p50_ms(lambda q: raw.knn_query(q, k=10, num_threads=1), Q)
    print(f"query p50    raw hnswlib {raw_p50:6.2f} ms (recall@10 {recall_at(found_raw, truth):.3f})")
    out.update(raw_query_p50_ms=raw_p50, raw_recall=recall_at(found_raw, truth))
    our_p50 = raw_p50
    if ours is not None:
        found_ours = [ours.search(q, 10)[0][0] for q in Q]
        our_p50 = p50_ms(lambda q: ours.search(q, 10), Q)
        print(f"query p50    nearspace backend {our_p50:6.2f} ms (recall@10 {recall_at(found_ours, truth):.3f})   "
              f"raw hnswlib {raw_p50:6.2f} ms   ratio {ratio(our_p50, raw_p50)}")
        out.update(query_p50_ms=our_p50, recall=recall_at(found_ours, truth))
    if faiss_index is not None:
        import faiss

        faiss.omp_set_num_threads(1)
        found_f = [faiss_index.search(q[None, :], 10)[1][0] for q in Q]
        f_p50 = p50_ms(lambda q: faiss_index.search(q[None, :], 10), Q)
        print(f"query p50    faiss {f_p50:6.2f} ms (recall@10 {recall_at(found_f, truth):.3f})"
              + (f"   nearspace backend ratio {ratio(our_p50, f_p50)}" if ours is not None else ""))
        out.update(faiss_query_p50_ms=f_p50, faiss_recall=recall_at(found_f, truth))

    # -- filtered ---------------------------------------------------------------------------
    rng = np.random.default_rng(args.seed + 1)
    subsets = {"10% equality": np.sort(rng.choice(rows, n // 10, replace=False)),
               "8% range": rows[n // 3: n // 3 + (8 * n) // 100]}
    fq = Q[: min(100, len(Q))]
    for label, subset in subsets.items():
        ftruth = exact_truth(X, fq, 10, subset)
        members = set(subset.tolist())
        found_r = [raw.knn_query(q, k=10, num_threads=1, filter=members.__contains__)[0][0] for q in fq]
        r = p50_ms(lambda q: raw.knn_query(q, k=10, num_threads=1, filter=members.__contains__), fq)
        out[f"raw_filtered_{label}"] = r
        if ours is None:
            print(f"filtered     {label:13s} raw hnswlib+filter {r:6.2f} ms (recall {recall_at(found_r, ftruth):.3f})")
            continue
        found_o = [ours.search(q, 10, allowed=subset)[0][0] for q in fq]
        o = p50_ms(lambda q: ours.search(q, 10, allowed=subset), fq)
        short = sum(len(f) < 10 for f in found_o)
        print(f"filtered     {label:13s} nearspace {o:6.2f} ms (recall {recall_at(found_o, ftruth):.3f}, short {short})   "
              f"raw hnswlib+filter {r:6.2f} ms (recall {recall_at(found_r, ftruth):.3f})   ratio {ratio(o, r)}")
        out[f"filtered_{label}"] = {"p50_ms": o, "raw_p50_ms": r, "recall": recall_at(found_o, ftruth), "short": short}

    # -- reopen -----------------------------------------------------------------------------
    r_open, r_total, r_rss = reopen("raw", str(work / "raw.hnsw"), str(work / "q.npy"))
    raw_disk = (work / "raw.hnsw").stat().st_size
    out.update(raw_reopen_total_s=r_total, raw_reopen_rss_mb=r_rss, raw_disk_bytes=raw_disk)
    if ours is not None:
        o_open, o_total, o_rss = reopen("ours", str(work / "hnsw"), str(work / "q.npy"))
        print(f"reopen       nearspace backend open {o_open:.3f} s + first query = {o_total:.3f} s, +{o_rss:.0f} MB RSS   "
              f"raw hnswlib {r_total:.3f} s, +{r_rss:.0f} MB   ratio {ratio(o_total, r_total)}")
        disk = dir_bytes(work.glob("hnsw.*"))
        print(f"disk         nearspace hnsw backend {disk / 1e6:.0f} MB   raw hnswlib {raw_disk / 1e6:.0f} MB   "
              f"ratio {ratio(disk, raw_disk)}"
              + (f"   faiss {(work / 'faiss.index').stat().st_size / 1e6:.0f} MB" if faiss_index is not None else ""))
        out.update(reopen_open_s=o_open, reopen_total_s=o_total, reopen_rss_mb=o_rss, disk_bytes=disk)
    else:
        print(f"reopen       raw hnswlib open + first query {r_total:.3f} s, +{r_rss:.0f} MB RSS; file {raw_disk / 1e6:.0f} MB")

    # -- delete 10% -------------------------------------------------------------------------
    gone = rng.choice(rows, n // 10, replace=False)
    t = time.perf_counter()
    for row in gone:
        raw.mark_deleted(int(row))
    raw_del = time.perf_counter() - t
    out.update(raw_delete_s=raw_del)
    if ours is not None:
        t = time.perf_counter()
        ours.remove(gone)
        our_del = time.perf_counter() - t
        print(f"delete 10%   nearspace backend {our_del:.3f} s   raw hnswlib mark_deleted {raw_del:.3f} s   "
              f"ratio {ratio(our_del, raw_del)}")
        out.update(delete_s=our_del)

    if not args.no_store:
        store_level(args, X, Q, truth, out, out)

    # -- exact and quantised ----------------------------------------------------------------
    if not args.skip_quantised and not args.store_only:
        for kind in ("exact", "int8", "binary"):
            backend = index.create(kind, dim, "cosine")
            t = time.perf_counter()
            for start in range(0, n, 50_000):
                backend.add(rows[start:start + 50_000], X[start:start + 50_000])
            build = time.perf_counter() - t
            backend.save(work / kind)
            backend = index.load(work / kind)  # measured as reopened: floats memory-mapped
            sample = Q[:100]
            found = [backend.search(q, 10)[0][0] for q in sample]
            p50 = p50_ms(lambda q: backend.search(q, 10), sample)
            fsub = subsets["10% equality"]
            fp50 = p50_ms(lambda q: backend.search(q, 10, allowed=fsub), sample[:50])
            o_open, o_total, o_rss = reopen("ours", str(work / kind), str(work / "q.npy"))
            stats = backend.stats()
            print(f"{kind:12s} p50 {p50:7.2f} ms  recall@10 {recall_at(found, truth[:100]):.3f}  filtered(10%) {fp50:6.2f} ms  "
                  f"index {stats['bytes_per_vector']} B/vector  build {build:.1f} s  reopen+query {o_total:.3f} s +{o_rss:.0f} MB  "
                  f"disk {dir_bytes(work.glob(kind + '.*')) / 1e6:.0f} MB  (p50 ratio to raw hnswlib {ratio(p50, raw_p50)})")
            out[kind] = {"p50_ms": p50, "recall": recall_at(found, truth[:100]), "filtered_p50_ms": fp50,
                         "bytes_per_vector": stats["bytes_per_vector"], "reopen_s": o_total, "reopen_rss_mb": o_rss}
        matrix = X
        mm = p50_ms(lambda q: matrix @ q, Q[:50])
        print(f"exact one-query numpy matmul (BLAS threads as configured) {mm:.2f} ms  vs exact backend above")
        out["numpy_matmul_p50_ms"] = mm

    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
