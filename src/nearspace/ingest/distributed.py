"""The encode step on a Ray cluster (extra ``ray``): ``index_with_ray`` is ``Collection.index``
with ``encode=RayEncoder(...)``.

Reading, chunking (the collection encoder's tokenizer, as ``nearspace index`` does), the hash
comparison that skips unchanged content, the write batches, stale-chunk cleanup and file
bookkeeping are the local pipeline's (``ingest/pipeline.py``), so a Ray run stores the same ids
and the same vectors (the same model and backend in each actor) with the same upsert
semantics, on SQLite or Milvus, and an interrupted run resumes from its last committed batch.
Only the texts of each batch that need vectors travel to the actors: a pool of ``actors``
long-lived workers, each loading the encoder once, sharing every batch between them.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nearspace.errors import InputError, StoreError


class _EncodeActor:
    """One per Ray worker: loads the encoder once, then encodes lists of texts."""

    def __init__(self, encoder: str, precision: str) -> None:
        from nearspace.encoders import load_encoder

        self.encoder = load_encoder(encoder, precision=precision)

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode_documents(texts, show_progress=False), dtype=np.float32)


class RayEncoder:
    """An encode step (``texts -> unit vectors``) served by a pool of Ray actors."""

    def __init__(self, encoder: str, *, precision: str = "auto", actors: int = 2, address: str | None = None,
                 piece: int = 64) -> None:
        try:
            import ray
        except ImportError:
            raise StoreError("Ray indexing needs the 'ray' extra: pip install 'nearspace[ray]'") from None
        if actors < 1 or piece < 1:
            raise InputError(f"actors and batch_size must be >= 1, got {actors} and {piece}")
        # a cluster this encoder starts is shut down with it (no worker processes left behind);
        # Ray's own INFO lines stay out of the user's terminal
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            import logging

            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     **({} if address else {"num_cpus": max(actors, 1)}))
        remote = ray.remote(num_cpus=1)(_EncodeActor)
        self._ray = ray
        self.actors = [remote.remote(encoder, precision) for _ in range(actors)]
        self.piece = piece
        self.texts_encoded = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        pieces = [texts[i:i + self.piece] for i in range(0, len(texts), self.piece)]
        futures = [self.actors[n % len(self.actors)].encode.remote(p) for n, p in enumerate(pieces)]
        self.texts_encoded += len(texts)
        return np.concatenate(self._ray.get(futures)) if futures else np.zeros((0, 0), dtype=np.float32)

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False


def index_with_ray(paths: Sequence[str | Path], store: Any, collection: str = "default", *,
                   address: str | None = None, actors: int = 2, batch_size: int = 64,
                   chunk_tokens: int = 200, overlap: int = 40, precision: str = "auto",
                   show_progress: bool = True) -> dict[str, Any]:
    """Index ``paths`` into ``collection`` of ``store`` (an open Store, or a store spelling)
    with encoding on Ray; returns counts, seconds and how many texts went to Ray."""
    from nearspace.api import open_store

    started = time.perf_counter()
    owned = not hasattr(store, "collection")
    opened = open_store(store, precision=precision) if owned else store
    try:
        target = opened.collection(collection)
        ray_encoder = RayEncoder(target.backend.encoder, precision=precision, actors=actors, address=address,
                                 piece=batch_size)
        try:
            summary = target.index(paths, chunk_tokens=chunk_tokens, overlap_tokens=overlap,
                                   batch_size=max(batch_size * actors, batch_size), show_progress=show_progress,
                                   encode=ray_encoder)
        finally:
            ray_encoder.close()
        files = summary.files
        counts = summary.counts()
        if files is not None:  # folders and text files: chunks written through the same pipeline
            counts["added"] += files.added
            counts["updated"] += files.changed
            counts["unchanged"] += files.unchanged
        return {**counts, "encoded": ray_encoder.texts_encoded,
                "documents": summary.records - summary.chunked + summary.pieces,
                "count": target.count(), "seconds": time.perf_counter() - started}
    finally:
        if owned:
            opened.close()
