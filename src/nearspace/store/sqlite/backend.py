"""The SQLite engine behind the backend contract (``store/base.py``).

``SQLiteStore`` is one SQLite file of named collections plus its derived files in
``<path>.ann/``; ``SQLiteCollection`` one collection: the tables (``CollectionData``), the
vector index (``VectorIndex``: exact, HNSW or quantised) and the BM25 keyword index
(``KeywordIndex``), both derived from the tables and caught up from the change log. Row
numbers stay inside this package: every hit leaves it keyed by document id.
"""
from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from nearspace.store.base import FileRecord, Hit, Selection, StoredRow
from nearspace.store.sqlite.database import CollectionData, Database
from nearspace.store.sqlite.derived import VECTOR_DIR, derived_files, keyword_path
from nearspace.store.sqlite.vectors import EXACT_THRESHOLD, VectorIndex
from nearspace.types import Document


class SQLiteStore:
    """The ``StoreBackend`` of one SQLite file; derived index files live in ``<path>.ann/``."""

    def __init__(self, path: str | Path, *, exact_threshold: int | None = None) -> None:
        self.db = Database(path)
        self.path = self.db.path
        self.location = str(self.path)
        self.ann_dir = self.path.with_name(self.path.name + ".ann")
        if exact_threshold is None:  # NEARSPACE_EXACT_THRESHOLD lets fault runs reach the graph on small data
            exact_threshold = int(os.environ.get("NEARSPACE_EXACT_THRESHOLD") or EXACT_THRESHOLD)
        self.exact_threshold = exact_threshold

    def close(self) -> None:
        self.db.close()

    def collection_names(self) -> list[str]:
        return self.db.collection_names()

    def open_collection(self, name: str) -> "SQLiteCollection":
        return SQLiteCollection(self, self.db.collection(name))

    def create_collection(self, name: str, encoder: str, dim: int) -> "SQLiteCollection":
        return SQLiteCollection(self, self.db.collection(name, encoder=encoder, dim=dim, create=True))

    def drop_collection(self, name: str) -> None:
        self.db.drop_collection(name)
        self.drop_derived(name)

    def rename_collection(self, old: str, new: str, *, replace: bool = False) -> None:
        """One transaction; the derived files of both names are dropped (rebuilt on use)."""
        self.db.rename_collection(old, new, replace=replace)
        self.drop_derived(old)
        self.drop_derived(new)

    def derived_paths(self, name: str) -> list[Path]:
        """The derived files of collection ``name`` that exist (vector files, graph, postings)."""
        return derived_files(self.ann_dir, name)

    def keyword_path(self, name: str) -> Path:
        return keyword_path(self.ann_dir, name)

    def drop_derived(self, name: str) -> None:
        for path in derived_files(self.ann_dir, name):
            path.unlink(missing_ok=True)

    def compact(self) -> None:
        """VACUUM, then each collection's vector files rewritten with live rows (graphs with
        many deleted nodes rebuilt) and its saved indexes flushed (change log pruned)."""
        self.db.vacuum()
        for name in self.collection_names():
            coll = self.open_collection(name)
            if (self.ann_dir / VECTOR_DIR / f"{name}.json").exists():
                coll.vectors.compact()
            coll.flush()

    def info(self) -> dict[str, Any]:
        files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        ann = sorted(p for p in self.ann_dir.rglob("*") if p.is_file()) if self.ann_dir.exists() else []
        collections = []
        for name in self.collection_names():
            data = self.db.collection(name)
            collections.append({"name": name, "count": data.count(), "encoder": data.encoder, "dim": data.dim,
                                "config": data.config(),
                                "ann_bytes": sum(p.stat().st_size for p in self.derived_paths(name))})
        return {"path": str(self.path), "engine": "sqlite",
                "bytes": sum(p.stat().st_size for p in files + ann if p.exists()),
                "sqlite_bytes": sum(p.stat().st_size for p in files if p.exists()),
                "collections": collections}


class SQLiteCollection:
    """The ``CollectionBackend`` of one SQLite collection (tables + derived indexes)."""

    max_candidates: int | None = None

    def __init__(self, store: SQLiteStore, data: CollectionData) -> None:
        self.store = store
        self.data = data
        self.name, self.encoder, self.dim = data.name, data.encoder, data.dim
        self.vectors = VectorIndex(data, store.ann_dir, exact_threshold=store.exact_threshold)
        self._keywords = None

    def __repr__(self) -> str:
        return f"SQLiteCollection({self.name!r}, {self.store.location!r})"

    @property
    def keywords(self):
        """The BM25 index, created on first use (scipy and the stemmer load only then). A server
        may hand several open collections one shared instance (``share_keywords``)."""
        if self._keywords is None:
            from nearspace.store.sqlite.keywords import KeywordIndex

            self._keywords = KeywordIndex(self.data, path=self.store.keyword_path(self.name))
        return self._keywords

    def share_keywords(self, index) -> None:
        self._keywords = index

    # -- writes ---------------------------------------------------------------------------
    def write(self, docs: Sequence[Document], vectors: np.ndarray, *, replace: bool,
              encoded: Sequence[bool] | np.ndarray | None = None,
              also: Callable[[], None] | None = None) -> dict[str, int]:
        return self.data.write(docs, vectors, replace=replace, encoded=encoded, also=also)

    def delete(self, ids: Sequence[str]) -> int:
        return self.data.delete(ids)

    def delete_in_transaction(self, ids: Sequence[str]) -> int:
        return self.data.delete_in_transaction(ids)

    def transaction(self) -> AbstractContextManager[Any]:
        return self.data.db.transaction()

    # -- reads ----------------------------------------------------------------------------
    def count(self) -> int:
        return self.data.count()

    def get(self, ids: Sequence[str]) -> list[Document | None]:
        return self.data.get(ids)

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return self.data.hashes(ids)

    def ids(self) -> Iterator[str]:
        return self.data.ids()

    def ids_with_prefix(self, prefix: str) -> list[str]:
        return list(self.data.ids_with_prefix(prefix))

    def rows(self, *, batch_size: int = 1000) -> Iterator[list[StoredRow]]:
        """Every document with its vector in row order, all read in one snapshot."""
        with self.data.db.snapshot():
            for batch in self.data.stored_rows(batch=batch_size):
                yield [StoredRow(Document(doc_id, text, {} if meta == "{}" else json.loads(meta), title),
                                 np.frombuffer(blob, dtype=np.float32, count=self.dim))
                       for _row, doc_id, title, text, meta, blob in batch]

    def vectors_for_ids(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self.data.rows_for_ids(list(ids))
        got_rows, matrix = self.data.vectors_for_rows(list(rows.values()))
        by_row = dict(zip(got_rows.tolist(), matrix))
        return {doc_id: by_row[row] for doc_id, row in rows.items() if row in by_row}

    def version(self) -> int:
        return self.data.last_seq()

    # -- search candidates ----------------------------------------------------------------
    def select(self, where: dict[str, Any]) -> Selection:
        rows = self.data.filter_rows(where)
        return Selection(rows, empty=len(rows) == 0)

    def selected_ids(self, selection: Selection) -> list[str]:
        return self.data.ids_for_rows(selection.handle.tolist())

    def _by_id(self, hits: list[tuple[int, float]]) -> list[Hit]:
        ids = self.data.id_map([row for row, _ in hits])
        return [(ids[row], score) for row, score in hits if row in ids]  # a row deleted meanwhile drops out

    def dense_candidates(self, vector: np.ndarray, limit: int, selection: Selection | None = None) -> list[Hit]:
        return self._by_id(self.vectors.search(vector, limit, selection.handle if selection else None))

    def keyword_candidates(self, query: str, limit: int, selection: Selection | None = None) -> list[Hit]:
        return self._by_id(self.keywords.search(query, limit, selection.handle if selection else None))

    def has_words(self) -> bool:
        self.keywords.refresh()
        return bool(self.keywords.vocab)

    def flush(self) -> bool:
        """Save the keyword postings and the vector graph; then prune the change log to what
        every saved index covers (the covered change itself stays: its token proves a saved
        file's history). False when the collection is searched exactly (no graph to save)."""
        keywords = self.keywords
        keywords.refresh()
        saved = self.vectors.save()
        covered = [keywords.covered_seq] + [s for s in (self.vectors.flat_seq, self.vectors.ann_seq) if s >= 0]
        if min(covered) > 1:
            self.data.prune_changes(min(covered) - 1)
        return saved

    # -- config, artifacts, file records --------------------------------------------------
    def config(self) -> dict[str, Any]:
        return self.data.config()

    def set_config(self, **values: Any) -> dict[str, Any]:
        return self.data.set_config(**values)

    def put_artifact(self, name: str, value: bytes, meta: dict[str, Any]) -> None:
        self.data.put_artifact(name, value, meta)

    def get_artifact(self, name: str) -> tuple[bytes, dict[str, Any]] | None:
        return self.data.get_artifact(name)

    def artifact_version(self, name: str) -> int | None:
        return self.data.artifact_version(name)

    def delete_artifact(self, name: str) -> bool:
        return self.data.delete_artifact(name)

    def tracked_files(self) -> dict[str, FileRecord]:
        return self.data.tracked_files()

    def track_file(self, path: str, digest: str, size: int, mtime_ns: int, doc_ids: Sequence[str]) -> None:
        self.data.track_file(path, digest, size, mtime_ns, doc_ids)

    def untrack_file(self, path: str) -> None:
        self.data.untrack_file(path)
