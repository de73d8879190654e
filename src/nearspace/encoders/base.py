"""The encoder protocol shared by dense models and sparse baselines."""
from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Anything that maps a list of texts to an ``(n, dim)`` float32 array."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row in place (zero rows stay zero) and return float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate encoder input at the boundary: a list of non-empty strings."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of texts, not a single string; wrap it in a list")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text #{i} is {type(text).__name__}, expected str")
    return out


#: show a progress bar by default from this many texts on
PROGRESS_THRESHOLD = 512


def encode_longest_first(texts: Sequence[str], forward: Callable[[list[str]], np.ndarray], *,
                         batch_size: int, show_progress: bool | None, label: str, dim: int = 0) -> np.ndarray:
    """Shared batching for dense encoders: validate, encode longest-first in batches (less
    padding) with ``forward(batch) -> (len(batch), dim)``, restore input order, show a Rich
    progress bar for long inputs, and return L2-normalised float32 rows."""
    texts = check_texts(texts)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    if show_progress is None:
        show_progress = len(texts) >= PROGRESS_THRESHOLD
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None

    def run(update: Callable[[int], object] = lambda n: None) -> np.ndarray:
        nonlocal out
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            emb = forward([texts[i] for i in idx])
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
            update(len(idx))
        assert out is not None
        return out

    if show_progress:
        from nearspace.progress import progress_bar

        with progress_bar() as progress:
            task = progress.add_task(f"encoding ({label})", total=len(texts))
            vectors = run(lambda n: progress.advance(task, n))
    else:
        vectors = run()
    return normalize_rows(vectors)
