"""HNSW specifics the conformance suite does not reach: mid-sized filtered subsets are scanned
with int8 codes that the backend builds once and keeps in step with its writes."""
from __future__ import annotations

import numpy as np

from nearspace import index
from nearspace.index.hnsw import COARSE_MIN, HNSWBackend
from tests.index.test_conformance import build, clustered, recall


def test_mid_sized_filtered_subsets_scan_int8_codes_kept_in_step(tmp_path):
    n = 2 * COARSE_MIN + 500
    vectors = clustered(n, 64, seed=5)
    rows = np.arange(n, dtype=np.int64) * 3 + 1
    queries = clustered(20, 64, seed=6)
    backend = build("hnsw", rows, vectors)
    reference = build("exact", rows, vectors)
    allowed = np.random.default_rng(0).choice(rows, COARSE_MIN + 300, replace=False)
    assert backend._coarse is None  # nothing built until a filtered search needs it
    found, _ = backend.search(queries, 10, allowed=allowed)
    truth, _ = reference.search(queries, 10, allowed=allowed)
    assert backend._coarse is not None and backend._coarse.kind == "int8"
    assert found.shape == (20, 10) and set(found.ravel()) <= set(allowed.tolist())
    assert recall(found, truth) >= 0.98

    # removed rows leave the codes too; an added row is found through them
    gone = found[:, 0]
    backend.remove(gone)
    reference.remove(gone)
    fresh = clustered(1, 64, seed=7)
    new_row = np.array([10**6])
    backend.add(new_row, fresh)
    reference.add(new_row, fresh)
    allowed = np.concatenate([allowed, new_row])
    found, _ = backend.search(queries, 10, allowed=allowed)
    truth, _ = reference.search(queries, 10, allowed=allowed)
    assert not set(found.ravel()) & set(gone.tolist())
    assert recall(found, truth) >= 0.98
    assert backend.search(fresh, 1, allowed=allowed)[0][0, 0] == new_row[0]

    # a loaded backend builds its own codes from the memory-mapped float copy
    backend.save(tmp_path / "g")
    loaded = HNSWBackend.load(tmp_path / "g")
    again, _ = loaded.search(queries, 10, allowed=allowed)
    assert loaded._coarse is not None and recall(again, truth) >= 0.98


def test_small_filtered_subsets_stay_exact():
    vectors = clustered(3000, 32, seed=8)
    rows = np.arange(3000, dtype=np.int64)
    backend = index.create("hnsw", dim=32)
    backend.add(rows, vectors)
    allowed = rows[: COARSE_MIN - 1]
    found, _ = backend.search(vectors[:5], 10, allowed=allowed)
    truth, _ = build("exact", rows, vectors).search(vectors[:5], 10, allowed=allowed)
    assert backend._coarse is None and recall(found, truth) == 1.0
