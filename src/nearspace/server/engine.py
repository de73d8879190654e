"""Store access for the server: one writer thread, a pool of reader threads, one shared model.

SQLite allows one writer at a time, and a ``sqlite3`` connection must not run two
transactions at once, so every write (create collection, add, upsert, delete) is queued
to a single writer thread that owns its own connection: concurrent requests are applied one
after another, each batch in one ``BEGIN IMMEDIATE`` transaction, and none is lost.
Searches and reads run on reader threads, each with its own connection (WAL mode: readers
never block the writer and never see half a batch). The derived search structures of a
collection (its vector index with the HNSW graph, and its BM25 postings) exist once per
process, not once per thread: at a million vectors a graph takes ~1.7 GB, so five private
copies would take 8.5 GB. The shared ones read the change log on a connection of their own
and catch up before every search, one thread at a time under their own lock (a graph walk
takes under a millisecond, well below the encoder's few milliseconds, which is serialised too).

The model is loaded once and shared, behind a lock (``encoders.locked.LockedEncoder``).
"""
from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar


from nearspace.api import Collection, Store, model_stamp, open_store
from nearspace.store.sqlite.backend import SQLiteCollection
from nearspace.encoders.locked import LockedEncoder
from nearspace.encoders.registry import canonical_name
from nearspace.errors import CollectionNotFound
from nearspace.server.config import ServerConfig

T = TypeVar("T")


class LockedReranker:
    """The server's one reranker, scoring one request at a time (a model is not re-entrant)."""

    def __init__(self, spec: str) -> None:
        from nearspace.rerank import load_reranker

        self.inner = load_reranker(spec)
        self.name = self.inner.name
        self._lock = threading.Lock()

    def names(self) -> set[str]:
        from pathlib import Path

        return {self.name, Path(self.name).name}

    def score(self, query, passages):
        with self._lock:
            return self.inner.score(query, passages)


class Engine:
    """Runs store work on the right thread and hands results back to the event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.encoder = LockedEncoder(precision=config.precision)
        self.reranker = LockedReranker(config.rerank) if config.rerank else None
        self._local = threading.local()
        self._stores: list[Store] = []
        self._stores_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nearspace-writer")
        self._readers = ThreadPoolExecutor(max_workers=config.readers, thread_name_prefix="nearspace-reader")
        self._closed = False
        #: maps are costly (projection + clustering) and depend only on the stored vectors:
        #: (collection, method) -> (change-log sequence they reflect, payload)
        self._maps: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._maps_lock = threading.Lock()
        #: (collection name, collection id) -> the process's one vector index and keyword index
        self._shared: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._shared_store: Store | None = None
        self._shared_lock = threading.Lock()
        # open (and create) the store now, so a bad path fails at startup, not at the first request
        self._writer.submit(self._store).result()

    # -- threads ------------------------------------------------------------------------------
    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, functools.partial(fn, *args))

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, functools.partial(fn, *args))

    async def compute(self, fn: Callable[..., T], *args: Any) -> T:
        """Work that touches no store (encoding for /v1/embeddings) on a reader thread."""
        return await self.read(fn, *args)

    def close(self) -> None:
        """Finish queued writes, then close every connection (called after the last request)."""
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._stores_lock:
            for store in self._stores:
                store.close()
            self._stores.clear()
        with self._shared_lock:
            if self._shared_store is not None:
                self._shared_store.close()
            self._shared.clear()

    # -- per-thread store and collections --------------------------------------------------------
    def _store(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.config.store, precision=self.config.precision)
            self._local.store = store
            self._local.collections = {}
            with self._stores_lock:
                self._stores.append(store)
        return store

    def collection(self, name: str, *, create: bool = False) -> Collection:
        """This thread's handle on collection ``name`` (CollectionNotFound unless ``create``)."""
        store = self._store()
        cached: dict[str, Collection] = self._local.collections
        if name in cached:
            return cached[name]
        if name in store.list_collections():
            # collections built with the bundled model share the locked encoder; others load their own
            stored_encoder = store.backend.open_collection(name).encoder
            shared = canonical_name(stored_encoder) == canonical_name(self.encoder.name)
            coll = store.collection(name, encoder=self.encoder if shared else None, create=False)
        elif create:
            coll = store.collection(name, encoder=self.encoder)
        else:
            coll = store.get_collection(name)  # raises CollectionNotFound with the known names
        self._share_indexes(coll)
        cached[name] = coll
        return coll

    def _share_indexes(self, coll: Collection) -> None:
        """Give this thread's ``coll`` the process's one vector index and keyword index."""
        mine = coll.backend
        if not isinstance(mine, SQLiteCollection):
            return  # a Milvus-backed collection: the search structures live in Milvus
        key = (coll.name, mine.data.cid)
        with self._shared_lock:
            shared = self._shared.get(key)
            if shared is None:
                if self._shared_store is None:  # its connection serves only the shared structures
                    self._shared_store = Store(self.config.store, precision=self.config.precision)
                backend = self._shared_store.backend
                with backend.db.lock:
                    try:
                        theirs = backend.open_collection(coll.name)
                    except CollectionNotFound:
                        return  # dropped in between: this thread keeps its own
                if theirs.data.cid != mine.data.cid:  # replaced in between: likewise
                    return
                shared = self._shared[key] = (theirs.vectors, theirs.keywords)
        mine.vectors = shared[0]
        mine.share_keywords(shared[1])

    def map(self, name: str, method: str) -> dict[str, Any]:
        """2-D coordinates and cluster labels, recomputed only after the collection changed."""
        coll = self.collection(name)
        seq = coll.backend.version()
        with self._maps_lock:
            cached = self._maps.get((name, method))
        if cached is not None and cached[0] == seq:
            return cached[1]
        from nearspace.analyze.maps import build_map

        data = build_map(coll, method=method, color_by="cluster")
        labels = data.categories or [None] * len(data.ids)
        payload = {"collection": name, "method": method, "title": data.title, "legend": data.legend,
                   "points": [{"id": i, "x": float(x), "y": float(y), "label": label}
                              for i, (x, y), label in zip(data.ids, data.xy.tolist(), labels)]}
        with self._maps_lock:
            self._maps[(name, method)] = (seq, payload)
        return payload

    def list_collection_names(self) -> list[str]:
        return self._store().list_collections()

    def list_collections(self) -> list[dict[str, Any]]:
        store = self._store()
        out = []
        for name in store.list_collections():
            data = store.backend.open_collection(name)
            out.append({"name": name, "count": data.count(), "encoder": data.encoder, "dim": data.dim,
                        "model": model_stamp(data)})  # spec and fingerprint
        return out
