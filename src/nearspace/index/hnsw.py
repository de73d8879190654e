"""Approximate search on an HNSW graph (hnswlib), labels = the caller's rows.

Deletes are hnswlib's ``mark_deleted`` (the graph keeps the node, search skips it); a row
added again is updated in place. Filtered search: a small allowed set (by default up to
``brute_limit`` rows) is scored without the graph, so a filter is never short: exactly below
:data:`COARSE_MIN` rows, else by scanning int8 codes of the subset and rescoring a pool of
candidates with the floats (the codes are built on the first such search, then kept in step);
larger sets walk the graph with a membership filter, and fall back to exact scoring if
the walk returns fewer than ``k``. The exact scoring reads a float copy kept by an inner
:class:`ExactBackend` (saved beside the graph as ``<prefix>.flat``, memory-mapped after load,
so only the rows of a filtered subset are ever read): hnswlib's ``get_items`` costs ~30 us a row.
A caller that already keeps those vectors (the store's memory-mapped vector file) creates the
backend with ``float_copy=False`` and hands its own ``ExactBackend`` to :meth:`attach_flat`;
the graph then neither stores nor saves a second copy, and the caller keeps the two in step.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nearspace.index.base import (IndexFileError, RowTable, as_rows, as_vectors, check_metric, load_npy,
                                  pack_results, read_header, save_npy, verify_files, write_envelope)


#: a filtered search over at least this many (and at most ``brute_limit``) rows scans int8 codes
#: of the subset (384 B a row to gather at 384-d instead of 1.5 KB of floats from the map) and
#: rescores a pool of max(4 k, 32) candidates with the float vectors. At 100k x 384 and a 10%
#: subset: ~2.7-5 ms against ~8-12 ms for exact float scoring (2 loaded cores). 1-bit codes were
#: faster still (~1.0-1.6 ms) but recalled only 0.72 (pool 400) to 0.96 (pool 2000) on isotropic
#: 384-d data; int8 with a pool of 40 recalled 1.0 there.
COARSE_MIN = 2048


def auto_ef(count: int) -> int:
    """The search breadth used when ``ef_search`` is not set: 96 up to 250k vectors, then
    growing as count**0.85 up to 512 (500k: 173, 1M: 312).

    A fixed breadth loses recall as the graph grows: at M=16, ef_construction=200 on MiniLM
    passage vectors topped up with noise (benchmarks/scale.py), ef=96 gives recall@10 1.000
    at 100k but 0.93-0.94 at 1M, where raw hnswlib needed ef 192 for 0.951 and 256 for 0.965
    (nearspace's own builds of the same vectors: 0.932 at ef 192, 0.945 at ef 257; two graphs
    of one set differ by about 0.01 in recall).
    """
    return 96 if count <= 250_000 else min(512, int(round(96 * (count / 250_000) ** 0.85)))


class HNSWBackend(RowTable):
    """hnswlib graph; options ``M``, ``ef_construction``, ``ef_search`` (None: :func:`auto_ef`),
    ``brute_limit``, ``threads``."""

    kind = "hnsw"

    def __init__(self, dim: int, metric: str = "cosine", *, M: int = 16, ef_construction: int = 200,
                 ef_search: int | None = None, brute_limit: int = 20_000, threads: int = -1,
                 float_copy: bool = True) -> None:
        super().__init__()
        self.dim, self.metric = int(dim), check_metric(metric)
        self.M, self.ef_construction = int(M), int(ef_construction)
        self.ef_search = None if ef_search is None else int(ef_search)
        self.brute_limit, self.threads = int(brute_limit), int(threads)
        self.float_copy = bool(float_copy)
        self._index = None
        #: one more than any label ever added (a filtered walk's membership bytes cover them all;
        #: never shrinks: a removed row's node stays in the graph, marked deleted)
        self._label_bound = 0
        from nearspace.index.exact import ExactBackend

        #: float copy for exact scoring of filtered subsets (memory-mapped after load)
        self.flat = ExactBackend(self.dim, self.metric)
        self._coarse = None  # int8 codes for mid-sized filtered subsets (built on first use)

    def _options(self) -> dict[str, Any]:
        return {"M": self.M, "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                "brute_limit": self.brute_limit, "float_copy": self.float_copy}

    @property
    def ef(self) -> int:
        """The search breadth in use: ``ef_search``, or :func:`auto_ef` of the live count."""
        return self.ef_search if self.ef_search is not None else auto_ef(len(self))

    def attach_flat(self, flat) -> None:
        """Score filtered subsets from ``flat`` (an ExactBackend the caller keeps in step)."""
        if self.float_copy:
            raise ValueError("this HNSW backend keeps its own float copy")
        self.flat = flat
        if self._coarse is not None:
            self._coarse.attach_flat(flat)

    def _coarse_index(self):
        if self._coarse is None:
            from nearspace.index.quantized import Int8Backend

            coarse = Int8Backend(self.dim, self.metric, float_copy=False)
            coarse.attach_flat(self.flat)
            live = np.flatnonzero(self.flat.alive[:self.flat.used])
            for start in range(0, len(live), 50_000):
                slots = live[start:start + 50_000]
                coarse.add(self.flat.slot_rows[slots], self.flat.gather(slots))
            self._coarse = coarse
        return self._coarse

    def _graph(self, capacity: int):
        import hnswlib

        if self._index is None:
            index = hnswlib.Index(space=self.metric, dim=self.dim)
            index.init_index(max_elements=max(capacity, 1024), M=self.M, ef_construction=self.ef_construction)
            self._index = index
        elif capacity > self._index.get_max_elements():
            self._index.resize_index(max(capacity, int(self._index.get_max_elements() * 1.5)))
        return self._index

    def _resize(self, capacity: int) -> None:
        pass  # the graph keeps its own storage (resized in add)

    def _take(self, slots: np.ndarray) -> None:
        pass

    def _maybe_compact(self) -> None:
        # slots only mirror the graph's labels; drop tombstones from the bookkeeping when many
        dead = self.used - self.live_count
        if dead > 1024 and dead * 4 > self.used:
            self.compact()

    def add(self, rows: Any, vectors: Any) -> None:
        rows = as_rows(rows)
        vectors = as_vectors(vectors, len(rows), self.dim)
        if len(rows) == 0:
            return
        graph = self._graph(self.used + len(rows))  # upper bound incl. re-added rows
        graph.add_items(vectors, rows, num_threads=self.threads)
        self._label_bound = max(self._label_bound, int(rows.max()) + 1)
        self._append_slots(rows)
        if self.float_copy:
            self.flat.add(rows, vectors)
        if self._coarse is not None:
            self._coarse.add(rows, vectors)

    def remove(self, rows: Any) -> int:
        slots = self._mark_removed(rows)
        for row in self.slot_rows[slots]:
            self._index.mark_deleted(int(row))
        if self.float_copy:
            self.flat.remove(rows)
        if self._coarse is not None:
            self._coarse.remove(rows)
        self._maybe_compact()
        return len(slots)

    def _exact(self, queries: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        found, scores = self.flat.search(queries, k, allowed=rows)
        return list(zip(found, scores))

    def _to_scores(self, distances: np.ndarray) -> np.ndarray:
        return -distances if self.metric == "l2" else 1.0 - distances

    def search(self, queries: Any, k: int, allowed: Any = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must have dimension {self.dim}, got shape {queries.shape}")
        if allowed is not None:
            rows = self.slot_rows[self.allowed_slots(allowed)]
            k = min(k, len(rows))
            if k <= 0:
                return pack_results([(rows[:0], np.zeros(0, np.float32))] * len(queries))
            if COARSE_MIN <= len(rows) <= self.brute_limit:
                return self._coarse_index().search(queries, k, allowed=rows)
            if len(rows) <= self.brute_limit:
                return pack_results(self._exact(queries, rows, k))
            # membership as a byte per label: cheaper to build than a set of the allowed rows
            # (~5 ms for 100k of them, per query) and cheaper for hnswlib to call per visited node
            members = bytearray(self._label_bound)
            np.frombuffer(members, dtype=np.uint8)[rows] = 1
            self._index.set_ef(max(self.ef, 2 * k))
            try:
                labels, distances = self._index.knn_query(queries, k=k, num_threads=1,
                                                          filter=members.__getitem__)
                return labels.astype(np.int64), self._to_scores(distances).astype(np.float32)
            except RuntimeError:  # the walk found fewer than k: never return short
                return pack_results(self._exact(queries, rows, k))
        k = min(k, len(self))
        if k <= 0:
            return pack_results([(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(queries))
        self._index.set_ef(max(self.ef, k))
        try:
            labels, distances = self._index.knn_query(queries, k=k, num_threads=1 if len(queries) == 1 else -1)
        except RuntimeError:
            return pack_results(self._exact(queries, self.live_rows(), k))
        return labels.astype(np.int64), self._to_scores(distances).astype(np.float32)

    # -- persistence ------------------------------------------------------------------------
    def save(self, prefix: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.float_copy:
            self.flat.save(f"{prefix}.flat")
        parts = {"rows.npy": save_npy(self.live_rows())}
        if self._index is not None:
            parts["hnsw"] = lambda path: self._index.save_index(str(path))
        options = dict(self._options(), max_elements=self._index.get_max_elements() if self._index else 0)
        return write_envelope(prefix, self.kind, self.dim, self.metric, parts, count=len(self),
                              options=options, extra=extra)

    @classmethod
    def load(cls, prefix: str | Path, header: dict[str, Any] | None = None, *, full_check: bool = False,
             mmap: bool = True) -> "HNSWBackend":
        import hnswlib

        header = header or read_header(prefix)
        paths = verify_files(prefix, header, full=full_check)
        options = dict(header.get("options") or {})
        max_elements = int(options.pop("max_elements", 0))
        backend = cls(header["dim"], header["metric"], **options)
        rows = load_npy(paths["rows.npy"], mmap=False)
        if "hnsw" in paths:
            index = hnswlib.Index(space=backend.metric, dim=backend.dim)
            try:
                index.load_index(str(paths["hnsw"]), max_elements=max_elements)
            except RuntimeError as exc:
                raise IndexFileError(f"HNSW graph {paths['hnsw']} is unreadable: {exc}") from None
            backend._index = index
        elif len(rows):
            raise IndexFileError(f"index {prefix} lists {len(rows)} rows but has no graph")
        backend._init_slots(rows)
        backend._label_bound = int(rows.max(initial=-1)) + 1
        if not backend.float_copy:
            return backend  # the caller attaches its own float vectors
        from nearspace.index.exact import ExactBackend

        backend.flat = ExactBackend.load(f"{prefix}.flat", full_check=full_check, mmap=mmap)
        if len(backend.flat) != len(rows):
            raise IndexFileError(f"index {prefix}: float copy holds {len(backend.flat)} rows, graph {len(rows)}")
        return backend

    def stats(self) -> dict[str, Any]:
        graph_links = 2 * self.M * 4  # level-0 links per node (hnswlib: 2M neighbours, 4 bytes each)
        return {"kind": self.kind, "count": len(self), "dim": self.dim, "metric": self.metric,
                "bytes_per_vector": 4 * self.dim + graph_links, **self._options(), "ef": self.ef,
                "max_elements": self._index.get_max_elements() if self._index else 0}

    def __repr__(self) -> str:
        return f"HNSWBackend(dim={self.dim}, metric={self.metric!r}, count={len(self)}, M={self.M})"
