"""Copy a collection between stores (SQLite <-> Milvus, any two backends) with its vectors: no re-encoding.

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
    """Documents and their stored vectors, batch by batch, through the backend's row iterator."""
    for rows in coll.backend.rows(batch_size=batch_size):
        yield [r.document for r in rows], np.stack([r.vector for r in rows]).astype(np.float32, copy=False)


def open_target(store, name: str, encoder: str, dim: int):
    """The target collection, created with the source's encoder name and dimension (the
    encoder itself is never loaded: vectors are copied)."""
    from nearspace.api import Collection, check_encoder

    backend = store.backend
    if name in backend.collection_names():
        data = backend.open_collection(name)
        check_encoder(data, encoder, dim)
    else:
        data = backend.create_collection(name, encoder, dim)
    return Collection(store, data, None)


def copy_collection(source_store, target_store, name: str, *, batch_size: int = 500,
                    on_batch: Callable[[int], None] | None = None) -> CopyReport:
    source = source_store.get_collection(name)
    target = open_target(target_store, name, source.backend.encoder, source.backend.dim)
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
    config = source.backend.config()
    if config and config != target.backend.config():
        target.backend.set_config(**config)
    for artifact in ARTIFACT_NAMES:
        got = source.backend.get_artifact(artifact)
        if got is not None:
            target.backend.put_artifact(artifact, got[0], got[1])
    target.flush()
    report.target_count = target.count()
    if report.target_count != report.source_count:
        raise StoreError(f"copy of {name!r} ended with {report.target_count} documents in the target but "
                         f"{report.source_count} in the source (the target held other ids, or the source "
                         "changed during the copy); run the copy again, or drop the target collection first")
    return report
