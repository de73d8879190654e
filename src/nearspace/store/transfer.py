"""Copy a collection between stores (SQLite <-> Milvus) with its vectors: no re-encoding.

Batches go through the target's normal upsert path with the source's vectors, so a
re-run after an interrupt skips every id already there with the same content hash and
metadata; the collection's config (tuned fusion) and query adapter travel with it. The
copy ends with a count check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from nearspace.errors import StoreError
from nearspace.types import Document

ARTIFACT_NAMES = ("query_adapter",)


@dataclass
class CopyReport:
    collection: str
    source_count: int
    target_count: int
    added: int = 0
    updated: int = 0
    metadata: int = 0
    unchanged: int = 0


def source_batches(coll, batch_size: int = 500) -> Iterator[tuple[list[Document], np.ndarray]]:
    """Documents and their stored vectors, batch by batch, from either kind of store."""
    data = coll.data
    if hasattr(data, "iterate"):  # Milvus
        from nearspace.store.milvus import _document

        for rows in data.iterate(["id", "title", "content", "meta", "vector"], batch_size=batch_size):
            yield [_document(r) for r in rows], np.asarray([r["vector"] for r in rows], dtype=np.float32)
        return
    ids = list(data.ids())
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        rows = data.rows_for_ids(chunk)
        got_rows, matrix = data.vectors_for_rows(list(rows.values()))
        position = {int(r): i for i, r in enumerate(got_rows)}
        docs = [d for d in data.get(chunk) if d is not None]  # deleted meanwhile: skipped
        yield docs, matrix[[position[rows[d.id]] for d in docs]]


def open_target(store, name: str, encoder: str, dim: int):
    """The target collection, created with the source's encoder name and dimension (the
    encoder itself is never loaded: vectors are copied)."""
    data = store.db.collection(name, encoder=encoder, dim=dim, create=True)
    from nearspace.store.milvus import MilvusCollection, MilvusStore

    if isinstance(store, MilvusStore):
        return MilvusCollection(store, data, None)
    from nearspace.api import Collection

    return Collection(store, data, None)


def copy_collection(source_store, target_store, name: str, *, batch_size: int = 500,
                    on_batch: Callable[[int], None] | None = None) -> CopyReport:
    source = source_store.get_collection(name)
    target = open_target(target_store, name, source.data.encoder, source.data.dim)
    report = CopyReport(name, source.count(), 0)
    for docs, vectors in source_batches(source, batch_size):
        if not docs:
            continue
        counts: dict[str, Any] = target.upsert([d.id for d in docs], [d.text for d in docs],
                                               metadatas=[d.metadata for d in docs], titles=[d.title for d in docs],
                                               vectors=vectors, batch_size=len(docs), show_progress=False)
        for key in ("added", "updated", "metadata", "unchanged"):
            setattr(report, key, getattr(report, key) + counts[key])
        if on_batch is not None:
            on_batch(len(docs))
    config = source.data.config()
    if config and config != target.data.config():
        target.data.set_config(**config)
    for artifact in ARTIFACT_NAMES:
        got = source.data.get_artifact(artifact)
        if got is not None:
            target.data.put_artifact(artifact, got[0], got[1])
    target.flush()
    report.target_count = target.count()
    if report.target_count != report.source_count:
        raise StoreError(f"copy of {name!r} ended with {report.target_count} documents in the target but "
                         f"{report.source_count} in the source (the target held other ids, or the source "
                         "changed during the copy); run the copy again, or drop the target collection first")
    return report
