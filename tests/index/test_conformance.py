"""Every vector backend held to the same behaviour (parametrised over the registry).

Data: seeded synthetic clustered vectors (embeddings cluster; isotropic noise has no
meaningful neighbours), so results are deterministic and the exact backend is the reference.

``milvus`` keeps its vectors in an engine (milvus-lite here): it runs every check below
unchanged, skipping with the reason only where milvus-lite cannot start. By nature its
``save`` leaves only a manifest and header on disk (the vectors stay in the engine), so
test_damaged_files_detected damages the manifest; the engine-side checks that must still hold
(snapshot gone or altered is refused, the saved state never changes) are in
test_milvus_backend.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from nearspace import index
from nearspace.errors import InputError
from nearspace.index import IndexFileError
from nearspace.index.base import header_path
from nearspace.index.exact import ExactBackend
from nearspace.index.vecfile import VectorFile
from tests.index.test_milvus_backend import skip_unless_engine

KINDS = sorted(index.BACKENDS)
#: recall@10 against exact search each backend must reach on the conformance set
#: (64-d here; 64 sign bits separate close neighbours poorly, so binary's bound is loose at this
#: dimension; test_quantised_recall_and_size_on_384d holds it to 0.99 where it is meant to be used)
RECALL = {"exact": 1.0, "hnsw": 0.95, "int8": 0.99, "binary": 0.7, "milvus": 1.0}  # milvus: FLAT, exact


@pytest.fixture(autouse=True)
def _engine_available(request):
    """A backend that needs an engine (milvus) skips, with the reason, where the engine cannot start."""
    callspec = getattr(request.node, "callspec", None)
    skip_unless_engine(callspec.params.get("kind") if callspec else None)


def clustered(n: int, dim: int, seed: int, clusters: int = 40, spread: float = 0.35) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    offset = rng.standard_normal(dim) * 0.5  # a common offset, as real embedding models have
    points = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim)) + offset
    return points.astype(np.float32)


def embedding_like(n: int, dim: int, seed: int, latent: int = 96, noise: float = 0.3) -> np.ndarray:
    """Clusters on a lower-dimensional subspace plus isotropic noise: sentence embeddings have
    an intrinsic dimension far below their width, which is what makes 1-bit codes workable."""
    rng, shared = np.random.default_rng(seed), np.random.default_rng(1234)
    projection = shared.standard_normal((latent, dim)) / np.sqrt(latent)
    centres, offset = shared.standard_normal((80, latent)), shared.standard_normal(dim) * 0.3
    z = centres[rng.integers(0, 80, n)] + 0.5 * rng.standard_normal((n, latent))
    return (z @ projection + offset + noise * rng.standard_normal((n, dim))).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    vectors = clustered(3000, 64, seed=1)
    rows = np.arange(3000, dtype=np.int64) * 7 + 11  # rows are the caller's ids, not positions
    queries = clustered(40, 64, seed=2)
    return rows, vectors, queries


def build(kind: str, rows, vectors, **options):
    backend = index.create(kind, dim=vectors.shape[1], metric="cosine", **options)
    half = len(rows) // 2  # two batches: growth path exercised
    backend.add(rows[:half], vectors[:half])
    backend.add(rows[half:], vectors[half:])
    return backend


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth)]))


def exact_scores(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = query / np.linalg.norm(query)
    lookup = {int(r): i for i, r in enumerate(rows)}
    return np.array([unit[lookup[int(r)]] @ q for r in wanted])


@pytest.mark.parametrize("kind", KINDS)
def test_protocol_and_len(kind, data):
    rows, vectors, _ = data
    backend = build(kind, rows, vectors)
    assert isinstance(backend, index.VectorBackend)
    assert len(backend) == len(rows)
    stats = backend.stats()
    assert stats["kind"] == kind and stats["count"] == len(rows) and stats["dim"] == 64


@pytest.mark.parametrize("kind", KINDS)
def test_results_match_exact_within_recall_bound(kind, data):
    rows, vectors, queries = data
    truth, _ = build("exact", rows, vectors).search(queries, 10)
    found, scores = build(kind, rows, vectors).search(queries, 10)
    assert found.shape == (len(queries), 10)
    assert recall(found, truth) >= RECALL[kind]
    # whatever was found carries its true cosine, best first
    for q, line, s in zip(queries, found, scores):
        np.testing.assert_allclose(s, exact_scores(vectors, rows, q, line), atol=2e-4)
        assert (np.diff(s) <= 1e-6).all()


@pytest.mark.parametrize("kind", KINDS)
def test_single_query_equals_batch(kind, data):
    rows, vectors, queries = data
    backend = build(kind, rows, vectors)
    batch_rows, batch_scores = backend.search(queries[:5], 10)
    for i in range(5):
        one_rows, one_scores = backend.search(queries[i], 10)
        assert one_rows.shape == (1, 10)
        assert recall(one_rows, batch_rows[i:i + 1]) >= 0.9
        np.testing.assert_allclose(one_scores[0][:3], batch_scores[i][:3], atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_remove_and_readd(kind, data):
    rows, vectors, queries = data
    backend = build(kind, rows, vectors)
    gone = rows[::10]
    assert backend.remove(gone) == len(gone)
    assert backend.remove(gone) == 0  # already gone
    assert backend.remove(np.array([-5, 10**12])) == 0  # never held
    assert len(backend) == len(rows) - len(gone)
    found, _ = backend.search(vectors[::10][:20], 10)
    assert not set(found.ravel()) & set(gone.tolist())
    # a removed row added again with a new vector is found by that vector
    fresh = clustered(1, 64, seed=99)
    backend.add(gone[:1], fresh)
    top, score = backend.search(fresh, 1)
    assert top[0, 0] == gone[0] and score[0, 0] == pytest.approx(1.0, abs=1e-3)
    # replacing a live row's vector moves it too
    backend.add(rows[1:2], -fresh)
    top, _ = backend.search(-fresh, 1)
    assert top[0, 0] == rows[1]
    assert len(backend) == len(rows) - len(gone) + 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [1, 7, 60, 700, 2500])
def test_allowed_set_never_short(kind, size, data):
    rows, vectors, queries = data
    backend = build(kind, rows, vectors, **({"brute_limit": 100} if kind == "hnsw" else {}))
    rng = np.random.default_rng(size)
    allowed = rng.choice(rows, size, replace=False)
    allowed_plus_unknown = np.concatenate([allowed, [-1, 10**9]])  # unknown rows are ignored
    reference = build("exact", rows, vectors)
    found, _ = backend.search(queries[:10], 10, allowed=allowed_plus_unknown)
    truth, _ = reference.search(queries[:10], 10, allowed=allowed)
    assert found.shape == (10, min(10, size))
    assert set(found.ravel()) <= set(allowed.tolist())
    assert recall(found, truth) >= RECALL[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_allowed_excludes_removed(kind, data):
    rows, vectors, queries = data
    backend = build(kind, rows, vectors)
    backend.remove(rows[:5])
    found, _ = backend.search(queries[:1], 10, allowed=rows[:8])
    assert sorted(found[0].tolist()) == sorted(rows[5:8].tolist())


@pytest.mark.parametrize("kind", KINDS)
def test_small_and_empty(kind):
    backend = index.create(kind, dim=8)
    found, scores = backend.search(np.ones(8), 5)
    assert found.shape == (1, 0) and scores.shape == (1, 0)
    backend.add([3, 4], np.eye(8, dtype=np.float32)[:2])
    found, _ = backend.search(np.eye(8)[0], 5)
    assert found[0].tolist() == [3, 4]
    found, _ = backend.search(np.eye(8)[0], 5, allowed=np.array([], dtype=np.int64))
    assert found.shape == (1, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_one_clear_error(kind):
    backend = index.create(kind, dim=8)
    with pytest.raises(InputError, match="shape"):
        backend.add([1, 2], np.ones((2, 9)))
    with pytest.raises(InputError, match="NaN"):
        backend.add([1], np.full((1, 8), np.nan))
    with pytest.raises(InputError, match="distinct"):
        backend.add([1, 1], np.ones((2, 8)))
    assert len(backend) == 0  # nothing half-added


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, data, tmp_path):
    rows, vectors, queries = data
    backend = build(kind, rows, vectors)
    backend.remove(rows[:100])
    before = backend.search(queries, 10)
    before_filtered = backend.search(queries[:3], 5, allowed=rows[50:400])
    header = backend.save(tmp_path / "ix", extra={"seq": 41})
    assert header["count"] == len(rows) - 100 and header["extra"] == {"seq": 41}
    loaded = index.load(tmp_path / "ix")
    assert type(loaded) is type(backend) and len(loaded) == len(backend)
    after = loaded.search(queries, 10)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_allclose(after[1], before[1], atol=1e-5)
    np.testing.assert_array_equal(loaded.search(queries[:3], 5, allowed=rows[50:400])[0], before_filtered[0])
    # still writable after load (memory-mapped parts are copied on growth)
    loaded.add(rows[:1], vectors[:1])
    loaded.remove(rows[200:210])
    assert len(loaded) == len(rows) - 100 + 1 - 10
    assert loaded.search(vectors[:1], 1)[0][0, 0] == rows[0]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_files_detected(kind, data, tmp_path):
    rows, vectors, _ = data
    backend = build(kind, rows[:500], vectors[:500])
    header = backend.save(tmp_path / "ix")
    biggest = max(header["files"], key=lambda name: header["files"][name]["bytes"])
    path = tmp_path / f"ix.{biggest}"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, new mtime: the checksum catches it
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexFileError, match="damaged"):
        index.load(tmp_path / "ix")
    path.write_bytes(bytes(raw[:-10]))
    with pytest.raises(IndexFileError, match="bytes"):
        index.load(tmp_path / "ix")
    path.unlink()
    with pytest.raises(IndexFileError, match="missing"):
        index.load(tmp_path / "ix")
    header_path(tmp_path / "ix").write_text("{not json")
    with pytest.raises(IndexFileError, match="unreadable"):
        index.load(tmp_path / "ix")


def test_registry_new_backend_is_one_entry(data, tmp_path):
    rows, vectors, queries = data

    class Doubled(ExactBackend):
        kind = "doubled-test"

    index.register("doubled-test", Doubled)
    try:
        backend = index.create("doubled-test", dim=64)
        backend.add(rows, vectors)
        backend.save(tmp_path / "d")
        assert type(index.load(tmp_path / "d")) is Doubled
    finally:
        del index.BACKENDS["doubled-test"]
    with pytest.raises(InputError, match="unknown vector backend 'nope'"):
        index.create("nope", dim=4)


@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_quantised_recall_and_size_on_384d(kind):
    """<= 400 bytes per 384-d vector in the index at <= 1% recall@10 loss against exact float."""
    vectors = embedding_like(8000, 384, seed=5)
    queries = embedding_like(100, 384, seed=6)
    rows = np.arange(len(vectors))
    truth, _ = build("exact", rows, vectors).search(queries, 10)
    backend = build(kind, rows, vectors)
    found, _ = backend.search(queries, 10)
    assert backend.stats()["bytes_per_vector"] <= 400
    assert recall(found, truth) >= 0.99


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_exact_and_hnsw_metrics_agree(metric, data):
    rows, vectors, queries = data
    exact = index.create("exact", 64, metric)
    hnsw = index.create("hnsw", 64, metric)
    for backend in (exact, hnsw):
        backend.add(rows, vectors)
    truth, truth_scores = exact.search(queries, 10)
    found, scores = hnsw.search(queries, 10)
    # inner product on unnormalised vectors is not a metric; graph search is known to do worse
    assert recall(found, truth) >= (0.85 if metric == "ip" else 0.95)
    np.testing.assert_allclose(scores[:, 0], truth_scores[:, 0], rtol=1e-3, atol=1e-3)
    raw = vectors[np.searchsorted(rows, truth[0, 0])]
    expected = raw @ queries[0] if metric == "ip" else -np.sum((raw - queries[0]) ** 2)
    assert truth_scores[0, 0] == pytest.approx(expected, rel=1e-4)


def test_quantised_refuses_l2():
    with pytest.raises(InputError, match="metric"):
        index.create("int8", 8, "l2")


def test_vector_file_round_trip_stale_and_damaged(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.permutation(1000) * 3
    vectors = rng.standard_normal((1000, 16)).astype(np.float32)
    VectorFile.write(tmp_path / "v", rows, vectors, covers={"seq": 7, "token": "abc"})
    opened = VectorFile.open(tmp_path / "v", dim=16, check=lambda c: None if c["seq"] == 7 else "old")
    assert isinstance(opened.vectors, np.memmap) and len(opened) == 1000
    np.testing.assert_array_equal(opened.get(rows[:5]), vectors[:5])
    with pytest.raises(KeyError):
        opened.get([1])
    with pytest.raises(IndexFileError, match="stale: behind"):
        VectorFile.open(tmp_path / "v", dim=16, check=lambda c: "behind" if c["seq"] < 8 else None)
    with pytest.raises(IndexFileError, match="dimension"):
        VectorFile.open(tmp_path / "v", dim=32)
    with open(tmp_path / "v.vectors.npy", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(IndexFileError, match="damaged"):
        VectorFile.open(tmp_path / "v", dim=16)


def test_updates_over_a_memory_mapped_file_do_not_grow_the_tail_without_bound(tmp_path):
    # a server updating the same documents again and again: dead tail slots are reclaimed
    from nearspace.index.exact import ExactBackend

    rng = np.random.default_rng(5)
    base = ExactBackend(16)
    base.add(np.arange(100), rng.normal(size=(100, 16)).astype(np.float32))
    base.save(tmp_path / "flat")
    loaded = ExactBackend.load(tmp_path / "flat")
    assert isinstance(loaded.base, np.memmap)
    for _ in range(400):
        rows = rng.choice(100, 10, replace=False)
        loaded.add(rows, rng.normal(size=(10, 16)).astype(np.float32))
    latest = rng.normal(size=(1, 16)).astype(np.float32)
    loaded.add([7], latest)
    assert len(loaded) == 100 and loaded.used - loaded.nbase <= 2 * 1024 + 10  # 4,001 adds, bounded tail
    found, scores = loaded.search(latest, 1)
    assert found[0][0] == 7 and scores[0][0] > 0.999
    assert sorted(loaded.live_rows().tolist()) == list(range(100))
