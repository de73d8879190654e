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
    """Brute-force scoring; ``metric`` cosine (vectors normalised), ip or l2 (score = -distance^2).

    Storage is two segments: ``base`` (slots below ``nbase``; a read-only memory map after
    ``load``) and ``tail`` (in memory, grown by doubling). Rows added after a load go to the
    tail, so catching up a loaded 1M-vector file with a few new rows never copies the map
    into memory; ``compact`` (or a save and load) folds the tail back into one array.
    """

    kind = "exact"

    def __init__(self, dim: int, metric: str = "cosine", **options: Any) -> None:
        super().__init__()
        if options:
            raise TypeError(f"exact backend takes no options, got {sorted(options)}")
        self.dim, self.metric = int(dim), check_metric(metric)
        self.base = np.zeros((0, self.dim), dtype=np.float32)
        self.nbase = 0
        self.tail = np.zeros((0, self.dim), dtype=np.float32)
        self.sqnorms = np.zeros(0, dtype=np.float32)  # l2 only

    @property
    def vectors(self) -> np.ndarray:
        """All used slots as one array (the base itself while the tail is empty: no copy)."""
        if self.used == self.nbase:
            return self.base[:self.nbase]
        return np.concatenate([np.asarray(self.base[:self.nbase]), self.tail[:self.used - self.nbase]])

    def gather(self, slots: np.ndarray) -> np.ndarray:
        """Vectors of ``slots`` (any order), reading the memory map only where asked."""
        slots = np.asarray(slots, dtype=np.int64)
        if self.used == self.nbase or (len(slots) and slots.max() < self.nbase):
            return np.asarray(self.base[slots])
        out = np.empty((len(slots), self.dim), dtype=np.float32)
        low = slots < self.nbase
        out[low] = self.base[slots[low]]
        out[~low] = self.tail[slots[~low] - self.nbase]
        return out

    # -- storage ---------------------------------------------------------------------------
    def _resize(self, capacity: int) -> None:
        tail = np.zeros((capacity - self.nbase, self.dim), dtype=np.float32)
        held = self.used - self.nbase
        tail[:held] = self.tail[:held]
        self.tail = tail
        if self.metric == "l2":
            self.sqnorms = np.concatenate([self.sqnorms[:self.used], np.zeros(capacity - self.used, np.float32)])

    def _take(self, slots: np.ndarray) -> None:
        self.base = self.gather(slots)
        self.nbase = len(slots)
        self.tail = np.zeros((0, self.dim), dtype=np.float32)
        if self.metric == "l2":
            self.sqnorms = self.sqnorms[slots]

    def _set(self, slots: np.ndarray, vectors: np.ndarray) -> None:
        # new slots always lie past nbase (appended), so only the tail is ever written
        self.tail[slots - self.nbase] = vectors

    def add(self, rows: Any, vectors: Any) -> None:
        rows = as_rows(rows)
        vectors = as_vectors(vectors, len(rows), self.dim)
        if self.metric == "cosine":
            vectors = normalise(vectors)
        slots = self._append_slots(rows)  # re-added rows leave dead slots behind
        self._set(slots, vectors)
        if isinstance(self.base, np.memmap):
            self._compact_tail()
        if self.metric == "l2":
            self.sqnorms[slots] = np.einsum("ij,ij->i", vectors, vectors)

    def remove(self, rows: Any) -> int:
        removed = len(self._mark_removed(rows))
        self._maybe_compact()
        return removed

    def _maybe_compact(self) -> None:
        # a memory-mapped base is compacted at the next save, not here: compacting copies it into
        # memory, which a 10% delete of a 1M-row file must not do. Its in-memory tail is: a server
        # that keeps updating the same documents would otherwise grow it without bound
        if isinstance(self.base, np.memmap):
            self._compact_tail()
            return
        super()._maybe_compact()

    def _compact_tail(self) -> None:
        """Drop the tail's dead slots in place (base slots keep their numbers)."""
        held = self.used - self.nbase
        keep = np.flatnonzero(self.alive[self.nbase:self.used])
        dead = held - len(keep)
        if dead <= 1024 or dead * 4 <= held:
            return
        end = self.nbase + len(keep)
        self.tail[:len(keep)] = self.tail[keep]
        self.slot_rows[self.nbase:end] = self.slot_rows[self.nbase:self.used][keep]
        if self.metric == "l2":
            self.sqnorms[self.nbase:end] = self.sqnorms[self.nbase:self.used][keep]
        self.alive[self.nbase:end] = True
        self.alive[end:self.used] = False
        self.used = end
        self._sorted = None

    def vectors_of(self, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, vectors)`` for the held ones among ``rows`` (in their slot order)."""
        slots = np.sort(self.slots_of(np.unique(as_rows(rows))))
        return self.slot_rows[slots], self.gather(slots)

    def get(self, rows: Any) -> np.ndarray:
        """Vectors of ``rows`` in the given order; KeyError naming one that is not held."""
        rows = as_rows(rows)
        keys, slots = self._lookup()
        if len(rows) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(keys) == 0:
            raise KeyError(int(rows[0]))
        pos = np.minimum(np.searchsorted(keys, rows), len(keys) - 1)
        missing = keys[pos] != rows
        if missing.any():
            raise KeyError(int(rows[np.argmax(missing)]))
        return self.gather(slots[pos])

    # -- search ----------------------------------------------------------------------------
    def _prepare(self, queries: Any) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must have dimension {self.dim}, got shape {queries.shape}")
        return normalise(queries) if self.metric == "cosine" else queries

    def scores(self, queries: np.ndarray, slots: np.ndarray | None) -> np.ndarray:
        """Similarity of each query to ``slots`` (or all used slots): ``(n_queries, n_slots)``."""
        if slots is None:  # segment by segment: the memory map is read in place, never copied
            parts = [self.base[:self.nbase], self.tail[:self.used - self.nbase]]
        else:
            parts = [self.gather(slots)]
        if len(queries) == 1:
            out = np.concatenate([score_one(part, queries[0]) for part in parts])[None, :]
        else:
            out = np.concatenate([(np.asarray(part) @ queries.T).T for part in parts], axis=1)
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
                               "vectors.npy": self._save_vectors(live)},
                              count=len(live), extra=extra)

    def _save_vectors(self, live: np.ndarray):
        """Writes the live vectors in chunks (a 1M x 384 map is never gathered into memory at once)."""
        def writer(path) -> None:
            with open(path, "wb") as handle:
                np.lib.format.write_array_header_1_0(
                    handle, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                             "fortran_order": False, "shape": (len(live), self.dim)})
                for start in range(0, len(live), 65536):
                    handle.write(np.ascontiguousarray(self.gather(live[start:start + 65536])).tobytes())
        return writer

    @classmethod
    def from_arrays(cls, rows: np.ndarray, vectors: np.ndarray, metric: str = "cosine") -> "ExactBackend":
        """A backend holding ``vectors`` as given (trusted: already normalised for cosine, e.g.
        read back from a store that normalised them on write), without a copy."""
        rows = as_rows(rows)
        vectors = np.asarray(vectors, dtype=np.float32)
        backend = cls(vectors.shape[1], metric)
        if vectors.shape != (len(rows), backend.dim):
            raise ValueError(f"{len(rows)} rows but vectors of shape {vectors.shape}")
        backend._init_slots(rows)
        backend.base, backend.nbase = vectors, len(rows)
        if backend.metric == "l2":
            backend.sqnorms = np.einsum("ij,ij->i", vectors, vectors).astype(np.float32)
        return backend

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
        backend.base, backend.nbase = vectors, len(rows)
        if backend.metric == "l2":
            backend.sqnorms = np.einsum("ij,ij->i", vectors, vectors).astype(np.float32)
        return backend

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": len(self), "slots": self.used, "dim": self.dim,
                "metric": self.metric, "bytes_per_vector": 4 * self.dim,
                "memory_mapped": isinstance(self.base, np.memmap)}

    def __repr__(self) -> str:
        return f"ExactBackend(dim={self.dim}, metric={self.metric!r}, count={len(self)})"
