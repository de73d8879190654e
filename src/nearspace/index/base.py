"""The vector-backend protocol and what every backend shares.

A backend owns one thing: given ``rows`` (int64 ids chosen by the caller, e.g. SQLite's
document rows) and their vectors, answer "the k rows most similar to this query", optionally
only among an ``allowed`` set. It never owns the truth: the store can always rebuild it.

Shared here:

* :class:`VectorBackend`, the protocol (add, remove, search, save/load, stats, len).
* :class:`RowTable`, the bookkeeping of row ids held in insertion order with tombstones, so a
  delete is O(deleted * log n) instead of copying every vector (a 10% delete at 1M rows must
  not move 1.5 GB). Storage is compacted when a quarter of the slots are dead.
* The on-disk envelope: every backend saves to files sharing one ``prefix``; each file is
  written to a temporary name, fsynced and renamed, and a JSON header written last records
  the backend, dimension, metric, what the caller says the files cover (``extra``), and per
  file its size, mtime and CRC-32. ``load`` refuses files that disagree with their header:
  a size or mtime change forces a full checksum, so damage is found without re-reading
  gigabytes on every open when nothing changed.
* One-query scoring without BLAS threads: ``score_one`` uses numpy's einsum loop (no BLAS),
  so a single query costs the same whatever else runs on the cores; batches use BLAS.
"""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nearspace.errors import InputError, NearspaceError

FORMAT_VERSION = 1
METRICS = ("cosine", "ip", "l2")


class IndexFileError(NearspaceError):
    """A saved index file is missing, damaged or belongs to something else (rebuild it)."""


@runtime_checkable
class VectorBackend(Protocol):
    """What the store asks of a vector index. Scores are similarities: higher is better
    (cosine / inner product; ``-squared distance`` for l2)."""

    kind: str
    dim: int
    metric: str

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace ``rows`` (int64) with ``vectors`` (n x dim)."""

    def remove(self, rows: np.ndarray) -> int:
        """Forget ``rows``; returns how many were held."""

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, scores)``, each ``(n_queries, k')`` best first, ``k' = min(k, candidates)``."""

    def save(self, prefix: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the index atomically under ``prefix``; returns the header written."""

    def stats(self) -> dict[str, Any]:
        """Counts and sizes (``bytes_per_vector`` is what the index itself holds per vector)."""

    def __len__(self) -> int: ...


def check_metric(metric: str, allowed: tuple[str, ...] = METRICS) -> str:
    if metric not in allowed:
        raise InputError(f"metric must be one of {', '.join(allowed)}, got {metric!r}")
    return metric


def as_rows(rows: Any) -> np.ndarray:
    array = np.asarray(rows)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise InputError(f"rows must be a 1-d array of integers, got shape {array.shape} dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def as_vectors(vectors: Any, n: int, dim: int) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1 and n == 1:
        array = array.reshape(1, -1)
    if array.shape != (n, dim):
        raise InputError(f"vectors must have shape ({n}, {dim}), got {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("vectors contain NaN or infinite values")
    return np.ascontiguousarray(array)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError("a zero vector has no direction to compare by cosine")
    return (vectors / norms).astype(np.float32, copy=False)


def score_one(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query`` for one query without BLAS (einsum's own loop): one query, one thread."""
    return np.einsum("ij,j->i", matrix, query, dtype=np.float32, casting="unsafe")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best scores, best first (stable for ties)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")]


def pack_results(per_query: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    width = min((len(r) for r, _ in per_query), default=0)
    rows = np.array([r[:width] for r, _ in per_query], dtype=np.int64).reshape(len(per_query), width)
    scores = np.array([s[:width] for _, s in per_query], dtype=np.float32).reshape(len(per_query), width)
    return rows, scores


class RowTable:
    """Row ids in slot order with tombstones; subclasses keep arrays aligned with the slots.

    Arrays grow by doubling (amortised O(1) per added row: 100 batches of 10k rows into a
    1M-row index must not copy the whole matrix 100 times). Subclasses implement
    ``_resize(capacity)`` for their own aligned arrays and ``_take(slots)`` for compaction.
    """

    def __init__(self) -> None:
        self.used = 0
        self.slot_rows = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.live_count = 0
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (sorted rows, their slots)

    def __len__(self) -> int:
        return self.live_count

    def _init_slots(self, rows: np.ndarray) -> None:
        self.used = len(rows)
        self.slot_rows = np.array(rows, dtype=np.int64)
        self.alive = np.ones(len(rows), dtype=bool)
        self.live_count = len(rows)
        self._sorted = None

    def _lookup(self) -> tuple[np.ndarray, np.ndarray]:
        if self._sorted is None:
            live = np.flatnonzero(self.alive[:self.used])
            order = np.argsort(self.slot_rows[live], kind="stable")
            self._sorted = (self.slot_rows[live][order], live[order])
        return self._sorted

    def slots_of(self, rows: np.ndarray) -> np.ndarray:
        """Slots of the ``rows`` that are held and live (others are skipped)."""
        keys, slots = self._lookup()
        if len(keys) == 0 or len(rows) == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, rows), len(keys) - 1)
        return slots[pos[keys[pos] == rows]]

    def live_rows(self) -> np.ndarray:
        return self.slot_rows[:self.used][self.alive[:self.used]]

    def _mark_removed(self, rows: np.ndarray) -> np.ndarray:
        slots = self.slots_of(np.unique(as_rows(rows)))
        if len(slots):
            self.alive[slots] = False
            self.live_count -= len(slots)
            self._sorted = None
        return slots

    def _append_slots(self, rows: np.ndarray) -> np.ndarray:
        """Tombstone any held copy of ``rows`` and give them new slots at the end."""
        if len(np.unique(rows)) != len(rows):
            raise InputError("rows given to add() must be distinct")
        self._mark_removed(rows)
        start, end = self.used, self.used + len(rows)
        if end > len(self.slot_rows):
            capacity = max(end, 2 * len(self.slot_rows), 1024)
            self.slot_rows = _grown(self.slot_rows, capacity)
            self.alive = _grown(self.alive, capacity)
            self._resize(capacity)
        self.slot_rows[start:end] = rows
        self.alive[start:end] = True
        self.used = end
        self.live_count += len(rows)
        self._sorted = None
        return np.arange(start, end)

    def _resize(self, capacity: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _take(self, slots: np.ndarray) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _maybe_compact(self) -> None:
        dead = self.used - self.live_count
        if dead > 1024 and dead * 4 > self.used:
            self.compact()

    def compact(self) -> None:
        """Drop tombstoned slots (copies the live vectors once)."""
        live = np.flatnonzero(self.alive[:self.used])
        self._take(live)
        self._init_slots(self.slot_rows[live])

    def all_live(self) -> bool:
        return self.live_count == self.used

    def allowed_slots(self, allowed: np.ndarray | None) -> np.ndarray | None:
        """Slots to score: None means every slot below ``used`` (dead ones masked by the caller)."""
        if allowed is None:
            return None
        allowed = as_rows(allowed)
        if len(allowed) > 1 and not (allowed[1:] > allowed[:-1]).all():  # callers usually pass sorted sets
            allowed = np.unique(allowed)
        slots = self.slots_of(allowed)
        if len(slots) > 1 and not (slots[1:] > slots[:-1]).all():
            slots = np.sort(slots)
        return slots


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    out = np.zeros((capacity,) + array.shape[1:], dtype=array.dtype)
    out[:len(array)] = array
    return out


# -- files -------------------------------------------------------------------------------------
def crc32_file(path: str | Path) -> int:
    """CRC-32 of a file, read in 4 MiB chunks (the one checksum every derived file uses)."""
    value = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            value = zlib.crc32(chunk, value)
    return value


_crc32 = crc32_file  # the older private name


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def file_for(prefix: str | Path, part: str) -> Path:
    return Path(f"{prefix}.{part}")


def header_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.json")


def write_envelope(prefix: str | Path, kind: str, dim: int, metric: str, parts: dict[str, Any],
                   *, count: int, options: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``parts`` (name -> callable(path) writing that file) atomically, header last.

    Each part is written to ``<file>.<pid>.<thread>.tmp`` (two savers never share a temporary),
    fsynced and renamed; the header naming every part's size, mtime and CRC-32 is renamed into
    place last, so a crash in between leaves a header that disagrees with its files, never one
    that vouches for half-written data. ``extra`` (what the caller says the files cover) is kept
    under ``"extra"`` and mirrored at the top level, where the [7/13] sidecar kept it; a reader
    checking coverage compares both (:func:`header_extra`).
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, int]] = {}
    for name, writer in parts.items():
        final = file_for(prefix, name)
        tmp = _temporary(final)
        try:
            writer(tmp)
            _fsync_file(tmp)
            size, crc = os.path.getsize(tmp), crc32_file(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        files[name] = {"bytes": size, "crc32": crc, "mtime_ns": os.stat(final).st_mtime_ns}
    header = {"format": FORMAT_VERSION, "kind": kind, "dim": dim, "metric": metric, "count": count,
              "options": options or {}, "extra": extra or {}, "files": files}
    for key, value in (extra or {}).items():
        header.setdefault(key, value)  # never over a reserved key
    target = header_path(prefix)
    tmp = _temporary(target)
    try:
        tmp.write_text(json.dumps(header))
        _fsync_file(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return header


def _temporary(final: Path) -> Path:
    import threading

    return final.with_name(f"{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def header_extra(header: dict[str, Any]) -> dict[str, Any] | None:
    """What a header says its files cover, or None when its two copies disagree (edited by hand)."""
    extra = header.get("extra") or {}
    if not isinstance(extra, dict):
        return None
    for key, value in extra.items():
        if header.get(key, value) != value:
            return None
    return extra


def read_header(prefix: str | Path) -> dict[str, Any]:
    path = header_path(prefix)
    try:
        header = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexFileError(f"no saved index at {prefix} (missing {path.name})") from None
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"index header {path} is unreadable: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION or "files" not in header:
        raise IndexFileError(f"index header {path} has an unknown format")
    return header


def verify_files(prefix: str | Path, header: dict[str, Any], *, full: bool = False) -> dict[str, Path]:
    """Paths of the header's parts after checking them; IndexFileError names the first problem.

    Unchanged size and mtime are trusted (open stays O(1)); anything else, or ``full``,
    recomputes the CRC-32.
    """
    paths = {}
    for name, info in header["files"].items():
        path = file_for(prefix, name)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise IndexFileError(f"index file {path} is missing") from None
        if stat.st_size != info["bytes"]:
            raise IndexFileError(f"index file {path} has {stat.st_size} bytes, its header says {info['bytes']}")
        if full or stat.st_mtime_ns != info["mtime_ns"]:
            if crc32_file(path) != info["crc32"]:
                raise IndexFileError(f"index file {path} is damaged (checksum mismatch)")
        paths[name] = path
    return paths


def save_npy(array: np.ndarray):
    def writer(path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
    return writer


def load_npy(path: Path, *, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"index file {path} is unreadable: {exc}") from None
