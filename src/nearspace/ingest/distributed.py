"""Encoding spread over a Ray cluster, writing through the normal upsert path.

``index_with_ray`` reads and chunks the inputs here (``.jsonl`` records, ``.txt``/``.md``
files or folders of them, chunked with the collection encoder's tokenizer as
``nearspace index`` does), drops every document the store already holds with the same
content hash (so a re-run after an interrupt encodes nothing that was committed), and sends
the rest through Ray Data ``map_batches`` over an actor pool: each actor loads the encoder
once. Batches come back as they finish and are committed one by one with
``Collection.upsert(..., vectors=...)``: the same ids, the same vectors (the same model and
backend in each actor) and the same upsert semantics as a local run, on SQLite or Milvus.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nearspace.errors import InputError, StoreError


class _EncodeActor:
    """One per Ray worker: loads the encoder once, then encodes batches of texts."""

    def __init__(self, encoder: str, precision: str) -> None:
        from nearspace.encoders import load_encoder

        self.encoder = load_encoder(encoder, precision=precision)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors = self.encoder.encode(list(batch["text"]), show_progress=False)
        return {"i": batch["i"], "vector": np.asarray(vectors, dtype=np.float32)}


def index_with_ray(paths: Sequence[str | Path], store: Any, collection: str = "default", *,
                   address: str | None = None, actors: int = 2, batch_size: int = 64,
                   chunk_tokens: int = 200, overlap: int = 40, precision: str = "auto",
                   show_progress: bool = True) -> dict[str, Any]:
    """Index ``paths`` into ``collection`` of ``store`` (an open Store, or a store spelling)
    with encoding on Ray; returns counts, seconds and how many documents were encoded."""
    try:
        import ray
    except ImportError:
        raise StoreError("Ray indexing needs the 'ray' extra: pip install 'nearspace[ray]'") from None
    from nearspace.api import embedding_text, open_store
    from nearspace.ingest import collect_documents
    from nearspace.ingest.chunking import Chunker
    from nearspace.ingest.readers import chunk_long_records, stale_chunk_ids
    from nearspace.store.database import content_hash

    if actors < 1 or batch_size < 1:
        raise InputError(f"actors and batch_size must be >= 1, got {actors} and {batch_size}")
    started = time.perf_counter()
    owned = not hasattr(store, "collection")
    opened = open_store(store, precision=precision) if owned else store
    try:
        target = opened.collection(collection)
        report = collect_documents(paths)
        if not report.documents:
            raise InputError(f"no documents found in {', '.join(map(str, paths))}")
        encoder = target.encoder  # the tokenizer chunks here; the actors load their own copy
        chunker = Chunker(encoder, max_tokens=chunk_tokens, overlap_tokens=min(overlap, chunk_tokens - 1))
        docs, parts = chunk_long_records(report.documents, chunker)
        stored = target.data.hashes([d.id for d in docs])
        todo = [d for d in docs if stored.get(d.id) != content_hash(d.title, d.text)]
        unchanged = [d for d in docs if stored.get(d.id) == content_hash(d.title, d.text)]
        totals = {"added": 0, "updated": 0, "metadata": 0, "unchanged": 0}
        if unchanged:  # metadata may still differ; the normal upsert path re-checks the hashes inside
            # its write transaction, keeps stored vectors and encodes only what changed meanwhile
            counts = target.upsert([d.id for d in unchanged], [d.text for d in unchanged],
                                   metadatas=[d.metadata for d in unchanged], titles=[d.title for d in unchanged],
                                   show_progress=False)
            for key in totals:
                totals[key] += counts[key]
        if todo:
            if not ray.is_initialized():
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         **({} if address else {"num_cpus": max(actors, 1)}))
            # longest first, as the local path does, so each encoded batch pads little
            todo.sort(key=lambda d: -(len(d.title) + len(d.text)))
            dataset = ray.data.from_items([{"i": i, "text": embedding_text(d)} for i, d in enumerate(todo)])
            encoded = dataset.map_batches(_EncodeActor, batch_size=batch_size, batch_format="numpy",
                                          compute=ray.data.ActorPoolStrategy(size=actors),
                                          fn_constructor_kwargs={"encoder": target.data.encoder,
                                                                 "precision": precision})
            progress = task = None
            if show_progress:
                from nearspace.progress import progress_bar

                progress = progress_bar()
                progress.start()
                task = progress.add_task(f"encoding on Ray into {collection}", total=len(todo))
            try:
                for batch in encoded.iter_batches(batch_size=batch_size, batch_format="numpy"):
                    chunk = [todo[int(i)] for i in batch["i"]]
                    counts = target.upsert([d.id for d in chunk], [d.text for d in chunk],
                                           metadatas=[d.metadata for d in chunk], titles=[d.title for d in chunk],
                                           vectors=np.asarray(batch["vector"], dtype=np.float32),
                                           batch_size=len(chunk), show_progress=False)
                    for key in totals:
                        totals[key] += counts[key]
                    if progress is not None:
                        progress.advance(task, len(chunk))
            finally:
                if progress is not None:
                    progress.stop()
        stale = stale_chunk_ids(target.data, parts)
        if stale:
            target.delete(stale)
        target.flush()
        return {**totals, "encoded": len(todo), "documents": len(docs), "count": target.count(),
                "seconds": time.perf_counter() - started}
    finally:
        if owned:
            opened.close()

