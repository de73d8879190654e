"""Pieces every adapter shares: wrapping another library's embedding callables as a nearspace
encoder, and accepting either a Store or a path."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from nearspace.api import Store, open_store
from nearspace.encoders.base import normalize_rows


class ForeignEncoder:
    """A nearspace encoder over another library's ``embed_documents`` callable. Rows are made
    unit length because the store compares by cosine."""

    def __init__(self, name: str, dim: int, embed_documents: Callable[[list[str]], Sequence[Sequence[float]]]):
        self.name = name
        self.dim = dim
        self._embed = embed_documents

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize_rows(np.array(self._embed(texts), dtype=np.float32).reshape(len(texts), self.dim))


def as_store(store: Any) -> Store:
    """A Store as given, or the store opened at a path."""
    if isinstance(store, (str, os.PathLike)):
        return open_store(store)
    return store


def stored_dim(store: Store, collection: str) -> int | None:
    """The dimension of an existing collection (None when it does not exist yet)."""
    if collection in store.list_collections():
        return store.get_collection(collection).dim
    return None
