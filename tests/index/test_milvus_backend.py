"""The ``milvus`` vector backend: what must hold where it differs from the local ones by nature.

The conformance suite (test_conformance.py) runs against it unchanged. Here: the vectors of a
saved index live in the engine, not in files, so damage to them is checked engine-side (a
snapshot that is gone or holds other rows is refused; altered vectors are found by
``full_check``), the saved state never changes after a load or a later write, and a newer save
replaces the engine's snapshot instead of leaking it. Real milvus-lite, no mocks.
"""
from __future__ import annotations

import numpy as np
import pytest

from nearspace import index
from nearspace.errors import InputError
from nearspace.index import IndexFileError

_REASON: list[str | None] = []


def engine_unavailable() -> str | None:
    """None when the milvus backend can start here (checked once), else why not."""
    if not _REASON:
        try:
            import milvus_lite  # noqa: F401
            import pymilvus  # noqa: F401
        except ImportError as exc:
            _REASON.append(f"the 'milvus' extra is not installed ({exc})")
        else:
            try:
                index.create("milvus", dim=2).close()
                _REASON.append(None)
            except Exception as exc:  # noqa: BLE001 - no milvus-lite binary for this platform, etc.
                _REASON.append(f"milvus-lite cannot start on this platform: {exc}")
    return _REASON[0]


def skip_unless_engine(kind: str | None) -> None:
    if kind == "milvus":
        reason = engine_unavailable()
        if reason:
            pytest.skip(reason)


@pytest.fixture(autouse=True)
def _engine():
    skip_unless_engine("milvus")


def vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_saved_state_never_changes(tmp_path):
    data, rows = vectors(300), np.arange(300) * 3
    backend = index.create("milvus", dim=16)
    backend.add(rows, data)
    backend.save(tmp_path / "ix", extra={"seq": 1})
    backend.remove(rows[:50])  # after the save: the snapshot keeps them
    loaded = index.load(tmp_path / "ix")
    assert len(loaded) == 300 and loaded.stats()["collection"] != backend.stats()["collection"]
    loaded.add(rows[:1], -data[:1])  # the first write copies the snapshot: the saved state stays
    loaded.remove(rows[100:110])
    assert len(loaded) == 290 and len(backend) == 250
    again = index.load(tmp_path / "ix", full_check=True)
    assert len(again) == 300
    top, score = again.search(data[0], 1)
    assert top[0, 0] == rows[0] and score[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert loaded.search(-data[0], 1)[0][0, 0] == rows[0]


def test_engine_side_damage_is_refused(tmp_path):
    data, rows = vectors(200), np.arange(200)
    backend = index.create("milvus", dim=16)
    backend.add(rows, data)
    header = backend.save(tmp_path / "ix")
    client, snapshot = backend.client, header["options"]["collection"]
    # the engine lost the snapshot
    client.drop_collection(snapshot)
    with pytest.raises(IndexFileError, match="missing"):
        index.load(tmp_path / "ix")
    # the snapshot holds fewer rows than its header says
    snapshot = backend.save(tmp_path / "ix")["options"]["collection"]
    client.delete(snapshot, ids=[5])
    with pytest.raises(IndexFileError, match="holds 199 rows, its header says 200"):
        index.load(tmp_path / "ix")
    # same count, one vector changed: the O(1) open trusts the count, full_check reads everything
    snapshot = backend.save(tmp_path / "ix")["options"]["collection"]
    client.upsert(snapshot, [{"row": 7, "vector": (data[7] * 0.5).tolist()}])
    assert len(index.load(tmp_path / "ix")) == 200
    with pytest.raises(IndexFileError, match="damaged"):
        index.load(tmp_path / "ix", full_check=True)


def test_a_newer_save_drops_the_old_snapshot_and_close_drops_the_working_copy(tmp_path):
    backend = index.create("milvus", dim=16)
    backend.add(np.arange(10), vectors(10))
    first = backend.save(tmp_path / "ix")["options"]["collection"]
    second = backend.save(tmp_path / "ix")["options"]["collection"]
    client = backend.client
    assert not client.has_collection(first) and client.has_collection(second)
    working = backend.stats()["collection"]
    backend.close()
    assert not client.has_collection(working) and client.has_collection(second)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_scores_equal_exact_for_every_metric(metric):
    data, rows = vectors(500, seed=1), np.arange(500) + 1000
    queries = vectors(5, seed=2)
    exact, milvus = index.create("exact", 16, metric), index.create("milvus", 16, metric)
    for backend in (exact, milvus):
        backend.add(rows, data)
    want_rows, want_scores = exact.search(queries, 10)
    got_rows, got_scores = milvus.search(queries, 10)
    np.testing.assert_array_equal(got_rows, want_rows)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-4, atol=1e-4)


def test_limits_are_clear_errors():
    backend = index.create("milvus", dim=4)
    with pytest.raises(InputError, match="16,384"):
        backend.search(np.ones(4), 20000)
    with pytest.raises(InputError, match="zero vector"):
        backend.add([1], np.zeros((1, 4)))
    with pytest.raises(InputError, match="dimension 4"):
        backend.search(np.ones(5), 3)
    assert len(backend) == 0
