"""Exact (brute-force) search with numpy: every vector scored, so recall is 1 by definition.

The reference every other backend is held to, and the right choice below ~20k vectors or
for small filtered subsets. Vectors are float32 in slot order; after ``load`` they are a
read-only memory map of the saved ``.npy`` (open is O(1); pages are read on first use).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nearspace.index.base import (RowTable, as_rows, as_vectors, check_metric, load_npy, normalise,
                                  pack_results, read_header, save_npy, score_one, top_k, verify_files,
                                  write_envelope, IndexFileError)


class ExactBackend(RowTable):
    """Brute-force scoring; ``metric`` cosine (vectors normalised), ip or l2 (score = -distance^2)."""

    kind = "exact"

    def __init__(self, dim: int, metric: str = "cosine", **options: Any) -> None:
        super().__init__()
        if options:
            raise TypeError(f"exact backend takes no options, got {sorted(options)}")
        self.dim, self.metric = int(dim), check_metric(metric)
        self.vectors = np.zeros((0, self.dim), dtype=np.float32)
        self.sqnorms = np.zeros(0, dtype=np.float32)  # l2 only

    # -- storage ---------------------------------------------------------------------------
    def _resize(self, capacity: int) -> None:
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[:self.used] = self.vectors[:self.used]  # a memory map becomes an in-memory copy here
        self.vectors = vectors
        if self.metric == "l2":
            self.sqnorms = np.concatenate([self.sqnorms[:self.used], np.zeros(capacity - self.used, np.float32)])

    def _take(self, slots: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(self.vectors[slots])
        if self.metric == "l2":
            self.sqnorms = self.sqnorms[slots]

    def add(self, rows: Any, vectors: Any) -> None:
        rows = as_rows(rows)
        vectors = as_vectors(vectors, len(rows), self.dim)
        if self.metric == "cosine":
            vectors = normalise(vectors)
        slots = self._append_slots(rows)
        self.vectors[slots] = vectors
        if self.metric == "l2":
            self.sqnorms[slots] = np.einsum("ij,ij->i", vectors, vectors)

    def remove(self, rows: Any) -> int:
        removed = len(self._mark_removed(rows))
        self._maybe_compact()
        return removed

    def vectors_of(self, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, vectors)`` for the held ones among ``rows`` (in their slot order)."""
        slots = np.sort(self.slots_of(np.unique(as_rows(rows))))
        return self.slot_rows[slots], np.asarray(self.vectors[slots])

    # -- search ----------------------------------------------------------------------------
    def _prepare(self, queries: Any) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must have dimension {self.dim}, got shape {queries.shape}")
        return normalise(queries) if self.metric == "cosine" else queries

    def scores(self, queries: np.ndarray, slots: np.ndarray | None) -> np.ndarray:
        """Similarity of each query to ``slots`` (or all used slots): ``(n_queries, n_slots)``."""
        matrix = self.vectors[:self.used] if slots is None else self.vectors[slots]
        if len(queries) == 1:
            out = score_one(matrix, queries[0])[None, :]
        else:
            out = (matrix @ queries.T).T
        if self.metric == "l2":
            sq = self.sqnorms[:self.used] if slots is None else self.sqnorms[slots]
            out = 2 * out - sq[None, :] - np.einsum("ij,ij->i", queries, queries)[:, None]
        return out

    def search(self, queries: Any, k: int, allowed: Any = None) -> tuple[np.ndarray, np.ndarray]:
        queries = self._prepare(queries)
        slots = self.allowed_slots(allowed)
        scores = self.scores(queries, slots)
        rows = self.slot_rows[:self.used] if slots is None else self.slot_rows[slots]
        if slots is None and not self.all_live():
            scores[:, ~self.alive[:self.used]] = -np.inf
        limit = len(self) if slots is None else len(slots)
        per_query = []
        for line in scores:
            best = top_k(line, min(k, limit))
            per_query.append((rows[best], line[best]))
        return pack_results(per_query)

    # -- persistence ------------------------------------------------------------------------
    def save(self, prefix: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        live = np.flatnonzero(self.alive[:self.used])
        return write_envelope(prefix, self.kind, self.dim, self.metric,
                              {"rows.npy": save_npy(self.slot_rows[live]),
                               "vectors.npy": save_npy(self.vectors[live])},
                              count=len(live), extra=extra)

    @classmethod
    def load(cls, prefix: str | Path, header: dict[str, Any] | None = None, *, full_check: bool = False,
             mmap: bool = True) -> "ExactBackend":
        header = header or read_header(prefix)
        paths = verify_files(prefix, header, full=full_check)
        backend = cls(header["dim"], header["metric"])
        rows = load_npy(paths["rows.npy"], mmap=False)
        vectors = load_npy(paths["vectors.npy"], mmap=mmap)
        if vectors.shape != (len(rows), backend.dim) or vectors.dtype != np.float32:
            raise IndexFileError(f"index {prefix} holds vectors of shape {vectors.shape}, "
                                 f"expected ({len(rows)}, {backend.dim}) float32")
        backend._init_slots(rows)
        backend.vectors = vectors
        if backend.metric == "l2":
            backend.sqnorms = np.einsum("ij,ij->i", vectors, vectors).astype(np.float32)
        return backend

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": len(self), "slots": self.used, "dim": self.dim,
                "metric": self.metric, "bytes_per_vector": 4 * self.dim,
                "memory_mapped": isinstance(self.vectors, np.memmap)}

    def __repr__(self) -> str:
        return f"ExactBackend(dim={self.dim}, metric={self.metric!r}, count={len(self)})"
