"""The derived, memory-mapped vector file: a collection's float vectors outside SQLite.

Rebuilt from SQLite whenever it is missing, stale or damaged (like the HNSW graph), so it is
never the only copy. Layout (prefix ``P``): ``P.rows.npy`` (sorted int64 rows, read into
memory: 8 bytes a row), ``P.vectors.npy`` (float32, opened with ``mmap_mode='r'``: opening
costs nothing, pages are read when scored) and the header ``P.json`` written last, recording
what the file covers (``covers``: e.g. collection id, change sequence and its token) plus
size, mtime and CRC-32 per part. ``open`` is O(1) when nothing changed since the write.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from nearspace.index.base import (IndexFileError, as_rows, load_npy, read_header, save_npy, verify_files,
                                  write_envelope)

KIND = "vectors"


class VectorFile:
    """Read-only view: ``rows`` sorted, ``vectors`` a memory map aligned with them."""

    def __init__(self, rows: np.ndarray, vectors: np.ndarray, header: dict[str, Any]) -> None:
        self.rows, self.vectors, self.header = rows, vectors, header

    @property
    def covers(self) -> dict[str, Any]:
        return self.header.get("extra") or {}

    def __len__(self) -> int:
        return len(self.rows)

    def positions(self, rows: Any) -> np.ndarray:
        """Positions of the held ones among ``rows`` (missing rows skipped)."""
        rows = as_rows(rows)
        if len(self.rows) == 0 or len(rows) == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        return pos[self.rows[pos] == rows]

    def get(self, rows: Any) -> np.ndarray:
        """Vectors of ``rows`` in the given order; KeyError if one is not in the file."""
        rows = as_rows(rows)
        pos = np.minimum(np.searchsorted(self.rows, rows), max(len(self.rows) - 1, 0))
        if len(rows) and (len(self.rows) == 0 or (self.rows[pos] != rows).any()):
            raise KeyError("rows missing from the vector file")
        return np.asarray(self.vectors[pos])

    @staticmethod
    def write(prefix: str | Path, rows: Any, vectors: np.ndarray, covers: dict[str, Any]) -> dict[str, Any]:
        rows = as_rows(rows)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(rows):
            raise ValueError(f"{len(rows)} rows but vectors of shape {vectors.shape}")
        if len(rows) > 1 and (np.diff(rows) <= 0).any():
            order = np.argsort(rows, kind="stable")
            rows, vectors = rows[order], vectors[order]
        return write_envelope(prefix, KIND, vectors.shape[1], "cosine",
                              {"rows.npy": save_npy(rows), "vectors.npy": save_npy(vectors)},
                              count=len(rows), extra=covers)

    @classmethod
    def open(cls, prefix: str | Path, *, dim: int, check: Callable[[dict[str, Any]], str | None] | None = None,
             full_check: bool = False) -> "VectorFile":
        """Open and verify; ``check(covers)`` returns why the file must not be trusted, or None.
        Raises IndexFileError naming the problem (callers rebuild)."""
        header = read_header(prefix)
        if header.get("kind") != KIND or header.get("dim") != dim:
            raise IndexFileError(f"vector file {prefix} holds {header.get('kind')} of dimension "
                                 f"{header.get('dim')}, expected vectors of dimension {dim}")
        if check is not None and (problem := check(header.get("extra") or {})):
            raise IndexFileError(f"vector file {prefix} is stale: {problem}")
        paths = verify_files(prefix, header, full=full_check)
        rows = load_npy(paths["rows.npy"], mmap=False)
        vectors = load_npy(paths["vectors.npy"], mmap=True)
        if vectors.shape != (len(rows), dim) or vectors.dtype != np.float32:
            raise IndexFileError(f"vector file {prefix} has shape {vectors.shape}, expected ({len(rows)}, {dim})")
        return cls(rows, vectors, header)
