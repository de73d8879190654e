"""The derived vector index: exact below a size threshold, HNSW (hnswlib) above it.

Never the only copy: vectors live in SQLite. The in-memory matrix is loaded from SQLite
and caught up from the change log before each search, so rows committed by another
process become visible at the next query. The HNSW graph is saved atomically (temp file,
fsync, rename) next to the store with a sidecar naming the change sequence it covers; on
open it is loaded and caught up, or rebuilt when it does not match.

What the sidecar must prove before the graph is trusted: the collection id and dimension,
the covered change sequence and that change's write-transaction token as SQLite holds it
(a restored backup or a commit lost to power failure reuses sequence numbers, never tokens;
a sidecar claiming a change SQLite does not hold is stale), and a CRC-32 of the graph file
(damage inside a file of the right size would otherwise crash hnswlib). Anything that
disagrees means a rebuild from SQLite with a one-line warning. This makes WAL's
``synchronous=NORMAL`` safe for the derived files: a lost commit is detected, not trusted.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from nearspace.store.database import CollectionData

#: below this many vectors exact search is fast enough (and exact)
EXACT_THRESHOLD = 20_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 96

log = logging.getLogger("nearspace")


class VectorIndex:
    """Nearest-neighbour search over one collection's vectors (cosine on unit vectors)."""

    def __init__(self, data: CollectionData, ann_dir: Path, *, exact_threshold: int = EXACT_THRESHOLD,
                 ef_search: int = HNSW_EF_SEARCH, show_progress: bool = False) -> None:
        self.data = data
        self.ann_path = ann_dir / f"{data.name}.hnsw"
        self.exact_threshold = exact_threshold
        self.ef_search = ef_search
        self.show_progress = show_progress
        self.rows = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, data.dim), dtype=np.float32)
        self.covered_seq = -1
        self.covered_token: int | None = None  # token of change covered_seq (None: no change yet)
        self.hnsw = None  # hnswlib.Index when the collection is large
        self.hnsw_seq = -1
        self.hnsw_live = 0  # live (not deleted) labels in the graph: must equal len(rows) once caught up
        # one Collection may be searched from several threads: refresh and graph walks
        # mutate shared state, so they run one at a time
        self._lock = threading.RLock()

    # -- keeping up with SQLite ---------------------------------------------------------
    def refresh(self) -> None:
        """Bring the matrix (and HNSW graph, if any) up to the last committed change.

        Everything is read inside one read transaction, so a commit landing meanwhile is
        either wholly seen or wholly left for the next refresh, never applied twice.
        """
        with self._lock, self.data.db.snapshot():
            last, token = self.data.last_change()
            if last == self.covered_seq and token == self.covered_token:
                return
            # the change we caught up with must still be SQLite's, with the same token: a backup
            # restored under a live process (or lost commits) reuses sequence numbers, never tokens
            same_history = (self.covered_seq >= 0 and last >= self.covered_seq
                            and self.data.change_token(self.covered_seq) == self.covered_token)
            if not same_history or self.data.first_seq() > self.covered_seq + 1:
                self.rows, self.matrix = self.data.vectors()
                self.hnsw = None  # the in-memory graph followed the old history: reload (checked) or rebuild
            else:
                self._apply(self.data.changes_since(self.covered_seq))
            self.covered_seq, self.covered_token = last, token
            if len(self.rows) >= self.exact_threshold:
                self._sync_hnsw()
            else:
                self.hnsw = None

    def _apply(self, changes: list[tuple[int, int, str]]) -> None:
        deleted = {doc for _, doc, op in changes if op == "del"}
        added = [doc for _, doc, op in changes if op == "add" and doc not in deleted]
        if deleted:
            keep = ~np.isin(self.rows, np.fromiter(deleted, dtype=np.int64))
            self.rows, self.matrix = self.rows[keep], self.matrix[keep]
        if added:
            new_rows, new_matrix = self.data.vectors_for_rows(added)
            self.rows = np.concatenate([self.rows, new_rows])
            self.matrix = np.concatenate([self.matrix, new_matrix])
            if len(self.rows) > 1 and (np.diff(self.rows) <= 0).any():
                order = np.argsort(self.rows, kind="stable")
                self.rows, self.matrix = self.rows[order], self.matrix[order]

    # -- HNSW -------------------------------------------------------------------------------
    def _sidecar(self) -> Path:
        return self.ann_path.with_suffix(".json")

    def _sync_hnsw(self) -> None:
        if self.hnsw is None:
            self.hnsw, self.hnsw_seq, self.hnsw_live = self._load_saved()
        if self.hnsw is None:
            self._build_hnsw()
            return
        if self.hnsw_seq > self.covered_seq or self.data.first_seq() > self.hnsw_seq + 1:
            self._build_hnsw()
            return
        changes = self.data.changes_since(self.hnsw_seq)
        deleted = [doc for _, doc, op in changes if op == "del"]
        for doc in deleted:
            try:
                self.hnsw.mark_deleted(int(doc))
                self.hnsw_live -= 1
            except RuntimeError:
                pass  # added and deleted after the graph was saved: never in it
        added = set(doc for _, doc, op in changes if op == "add") - set(deleted)
        if added:
            positions = np.searchsorted(self.rows, np.fromiter(sorted(added), dtype=np.int64))
            needed = self.hnsw.element_count + len(positions)
            if needed > self.hnsw.get_max_elements():
                self.hnsw.resize_index(max(needed, int(self.hnsw.get_max_elements() * 1.5)))
            self.hnsw.add_items(self.matrix[positions], self.rows[positions])
            self.hnsw_live += len(positions)
        self.hnsw_seq = self.covered_seq
        if self.hnsw_live != len(self.rows):  # the row count SQLite holds must be the graph's too
            log.warning("nearspace: rebuilding the vector index of %r from SQLite: saved graph holds %d "
                        "documents after catching up, SQLite %d", self.data.name, self.hnsw_live, len(self.rows))
            self._build_hnsw()

    def _build_hnsw(self) -> None:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=self.data.dim)
        index.init_index(max_elements=max(len(self.rows), 1) + 1024, M=HNSW_M,
                         ef_construction=HNSW_EF_CONSTRUCTION, allow_replace_deleted=False)
        if self.show_progress:
            from nearspace.progress import progress_bar

            with progress_bar(transient=True) as progress:
                task = progress.add_task("building HNSW index", total=len(self.rows))
                for start in range(0, len(self.rows), 10_000):
                    index.add_items(self.matrix[start:start + 10_000], self.rows[start:start + 10_000])
                    progress.advance(task, min(10_000, len(self.rows) - start))
        else:
            index.add_items(self.matrix, self.rows)
        self.hnsw, self.hnsw_seq, self.hnsw_live = index, self.covered_seq, len(self.rows)

    def _load_saved(self):
        """``(graph, covered seq, live count)`` from disk, or ``(None, -1, 0)`` to rebuild."""
        import hnswlib

        sidecar = self._sidecar()
        if not (self.ann_path.exists() and sidecar.exists()):
            return None, -1, 0
        try:
            # shared lock: a saver in another process cannot swap graph and sidecar between our
            # checksum and hnswlib's read (a pair from two saves would fail the check anyway)
            with _file_lock(self._lock_path(), shared=True):
                meta = json.loads(sidecar.read_text())
                problem = self._disagreement(meta)
                if problem is None:
                    index = hnswlib.Index(space="ip", dim=self.data.dim)
                    index.load_index(str(self.ann_path), max_elements=int(meta["max_elements"]))
                    return index, int(meta["seq"]), int(meta["count"])
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, AttributeError) as exc:
            problem = f"unreadable ({type(exc).__name__})"
        log.warning("nearspace: rebuilding the vector index of %r from SQLite: saved graph %s",
                    self.data.name, problem)
        return None, -1, 0

    def _lock_path(self) -> Path:
        return self.ann_path.with_suffix(".lock")

    def _disagreement(self, meta: dict) -> str | None:
        """Why the saved graph must not be trusted, or None when SQLite confirms the sidecar."""
        if meta.get("dim") != self.data.dim or meta.get("collection_id") != self.data.cid:
            return "belongs to another collection or dimension"
        seq = int(meta["seq"])
        if seq > self.covered_seq:
            return f"claims change {seq}, but SQLite holds changes only up to {self.covered_seq}"
        token = self.data.change_token(seq) if seq > 0 else 0
        if token is None or token != meta.get("token"):
            return f"covers a history SQLite does not hold (change {seq} differs: restored or lost commits)"
        if os.path.getsize(self.ann_path) != meta.get("bytes"):
            return "has the wrong size"
        if _crc32(self.ann_path) != meta.get("crc32"):
            return "is damaged (checksum mismatch)"
        return None

    def save(self) -> bool:
        """Persist the HNSW graph atomically; returns False when there is none to save."""
        with self._lock:
            self.refresh()
            if self.hnsw is None:
                return False
            return self._save_locked()

    def _save_locked(self) -> bool:
        assert self.hnsw is not None
        self.ann_path.parent.mkdir(parents=True, exist_ok=True)
        # several processes may flush one collection: one saver at a time, each with its own
        # temporary names (two sharing one name moved each other's half-written files)
        # read from SQLite before taking the file lock, never under it: a thread loading the graph
        # holds the store's connection while it waits for that lock (lock order: connection, file)
        token = self.data.change_token(self.hnsw_seq) if self.hnsw_seq > 0 else 0
        with _file_lock(self._lock_path(), shared=False):
            _remove_stale_temporaries(self.ann_path)
            tmp = self.ann_path.with_name(f"{self.ann_path.name}.{os.getpid()}.tmp")
            side_tmp = self._sidecar().with_name(f"{self._sidecar().name}.{os.getpid()}.tmp")
            try:
                self.hnsw.save_index(str(tmp))
                _fsync(tmp)
                meta = {"collection_id": self.data.cid, "dim": self.data.dim, "seq": self.hnsw_seq,
                        "token": token, "count": self.hnsw_live,
                        "max_elements": self.hnsw.get_max_elements(),
                        "bytes": os.path.getsize(tmp), "crc32": _crc32(tmp)}
                side_tmp.write_text(json.dumps(meta))
                _fsync(side_tmp)
                # graph first, sidecar second: a crash in between leaves a checksum mismatch -> rebuild
                os.replace(tmp, self.ann_path)
                os.replace(side_tmp, self._sidecar())
            finally:
                tmp.unlink(missing_ok=True)
                side_tmp.unlink(missing_ok=True)
        return True

    # -- search -----------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """``[(doc_row, cosine)]`` best first; ``allowed`` (sorted doc_rows) restricts the search."""
        with self._lock:
            return self._search_locked(query, k, allowed)

    def _search_locked(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        self.refresh()
        n = len(self.rows)
        if n == 0 or k <= 0:
            return []
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if allowed is not None:
            # small filtered sets: exact scoring of just those rows is faster than a filtered graph walk
            if self.hnsw is None or len(allowed) <= self.exact_threshold:
                positions = np.searchsorted(self.rows, allowed)
                inside = positions < n
                positions = positions[inside]
                positions = positions[self.rows[positions] == allowed[inside]]
                return _top_k(self.matrix[positions] @ query, self.rows[positions], k)
            allowed_set = set(allowed.tolist())
            return self._hnsw_query(query, min(k, len(allowed)), lambda label: label in allowed_set)
        if self.hnsw is None:
            return _top_k(self.matrix @ query, self.rows, k)
        return self._hnsw_query(query, min(k, n), None)

    def _hnsw_query(self, query: np.ndarray, k: int, label_filter) -> list[tuple[int, float]]:
        assert self.hnsw is not None
        self.hnsw.set_ef(max(self.ef_search, k))
        labels, distances = self.hnsw.knn_query(query, k=k, num_threads=1, filter=label_filter)
        return [(int(label), float(1.0 - dist)) for label, dist in zip(labels[0], distances[0])]


def _top_k(scores: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[int, float]]:
    if len(scores) == 0:
        return []
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(rows[i]), float(scores[i])) for i in top]


def _crc32(path: Path) -> int:
    value = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            value = zlib.crc32(chunk, value)
    return value


@contextmanager
def _file_lock(path: Path, *, shared: bool) -> Iterator[None]:
    """An advisory lock between processes (flock); a no-op where fcntl is missing (Windows),
    where the checksum still refuses a mixed graph/sidecar pair."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    if shared and not path.exists():  # nothing has been saved with a lock yet; don't create files
        yield                         # in a directory a reader may not own
        return
    with open(path, "rb" if shared else "a+b") as handle:  # a read-only store can still share-lock
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale_temporaries(ann_path: Path) -> None:
    """Temporaries of a saver killed mid-save (called under the exclusive lock, so none is live)."""
    stem = re.escape(ann_path.stem)
    pattern = re.compile(rf"^{stem}\.(hnsw|json)(\.\d+)?\.tmp$")
    for path in ann_path.parent.iterdir():
        if pattern.match(path.name):
            path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
