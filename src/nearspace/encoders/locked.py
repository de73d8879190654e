"""An encoder shared by threads: every call to the model and its tokenizer under one lock.

The server loads the bundled model once; its tokenizer is not safe to call from two threads
at once, and two concurrent forward passes only fight over the same cores, so calls are
serialised. The vectors are the inner encoder's own.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from nearspace.encoders.base import BaseEncoder, as_encoder
from nearspace.encoders.registry import DEFAULT_ENCODER, load_encoder


class LockedEncoder(BaseEncoder):
    """``inner`` (default: the bundled model) behind a lock, with ``encode_with_usage`` for
    OpenAI-style ``/v1/embeddings`` responses."""

    def __init__(self, inner: Any = None, *, precision: str = "auto") -> None:
        self.inner = as_encoder(inner if inner is not None else load_encoder(DEFAULT_ENCODER, precision=precision))
        spec = self.inner.spec
        self.kind, self.name, self.dim, self.options = spec.kind, spec.name, spec.dim, dict(spec.options)
        self.query_prompt, self.document_prompt = spec.query_prompt, spec.document_prompt
        self._lock = threading.RLock()
        tokenizer = getattr(self.inner, "tokenizer", None)
        if tokenizer is not None:
            self.tokenizer = _LockedTokenizer(tokenizer, self._lock)

    @property
    def max_seq_length(self) -> int | None:
        return self.inner.max_seq_length

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        with self._lock:
            return self.inner.encode(texts, batch_size=batch_size, show_progress=False)

    def usage_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model reads per text (special tokens included, after truncation)."""
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            return self.count_tokens(texts)
        ids = tokenizer(list(texts), truncation=True, max_length=self.max_seq_length)["input_ids"]
        return [len(row) for row in ids]

    def encode_with_usage(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """Vectors for /v1/embeddings: always the fp32 path, so a client gets the same vectors
        (within 1e-4) whichever backend serves and however many texts it sends; ``auto``'s
        torch bf16 for large batches (up to 3e-3 off) is kept for what the store encodes."""
        fp32 = getattr(self.inner, "onnx", self.inner)
        with self._lock:
            vectors = fp32.encode(texts, show_progress=False)
        return vectors, sum(self.usage_tokens(texts))

    def __repr__(self) -> str:
        return f"LockedEncoder({self.inner!r})"


class _LockedTokenizer:
    """The model's tokenizer, called under the model's lock; attributes pass through."""

    def __init__(self, tokenizer: Any, lock: threading.RLock) -> None:
        self._tokenizer, self._lock = tokenizer, lock

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)
