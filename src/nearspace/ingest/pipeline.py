"""The one ingest pipeline behind ``Collection.index(paths)``: sources -> validate -> chunk -> upsert.

Sources yield documents already validated by their reader (``readers.py``: JSON Lines and
text-column Parquet records named directly; ``folder.py``: folders and other files, parsed
by ``parsers.py``). Every document then meets the same chunking rule, whatever its source:
text longer than the model's window becomes chunks ``<id>#0``, ``<id>#1``, ... (a record
named on the command line, the same file inside a folder, or a parsed file), nothing is cut
off silently. Writes go through the collection's upsert path (only new or changed content
is encoded), and whatever bookkeeping a batch implies -- chunks left over from an earlier
shape of a record, a folder's file records -- commits in the same transaction as the batch.

``encode`` replaces only the encode step (``texts -> unit vectors``, called once per write batch
with the batch's new or changed texts): ``nearspace index --ray`` passes one that runs on a Ray
cluster (``distributed.py``); reading, chunking, writing and resuming stay the same.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from nearspace.errors import InputError
from nearspace.ingest.readers import JSONL_SUFFIXES, PARQUET_SUFFIXES, chunk_long_records, collect_documents
from nearspace.types import Document

if TYPE_CHECKING:
    from nearspace.api import Collection

#: texts -> unit vectors, one row per text (the encode step a caller may replace)
EncodeStep = Callable[[list[str]], np.ndarray]
RECORD_SUFFIXES = JSONL_SUFFIXES | PARQUET_SUFFIXES
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass
class IndexSummary:
    """What ``Collection.index`` did: record counts (WriteCounts) and the folder walk's counts."""

    records: int = 0                 # records read from .jsonl/.parquet files named directly
    record_files: int = 0
    added: int = 0                   # documents (records or chunks) by upsert outcome
    updated: int = 0
    metadata: int = 0
    unchanged: int = 0
    encoded: int = 0
    duplicates: int = 0              # repeated ids among the records (the last occurrence is kept)
    chunked: int = 0                 # records longer than the window, and the pieces they became
    pieces: int = 0
    chunks_deleted: int = 0          # left from an earlier shape of a record or file
    files: object = None             # folder.IngestSummary of the files and folders, if any
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "metadata": self.metadata, "unchanged": self.unchanged}


def index_paths(collection: "Collection", paths: Sequence[str | Path], *, chunk_tokens: int = 200,
                overlap_tokens: int = 40, chunk_records: bool = True, max_bytes: int = DEFAULT_MAX_BYTES,
                text_column: str | None = None, metadata_columns: Sequence[str] | None = None,
                batch_size: int = 256, show_progress: bool | None = None,
                encode: EncodeStep | None = None) -> IndexSummary:
    """See ``Collection.index``."""
    from nearspace.ingest.chunking import Chunker

    if chunk_tokens < 16 or overlap_tokens < 0:
        raise InputError(f"chunk_tokens must be >= 16 and overlap_tokens >= 0, got {chunk_tokens}, {overlap_tokens}")
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    summary = IndexSummary()
    records = [p for p in paths if p.is_file() and p.suffix.lower() in RECORD_SUFFIXES]
    files = [p for p in paths if p not in records]
    if records:
        report = collect_documents(records)  # every record validated before anything is written
        if not report.documents:
            raise InputError(f"no documents found in {', '.join(map(str, records))}")
        summary.records, summary.record_files = len(report.documents), report.files
        summary.duplicates = report.duplicates
        chunker = Chunker(collection.encoder, max_tokens=chunk_tokens,
                          overlap_tokens=min(overlap_tokens, chunk_tokens - 1))
        docs, parts = chunk_long_records(report.documents, chunker, split=chunk_records)
        summary.chunked = sum(1 for n in parts.values() if n)
        summary.pieces = sum(parts.values())
        write_records(collection, docs, parts, summary, batch_size=batch_size, show_progress=show_progress,
                      encode=encode)
    if files:
        from nearspace.ingest.folder import FolderIndexer

        indexer = FolderIndexer(collection, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens,
                                max_bytes=max_bytes, text_column=text_column, metadata_columns=metadata_columns,
                                encode=encode)
        summary.files = indexer.index(files, show_progress=show_progress is not False)
    collection.flush()
    summary.seconds = time.perf_counter() - started
    return summary


def write_records(collection: "Collection", docs: list[Document], parts: dict[str, int], summary: IndexSummary,
                  *, batch_size: int, show_progress: bool | None, encode: EncodeStep | None) -> None:
    """Upsert chunked records; each batch also deletes, in its own transaction, the chunks its
    records left from an earlier shape (more chunks before, or stored whole and chunked now)."""
    from nearspace.ingest.readers import stale_chunk_ids

    backend = collection.backend
    stale_of = {parent: stale_chunk_ids(backend, {parent: n}) for parent, n in parts.items()}
    stale_of = {parent: ids for parent, ids in stale_of.items() if ids}
    pending = set(stale_of)

    def cleanup(batch: list[Document]) -> Callable[[], None] | None:
        parents = {d.id if d.id in parts else d.metadata.get("parent") for d in batch} & pending
        if not parents:
            return None
        pending.difference_update(parents)  # claimed by this batch (a retried batch re-deletes: no-op)
        doomed = [i for p in sorted(parents) for i in stale_of[p]]

        def delete_stale() -> None:
            summary.chunks_deleted += backend.delete_in_transaction(doomed)

        return delete_stale

    counts = collection._write(docs, None, replace=True, batch_size=batch_size, show_progress=show_progress,
                               also_for=cleanup, encode=encode)
    for key, value in counts.items():
        setattr(summary, key, getattr(summary, key) + value)
    summary.encoded += counts["added"] + counts["updated"]
    leftover = [i for p in sorted(pending) for i in stale_of[p]]  # parents whose batch never ran
    if leftover:
        summary.chunks_deleted += backend.delete(leftover)
