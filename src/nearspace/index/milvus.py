"""A vector backend whose vectors live in Milvus (a server, or a milvus-lite file).

``index.create("milvus", dim, metric, uri=..., index_type="FLAT")`` keeps ``(row, vector)``
pairs in one Milvus collection and answers ``search`` (with an ``allowed`` set pushed down as
a ``row in [...]`` filter) from the engine; the caller's row ids are the primary key. It
follows the :class:`~nearspace.index.base.VectorBackend` protocol, so the conformance suite
in ``tests/index`` runs against it unchanged.

Where it differs from the local backends by nature:

* **Where the data is.** ``uri`` is ``milvus://HOST:PORT``, ``milvus-lite:PATH.db`` or a
  pymilvus URI; without one, ``NEARSPACE_INDEX_MILVUS`` names it, else a milvus-lite file
  private to this process is used (removed at exit: such a backend cannot outlive its process).
* **save/load.** ``save(prefix)`` freezes a copy of the vectors in the engine (a snapshot
  collection, one per save, never written again) and writes, under ``prefix``, the usual
  header plus a manifest of the rows the snapshot holds. The local files never hold vectors,
  only what lets ``load`` check the engine: the manifest's checksum and size are verified as
  for any backend; the snapshot must exist and hold the header's count, and ``full_check``
  also compares its rows to the manifest and its vectors to the checksum taken at save.
  ``load`` attaches to the snapshot in O(1); the first write after it copies the snapshot into
  a working collection (as a memory-mapped local index copies on growth), so the saved state
  never changes. A newer save to the same prefix drops the snapshot the old header named.
* **k.** Milvus returns at most 16,384 hits per query.
"""
from __future__ import annotations

import atexit
import os
import tempfile
import threading
import uuid
import weakref
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from nearspace.errors import InputError, StoreError
from nearspace.index.base import (IndexFileError, as_rows, as_vectors, check_metric, load_npy, normalise,
                                  read_header, save_npy, verify_files, write_envelope)

#: Milvus returns at most this many hits per search
MAX_TOPK = 16384
_METRICS = {"cosine": "COSINE", "ip": "IP", "l2": "L2"}
_BATCH = 4096
_PREFIX = "nsix_"

_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()
_PRIVATE: dict[str, str] = {}
#: (uri, collection) of working collections whose objects were garbage-collected, dropped at the
#: next safe point (see :func:`_drop_later`)
_UNUSED: list[tuple[str, str]] = []


def _private_uri() -> str:
    """A milvus-lite file for this process only, removed at exit."""
    with _CLIENTS_LOCK:
        if "uri" not in _PRIVATE:
            folder = tempfile.mkdtemp(prefix="nearspace-milvus-index-")
            _PRIVATE["uri"] = os.path.join(folder, "index.db")
            atexit.register(_remove_private, folder)
        return _PRIVATE["uri"]


def _remove_private(folder: str) -> None:
    import shutil

    client = _CLIENTS.pop(_PRIVATE.get("uri", ""), None)
    if client is not None:
        try:
            client.close()
            from nearspace.store.milvus.client import lite_release

            lite_release(_PRIVATE["uri"])
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    shutil.rmtree(folder, ignore_errors=True)


def resolve_uri(uri: str | None) -> str:
    """The pymilvus URI for ``uri`` (a nearspace store spelling or a pymilvus URI)."""
    uri = uri or os.environ.get("NEARSPACE_INDEX_MILVUS") or None
    if uri is None:
        return _private_uri()
    from nearspace.store.milvus.client import parse_uri

    return parse_uri(uri) or str(uri)


def _client(uri: str) -> Any:
    """One client per URI per process (kept for the process's life: connections are costly)."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(uri)
        if client is not None:
            return client
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise StoreError("the milvus vector backend needs the 'milvus' extra: "
                             "pip install 'nearspace[milvus]'") from None
        import logging

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # failures reach the caller as errors
        try:
            client = MilvusClient(uri=uri, token=os.environ.get("NEARSPACE_MILVUS_TOKEN", ""))
        except Exception as exc:  # noqa: BLE001 - connection failures come in many types
            raise StoreError(f"cannot reach Milvus at {uri}: {getattr(exc, 'message', None) or exc}") from None
        if "://" not in uri:
            from nearspace.store.milvus.client import lite_acquire

            lite_acquire(uri)  # a MilvusStore on the same file must not release it under us
        _CLIENTS[uri] = client
        return client


def _drop_later(uri: str, name: str) -> None:
    """A finalizer's drop: queued, never sent from the finalizer itself.

    The garbage collector runs finalizers in whatever thread allocates at the time, and
    milvus-lite serves its file from threads of this very process: a drop sent from one of
    its own worker threads (collected while it started another thread) waited for the
    server's dispatcher, which waited for the lock that worker held: a deadlock (seen in the
    index conformance suite; pymilvus's keepalive ended it after about 200 s with a failed call).
    """
    _UNUSED.append((uri, name))


def _drop_unused() -> None:
    """Drop the queued collections of collected objects (called from ordinary calls only)."""
    while _UNUSED:
        try:
            uri, name = _UNUSED.pop()
        except IndexError:  # another thread took the last one
            return
        _drop(uri, name)


def _drop(uri: str, name: str) -> None:
    client = _CLIENTS.get(uri)
    if client is None:
        return
    try:
        client.drop_collection(name)
    except Exception:  # noqa: BLE001 - the engine may already be gone (process exit)
        pass


class MilvusBackend:
    """Vectors in a Milvus collection; scores as the local backends give them (cosine, inner
    product, or ``-squared distance`` for l2)."""

    kind = "milvus"
    #: the vectors live in an engine, not in files under the saved prefix
    remote = True

    def __init__(self, dim: int, metric: str = "cosine", *, uri: str | None = None,
                 index_type: str = "FLAT", index_params: dict[str, Any] | None = None,
                 _attach: str | None = None) -> None:
        self.dim, self.metric = int(dim), check_metric(metric)
        self.uri = resolve_uri(uri)
        self.index_type, self.index_params = index_type, dict(index_params or {})
        self.client = _client(self.uri)
        _drop_unused()
        self._finalizer: weakref.finalize | None = None
        if _attach is not None:
            self.collection, self._owned = _attach, False  # a saved snapshot: copied before any write
        else:
            self._new_working()

    # -- collections -------------------------------------------------------------------------
    def _create(self, name: str) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, description="nearspace vector backend")
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = self.client.prepare_index_params()
        params.add_index("vector", index_type=self.index_type, metric_type=_METRICS[self.metric],
                         params=self.index_params)
        try:
            self.client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        except Exception as exc:  # noqa: BLE001
            # the name is a fresh uuid: if it exists now, pymilvus retried a create that had
            # succeeded (seen under load on milvus-lite), and the collection is ours
            if "already exists" in str(getattr(exc, "message", None) or exc):
                return
            raise StoreError(f"Milvus refused to create index collection {name!r}: "
                             f"{getattr(exc, 'message', None) or exc}") from None

    def _new_working(self) -> None:
        self.collection = f"{_PREFIX}{uuid.uuid4().hex}"
        self._create(self.collection)
        self._owned = True
        # a working collection is this object's alone: it goes when the object does
        self._finalizer = weakref.finalize(self, _drop_later, self.uri, self.collection)

    def _writable(self) -> None:
        if not self._owned:
            source = self.collection
            self._new_working()
            self._copy(source, self.collection)

    def _copy(self, source: str, target: str) -> tuple[np.ndarray, int]:
        """Copy every row of ``source`` into ``target``; returns (sorted rows, CRC-32 of the vectors
        in row order)."""
        rows, vectors = self._read_all(source)
        for start in range(0, len(rows), _BATCH):
            self.client.insert(target, [{"row": int(r), "vector": v}
                                        for r, v in zip(rows[start:start + _BATCH], vectors[start:start + _BATCH])])
        return rows, zlib.crc32(np.ascontiguousarray(vectors).tobytes())

    def _read_all(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        rows, parts = [], []
        iterator = self.client.query_iterator(name, batch_size=_BATCH, filter="", output_fields=["row", "vector"])
        try:
            while batch := iterator.next():
                rows += [r["row"] for r in batch]
                parts.append(np.asarray([r["vector"] for r in batch], dtype=np.float32))
        finally:
            iterator.close()
        rows_array = np.asarray(rows, dtype=np.int64)
        matrix = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        order = np.argsort(rows_array, kind="stable")
        return rows_array[order], matrix[order]

    def close(self) -> None:
        """Drop this object's working collection now (saved snapshots stay)."""
        if self._finalizer is not None:
            self._finalizer()
            _drop_unused()

    # -- the protocol ------------------------------------------------------------------------
    def __len__(self) -> int:
        got = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(got[0]["count(*)"])

    def add(self, rows: Any, vectors: Any) -> None:
        rows = as_rows(rows)
        vectors = as_vectors(vectors, len(rows), self.dim)
        if len(np.unique(rows)) != len(rows):
            raise InputError("rows given to add() must be distinct")
        if self.metric == "cosine":
            vectors = normalise(vectors)  # a zero vector is refused here, as locally
        self._writable()
        for start in range(0, len(rows), _BATCH):
            self.client.upsert(self.collection, [{"row": int(r), "vector": v} for r, v in
                                                 zip(rows[start:start + _BATCH], vectors[start:start + _BATCH])])

    def _held(self, rows: np.ndarray) -> list[int]:
        held: list[int] = []
        for start in range(0, len(rows), _BATCH):
            chunk = ", ".join(str(int(r)) for r in rows[start:start + _BATCH])
            held += [r["row"] for r in self.client.query(self.collection, filter=f"row in [{chunk}]",
                                                         output_fields=["row"])]
        return held

    def remove(self, rows: Any) -> int:
        held = self._held(np.unique(as_rows(rows)))
        if held:
            self._writable()
            for start in range(0, len(held), _BATCH):
                self.client.delete(self.collection, ids=held[start:start + _BATCH])
        return len(held)

    def search(self, queries: Any, k: int, allowed: Any = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InputError(f"queries must have dimension {self.dim}, got shape {queries.shape}")
        if k > MAX_TOPK:
            raise InputError(f"a Milvus search returns at most {MAX_TOPK:,} hits; asked for {k:,}")
        if self.metric == "cosine":
            queries = normalise(queries)
        expr = ""
        if allowed is not None:
            allowed = np.unique(as_rows(allowed))
            if len(allowed) == 0:
                return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
            expr = f"row in [{', '.join(map(str, allowed.tolist()))}]"
        if k < 1:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        hits = self.client.search(self.collection, data=list(queries), anns_field="vector", limit=int(k),
                                  filter=expr, output_fields=[],
                                  search_params={"metric_type": _METRICS[self.metric]})
        sign = -1.0 if self.metric == "l2" else 1.0  # Milvus's L2 is the squared distance, smaller first
        width = min((len(line) for line in hits), default=0)
        rows = np.array([[h["row"] for h in line[:width]] for line in hits], dtype=np.int64)
        scores = np.array([[sign * h["distance"] for h in line[:width]] for line in hits], dtype=np.float32)
        return rows.reshape(len(queries), width), scores.reshape(len(queries), width)

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": len(self), "dim": self.dim, "metric": self.metric,
                "bytes_per_vector": 4 * self.dim, "engine": "milvus" if "://" in self.uri else "milvus-lite",
                "uri": self.uri, "collection": self.collection, "index_type": self.index_type}

    # -- persistence ---------------------------------------------------------------------------
    def save(self, prefix: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Freeze a snapshot in the engine, then write the manifest and header (header last)."""
        try:
            previous = read_header(prefix)
        except IndexFileError:
            previous = None
        snapshot = f"{_PREFIX}{uuid.uuid4().hex}"
        self._create(snapshot)
        try:
            rows, crc = self._copy(self.collection, snapshot)
            header = write_envelope(prefix, self.kind, self.dim, self.metric, {"rows.npy": save_npy(rows)},
                                    count=len(rows), extra=extra,
                                    options={"uri": self.uri, "collection": snapshot, "vectors_crc32": crc,
                                             "index_type": self.index_type, "index_params": self.index_params})
        except BaseException:
            _drop(self.uri, snapshot)  # nothing vouches for a half-made snapshot
            raise
        old = (previous or {}).get("options", {})
        if previous and previous.get("kind") == self.kind and old.get("uri") == self.uri \
                and old.get("collection") not in (snapshot, self.collection):
            _drop(self.uri, old["collection"])  # the only header naming it is gone
        return header

    @classmethod
    def load(cls, prefix: str | Path, header: dict[str, Any] | None = None, *, full_check: bool = False,
             mmap: bool = True) -> "MilvusBackend":
        header = header or read_header(prefix)
        paths = verify_files(prefix, header, full=full_check)  # the manifest, as for any backend
        options = header.get("options", {})
        uri, snapshot = options.get("uri"), options.get("collection")
        if not uri or not snapshot:
            raise IndexFileError(f"index header for {prefix} names no Milvus collection")
        backend = cls(header["dim"], header["metric"], uri=uri, index_type=options.get("index_type", "FLAT"),
                      index_params=options.get("index_params"), _attach=snapshot)
        if not backend.client.has_collection(snapshot):
            raise IndexFileError(f"index collection {snapshot} in {uri} is missing (the engine lost it; rebuild)")
        count = len(backend)
        if count != header["count"]:
            raise IndexFileError(f"index collection {snapshot} in {uri} holds {count} rows, its header says "
                                 f"{header['count']}")
        if full_check:
            rows, vectors = backend._read_all(snapshot)
            manifest = load_npy(paths["rows.npy"], mmap=False)
            if not np.array_equal(rows, manifest) or \
                    zlib.crc32(np.ascontiguousarray(vectors).tobytes()) != options.get("vectors_crc32"):
                raise IndexFileError(f"index collection {snapshot} in {uri} is damaged "
                                     "(its rows or vectors differ from what was saved)")
        return backend

    def __repr__(self) -> str:
        return f"MilvusBackend(dim={self.dim}, metric={self.metric!r}, uri={self.uri!r}, collection={self.collection!r})"

