"""The derived vector side of a collection: a memory-mapped vector file plus an ANN backend.

Never the only copy: vectors live in SQLite. Two derived things are kept next to the store
(``<store>.ann/``), both rebuilt from SQLite whenever they cannot be trusted:

* the **vector file** ``vectors/<name>.*``: every vector, float32, written by
  :class:`nearspace.index.exact.ExactBackend` and opened as a read-only memory map, so opening
  a collection costs O(1) and only the pages a query scores are read. It is caught up from the
  change log before each search (new rows go to an in-memory tail, deleted ones are
  tombstoned), so rows committed by another process are visible at the next query.
* the **ANN backend** ``<name>.json`` / ``<name>.hnsw`` / ``<name>.rows.npy``: any backend of
  the :mod:`nearspace.index` registry, chosen by the collection's ``index`` option: ``auto``
  (exact below ``exact_threshold`` vectors, HNSW above), ``exact``, ``hnsw``, ``int8`` or
  ``binary`` (quantised scans with float rescoring). HNSW scores filtered subsets from the
  vector file instead of keeping a second float copy. Saved by ``flush``.

What a saved header must prove before its files are trusted (the [7/13] guarantees): the
collection id and dimension, the covered change sequence and that change's write-transaction
token as SQLite holds it (a restored backup or a commit lost to power failure reuses sequence
numbers, never tokens; a header claiming a change SQLite does not hold is stale), the live
count once caught up, and per file its size and CRC-32 (checked again whenever size or mtime
differ, so damage inside a file of the right size never reaches hnswlib). Anything that
disagrees means a rebuild from SQLite with a one-line warning. Saves and loads of one
collection's files are serialised between processes with ``flock``; every refresh compares the
last change's token, so a backup restored under a live process is reloaded.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nearspace.errors import InputError
from nearspace.index.base import IndexFileError, crc32_file, header_extra, read_header
from nearspace.store.sqlite.database import CollectionData
from nearspace.store.sqlite.derived import VECTOR_DIR, DerivedIndex, remove_stale_temporaries

#: below this many vectors exact search is fast enough (and exact)
EXACT_THRESHOLD = 20_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
#: None: the graph's own rule (nearspace.index.hnsw.auto_ef, which grows with the count)
HNSW_EF_SEARCH = None
#: the collection option ``index`` (``CollectionData.set_config(index=...)``)
INDEX_KINDS = ("auto", "exact", "hnsw", "int8", "binary")
#: the store compares unit vectors by inner product (= cosine); stored vectors are never renormalised
METRIC = "ip"

_crc32 = crc32_file  # one checksum for every derived file (benchmarks/durability.py times it)
log = logging.getLogger("nearspace")


def check_index_kind(kind: Any) -> str:
    if kind not in INDEX_KINDS:
        raise InputError(f"index must be one of {', '.join(INDEX_KINDS)}, got {kind!r}")
    return kind


def check_ef_search(ef_search: Any) -> int:
    if isinstance(ef_search, bool) or not isinstance(ef_search, (int, np.integer)) or not 1 <= ef_search <= 100_000:
        raise InputError(f"ef_search must be a whole number from 1 to 100000, got {ef_search!r}")
    return int(ef_search)


class _Stale(Exception):
    """A saved file SQLite does not vouch for (the message says why)."""


class VectorIndex(DerivedIndex):
    """Nearest-neighbour search over one collection's vectors (cosine on unit vectors)."""

    def __init__(self, data: CollectionData, ann_dir: Path, *, exact_threshold: int = EXACT_THRESHOLD,
                 ef_search: int | None = HNSW_EF_SEARCH, show_progress: bool = False, kind: str | None = None) -> None:
        super().__init__(data)
        self.ann_dir = Path(ann_dir)
        self.prefix = self.ann_dir / data.name  # the ANN backend: <name>.json, <name>.hnsw, ...
        self.ann_path = self.ann_dir / f"{data.name}.hnsw"
        self.vec_prefix = self.ann_dir / VECTOR_DIR / data.name  # the memory-mapped vector file
        self.exact_threshold = exact_threshold
        self.ef_search = ef_search
        self.show_progress = show_progress
        self.kind = check_index_kind(kind) if kind is not None else None  # None: the collection's option
        self.flat = None  # ExactBackend over the vector file (+ in-memory tail), rows = doc_rows
        self.flat_seq = -1  # the change the saved vector file covered when loaded (-1: built here)
        self.ann = None  # a nearspace.index backend, or None when the flat file is searched exactly
        self.ann_seq = -1
        self._matrix_cache: tuple | None = None
        self._seen: tuple | None = None  # (data_version, total_changes) at the last refresh
        # one Collection may be searched from several threads: refresh and graph walks
        # mutate shared state, so they run one at a time
        self._lock = threading.RLock()

    # -- what callers read ----------------------------------------------------------------
    @property
    def rows(self) -> np.ndarray:
        """Live doc_rows, sorted (``matrix`` is aligned with them)."""
        if self.flat is None:
            return np.zeros(0, dtype=np.int64)
        return self.flat._lookup()[0]

    @property
    def matrix(self) -> np.ndarray:
        """The vectors aligned with :attr:`rows`. Right after a load or rebuild this is the memory
        map itself (no copy); after catching up with writes it is gathered once and cached until
        the next change. Prefer :meth:`vectors_for` for a few rows."""
        flat = self.flat
        if flat is None:
            return np.zeros((0, self.data.dim), dtype=np.float32)
        keys, slots = flat._lookup()
        if flat.used == flat.nbase and flat.all_live() and (len(slots) == 0 or (slots == np.arange(len(slots))).all()):
            return flat.base[:flat.nbase]
        key = (id(flat), self.covered_seq, self.covered_token)
        if self._matrix_cache is None or self._matrix_cache[0] != key:
            self._matrix_cache = (key, flat.gather(slots))
        return self._matrix_cache[1]

    @property
    def hnsw(self):
        """The hnswlib graph in use, or None (kept for callers of the [7/13] API)."""
        return getattr(self.ann, "_index", None) if self.ann is not None and self.ann.kind == "hnsw" else None

    @property
    def hnsw_seq(self) -> int:
        return self.ann_seq

    def vectors_for(self, rows: Any, *, missing_as_zero: bool = False) -> np.ndarray:
        """Vectors of ``rows`` (doc_rows, any order); KeyError for one not held, or a zero
        vector with ``missing_as_zero`` (a hit deleted since the search that found it)."""
        with self._lock:
            self.refresh()
            if not missing_as_zero:
                return self.flat.get(rows)
            rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            out = np.zeros((len(rows), self.data.dim), dtype=np.float32)
            held = np.isin(rows, self.rows)
            if held.any():
                out[held] = self.flat.get(rows[held])
            return out

    # -- keeping up with SQLite ---------------------------------------------------------
    def refresh(self) -> None:
        """Bring the vector file (and the ANN backend) up to the last committed change.

        Everything is read inside one read transaction, so a commit landing meanwhile is
        either wholly seen or wholly left for the next refresh, never applied twice.
        """
        with self._lock:
            # nothing committed anywhere since the last refresh (another connection's commit moves
            # data_version, this connection's writes move total_changes): one pragma, no transaction
            conn = self.data.conn
            with self.data.db.lock:
                state = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
            if self.flat is not None and state == self._seen:
                return
            self._refresh()
            if self.ann is not None and self.ann.kind == "hnsw":
                # the stored breadth may have been changed by another Collection or process
                with self.data.db.lock:
                    self.ann.ef_search = self._ef_search()
            self._seen = state

    def _refresh(self) -> None:
        with self.data.db.snapshot():
            plan, last, token = self.catch_up_plan(built=self.flat is not None)
            if plan == "current":
                return
            if plan == "apply":
                self._apply(*self.changes())
            else:
                self.ann = None  # it followed the old history: reload (checked) or rebuild
                self.covered(last, token)
                self._open_flat(last)
            self.covered(last, token)
            self._sync_ann()

    def _wanted(self) -> str:
        kind = self.kind
        if kind is None:
            kind = self.data.config().get("index") or "auto"
            kind = kind if kind in INDEX_KINDS else "auto"
        if kind == "auto":
            return "hnsw" if len(self.flat) >= self.exact_threshold else "exact"
        return kind

    def _apply(self, touched: np.ndarray, added: list[int]) -> None:
        """Rows ``touched`` since the covered change leave; the live ``added`` ones come back."""
        gone = touched[~np.isin(touched, added)] if len(added) else touched
        if len(gone):
            self.flat.remove(gone)
            if self.ann is not None:
                self.ann.remove(gone)
        if added:
            new_rows, new_vectors = self.data.vectors_for_rows(added)
            self.flat.add(new_rows, new_vectors)
            if self.ann is not None:
                self.ann.add(new_rows, new_vectors)

    # -- the vector file ------------------------------------------------------------------
    def _open_flat(self, last: int) -> None:
        from nearspace.index.exact import ExactBackend

        flat, problem = None, None
        if Path(f"{self.vec_prefix}.json").exists():
            try:
                with _file_lock(self._lock_path(), shared=True):
                    header = read_header(self.vec_prefix)
                    seq = self._check_header(header, "exact")
                    flat = ExactBackend.load(self.vec_prefix, header)
                self.flat, self.flat_seq = flat, seq
                self._apply(*self.changes(since=seq))  # from the saved file's change
                if len(flat) != self.data.count():
                    raise _Stale(f"holds {len(flat)} vectors after catching up, SQLite {self.data.count()}")
                return
            except _Stale as exc:
                problem = str(exc)
            except IndexFileError as exc:
                problem = str(exc)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problem = f"unreadable ({type(exc).__name__}: {exc})"
            log.warning("nearspace: rebuilding the vector file of %r from SQLite: %s", self.data.name, problem)
        rows, matrix = self.data.vectors()
        self.flat = ExactBackend.from_arrays(rows, matrix, METRIC)
        self.flat_seq = -1
        if len(rows):
            # written at once (not only at flush): the next process opens it in O(1)
            self._save_flat(quiet=True)

    def _save_flat(self, *, quiet: bool = False) -> None:
        extra = self.proof()
        try:
            from nearspace.index.exact import ExactBackend

            with _file_lock(self._lock_path(), shared=False):
                remove_stale_temporaries(self.ann_path)
                header = self.flat.save(self.vec_prefix, extra=extra)
                # from now on read through the memory map: the vectors leave this process's heap
                self.flat = ExactBackend.load(self.vec_prefix, header)
            self.flat_seq = self.covered_seq
            if self.ann is not None:
                self._attach(self.ann)
        except OSError as exc:  # a read-only store still searches; the next writer saves
            if not quiet:
                raise
            log.debug("nearspace: could not save the vector file of %r: %s", self.data.name, exc)

    # -- the ANN backend ------------------------------------------------------------------
    def _sync_ann(self) -> None:
        wanted = self._wanted()
        if wanted == "exact":
            self.ann = None
            return
        if self.ann is not None and self.ann.kind == wanted:
            if len(self.ann) != len(self.flat):  # the row count SQLite holds must be the graph's too
                log.warning("nearspace: rebuilding the vector index of %r from SQLite: graph holds %d "
                            "documents, SQLite %d", self.data.name, len(self.ann), len(self.flat))
                self._build_ann(wanted)
            return
        if not self._load_ann(wanted):
            self._build_ann(wanted)

    def _options(self, kind: str) -> dict[str, Any]:
        if kind == "hnsw":
            return {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": self.ef_search,
                    "brute_limit": self.exact_threshold, "float_copy": False}
        if kind in ("int8", "binary"):  # rescored from the vector file: no second float copy
            return {"float_copy": False}
        return {}

    def _attach(self, backend) -> None:
        if not getattr(backend, "float_copy", True):
            backend.attach_flat(self.flat)
        if backend.kind == "hnsw":
            backend.ef_search = self._ef_search()

    def _ef_search(self) -> int | None:
        """The breadth given to this index, else the collection's stored option, else None (auto)."""
        if self.ef_search is not None:
            return self.ef_search
        stored = self.data.config().get("ef_search")
        return int(stored) if isinstance(stored, int) and stored > 0 else None

    def _load_ann(self, kind: str) -> bool:
        from nearspace import index

        if not Path(f"{self.prefix}.json").exists():
            return False
        try:
            # shared lock: a saver in another process cannot swap files and header between our
            # checks and the backend's read (a pair from two saves would fail the checksum anyway)
            with _file_lock(self._lock_path(), shared=True):
                header = read_header(self.prefix)
                if header.get("kind") != kind:
                    return False  # another kind was saved: build the one asked for
                seq = self._check_header(header, kind)
                backend = index.backend_class(kind).load(self.prefix, header)
            self._attach(backend)
            touched, added = self.changes(since=seq)
            deleted = touched[~np.isin(touched, added)] if added else touched
            if len(deleted):
                backend.remove(deleted)
            if added:  # from the vector file, already caught up: no second read of SQLite
                held = self.flat.slots_of(np.asarray(added, dtype=np.int64))
                rows = self.flat.slot_rows[held]
                backend.add(rows, self.flat.gather(held))
            if len(backend) != len(self.flat):
                raise _Stale(f"holds {len(backend)} documents after catching up, SQLite {len(self.flat)}")
            self.ann, self.ann_seq = backend, self.covered_seq
            return True
        except _Stale as exc:
            problem = str(exc)
        except IndexFileError as exc:
            problem = str(exc)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, AttributeError) as exc:
            problem = f"unreadable ({type(exc).__name__})"
        log.warning("nearspace: rebuilding the vector index of %r from SQLite: saved index %s",
                    self.data.name, problem)
        return False

    def _build_ann(self, kind: str) -> None:
        from nearspace import index

        backend = index.create(kind, self.data.dim, METRIC, **self._options(kind))
        self._attach(backend)
        live = np.flatnonzero(self.flat.alive[:self.flat.used])
        chunk = 10_000
        progress = task = None
        if self.show_progress and len(live) > chunk:
            from nearspace.progress import progress_bar

            progress = progress_bar(transient=True)
            progress.start()
            task = progress.add_task(f"building {kind} index", total=len(live))
        try:
            for start in range(0, len(live), chunk):
                slots = live[start:start + chunk]
                backend.add(self.flat.slot_rows[slots], self.flat.gather(slots))
                if progress is not None:
                    progress.advance(task, len(slots))
        finally:
            if progress is not None:
                progress.stop()
        self.ann, self.ann_seq = backend, self.covered_seq

    def _check_header(self, header: dict[str, Any], kind: str) -> int:
        """The change sequence a saved header covers, once SQLite confirms it; raises _Stale."""
        covers = header_extra(header)
        if covers is None:
            raise _Stale("has a header that disagrees with itself")
        if header.get("kind") != kind or header.get("dim") != self.data.dim:
            raise _Stale("belongs to another kind of index or dimension")
        try:
            seq = int(covers["seq"])
        except (KeyError, TypeError, ValueError):
            raise _Stale("names no change sequence") from None
        problem = self.vouch(covers.get("collection_id"), seq, covers.get("token"))
        if problem is not None:
            raise _Stale(problem)
        return seq

    def _lock_path(self) -> Path:
        return self.ann_dir / f"{self.data.name}.lock"

    # -- saving ---------------------------------------------------------------------------
    def save(self) -> bool:
        """Persist the derived files atomically: the vector file when it is behind, and the ANN
        backend; returns False when there is no ANN backend to save (exact search)."""
        with self._lock:
            self.refresh()
            self.ann_dir.mkdir(parents=True, exist_ok=True)
            # the vector file is rewritten when it is missing or a twentieth of it has changed
            # since: a few new rows are read back from SQLite on open more cheaply than a
            # rewrite of every vector at each flush
            changed = (self.flat.used - self.flat.nbase) + (self.flat.used - len(self.flat))
            if self.flat_seq < 0 or (self.flat_seq != self.covered_seq and changed * 20 >= max(len(self.flat), 1)):
                self._save_flat()
            if self.ann is None:
                return False
            return self._save_locked()

    def _save_locked(self) -> bool:
        assert self.ann is not None
        # read from SQLite before taking the file lock, never under it: a thread loading the graph
        # holds the store's connection while it waits for that lock (lock order: connection, file)
        extra = self.proof()
        # several processes may flush one collection: one saver at a time, each with its own
        # temporary names (two sharing one name moved each other's half-written files)
        with _file_lock(self._lock_path(), shared=False):
            remove_stale_temporaries(self.ann_path)
            self.ann.save(self.prefix, extra=extra)
        self.ann_seq = self.covered_seq
        return True

    def compact(self) -> bool:
        """Give back the space deleted rows hold in the derived files: the vector file is
        rewritten with live rows only, and an HNSW graph holding more than a tenth of deleted
        nodes (hnswlib only marks them) is rebuilt. Returns True when anything was rewritten."""
        with self._lock:
            self.refresh()
            changed = False
            if self.flat_seq != self.covered_seq or self.flat.used != len(self.flat):
                self._save_flat()
                changed = True
            graph = self.hnsw
            if graph is not None and (graph.get_current_count() - len(self.ann)) * 10 > len(self.ann):
                self._build_ann("hnsw")
                changed = True
            if self.ann is not None and (changed or self.ann_seq != self.covered_seq):
                self._save_locked()
            return changed

    # -- search -----------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """``[(doc_row, cosine)]`` best first; ``allowed`` (sorted doc_rows) restricts the search."""
        with self._lock:
            return self._search_locked(query, k, allowed)

    def _search_locked(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        self.refresh()
        if len(self.flat) == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        # an HNSW backend scores mid-sized filtered subsets from int8 codes itself (COARSE_MIN)
        backend = self.ann if self.ann is not None else self.flat
        rows, scores = backend.search(query, k, allowed)
        return list(zip(rows[0].tolist(), scores[0].tolist()))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self.refresh()
            backend = self.ann if self.ann is not None else self.flat
            return {"count": len(self.flat), **backend.stats(), "vector_file": str(self.vec_prefix)}


@contextmanager
def _file_lock(path: Path, *, shared: bool) -> Iterator[None]:
    """An advisory lock between processes (flock); a no-op where fcntl is missing (Windows),
    where the checksum still refuses a mixed set of files."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    if shared and not path.exists():  # nothing has been saved with a lock yet; don't create files
        yield                         # in a directory a reader may not own
        return
    if not shared:
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "rb" if shared else "a+b") as handle:  # a read-only store can still share-lock
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
