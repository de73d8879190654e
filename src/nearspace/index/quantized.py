"""Quantised exact scan with float rescoring: int8 scalar codes and 1-bit binary codes.

Both scan every (allowed) vector with a compact code to pick a candidate pool, then rescore
the pool with the float vectors, which live beside the codes (in memory after ``add``, a
read-only memory map after ``load``) and are only touched for the pool. What the index
scans per 384-d vector: int8 = 384 code bytes + a 4-byte scale (388 B); binary = 48 bytes.

* int8: each vector scaled by its own max |x| to [-127, 127] (no training, so incremental
  adds never drift); approximate score = scale * (codes . query) in one einsum loop.
* binary: sign bits of (x - centre), the centre being the mean of the first batch added
  (embedding models have a common offset that would otherwise set most bits alike);
  approximate score = -Hamming distance (XOR + popcount on 64-bit words).

``rescore`` sets the pool to ``max(rescore * k, min_pool)``. A caller that already keeps the float
vectors (the store's memory-mapped vector file) creates the backend with ``float_copy=False``
and hands its ``ExactBackend`` to :meth:`attach_flat`: the pool is then rescored from it, and
neither memory nor disk holds a second float copy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nearspace.index.base import (IndexFileError, RowTable, as_rows, as_vectors, check_metric, load_npy,
                                  normalise, pack_results, read_header, save_npy, score_one, top_k,
                                  verify_files, write_envelope)


class _Quantised(RowTable):
    kind = "quantised"
    default_rescore = 4
    default_min_pool = 32

    def __init__(self, dim: int, metric: str = "cosine", *, rescore: int | None = None,
                 min_pool: int | None = None, float_copy: bool = True) -> None:
        super().__init__()
        self.float_copy = bool(float_copy)
        self.flat = None  # the caller's ExactBackend when float_copy is False
        self.dim, self.metric = int(dim), check_metric(metric, ("cosine", "ip"))
        self.rescore = int(rescore or self.default_rescore)
        self.min_pool = int(min_pool or self.default_min_pool)
        self.floats = np.zeros((0, self.dim), dtype=np.float32)

    # code storage, per subclass ------------------------------------------------------------
    def _encode(self, vectors: np.ndarray, slots: np.ndarray) -> None:
        raise NotImplementedError

    def _approx(self, query: np.ndarray, slots: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def _code_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_code_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _global_arrays(self) -> dict[str, np.ndarray]:
        """Arrays not aligned with slots (saved whole)."""
        return {}

    def code_bytes_per_vector(self) -> int:
        raise NotImplementedError

    # shared ------------------------------------------------------------------------------
    def attach_flat(self, flat) -> None:
        """Rescore from ``flat`` (an ExactBackend holding the same rows, kept in step by the caller)."""
        if self.float_copy:
            raise ValueError("this backend keeps its own float copy")
        self.flat = flat

    def _floats(self, slots: np.ndarray) -> np.ndarray:
        if self.float_copy:
            return np.asarray(self.floats[slots])
        return self.flat.get(self.slot_rows[slots])

    def _resize(self, capacity: int) -> None:
        extra = [("floats", self.floats)] if self.float_copy else []
        for name, array in list(self._code_arrays().items()) + extra:
            grown = np.zeros((capacity,) + array.shape[1:], dtype=array.dtype)
            grown[:self.used] = array[:self.used]
            if name == "floats":
                self.floats = grown
            else:
                self._set_code_arrays({name: grown})

    def _take(self, slots: np.ndarray) -> None:
        self._set_code_arrays({name: np.ascontiguousarray(a[slots]) for name, a in self._code_arrays().items()})
        if self.float_copy:
            self.floats = np.ascontiguousarray(self.floats[slots])

    def add(self, rows: Any, vectors: Any) -> None:
        rows = as_rows(rows)
        vectors = as_vectors(vectors, len(rows), self.dim)
        if self.metric == "cosine":
            vectors = normalise(vectors)
        slots = self._append_slots(rows)
        if self.float_copy:
            self.floats[slots] = vectors
        self._encode(vectors, slots)

    def remove(self, rows: Any) -> int:
        removed = len(self._mark_removed(rows))
        self._maybe_compact()
        return removed

    def search(self, queries: Any, k: int, allowed: Any = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must have dimension {self.dim}, got shape {queries.shape}")
        if self.metric == "cosine":
            queries = normalise(queries)
        slots = self.allowed_slots(allowed)
        limit = len(self) if slots is None else len(slots)
        k = min(k, limit)
        pool = min(limit, max(self.rescore * k, self.min_pool, k))
        out = []
        for query in queries:
            if k <= 0:
                out.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
                continue
            approx = self._approx(query, slots)
            if slots is None and not self.all_live():
                approx[~self.alive[:self.used]] = -np.inf
            # the pool takes every candidate tied with the last one admitted, so the result
            # never depends on slot order (Hamming distances tie often)
            if pool < len(approx):
                threshold = np.partition(approx, len(approx) - pool)[len(approx) - pool]
                candidates = np.flatnonzero(approx >= threshold)
            else:
                candidates = np.flatnonzero(approx > -np.inf)
            cand_slots = candidates if slots is None else slots[candidates]
            # float rescoring of the pool (sorted slots read the memory map in file order)
            cand_slots = np.sort(cand_slots)
            exact = score_one(self._floats(cand_slots), query)
            best = top_k(exact, k)
            out.append((self.slot_rows[cand_slots[best]], exact[best]))
        return pack_results(out)

    def save(self, prefix: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        live = np.flatnonzero(self.alive[:self.used])
        parts = {"rows.npy": save_npy(self.slot_rows[live])}
        if self.float_copy:
            parts["floats.npy"] = save_npy(self.floats[live])
        for name, array in self._code_arrays().items():
            parts[f"{name}.npy"] = save_npy(array[live])
        for name, array in self._global_arrays().items():
            parts[f"{name}.npy"] = save_npy(array)
        options = {"rescore": self.rescore, "min_pool": self.min_pool, "float_copy": self.float_copy}
        return write_envelope(prefix, self.kind, self.dim, self.metric, parts, count=len(live),
                              options=options, extra=extra)

    @classmethod
    def load(cls, prefix: str | Path, header: dict[str, Any] | None = None, *, full_check: bool = False,
             mmap: bool = True):
        header = header or read_header(prefix)
        paths = verify_files(prefix, header, full=full_check)
        backend = cls(header["dim"], header["metric"], **(header.get("options") or {}))
        rows = load_npy(paths["rows.npy"], mmap=False)
        floats = load_npy(paths["floats.npy"], mmap=mmap) if backend.float_copy else None
        if floats is not None and floats.shape != (len(rows), backend.dim):
            raise IndexFileError(f"index {prefix}: float vectors have shape {floats.shape}, "
                                 f"expected ({len(rows)}, {backend.dim})")
        arrays = {name[:-4]: load_npy(path, mmap=False) for name, path in paths.items()
                  if name not in ("rows.npy", "floats.npy")}
        backend._set_code_arrays(arrays)
        for name, array in backend._code_arrays().items():
            if len(array) != len(rows):
                raise IndexFileError(f"index {prefix}: {name} holds {len(array)} entries, rows {len(rows)}")
        backend._init_slots(rows)
        if floats is not None:
            backend.floats = floats
        return backend

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": len(self), "dim": self.dim, "metric": self.metric,
                "bytes_per_vector": self.code_bytes_per_vector(), "rescore_bytes_per_vector": 4 * self.dim,
                "rescore": self.rescore, "min_pool": self.min_pool,
                "floats_memory_mapped": isinstance(self.floats, np.memmap) if self.float_copy else None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, metric={self.metric!r}, count={len(self)})"


class Int8Backend(_Quantised):
    """Scalar-quantised int8 codes with a per-vector scale; float rescoring of the pool."""

    kind = "int8"

    def __init__(self, dim: int, metric: str = "cosine", **options: Any) -> None:
        super().__init__(dim, metric, **options)
        self.codes = np.zeros((0, self.dim), dtype=np.int8)
        self.scales = np.zeros(0, dtype=np.float32)

    def _code_arrays(self) -> dict[str, np.ndarray]:
        return {"codes": self.codes, "scales": self.scales}

    def _set_code_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for name, array in arrays.items():
            setattr(self, name, array)

    def _encode(self, vectors: np.ndarray, slots: np.ndarray) -> None:
        peak = np.abs(vectors).max(axis=1)
        peak[peak == 0] = 1.0
        self.scales[slots] = peak / 127.0
        self.codes[slots] = np.rint(vectors / self.scales[slots][:, None]).astype(np.int8)

    def _approx(self, query: np.ndarray, slots: np.ndarray | None) -> np.ndarray:
        codes = self.codes[:self.used] if slots is None else self.codes[slots]
        scales = self.scales[:self.used] if slots is None else self.scales[slots]
        return score_one(codes, query) * scales

    def code_bytes_per_vector(self) -> int:
        return self.dim + 4


class BinaryBackend(_Quantised):
    """1-bit codes of (x - centre), Hamming distance over 64-bit words; float rescoring."""

    kind = "binary"
    default_rescore = 40
    default_min_pool = 400

    def __init__(self, dim: int, metric: str = "cosine", **options: Any) -> None:
        super().__init__(dim, metric, **options)
        self.words = (self.dim + 63) // 64
        self.codes = np.zeros((0, self.words), dtype=np.uint64)
        self.centre = None  # set from the first batch added

    def _code_arrays(self) -> dict[str, np.ndarray]:
        return {"codes": self.codes}

    def _global_arrays(self) -> dict[str, np.ndarray]:
        return {} if self.centre is None else {"centre": self.centre}

    def _set_code_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if "codes" in arrays:
            self.codes = arrays["codes"]
        if "centre" in arrays:
            self.centre = arrays["centre"]

    def _bits(self, vectors: np.ndarray) -> np.ndarray:
        packed = np.packbits(vectors - self.centre > 0, axis=1)
        padded = np.zeros((len(vectors), self.words * 8), dtype=np.uint8)
        padded[:, :packed.shape[1]] = packed
        return padded.view(np.uint64)

    def _encode(self, vectors: np.ndarray, slots: np.ndarray) -> None:
        if self.centre is None:
            self.centre = vectors.mean(axis=0).astype(np.float32) if len(vectors) >= 64 \
                else np.zeros(self.dim, dtype=np.float32)
        self.codes[slots] = self._bits(vectors)

    def _approx(self, query: np.ndarray, slots: np.ndarray | None) -> np.ndarray:
        codes = self.codes[:self.used] if slots is None else self.codes[slots]
        bits = self._bits(query[None, :])[0]
        distance = np.bitwise_count(codes ^ bits).sum(axis=1, dtype=np.int32)
        return -distance.astype(np.float32)

    def code_bytes_per_vector(self) -> int:
        return self.words * 8
