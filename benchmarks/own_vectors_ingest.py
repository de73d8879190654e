"""What the vector-file surface costs: ``nearspace index vectors.npy --ids --metadata`` against the
same vectors handed straight to ``Collection.upsert``, in one run.

DATA: seeded Gaussian vectors (``--dim``, default 384) with one metadata object per row
({"shop": i % 10, "price": i % 997}); nothing is encoded.

Measured, each into a fresh store:
  reference   Collection.upsert(ids, vectors=V, metadatas=...) in batches of --batch rows
              (arrays already in memory), committed; no index build
  file path   read_npy_vectors (memory-mapped matrix, id file, metadata JSONL, every row
              validated) + check_vectors (counts, repeated ids, NaN/inf/zero in 64k-row steps)
              + the committed writes of index_vectors, flush excluded
  flush       the derived index build that index_vectors runs at the end (store layer; the
              same for both, shown once)
The ratio is file path / reference for the committed writes: what reading and checking a
file adds. Peak RSS of the file path is reported too.

    python benchmarks/own_vectors_ingest.py               # 20k rows (~1 min on a loaded machine)
    python benchmarks/own_vectors_ingest.py --n 100000
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--flush", action="store_true", help="also time the derived index build")
    args = parser.parse_args()

    import nearspace
    from nearspace.ingest import vectors as byo

    rng = np.random.default_rng(0)
    V = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    ids = [f"v{i}" for i in range(args.n)]
    metas = [{"shop": i % 10, "price": i % 997} for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "v.npy", V)
        (tmp / "v.ids").write_text("\n".join(ids) + "\n", encoding="utf-8")
        (tmp / "v.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas), encoding="utf-8")

        with nearspace.open_store(tmp / "ref.db") as store:
            target = store.collection("ref", dim=args.dim)
            started = time.perf_counter()
            for s in range(0, args.n, args.batch):
                target.upsert(ids=ids[s:s + args.batch], vectors=V[s:s + args.batch],
                              metadatas=metas[s:s + args.batch], batch_size=args.batch, show_progress=False)
            reference = time.perf_counter() - started

        with nearspace.open_store(tmp / "file.db") as store:
            started = time.perf_counter()
            items = byo.read_npy_vectors(tmp / "v.npy", tmp / "v.ids", tmp / "v.jsonl")
            read = time.perf_counter() - started
            byo.check_vectors(items)
            checked = time.perf_counter() - started
            target = byo.target_collection(store, "file", items.dim, items.source)
            for s in range(0, args.n, args.batch):
                target.write_documents(items.docs[s:s + args.batch], vectors=np.asarray(items.vectors[s:s + args.batch]),
                                       batch_size=args.batch, show_progress=False)
            file_path = time.perf_counter() - started
            flush = None
            if args.flush:
                started = time.perf_counter()
                target.flush()
                flush = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.n:,} x {args.dim} float32 vectors with metadata, batches of {args.batch}")
    print(f"  reference  Collection.upsert            {reference:7.2f} s  {args.n / reference:8,.0f} rows/s")
    print(f"  file path  read {read:.2f} s + check {checked - read:.2f} s + writes {file_path - checked:.2f} s"
          f" = {file_path:7.2f} s  {args.n / file_path:8,.0f} rows/s")
    print(f"  ratio      file path / reference      {file_path / reference:7.2f}x")
    if flush is not None:
        print(f"  flush      derived index build         {flush:7.2f} s")
    print(f"  peak RSS of this process               {rss:7.0f} MB (includes the in-memory reference copy)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
