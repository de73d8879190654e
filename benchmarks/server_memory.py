"""Memory of ``nearspace serve`` with several reader threads against one process searching alone.

A store of N documents (short synthetic texts with unit vectors of the bundled model's
dimension, stored as given, so building it needs no encoding) in an HNSW collection. Then,
side by side in one run:
  server      ``nearspace serve --readers R`` on a loopback port; C clients send dense searches at
              once until every reader thread has served some; resident memory of the server process
              above what it held once started (the model loaded, no collection opened).
  reference   one Python process opens the same store with ``open_store`` and runs the same
              searches; resident memory above what it held before opening the collection.
The server's reader threads keep their own SQLite connections but share one vector index and
keyword index per collection, so the ratio should stay near 1 (one private graph per thread
would make it about R + 1).

    python benchmarks/server_memory.py                 # 100k documents, 4 readers
    python benchmarks/server_memory.py --n 20000       # quicker
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import PYTHON, RESULTS_DIR, verdict, write_result  # noqa: E402
from server import Client, start_server  # noqa: E402

from nearspace.server.loadtest import _rss  # noqa: E402

COLLECTION = "memory"
TARGET_RATIO = 1.5
WORDS = "river galaxy protein violin market glacier circuit harvest poem bridge lantern orbit".split()

_REFERENCE = r"""
import json, os, sys, time
from nearspace.api import open_store
from nearspace.server.loadtest import _rss
rss = lambda: _rss(os.getpid()) / 2**20
store = open_store(sys.argv[1])
queries = json.loads(sys.argv[2])
store.collection(sys.argv[3]).search(queries[0], k=10, mode="keyword")  # imports, no index yet
coll = store.collection(sys.argv[3])
coll.encoder.encode(["warm up"])
before = rss()
start = time.perf_counter()
for q in queries:
    coll.search(q, k=10, mode="hybrid")
print(json.dumps({"before_mb": before, "after_mb": rss(), "seconds": time.perf_counter() - start}))
"""


def build_store(path: Path, n: int) -> None:
    from nearspace.api import open_store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    with open_store(path) as store:
        coll = store.collection(COLLECTION, index="hnsw")
        dim = coll.backend.dim
        for start in range(0, n, 10_000):
            size = min(10_000, n - start)
            vectors = rng.standard_normal((size, dim)).astype(np.float32)
            texts = [" ".join(rng.choice(WORDS, 8)) + f" {start + i}" for i in range(size)]
            coll.upsert([f"d{start + i}" for i in range(size)], texts, vectors=vectors)
        coll.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="documents in the store (default 100k)")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=40, help="searches per client")
    args = parser.parse_args(argv)
    store = RESULTS_DIR / f"server_memory_{args.n}.db"
    start = time.perf_counter()
    build_store(store, args.n)
    print(f"store: {args.n:,} documents in an HNSW collection, built in {time.perf_counter() - start:.1f} s")
    queries = [" ".join(WORDS[i % len(WORDS):][:3]) + f" question {i}" for i in range(args.queries)]

    proc, url = start_server(store, RESULTS_DIR / "server_memory.log", options=("--readers", str(args.readers)))
    try:
        base = _rss(proc.pid) / 2**20
        errors: list[str] = []

        def client(i: int) -> None:
            c = Client(url)
            for q in queries:
                try:
                    c.post(f"/v1/collections/{COLLECTION}/search", {"query": q, "k": 10, "mode": "hybrid"})
                except SystemExit as exc:
                    errors.append(str(exc))

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        served = _rss(proc.pid) / 2**20
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if errors:
        raise SystemExit(f"searches failed: {errors[:3]}")
    out = subprocess.run([PYTHON, "-c", _REFERENCE, str(store), json.dumps(queries), COLLECTION],
                         capture_output=True, text=True, check=True)
    ref = json.loads(out.stdout.strip().splitlines()[-1])
    server_growth = served - base
    ref_growth = ref["after_mb"] - ref["before_mb"]
    ratio = server_growth / max(ref_growth, 1.0)
    print(f"server ({args.readers} readers, {args.clients} clients x {len(queries)} searches in {seconds:.1f} s): "
          f"{base:,.0f} MB started -> {served:,.0f} MB, +{server_growth:,.0f} MB")
    print(f"reference (one process, one store, {len(queries)} searches): "
          f"{ref['before_mb']:,.0f} MB -> {ref['after_mb']:,.0f} MB, +{ref_growth:,.0f} MB")
    print(f"target: server growth <= {TARGET_RATIO}x the reference -> {ratio:.2f}x: {verdict(ratio <= TARGET_RATIO)}")
    write_result("server_memory", {"n": args.n, "readers": args.readers, "clients": args.clients,
                                   "server_mb": {"started": base, "after": served, "growth": server_growth},
                                   "reference_mb": {"before": ref["before_mb"], "after": ref["after_mb"],
                                                    "growth": ref_growth},
                                   "ratio": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())
