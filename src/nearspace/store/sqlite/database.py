"""SQLite schema and atomic batch writes for named collections.

One transaction per batch is the commit point: documents, vectors, the metadata index
and the change log are written together or not at all, so a process killed at any moment
leaves the last committed state (WAL mode). Keyword search is nearspace's own BM25
(``store/sqlite/keywords.py``), a derived index that catches up from the change log; schema v4
dropped the FTS5 tables that earlier versions wrote on every write and no search read.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from nearspace.errors import CollectionNotFound, EncoderMismatch, InputError, StoreError
from nearspace.store.base import check_against_stored, check_batch
from nearspace.store.filters import compile_where, flatten_metadata, index_columns
from nearspace.types import Document, content_hash

#: metadata filters whose matches each CollectionData keeps until the database changes
FILTER_CACHE = 16
#: WAL bytes past which the writer checkpoints inline (below it, a background thread does)
WAL_LIMIT = 128 * 1024 * 1024
#: a background checkpoint thread with nothing to do for this long exits
IDLE_SECONDS = 30.0
#: WAL bytes SQLite keeps on disk once the WAL restarts (journal_size_limit); a checkpoint that
#: copied everything truncates a larger WAL at once
WAL_KEEP = 16 * 1024 * 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have how i if in into is it its of on or s such "
    "t that the their then there these they this to was were what when where which who why will "
    "with do does did can could should would may might not no nor so than too very".split()
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    encoder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS docs(
    doc_row INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id),
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE(collection_id, doc_id)
);
CREATE TABLE IF NOT EXISTS meta_index(
    doc INTEGER NOT NULL,
    collection_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    num REAL,
    str TEXT
);
CREATE INDEX IF NOT EXISTS meta_by_str ON meta_index(collection_id, key, str, doc);
CREATE INDEX IF NOT EXISTS meta_by_num ON meta_index(collection_id, key, num, doc);
CREATE INDEX IF NOT EXISTS meta_by_doc ON meta_index(doc);
CREATE TABLE IF NOT EXISTS changes(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL,
    doc INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'del')),
    txn INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS changes_by_collection ON changes(collection_id, seq);
CREATE TABLE IF NOT EXISTS files(
    collection_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    doc_ids TEXT NOT NULL,
    PRIMARY KEY (collection_id, path)
);
CREATE TABLE IF NOT EXISTS artifacts(
    collection_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    version INTEGER NOT NULL,
    PRIMARY KEY (collection_id, name)
);
"""


def keyword_query(query: str) -> str:
    """Turn free text into an FTS5 OR-query of its non-stopword terms.

    A term the query repeats is repeated in the MATCH expression: FTS5's bm25() sums over
    the query's phrases, so this keeps BM25's query term frequency. Paragraph-length queries
    say what matters by repeating it (LISA nDCG@10 0.393 -> 0.462, CACM 0.448 -> 0.501).
    """
    # single characters (initials, list markers) match almost everything and mean little
    terms = [term for term in re.findall(r"\w+", query.lower()) if term not in _STOPWORDS and len(term) > 1]
    return " OR ".join(f'"{t}"' for t in terms)


def _connect(path: Path) -> sqlite3.Connection:
    from nearspace.store.sqlite.connection import connect  # OS/SQLite failures become nearspace errors

    synchronous = _synchronous()
    conn = connect(path, isolation_level=None, timeout=60.0, check_same_thread=False)
    from nearspace.store.sqlite.schema import refuse_newer

    try:
        refuse_newer(conn, f"store {path}")  # before the journal mode below rewrites the header
    except BaseException:
        conn.close()
        raise
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL: a killed process loses no commit; a power loss may drop the last few, which the
    # derived index detects by change token (vectors.py). FULL also keeps those acknowledged
    # commits at ~3x the time of a one-document commit (benchmarks/durability.py; batches ~1x).
    conn.execute(f"PRAGMA synchronous={synchronous}")
    # a 64 MiB page cache (SQLite's default is 2 MiB, grown only as pages are used): a 10k-row
    # delete or a large batch dirties thousands of pages, which a small cache spills to the WAL
    # mid-transaction (a 10% delete at 50k rows: 0.47 s -> 0.20 s of statements)
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA foreign_keys=ON")
    # no checkpoint inside COMMIT: a write that pushed the WAL past SQLite's 1000-page default
    # used to copy it into the main file before returning (0.15-0.2 s of a 10k-row delete);
    # the Database's Checkpointer does that copy on another thread (and core) instead
    conn.execute("PRAGMA wal_autocheckpoint=0")
    # a restarted WAL is cut back to this size (SQLite otherwise keeps its largest size forever)
    conn.execute(f"PRAGMA journal_size_limit={WAL_KEEP}")
    return conn


class Checkpointer:
    """Copies the WAL back into the main file on a background thread, after commits.

    SQLite's own automatic checkpoint runs inside the ``COMMIT`` that crosses its threshold,
    so one unlucky write pays for copying every earlier write's pages. Here a commit only
    looks at the WAL's size; past :attr:`threshold` bytes it wakes a daemon thread that runs
    ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection (SQLite releases the GIL while it
    copies; PASSIVE never blocks readers or writers, so a busy store is checkpointed a little
    later, not stalled). A checkpoint is crash-safe by SQLite's design: the WAL stays valid
    until the copy is complete. When a pass copied everything and the WAL is still larger than
    :data:`WAL_KEEP` (one big transaction, such as a 100k-row delete, leaves hundreds of MB),
    it truncates the WAL too, if no reader holds an older snapshot; SQLite would otherwise
    keep that size on disk until the next write. :meth:`close` waits for a running copy and
    stops the thread.
    """

    def __init__(self, path: Path, threshold: int = 1000 * 4096, inline_limit: int = WAL_LIMIT,
                 keep: int = WAL_KEEP) -> None:
        self.path, self.wal, self.threshold = path, Path(f"{path}-wal"), int(threshold)
        self.inline_limit, self.keep = int(inline_limit), int(keep)
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.runs = 0  # completed checkpoints (for tests and benchmarks)

    def after_commit(self, conn: sqlite3.Connection) -> None:
        """Called by the writer after a commit, still holding its lock."""
        try:
            size = self.wal.stat().st_size
        except OSError:  # no WAL (another connection checkpointed and removed it)
            return
        if size < self.threshold:
            return
        if size >= self.inline_limit:
            # Under back-to-back writes a background pass always lags the writer, so the WAL
            # would never be wholly copied and SQLite would never restart it (it grew to 8 GB
            # during a 1M-row ingest). Past the limit the writer copies inline, as SQLite's own
            # autocheckpoint would, and the next write starts the WAL from its beginning.
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                return
            except Exception:  # busy: the background pass holds the checkpoint; it continues
                pass
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            if self._stop:
                return
            self._pid = os.getpid()  # a forked child gets its own thread
            self._thread = threading.Thread(target=self._run, name=f"nearspace-checkpoint {self.path.name}",
                                            daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        conn = None
        try:
            conn = sqlite3.connect(str(self.path), timeout=0.1, check_same_thread=False)  # 100 ms busy wait
            while True:
                # an idle thread ends (a Store dropped without close() must not leave one behind);
                # the next commit past the threshold starts another
                if not self._wake.wait(timeout=IDLE_SECONDS):
                    return
                self._wake.clear()
                if self._stop:
                    return
                try:
                    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                    if not busy and frames == copied and self.wal.stat().st_size > self.keep:
                        # waits at most the 100 ms busy timeout for readers of an older snapshot
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                except (sqlite3.Error, OSError):  # busy, read-only or no WAL: the next commit asks again
                    pass
        except sqlite3.Error:
            return
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join()


def _synchronous() -> str:
    value = (os.environ.get("NEARSPACE_SYNCHRONOUS") or "NORMAL").upper()
    if value not in ("NORMAL", "FULL", "EXTRA"):
        raise InputError(f"NEARSPACE_SYNCHRONOUS must be NORMAL, FULL or EXTRA, got {value!r}")
    return value


class Database:
    """One SQLite file holding any number of named collections."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory; give a file path such as {self.path / 'nearspace.db'}")
        parent = self.path.parent
        if not parent.exists():
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store's folder {parent}: {exc.strerror or exc}") from exc
        try:
            self.conn = _connect(self.path)
            self.checkpointer = Checkpointer(self.path)
            self.conn.checkpointer = self.checkpointer
            # one lock per connection: a Store shared by threads runs one transaction at a time
            # (sqlite3 would otherwise interleave their BEGIN/COMMIT on the same connection)
            self.lock = threading.RLock()
            self.conn.lock = self.lock
            from nearspace.store.sqlite import schema  # version check and migrations, one transaction

            schema.ensure(self.conn, list(filter(str.strip, _SCHEMA.split(";"))), where=f"store {self.path}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {_describe(exc)}") from exc

    def close(self) -> None:
        self.checkpointer.close()
        self.conn.close()

    # -- transactions ---------------------------------------------------------------
    def transaction(self) -> "_Transaction":
        return _Transaction(self.conn, self.lock)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        with self.lock:
            if self.conn.in_transaction:  # already inside a write: that is our snapshot
                yield self.conn
                return
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    def vacuum(self) -> None:
        """Give the space of deleted rows back to the file system (the WAL truncated around it)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM wrote the copy through the WAL

    # -- collections ----------------------------------------------------------------
    def collection_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM collections ORDER BY name")]

    def collection(self, name: str, *, encoder: str | None = None, dim: int | None = None,
                   create: bool = False) -> "CollectionData":
        """Open collection ``name``; with ``create=True`` make it (encoder and dim required).

        An existing collection refuses an encoder or dimension other than its own.
        """
        row = self.conn.execute("SELECT id, encoder, dim FROM collections WHERE name = ?", (name,)).fetchone()
        if row is None:
            if not create:
                known = ", ".join(self.collection_names()) or "none yet"
                raise CollectionNotFound(f"unknown collection {name!r} in {self.path} (collections: {known})")
            if not _NAME_RE.match(name):
                raise InputError(f"invalid collection name {name!r}: use letters, digits, '_', '-', '.' (max 64)")
            if encoder is None or dim is None or dim <= 0:
                raise InputError("creating a collection needs an encoder name and a positive dimension")
            try:
                with self.transaction():
                    cur = self.conn.execute(
                        "INSERT INTO collections(name, encoder, dim, created) VALUES (?, ?, ?, ?)",
                        (name, encoder, dim, time.time()))
                    cid = int(cur.lastrowid)
            except sqlite3.IntegrityError:  # another process created it first
                return self.collection(name, encoder=encoder, dim=dim, create=False)
            except sqlite3.OperationalError as exc:
                raise StoreError(f"cannot write to store {self.path}: {_describe(exc)}") from exc
            return CollectionData(self, cid, name, encoder, dim)
        cid, stored_encoder, stored_dim = row
        if encoder is not None and encoder != stored_encoder:
            raise EncoderMismatch(f"collection {name!r} was built with encoder {stored_encoder!r} "
                                  f"(dim {stored_dim}); refusing encoder {encoder!r}")
        if dim is not None and dim != stored_dim:
            raise EncoderMismatch(f"collection {name!r} holds {stored_dim}-dimensional vectors; "
                                  f"refusing an encoder of dimension {dim}")
        return CollectionData(self, cid, name, stored_encoder, stored_dim)

    def drop_collection(self, name: str) -> None:
        data = self.collection(name)
        with self.transaction():
            self._delete_collection_rows(data.cid)

    def _delete_collection_rows(self, cid: int) -> None:
        for table in ("meta_index", "changes", "artifacts", "files", "docs"):
            self.conn.execute(f"DELETE FROM {table} WHERE collection_id = ?", (cid,))
        self.conn.execute("DELETE FROM collections WHERE id = ?", (cid,))

    def rename_collection(self, old: str, new: str, *, replace: bool = False) -> None:
        """Give collection ``old`` the name ``new``; with ``replace``, the collection called
        ``new`` is dropped in the same transaction (readers see one or the other, whole)."""
        source = self.collection(old)
        with self.transaction():
            row = self.conn.execute("SELECT id FROM collections WHERE name = ?", (new,)).fetchone()
            if row is not None:
                if not replace:
                    raise InputError(f"collection {new!r} already exists")
                self._delete_collection_rows(int(row[0]))
            self.conn.execute("UPDATE collections SET name = ? WHERE id = ?", (new, source.cid))


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception.

    Holds the connection's lock for its whole length, and gives the change-log rows it
    writes a fresh random token (``conn.txn_token``) that no other transaction shares.
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self.conn = conn
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        self.conn.txn_token = secrets.randbits(62) or 1
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                except BaseException:  # e.g. disk full at commit: leave no transaction open
                    self._rollback()
                    raise
                if self.conn.checkpointer is not None:
                    self.conn.checkpointer.after_commit(self.conn)
            else:
                self._rollback()
        finally:
            self.lock.release()

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:  # SQLite may already have rolled back (disk full)
                self.conn.execute("ROLLBACK")
        except Exception:  # the error that got us here says more than a failed rollback
            pass


def _describe(exc: Exception) -> str:
    message = str(exc)
    if "file is not a database" in message:
        return "the file exists but is not a SQLite database"
    if "readonly" in message or "unable to open" in message:
        return f"{message} (check that the path is writable)"
    return message


class CollectionData:
    """Documents, vectors and keyword index of one collection (no encoder involved)."""

    def __init__(self, db: Database, cid: int, name: str, encoder: str, dim: int) -> None:
        self.db, self.cid, self.name, self.encoder, self.dim = db, cid, name, encoder, dim

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    # -- config ---------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        row = self.conn.execute("SELECT config FROM collections WHERE id = ?", (self.cid,)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_config(self, **values: Any) -> dict[str, Any]:
        with self.db.transaction():
            config = self.config()
            config.update(values)
            self.conn.execute("UPDATE collections SET config = ? WHERE id = ?", (json.dumps(config), self.cid))
        return config

    # -- artifacts: learned models stored with the collection -------------------------
    def put_artifact(self, name: str, value: bytes, meta: dict[str, Any]) -> None:
        with self.db.transaction():
            self.conn.execute(
                "INSERT INTO artifacts(collection_id, name, value, meta, version) VALUES (?, ?, ?, ?, "
                "coalesce((SELECT max(version) FROM artifacts), 0) + 1) "
                "ON CONFLICT(collection_id, name) DO UPDATE SET value = excluded.value, "
                "meta = excluded.meta, version = excluded.version",
                (self.cid, name, value, json.dumps(meta)))

    def artifact_version(self, name: str) -> int | None:
        row = self.conn.execute("SELECT version FROM artifacts WHERE collection_id = ? AND name = ?",
                                (self.cid, name)).fetchone()
        return row[0] if row else None

    def get_artifact(self, name: str) -> tuple[bytes, dict[str, Any]] | None:
        row = self.conn.execute("SELECT value, meta FROM artifacts WHERE collection_id = ? AND name = ?",
                                (self.cid, name)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def delete_artifact(self, name: str) -> bool:
        with self.db.transaction():
            cur = self.conn.execute("DELETE FROM artifacts WHERE collection_id = ? AND name = ?", (self.cid, name))
        return cur.rowcount > 0

    def rows_for_ids(self, ids: Sequence[str]) -> dict[str, int]:
        """id -> doc_row for those ``ids`` that are stored."""
        out: dict[str, int] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            out.update(self.conn.execute(
                f"SELECT doc_id, doc_row FROM docs WHERE collection_id = ? AND doc_id IN ({marks})",
                (self.cid, *chunk)))
        return out

    def id_map(self, rows: Sequence[int]) -> dict[int, str]:
        """doc_row -> id for those ``rows`` that are stored (search hits leave the store by id)."""
        out: dict[int, str] = {}
        for chunk in _chunks(list(rows), 500):
            out.update(self.conn.execute(
                f"SELECT doc_row, doc_id FROM docs WHERE doc_row IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def ids_for_rows(self, rows: Sequence[int]) -> list[str]:
        """The ids of ``rows`` in their order (rows no longer stored left out)."""
        found = self.id_map(rows)
        return [found[r] for r in rows if r in found]

    def row_ids(self) -> dict[int, str]:
        """doc_row -> id for the whole collection (evaluation maps rows to ids in bulk)."""
        return dict(self.conn.execute("SELECT doc_row, doc_id FROM docs WHERE collection_id = ?", (self.cid,)))

    # -- reads ----------------------------------------------------------------------
    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM docs WHERE collection_id = ?", (self.cid,)).fetchone()[0]

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """Content hashes of those ``ids`` that are stored."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            out.update(self.conn.execute(
                f"SELECT doc_id, hash FROM docs WHERE collection_id = ? AND doc_id IN ({marks})",
                (self.cid, *chunk)))
        return out

    def get(self, ids: Sequence[str]) -> list[Document | None]:
        """Documents in the order of ``ids`` (None where an id is not stored)."""
        found: dict[str, Document] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            for doc_id, title, text, meta in self.conn.execute(
                    f"SELECT doc_id, title, text, metadata FROM docs WHERE collection_id = ? AND doc_id IN ({marks})",
                    (self.cid, *chunk)):
                found[doc_id] = Document(doc_id, text, json.loads(meta), title)
        return [found.get(i) for i in ids]

    def rows_to_documents(self, rows: Sequence[int]) -> dict[int, Document]:
        """Documents by doc_row (this runs once per search: kept lean)."""
        out: dict[int, Document] = {}
        rows = list(rows)
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            sql = f"SELECT doc_row, doc_id, title, text, metadata FROM docs WHERE doc_row IN ({','.join('?' * len(chunk))})"
            for row, doc_id, title, text, meta in self.conn.execute(sql, chunk):
                out[row] = Document(doc_id, text, {} if meta == "{}" else json.loads(meta), title)
        return out

    def ids(self) -> Iterator[str]:
        for (doc_id,) in self.conn.execute("SELECT doc_id FROM docs WHERE collection_id = ? ORDER BY doc_row", (self.cid,)):
            yield doc_id

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(doc_rows, matrix)`` of every stored vector, ordered by doc_row."""
        rows, blobs = [], []
        for row, blob in self.conn.execute(
                "SELECT doc_row, vector FROM docs WHERE collection_id = ? ORDER BY doc_row", (self.cid,)):
            rows.append(row)
            blobs.append(blob)
        return _unpack(rows, blobs, self.dim)

    def vectors_for_rows(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        got_rows, blobs = [], []
        for chunk in _chunks(sorted(rows), 500):
            marks = ",".join("?" * len(chunk))
            for row, blob in self.conn.execute(
                    f"SELECT doc_row, vector FROM docs WHERE doc_row IN ({marks}) ORDER BY doc_row", chunk):
                got_rows.append(row)
                blobs.append(blob)
        return _unpack(got_rows, blobs, self.dim)

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT max(seq) FROM changes WHERE collection_id = ?", (self.cid,)).fetchone()
        return int(row[0] or 0)

    def last_change(self) -> tuple[int, int | None]:
        """``(seq, token)`` of the last change (``(0, None)`` when there is none): the token tells
        a reader whether the history it caught up with is still the one SQLite holds."""
        row = self.conn.execute("SELECT seq, txn FROM changes WHERE collection_id = ? ORDER BY seq DESC LIMIT 1",
                                (self.cid,)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, None)

    def change_token(self, seq: int) -> int | None:
        """The write-transaction token of change ``seq`` (None when SQLite holds no such change)."""
        row = self.conn.execute("SELECT txn FROM changes WHERE collection_id = ? AND seq = ?",
                                (self.cid, seq)).fetchone()
        return int(row[0]) if row else None

    def changes_since(self, seq: int) -> list[tuple[int, int, str]]:
        return list(self.conn.execute(
            "SELECT seq, doc, op FROM changes WHERE collection_id = ? AND seq > ? ORDER BY seq", (self.cid, seq)))

    def first_seq(self) -> int:
        row = self.conn.execute("SELECT min(seq) FROM changes WHERE collection_id = ?", (self.cid,)).fetchone()
        return int(row[0] or 0)

    def filter_rows(self, where: dict[str, Any]) -> np.ndarray:
        """Sorted doc_rows matching a metadata filter, found through the meta_index indexes.

        The last few filters' matches are kept (read-only) until the database changes: SQLite's
        ``data_version`` moves with every commit of another connection and ``total_changes`` with
        every write of this one, so a repeated filter (a facet, a page of results) costs one pragma
        instead of re-reading thousands of index entries.
        """
        try:
            key = json.dumps(where, sort_keys=True)
        except (TypeError, ValueError, RecursionError):  # nested past json's limit: refused below
            key = None  # compile_where below says what is wrong with it
        with self.db.lock:
            state = (self.conn.execute("PRAGMA data_version").fetchone()[0], self.conn.total_changes)
            cache = self.__dict__.setdefault("_filter_cache", {})
            hit = cache.get(key) if key is not None else None
            if hit is not None and hit[0] == state:
                return hit[1]
            rows = self._filter_rows(where)
            if key is not None:
                rows.flags.writeable = False
                cache.pop(key, None)
                cache[key] = (state, rows)
                while len(cache) > FILTER_CACHE:
                    cache.pop(next(iter(cache)))
            return rows

    def _filter_rows(self, where: dict[str, Any]) -> np.ndarray:
        sql, params = compile_where(where, self.cid)
        # one concatenated string instead of a Python row object per match: ~10x faster at 10k rows
        (joined,) = self.conn.execute(f"WITH matched(r) AS ({sql}) SELECT group_concat(r) FROM matched", params).fetchone()
        if not joined:
            return np.zeros(0, dtype=np.int64)
        rows = np.fromstring(joined, dtype=np.int64, sep=",")  # text mode: parses in C, no list of str
        if len(rows) > 1 and not (rows[1:] > rows[:-1]).all():  # an equality match comes sorted already
            rows = np.unique(rows)
        return rows

    # -- writes ---------------------------------------------------------------------
    def write(self, docs: Sequence[Document], vectors: np.ndarray, *, replace: bool,
              also: Callable[[], None] | None = None,
              encoded: Sequence[bool] | np.ndarray | None = None) -> dict[str, int]:
        """Insert (or with ``replace`` upsert) a batch in one transaction.

        ``also`` runs inside the same transaction after the documents are written (the
        folder indexer records its file bookkeeping there, so both commit or neither does).

        ``encoded`` marks which rows of ``vectors`` are real; the others are placeholders for
        documents the caller believed unchanged. The stored hashes are compared again inside
        the transaction, and if any such document is in fact new or changed (another process
        wrote it meanwhile) nothing is written and :class:`NeedVectors` names the positions
        to encode before retrying: no path stores a vector that does not belong to its text.

        Returns counts: ``added``, ``updated`` (content changed, new vector),
        ``metadata`` (only metadata changed), ``unchanged``.
        """
        vectors = check_batch(self.name, self.dim, docs, vectors)
        counts = {"added": 0, "updated": 0, "metadata": 0, "unchanged": 0}
        with self.db.transaction() as conn:
            existing = self._existing([d.id for d in docs])
            check_against_stored(self.name, docs, {i: row[1] for i, row in existing.items()}, encoded,
                                 replace=replace)
            # metadata entries and change rows of inserted documents are written by one executemany
            # each, flushed before anything that deletes or rewrites (so the change log keeps the
            # exact order of the one-statement-per-row version)
            token = _token(conn)
            pending_meta: list[tuple] = []
            pending_changes: list[tuple] = []

            def flush_pending() -> None:
                if pending_meta:
                    conn.executemany("INSERT INTO meta_index(doc, collection_id, key, num, str) "
                                     "VALUES (?, ?, ?, ?, ?)", pending_meta)
                    pending_meta.clear()
                if pending_changes:
                    conn.executemany("INSERT INTO changes(collection_id, doc, op, txn) VALUES (?, ?, 'add', ?)",
                                     pending_changes)
                    pending_changes.clear()

            for doc, vector in zip(docs, vectors):
                digest = content_hash(doc.title, doc.text)
                meta_json = json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True)
                old = existing.get(doc.id)
                if old is not None:
                    old_row, old_hash, old_meta, old_title, old_text = old
                    if old_hash == digest:
                        if old_meta == meta_json:
                            counts["unchanged"] += 1
                        else:
                            flush_pending()
                            conn.execute("UPDATE docs SET metadata = ? WHERE doc_row = ?", (meta_json, old_row))
                            conn.execute("DELETE FROM meta_index WHERE doc = ?", (old_row,))
                            self._index_metadata(old_row, doc.metadata)
                            counts["metadata"] += 1
                        continue
                    flush_pending()
                    self._delete_row(old_row, old_title, old_text)
                    counts["updated"] += 1
                else:
                    counts["added"] += 1
                cur = conn.execute(
                    "INSERT INTO docs(collection_id, doc_id, title, text, metadata, hash, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.cid, doc.id, doc.title, doc.text, meta_json, digest, vector.tobytes()))
                row = int(cur.lastrowid)
                pending_meta.extend(self._metadata_entries(row, doc.metadata))
                pending_changes.append((self.cid, row, token))
                existing[doc.id] = (row, digest, meta_json, doc.title, doc.text)
            flush_pending()
            if also is not None:
                also()
        return counts

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id in one transaction; returns how many existed."""
        with self.db.transaction():
            return self.delete_in_transaction(ids)

    def delete_in_transaction(self, ids: Sequence[str]) -> int:
        """Delete by id inside a transaction the caller holds."""
        found = []  # (doc_row, title, text): all a delete needs (hash and metadata are not read)
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            found.extend(self.conn.execute(
                f"SELECT doc_row, title, text FROM docs WHERE collection_id = ? AND doc_id IN ({marks})",
                (self.cid, *chunk)))
        found.sort()  # in row order: each b-tree is walked forwards, pages stay hot in the cache
        self._delete_rows([(row, None, None, title, text) for row, title, text in found])
        return len(found)

    def _delete_rows(self, rows: list[tuple]) -> None:
        """Batched :meth:`_delete_row` (one executemany per table: a 10k-row delete is one
        pass of each statement in C instead of 40k Python round trips)."""
        if not rows:
            return
        conn, token = self.conn, _token(self.conn)
        doc_rows = [(row,) for row, *_ in rows]
        conn.executemany("DELETE FROM meta_index WHERE doc = ?", doc_rows)
        conn.executemany("DELETE FROM docs WHERE doc_row = ?", doc_rows)
        conn.executemany("INSERT INTO changes(collection_id, doc, op, txn) VALUES (?, ?, 'del', ?)",
                         [(self.cid, row, token) for (row,) in doc_rows])

    # -- file bookkeeping for folder indexing ---------------------------------------------
    def tracked_files(self) -> dict[str, tuple[str, int, int, list[str]]]:
        """path -> (hash, size, mtime_ns, doc_ids) for files indexed into this collection."""
        return {path: (h, size, mtime, json.loads(ids)) for path, h, size, mtime, ids in self.conn.execute(
            "SELECT path, hash, size, mtime_ns, doc_ids FROM files WHERE collection_id = ?", (self.cid,))}

    def track_file(self, path: str, digest: str, size: int, mtime_ns: int, doc_ids: Sequence[str]) -> None:
        """Record a file (inside the caller's transaction)."""
        self.conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                          (self.cid, path, digest, size, mtime_ns, json.dumps(list(doc_ids))))

    def untrack_file(self, path: str) -> None:
        self.conn.execute("DELETE FROM files WHERE collection_id = ? AND path = ?", (self.cid, path))

    # -- streaming reads for derived indexes and exports (no SQL outside store/) -----------------
    def texts(self, rows: Sequence[int] | None = None) -> Iterator[tuple[int, str, str]]:
        """``(row, title, text)`` of every document (in row order), or of the given rows."""
        if rows is None:
            yield from self.conn.execute(
                "SELECT doc_row, title, text FROM docs WHERE collection_id = ? ORDER BY doc_row", (self.cid,))
            return
        rows = list(rows)
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            yield from self.conn.execute(
                f"SELECT doc_row, title, text FROM docs WHERE collection_id = ? AND doc_row IN "
                f"({','.join('?' * len(chunk))})", (self.cid, *chunk))

    def stored_rows(self, *, batch: int = 1000) -> Iterator[list[tuple[int, str, str, str, str, bytes]]]:
        """Batches of ``(row, id, title, text, metadata JSON, vector bytes)`` in row order; call it
        inside ``db.snapshot()`` for one consistent state."""
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT doc_row, doc_id, title, text, metadata, vector FROM docs "
                "WHERE collection_id = ? AND doc_row > ? ORDER BY doc_row LIMIT ?", (self.cid, last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def ids_with_prefix(self, prefix: str) -> Iterator[str]:
        """Stored ids starting with ``prefix`` (an indexed range scan)."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else None
        if upper is None:
            yield from self.ids()
            return
        for (doc_id,) in self.conn.execute(
                "SELECT doc_id FROM docs WHERE collection_id = ? AND doc_id >= ? AND doc_id < ?",
                (self.cid, prefix, upper)):
            yield doc_id

    def prune_changes(self, upto_seq: int) -> None:
        """Forget change-log entries a saved index already covers (readers behind reload)."""
        with self.db.transaction():
            self.conn.execute("DELETE FROM changes WHERE collection_id = ? AND seq <= ? AND seq < "
                              "(SELECT max(seq) FROM changes WHERE collection_id = ?)",
                              (self.cid, upto_seq, self.cid))

    def _existing(self, ids: list[str]) -> dict[str, tuple[int, str, str, str, str]]:
        out = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for doc_id, *rest in self.conn.execute(
                    f"SELECT doc_id, doc_row, hash, metadata, title, text FROM docs "
                    f"WHERE collection_id = ? AND doc_id IN ({marks})", (self.cid, *chunk)):
                out[doc_id] = tuple(rest)
        return out  # type: ignore[return-value]

    def _delete_row(self, row: int, title: str, text: str) -> None:
        conn = self.conn
        conn.execute("DELETE FROM meta_index WHERE doc = ?", (row,))
        conn.execute("DELETE FROM docs WHERE doc_row = ?", (row,))
        conn.execute("INSERT INTO changes(collection_id, doc, op, txn) VALUES (?, ?, 'del', ?)",
                     (self.cid, row, _token(conn)))

    def _metadata_entries(self, row: int, metadata: dict[str, Any]) -> list[tuple]:
        entries = []
        for key, value in flatten_metadata(metadata):
            num, text = index_columns(value)
            entries.append((row, self.cid, key, num, text))
        return entries

    def _index_metadata(self, row: int, metadata: dict[str, Any]) -> None:
        entries = self._metadata_entries(row, metadata)
        if entries:
            self.conn.executemany("INSERT INTO meta_index(doc, collection_id, key, num, str) VALUES (?, ?, ?, ?, ?)", entries)


def _token(conn: sqlite3.Connection) -> int:
    return getattr(conn, "txn_token", 0) or 1


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _unpack(rows: list[int], blobs: list[bytes], dim: int) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim) if blobs \
        else np.zeros((0, dim), dtype=np.float32)
    return np.asarray(rows, dtype=np.int64), matrix.copy()
