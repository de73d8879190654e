"""What the fsync policy costs on ingest: WAL ``synchronous=NORMAL`` (the store's choice) vs ``FULL``.

NORMAL does not fsync the WAL at each commit, so a power loss may drop the last commits; the
store stays consistent, and the derived index notices the lost commits (change tokens) instead
of trusting a graph saved after them. FULL fsyncs every commit. This prints, side by side in
one run, the time to store the same documents (given unit vectors, so no model runs and only
the storage path is timed) both ways, for batched upserts (256 per commit, what ``nearspace
index`` does) and single-document upserts (one commit each, the worst case for fsync), plus
the price of the integrity checks themselves: CRC-32 of a graph file the size of a 20,500-vector
HNSW index (paid on each save and each load).

    python benchmarks/durability.py                    # 5,000 batched + 300 single upserts
    python benchmarks/durability.py --docs 20000 --singles 1000
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384


class _NoEncoder:
    """The collection's encoder is never called: every upsert gives its vectors."""

    name = "durability-bench"
    dim = DIM

    def encode(self, texts, **_: object) -> np.ndarray:  # pragma: no cover - not reached
        raise RuntimeError("the benchmark gives vectors")


def _ingest(path: Path, synchronous: str, docs: int, singles: int, batch: int) -> tuple[float, float]:
    from nearspace.api import Store

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((docs + singles, DIM)).astype(np.float32)
    texts = [f"document {i} about topic {i % 97} and subject {i * 7 % 131}" for i in range(docs + singles)]
    with Store(path, encoder=_NoEncoder()) as store:
        store.db.conn.execute(f"PRAGMA synchronous={synchronous}")
        coll = store.collection("c")
        started = time.perf_counter()
        for start in range(0, docs, batch):
            end = min(start + batch, docs)
            coll.upsert(ids=[f"d{i}" for i in range(start, end)], texts=texts[start:end], vectors=vectors[start:end])
        batched = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(docs, docs + singles):
            coll.upsert(ids=[f"d{i}"], texts=[texts[i]], vectors=vectors[i:i + 1])
        single = time.perf_counter() - started
    return batched, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=5000, help="documents upserted in batches")
    parser.add_argument("--singles", type=int, default=300, help="documents upserted one commit each")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per mode; the best is kept")
    args = parser.parse_args()
    best: dict[str, list[float]] = {"NORMAL": [1e9, 1e9], "FULL": [1e9, 1e9]}
    with tempfile.TemporaryDirectory(dir=os.environ.get("NEARSPACE_BENCH_DIR")) as tmp:
        for repeat in range(args.repeats):
            for mode in ("NORMAL", "FULL") if repeat % 2 == 0 else ("FULL", "NORMAL"):
                path = Path(tmp) / f"{mode}{repeat}.db"
                batched, single = _ingest(path, mode, args.docs, args.singles, args.batch)
                best[mode] = [min(best[mode][0], batched), min(best[mode][1], single)]
        print(f"{'synchronous':<12} {'batched docs/s':>15} {'single commits/s':>17}")
        for mode, (batched, single) in best.items():
            print(f"{mode:<12} {args.docs / batched:>15,.0f} {args.singles / single:>17,.0f}")
        n_b, n_s = best["NORMAL"]
        f_b, f_s = best["FULL"]
        print(f"FULL / NORMAL time: batched {f_b / n_b:.2f}x, single-document commits {f_s / n_s:.2f}x")
        # the checks that make NORMAL safe for the derived files: a token per change row (in the
        # timings above) and a CRC-32 over the graph file at every save and load
        from nearspace.store.sqlite.vectors import HNSW_M, _crc32

        graph = Path(tmp) / "graph.bin"
        size = 20_500 * (DIM * 4 + HNSW_M * 2 * 4 + 16)
        graph.write_bytes(np.random.default_rng(1).bytes(size))
        started = time.perf_counter()
        _crc32(graph)
        crc = time.perf_counter() - started
        print(f"CRC-32 of a {size / 1e6:.0f} MB graph file (20,500 x {DIM}-d vectors): {crc * 1000:.0f} ms "
              f"({size / 1e6 / crc:,.0f} MB/s), paid once per save and once per load")
        print(f"file system: {tmp}")


if __name__ == "__main__":
    main()
