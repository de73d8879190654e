"""The server's engine: reader threads keep their own SQLite connections but share one vector
index and one keyword index per collection (a graph of a million vectors is ~1.7 GB; one copy
per thread would multiply it by the number of threads)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from nearspace.api import Store
from nearspace.server.config import ServerConfig
from nearspace.server.engine import Engine

DIM = 32


def _unit(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture()
def engine(tmp_path):
    path = tmp_path / "served.db"
    with Store(path) as store:
        coll = store.collection("own", dim=DIM, index="hnsw")
        coll.upsert([f"v{i}" for i in range(2000)], [f"text {i}" for i in range(2000)], vectors=_unit(2000, 0))
        coll.flush()
    engine = Engine(ServerConfig(store=path, readers=3))
    yield engine
    engine.close()


def _on_every_reader(engine: Engine, fn, readers: int = 3):
    """Run ``fn`` once on each reader thread (a barrier keeps one thread from taking them all)."""
    barrier = threading.Barrier(readers)

    def task():
        barrier.wait(timeout=30)
        return threading.get_ident(), fn()

    results = [f.result(timeout=60) for f in [engine._readers.submit(task) for _ in range(readers)]]
    assert len({ident for ident, _ in results}) == readers
    return [value for _, value in results]


def test_reader_threads_share_one_index_but_not_a_connection(engine):
    seen = _on_every_reader(engine, lambda: engine.collection("own"))
    assert len({id(c.backend.vectors) for c in seen}) == 1  # one graph in the process
    assert len({id(c.backend.keywords) for c in seen}) == 1
    assert len({id(c.backend.data.conn) for c in seen}) == 3  # reads still run side by side
    assert seen[0].backend.vectors.data.conn not in {c.backend.data.conn for c in seen}  # the index reads on its own
    assert seen[0].backend.vectors.stats()["kind"] == "hnsw"


def test_shared_index_catches_up_with_the_writer_and_answers_alike_on_every_thread(engine):
    queries = _unit(20, 1)

    def search_all():
        coll = engine.collection("own")
        return [[r.id for r in coll.search(vector=q, k=5)] for q in queries]

    before = _on_every_reader(engine, search_all)
    assert before[0] == before[1] == before[2]

    def write():
        engine.collection("own").upsert(["new"], ["a new one"], vectors=queries[:1])
        engine.collection("own").delete([before[0][1][0]])

    engine._writer.submit(write).result(timeout=60)
    after = _on_every_reader(engine, search_all)
    assert after[0] == after[1] == after[2]
    assert after[0][0][0] == "new"  # the vector just written is its own nearest neighbour
    assert before[0][1][0] not in after[0][1]  # and a deleted one is gone

    # searches on three threads while the writer keeps writing: no errors, no torn results
    stop = threading.Event()

    def keep_writing():
        i = 0
        while not stop.is_set():
            engine.collection("own").upsert([f"w{i}"], [f"w {i}"], vectors=_unit(1, 100 + i))
            i += 1

    writer = engine._writer.submit(keep_writing)
    try:
        for _ in range(5):
            for result in _on_every_reader(engine, search_all):
                assert all(len(ids) == 5 and len(set(ids)) == 5 for ids in result)
    finally:
        stop.set()
        writer.result(timeout=60)
