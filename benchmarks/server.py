"""``nearspace serve`` over HTTP versus the same work in-process, in the same run.

1. Search: the same SciFact test queries through ``POST /v1/collections/{name}/search``
   (one keep-alive connection, one request at a time) and through ``Collection.search`` in
   this process, alternating query by query so both see the same machine load. p50/p95
   latency and requests/s per mode, plus the HTTP throughput with several clients at once.
2. Embeddings: batches of 64 SciFact passages through ``POST /v1/embeddings`` (base64, what
   the official openai client asks for) versus ``encode`` in this process, alternating batch
   by batch. Target: HTTP passages/s >= 0.9x in-process.
3. Load: 8 clients for 30 s of mixed search / upsert / read-back on a loopback port; zero
   5xx and zero lost writes (the collection's count afterwards).

The server runs as a subprocess (``nearspace serve --no-access-log``) on a free loopback
port; the store (first N SciFact documents) is cached in benchmarks/results/.

    python benchmarks/server.py                      # defaults below
    python benchmarks/server.py --n 200 --queries 20 --batches 2 --load-seconds 10   # smoke
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import (PYTHON, RESULTS_DIR, SCIFACT, fmt_latency, latency_summary, passage_text, read_corpus,  # noqa: E402
                     require, scifact_test_queries, torch_environment, verdict, write_result)

MODES = ("keyword", "dense", "hybrid")
COLLECTION = "scifact"


def build_store(path: Path, records: list[dict[str, str]]) -> None:
    from nearspace.api import open_store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with open_store(path) as store:
        store.collection(COLLECTION).upsert(ids=[r["id"] for r in records], texts=[r["text"] for r in records],
                                            titles=[r["title"] for r in records], show_progress=len(records) >= 512)


def start_server(store: Path, log: Path, timeout: float = 300, *,
                 options: tuple[str, ...] = ("--max-batch", "256")) -> tuple[subprocess.Popen, str]:
    handle = log.open("w")
    proc = subprocess.Popen([PYTHON, "-m", "nearspace.cli", "--store", str(store), "serve", "--port", "0",
                             "--no-access-log", *options], stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        match = re.search(r"Uvicorn running on (http://\S+)", log.read_text(errors="replace"))
        if match:
            return proc, match.group(1)
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start in {timeout}s:\n{log.read_text()[-3000:]}")


class Client:
    """One keep-alive HTTP connection (reopened when the server has closed an idle one)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.send("POST", path, body)

    def get(self, path: str) -> dict[str, Any]:
        return self.send("GET", path, None)

    def send(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # uvicorn closes connections idle for 5 s (its keep-alive timeout): reconnect once
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        payload = json.loads(response.read())
        if response.status != 200:
            raise SystemExit(f"{method} {path} -> {response.status}: {payload}")
        return payload


def bench_search(url: str, coll, queries: list[str], k: int, warmup: int, clients: int,
                 concurrent_seconds: float) -> dict[str, Any]:
    import threading

    client = Client(url)
    local_search = in_worker(coll.search)
    path = f"/v1/collections/{COLLECTION}/search"
    out: dict[str, Any] = {}
    for mode in MODES:
        for q in queries[:warmup]:
            client.post(path, {"query": q, "k": k, "mode": mode})
            local_search(q, k=k, mode=mode)
        http_s, local_s, same = [], [], 0
        for q in queries:  # alternate, so both sides see the same machine load
            t0 = time.perf_counter()
            got = client.post(path, {"query": q, "k": k, "mode": mode})["results"]
            t1 = time.perf_counter()
            want = local_search(q, k=k, mode=mode)
            t2 = time.perf_counter()
            http_s.append(t1 - t0)
            local_s.append(t2 - t1)
            same += [h["id"] for h in got] == [r.id for r in want]
        h, loc = latency_summary(http_s), latency_summary(local_s)
        out[mode] = {"http": h, "in_process": loc, "http_rps_vs_in_process": h["qps"] / loc["qps"],
                     "http_overhead_p50_ms": h["p50_ms"] - loc["p50_ms"],
                     "identical_results": f"{same}/{len(queries)}"}
        print(f"{mode:<8} HTTP       {fmt_latency(h)}")
        print(f"{'':<8} in-process {fmt_latency(loc)}  -> HTTP {h['qps'] / loc['qps']:.2f}x requests/s, "
              f"identical results {same}/{len(queries)}")

    # several clients at once (hybrid): what the one server process sustains
    done, errors = [], []
    deadline = time.perf_counter() + concurrent_seconds

    def worker(i: int) -> None:
        c = Client(url)
        n = 0
        while time.perf_counter() < deadline:
            try:
                c.post(path, {"query": queries[(i * 7 + n) % len(queries)], "k": k, "mode": "hybrid"})
            except Exception as exc:  # counted, not fatal
                errors.append(repr(exc))
            n += 1
        done.append(n)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    out["hybrid_concurrent"] = {"clients": clients, "seconds": wall, "requests": sum(done),
                                "requests_per_s": sum(done) / wall, "errors": len(errors)}
    print(f"hybrid, {clients} clients at once: {sum(done) / wall:.1f} requests/s over {wall:.1f}s "
          f"({len(errors)} errors)")
    return out


def in_worker(fn):
    """Call ``fn`` on one persistent worker thread, as the server does.

    On a small, busy CPU torch's OpenMP pool is far slower when driven from the main thread
    (measured here: one query encode 189 ms from the main thread with 2 threads, 38 ms with
    1 thread), and from a worker thread it is fast only once the main thread has run the model
    (177-245 ms without, 31-50 ms with). The server loads and first runs the model in its main
    thread and encodes on worker threads; ``main`` does the same here, so both sides match."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    return lambda *args, **kwargs: pool.submit(fn, *args, **kwargs).result()


def bench_embeddings(url: str, texts: list[str], batch: int, batches: int) -> dict[str, Any]:
    from nearspace.encoders import load_encoder

    encoder = load_encoder()
    encode = in_worker(encoder.encode)
    client = Client(url)
    model = encoder.name
    warm = texts[:8]
    client.post("/v1/embeddings", {"input": warm, "model": model, "encoding_format": "base64"})
    encode(warm)
    http_s, local_s, max_diff = [], [], 0.0
    for b in range(batches):
        chunk = texts[b * batch:(b + 1) * batch]
        t0 = time.perf_counter()
        payload = client.post("/v1/embeddings", {"input": chunk, "model": model, "encoding_format": "base64"})
        t1 = time.perf_counter()
        local = encode(chunk)
        t2 = time.perf_counter()
        got = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in payload["data"]])
        max_diff = max(max_diff, float(np.abs(got - local).max()))
        http_s.append(t1 - t0)
        local_s.append(t2 - t1)
        print(f"batch {b + 1}/{batches}: HTTP {len(chunk) / (t1 - t0):.1f} passages/s, "
              f"in-process {len(chunk) / (t2 - t1):.1f} passages/s")
    n = batch * batches
    http_rate, local_rate = n / sum(http_s), n / sum(local_s)
    ratio = http_rate / local_rate
    print(f"/v1/embeddings {http_rate:.1f} passages/s vs in-process encode {local_rate:.1f} -> {ratio:.2f}x "
          f"(target >= 0.9x: {verdict(ratio >= 0.9)}); max |difference| {max_diff:.2e}")
    return {"batch": batch, "batches": batches, "http_passages_per_s": http_rate,
            "in_process_passages_per_s": local_rate, "ratio": ratio, "max_abs_difference": max_diff,
            "target": {"ratio": 0.9, "met": ratio >= 0.9}}


def bench_load(url: str, clients: int, seconds: float) -> dict[str, Any]:
    from nearspace.server.loadtest import run_load

    client = Client(url)
    seed = [{"id": f"seed-{i}", "text": t} for i, t in enumerate(["dropout and weight decay", "bread and yeast",
                                                                   "comets and planets", "rivers and valleys"])]
    client.post("/v1/collections/load/documents", {"documents": seed})
    report = run_load(url, "load", clients=clients, seconds=seconds)
    listed = client.get("/v1/collections")["collections"]
    count = {c["name"]: c["count"] for c in listed}["load"]
    summary = report.summary()
    summary["count_after"] = count
    summary["count_expected"] = len(seed) + len(report.written)
    summary["lost_writes"] = summary["count_expected"] - count
    print(f"load: {clients} clients x {summary['seconds']}s: {summary['requests']} requests "
          f"({summary['requests_per_s']} /s) {summary['by_kind']}, statuses {summary['statuses']}, "
          f"5xx {summary['server_errors_5xx']}, transport errors {summary['transport_errors']}, "
          f"lost writes {summary['lost_writes']}")
    for kind, lat in summary["latency"].items():
        if lat.get("n"):
            print(f"      {kind:<7} p50 {lat['p50_ms']:.1f} ms  p95 {lat['p95_ms']:.1f} ms  (n={lat['n']})")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="SciFact documents in the store (default 300)")
    parser.add_argument("--queries", type=int, default=60, help="test queries per mode (default 60)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", type=int, default=3, help="embedding batches of --batch (default 3)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--clients", type=int, default=8, help="load-run clients (default 8)")
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--concurrent-seconds", type=float, default=10.0,
                        help="seconds of concurrent hybrid search (4 clients)")
    args = parser.parse_args(argv)

    require(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl", SCIFACT / "qrels" / "test.tsv")
    records = read_corpus(SCIFACT / "corpus.jsonl", max(args.n, args.batch * args.batches))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    store = RESULTS_DIR / f"server_scifact_{args.n}.db"
    if not store.exists():
        print(f"building {store.name} ({args.n} documents, once)", flush=True)
        build_store(store, records[:args.n])
    work = RESULTS_DIR / "server_bench.db"  # a copy: the load run writes to it
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    import sqlite3

    with sqlite3.connect(store) as src, sqlite3.connect(work) as dst:
        src.backup(dst)
    queries = [q for _, q in scifact_test_queries(args.queries)]
    passages = [passage_text(r) for r in records[:args.batch * args.batches]]

    from nearspace.encoders import load_encoder

    load_encoder().encode(["warm-up in the main thread, as the server does"])  # see in_worker()
    proc, url = start_server(work, RESULTS_DIR / "server_bench.log")
    try:
        from nearspace.api import open_store

        with open_store(work) as opened:  # read-only use, next to the server: a second process
            coll = opened.get_collection(COLLECTION)
            print(f"\n== search: {len(queries)} queries x {len(MODES)} modes over {coll.count()} documents, k={args.k}")
            search = bench_search(url, coll, queries, args.k, args.warmup, 4, args.concurrent_seconds)
        print(f"\n== embeddings: {args.batches} batches of {args.batch} SciFact passages")
        embeddings = bench_embeddings(url, passages, args.batch, args.batches)
        print(f"\n== load: {args.clients} clients, {args.load_seconds:.0f}s")
        load = bench_load(url, args.clients, args.load_seconds)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    print(f"server stopped with SIGTERM: exit status {code}")
    write_result("server", {"n_docs": args.n, "n_queries": len(queries), "k": args.k, "server": url,
                            "note": "server runs with --no-access-log; both sides share the same CPU but never run "
                                    "at the same moment (alternating); both run the model from a worker thread",
                            "search": search, "embeddings": embeddings, "load": load,
                            "server_exit_status": code, "torch": torch_environment()})
    ok = load["server_errors_5xx"] == 0 and load["lost_writes"] == 0 and load["transport_errors"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
