"""The backend contract: what a storage engine must offer for ``nearspace.api`` to serve it.

Two protocols, one per level:

* :class:`StoreBackend` -- named collections in one place (a SQLite file, a Milvus server):
  open, create, drop, rename, compact, describe.
* :class:`CollectionBackend` -- one collection's documents, vectors and derived search
  structures: writes with counts, reads by id, hashes, a streaming row iterator, an opaque
  :class:`Selection` compiled from a ``where`` filter, dense and keyword *candidates* keyed by
  document id, config, artifacts, file records and a transaction.

``nearspace.api.Collection`` is the one façade over (backend, encoder) and
``nearspace.search.engine.search`` the one search: both speak only this contract, so the
SQLite engine (``store/sqlite``) and the Milvus one (``store/milvus``) answer the same calls
with the same shapes -- ids are strings, hits are ``(id, score)`` best first, counts are
``WriteCounts`` keys. ``tests/store/test_backend_conformance.py`` runs one suite on both.

``store/registry.py`` holds the URI-scheme factory (``open_backend``).
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from nearspace.types import Document, content_hash

#: ``(document id, score)``, higher is better
Hit = tuple[str, float]
#: path -> (content hash, size, mtime_ns, the ids of the documents cut from it)
FileRecord = tuple[str, int, int, list[str]]


@dataclass(frozen=True)
class Selection:
    """The documents a ``where`` filter admits, in the backend's own form (SQLite: an array of
    row numbers; Milvus: a boolean expression the engine evaluates). ``empty`` is True when the
    backend already knows nothing matches, so a search can stop before any scoring."""

    handle: Any
    empty: bool = False


@dataclass(frozen=True)
class StoredRow:
    """One stored document with its unit vector, as the row iterator yields it."""

    document: Document
    vector: np.ndarray


class NeedVectors(Exception):
    """Raised by ``CollectionBackend.write`` (which then writes nothing): the documents at
    ``positions`` changed since the caller read their hashes and need vectors it did not encode."""

    def __init__(self, positions: list[int]) -> None:
        super().__init__(f"{len(positions)} document(s) changed since their hashes were read")
        self.positions = positions


def needing_vectors(docs: Sequence[Document], stored: dict[str, str], encoded: Sequence[bool]) -> list[int]:
    """Positions of documents whose content differs from the ``stored`` hashes (id -> hash, as
    the write sees them) but that carry no real vector; a repeated id is judged by its last copy."""
    seen = dict(stored)
    missing = []
    for i, doc in enumerate(docs):
        digest = content_hash(doc.title, doc.text)
        if seen.get(doc.id) != digest and not encoded[i]:
            missing.append(i)
        seen[doc.id] = digest
    return missing


def check_batch(name: str, dim: int, docs: Sequence[Document], vectors: np.ndarray) -> np.ndarray:
    """A write batch's vectors as C-contiguous float32, refused unless one finite row of ``dim``
    per document (every backend's first check)."""
    from nearspace.errors import InputError

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(docs):
        raise InputError(f"expected {len(docs)} vectors, got an array of shape {vectors.shape}")
    if vectors.shape[1] != dim:
        raise InputError(f"vector dimension {vectors.shape[1]} does not match collection {name!r} dimension {dim}")
    if not np.isfinite(vectors).all():
        raise InputError("vectors contain NaN or infinite values")
    return vectors


def check_against_stored(name: str, docs: Sequence[Document], stored: dict[str, str],
                         encoded: Sequence[bool] | np.ndarray | None, *, replace: bool) -> None:
    """What a write must refuse once it sees the stored hashes (id -> hash, read inside the write):
    placeholder vectors for changed documents (``NeedVectors``), and with ``replace=False`` ids
    already stored."""
    if encoded is not None:
        missing = needing_vectors(docs, stored, encoded)
        if missing:
            raise NeedVectors(missing)
    if not replace:
        clash = [d.id for d in docs if d.id in stored]
        if clash:
            from nearspace.errors import InputError

            raise InputError(f"{len(clash)} id(s) already stored in {name!r}, e.g. {clash[0]!r}; "
                             "use upsert to replace them")


@runtime_checkable
class CollectionBackend(Protocol):
    """One collection in one engine. ``name``, ``encoder`` (the model name recorded with the
    vectors) and ``dim`` are fixed for the collection's life."""

    name: str
    encoder: str
    dim: int
    #: the deepest candidate list one call may ask for (None: no engine limit)
    max_candidates: int | None

    # -- writes ---------------------------------------------------------------------------
    def write(self, docs: Sequence[Document], vectors: np.ndarray, *, replace: bool,
              encoded: Sequence[bool] | np.ndarray | None = None,
              also: Callable[[], None] | None = None) -> dict[str, int]:
        """Upsert one batch; returns WriteCounts (added, updated, metadata, unchanged).

        A document whose content hash is unchanged keeps its stored vector; one whose row in
        ``encoded`` is False while its content changed raises ``NeedVectors``. ``also`` runs
        inside the same transaction where the engine has one (file bookkeeping)."""
        ...

    def delete(self, ids: Sequence[str]) -> int: ...
    def delete_in_transaction(self, ids: Sequence[str]) -> int:
        """As ``delete``, joining the caller's ``transaction()`` block."""
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """A block whose writes commit together (an engine without transactions runs it as is;
        its writes are then idempotent on re-run)."""
        ...

    # -- reads ----------------------------------------------------------------------------
    def count(self) -> int: ...
    def get(self, ids: Sequence[str]) -> list[Document | None]: ...
    def hashes(self, ids: Sequence[str]) -> dict[str, str]: ...
    def ids(self) -> Iterator[str]: ...
    def ids_with_prefix(self, prefix: str) -> list[str]: ...
    def rows(self, *, batch_size: int = 1000) -> Iterator[list[StoredRow]]:
        """Every stored document with its vector, in batches (one consistent pass)."""
        ...

    def vectors_for_ids(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...
    def version(self) -> int:
        """A number that changes with every committed write (caches compare it)."""
        ...

    # -- search candidates ----------------------------------------------------------------
    def select(self, where: dict[str, Any]) -> Selection: ...
    def selected_ids(self, selection: Selection) -> list[str]: ...
    def dense_candidates(self, vector: np.ndarray, limit: int, selection: Selection | None = None) -> list[Hit]: ...
    def keyword_candidates(self, query: str, limit: int, selection: Selection | None = None) -> list[Hit]: ...
    def has_words(self) -> bool:
        """Whether any stored title or text holds a word keyword search can match."""
        ...

    def flush(self) -> bool:
        """Persist derived state so the next process opens fast; True if something was saved."""
        ...

    # -- config, artifacts, file records --------------------------------------------------
    def config(self) -> dict[str, Any]: ...
    def set_config(self, **values: Any) -> dict[str, Any]: ...
    def put_artifact(self, name: str, value: bytes, meta: dict[str, Any]) -> None: ...
    def get_artifact(self, name: str) -> tuple[bytes, dict[str, Any]] | None: ...
    def artifact_version(self, name: str) -> int | None: ...
    def delete_artifact(self, name: str) -> bool: ...
    def tracked_files(self) -> dict[str, FileRecord]: ...
    def track_file(self, path: str, digest: str, size: int, mtime_ns: int, doc_ids: Sequence[str]) -> None: ...
    def untrack_file(self, path: str) -> None: ...


@runtime_checkable
class StoreBackend(Protocol):
    """Named collections in one place; ``location`` is the path or URI it was opened with."""

    location: str

    def collection_names(self) -> list[str]: ...
    def open_collection(self, name: str) -> CollectionBackend:
        """The collection ``name``; ``CollectionNotFound`` (naming the known ones) if absent."""
        ...

    def create_collection(self, name: str, encoder: str, dim: int) -> CollectionBackend:
        """Create ``name`` (or open it when another process created it first)."""
        ...

    def drop_collection(self, name: str) -> None: ...
    def rename_collection(self, old: str, new: str, *, replace: bool = False) -> None: ...
    def compact(self) -> None: ...
    def info(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def read_all(backend: CollectionBackend) -> tuple[list[Document], np.ndarray]:
    """Every stored document and the matrix of their vectors (row i is document i's), in one
    pass of the backend's rows."""
    docs: list[Document] = []
    parts: list[np.ndarray] = []
    for batch in backend.rows():
        docs += [row.document for row in batch]
        parts.append(np.stack([row.vector for row in batch]))
    return docs, np.concatenate(parts) if parts else np.zeros((0, backend.dim), dtype=np.float32)


def vector_matrix(backend: CollectionBackend) -> tuple[list[str], np.ndarray]:
    """``(ids, matrix)`` of every stored vector of ``backend`` (see :func:`read_all`)."""
    docs, matrix = read_all(backend)
    return [d.id for d in docs], matrix
