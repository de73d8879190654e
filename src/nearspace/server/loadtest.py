"""A bounded load run against a nearspace server: concurrent clients mixing searches, upserts,
read-backs, deletes and asks, for a fixed time. Used by the tests and by ``benchmarks/server.py``.

Every acknowledged write is counted: ids acknowledged as written (and not deleted since) must
be stored afterwards ("lost" otherwise), ids acknowledged as deleted must be absent
("resurrected" otherwise); see ``LoadReport.check``. ``memory_pid`` samples that process's
resident memory once a second.

Standard library only (``http.client`` with one keep-alive connection per client). Meant
for loopback: it refuses any other host.
"""
from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from nearspace.server.config import is_loopback

QUERIES = ("how to reduce overfitting in neural networks", "bread and yeast", "planets around other stars",
           "training a model on little data", "tides and the moon", "cooking with cast iron",
           "graph search algorithms", "why the sky is blue")
WORDS = ("dropout weight decay gradient yeast dough oven tide orbit comet river valley glacier market "
         "price sensor signal graph tree search index vector query bread planet telescope").split()


@dataclass
class LoadReport:
    clients: int
    seconds: float
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    transport_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    missing_reads: list[str] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    #: (seconds since start, resident bytes) of the sampled process
    memory: list[tuple[float, int]] = field(default_factory=list)

    @property
    def live(self) -> set[str]:
        """Ids that must be stored: acknowledged written, not acknowledged deleted since."""
        return self.written - self.deleted

    def check(self, stored: set[str]) -> dict[str, int]:
        """Lost and resurrected writes, given the ids stored now (run-tagged ids only)."""
        return {"lost": len(self.live - stored), "resurrected": len(self.deleted & stored)}

    def memory_growth(self, warmup: float) -> float | None:
        """Resident memory at the end relative to the first sample after ``warmup`` seconds."""
        after = [rss for t, rss in self.memory if t >= warmup]
        return after[-1] / after[0] - 1.0 if len(after) >= 2 else None

    def summary(self) -> dict[str, Any]:
        import numpy as np

        def lat(values: list[float]) -> dict[str, float]:
            arr = np.asarray(values) * 1e3
            return {"n": int(arr.size), "p50_ms": float(np.percentile(arr, 50)),
                    "p95_ms": float(np.percentile(arr, 95)), "max_ms": float(arr.max())} if arr.size else {"n": 0}

        return {"clients": self.clients, "seconds": round(self.seconds, 2), "requests": self.requests,
                "requests_per_s": round(self.requests / self.seconds, 2) if self.seconds else 0.0,
                "by_kind": dict(self.kinds), "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "server_errors_5xx": len(self.server_errors), "transport_errors": len(self.transport_errors),
                "reads_of_acknowledged_writes_missing": len(self.missing_reads),
                "documents_written": len(self.written), "documents_deleted": len(self.deleted),
                "memory_mb": [round(rss / 2**20, 1) for _, rss in self.memory[::5]],
                "latency": {kind: lat(values) for kind, values in sorted(self.latencies.items())}}


def run_load(base_url: str, collection: str, *, clients: int = 8, seconds: float = 30.0,
             write_share: float = 0.3, read_share: float = 0.1, max_requests: int = 100_000,
             api_key: str | None = None, seed: int = 0, delete_share: float = 0.0, ask_share: float = 0.0,
             memory_pid: int | None = None) -> LoadReport:
    """``clients`` threads for ``seconds`` (or ``max_requests`` in all, whichever comes first).

    Each upsert writes 1-3 new documents with ids unique to the run; each read-back fetches
    a document this client was told was written. The caller compares the collection's count
    with ``report.written`` afterwards.
    """
    parts = urlsplit(base_url)
    if not parts.hostname or not is_loopback(parts.hostname):
        raise ValueError(f"the load run only targets loopback addresses, not {base_url}")
    host, port = parts.hostname, parts.port or 80
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    report = LoadReport(clients=clients, seconds=0.0)
    lock = threading.Lock()
    budget = iter(range(max_requests))
    path = f"/v1/collections/{quote(collection, safe='')}"
    run_tag = f"{int(time.time() * 1000):x}"

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        conn = http.client.HTTPConnection(host, port, timeout=120)
        mine: list[str] = []
        serial = 0
        while time.perf_counter() < deadline:
            with lock:
                if next(budget, None) is None:
                    break
            roll = rng.random()
            if roll < write_share:
                kind = "upsert"
                docs = []
                for _ in range(rng.randint(1, 3)):
                    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
                    if mine and rng.random() < 0.2:  # replace one of this client's documents
                        doc_id = rng.choice(mine)
                    else:
                        serial += 1
                        doc_id = f"load-{run_tag}-{number}-{serial}"
                    if any(d["id"] == doc_id for d in docs):
                        continue
                    docs.append({"id": doc_id, "text": text, "metadata": {"client": number, "serial": serial}})
                method, url, body = "POST", f"{path}/documents", {"documents": docs}
            elif roll < write_share + read_share and mine:
                kind, doc_id = "read", rng.choice(mine)
                method, url, body = "GET", f"{path}/documents/{quote(doc_id, safe='')}", None
            elif roll < write_share + read_share + delete_share and mine:
                kind, doc_id = "delete", mine.pop(rng.randrange(len(mine)))
                method, url, body = "DELETE", f"{path}/documents/{quote(doc_id, safe='')}", None
            elif roll < write_share + read_share + delete_share + ask_share:
                kind = "ask"
                body = {"question": rng.choice(QUERIES), "k": 3, "budget": 300}
                method, url = "POST", f"{path}/ask"
            else:
                kind = "search"
                body = {"query": rng.choice(QUERIES), "k": 10, "mode": rng.choice(("dense", "keyword", "hybrid"))}
                method, url = "POST", f"{path}/search"
            started = time.perf_counter()
            try:
                conn.request(method, url, body=None if body is None else json.dumps(body), headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    report.transport_errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=120)
                continue
            elapsed = time.perf_counter() - started
            with lock:
                report.requests += 1
                report.kinds[kind] += 1
                report.statuses[status] += 1
                report.latencies.setdefault(kind, []).append(elapsed)
                if status >= 500:
                    report.server_errors.append(f"{kind} {status}: {payload[:300]!r}")
                if kind == "upsert" and status == 200:
                    ids = [d["id"] for d in body["documents"]]  # type: ignore[index]
                    report.written.update(ids)
                    mine.extend(i for i in ids if i not in mine)
                if kind == "delete":
                    if status == 200:
                        report.deleted.add(doc_id)
                    else:  # not acknowledged: it may or may not be gone; keep it out of the count
                        report.written.discard(doc_id)
                        report.missing_reads.append(f"delete {doc_id}: {status}")
                if kind == "read" and status != 200:
                    report.missing_reads.append(f"{doc_id}: {status}")
        conn.close()

    started = time.perf_counter()
    deadline = started + seconds
    threads = [threading.Thread(target=client, args=(i,), name=f"load-client-{i}") for i in range(clients)]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = _rss(memory_pid)  # type: ignore[arg-type]
            if rss:
                report.memory.append((time.perf_counter() - started, rss))
            done.wait(1.0)

    sampler = threading.Thread(target=sample, name="load-memory") if memory_pid else None
    if sampler:
        sampler.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    if sampler:
        sampler.join()
    report.seconds = time.perf_counter() - started
    return report


def _rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (Linux /proc), 0 when unavailable."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
