"""The reranker protocol, the model strings that name one, and the search stage itself."""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from nearspace.errors import InputError

#: candidates a rerank looks at by default (the BEIR setting reranks the first stage's top 100;
#: 50 keeps a CPU cross-encoder near a tenth of a second per query)
DEFAULT_RERANK_K = 50
MAX_RERANK_K = 1000


@runtime_checkable
class Reranker(Protocol):
    """Anything with a ``name`` that scores passages against a query, higher is better."""

    name: str

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray: ...


def load_reranker(spec: Any) -> Reranker:
    """A reranker from a model string or an object that already is one.

    ``ce:FOLDER_OR_NAME`` (or ``cross-encoder:``) a sentence-transformers CrossEncoder, by folder
    or a Hugging Face name in the local cache; ``rerank:MODEL@URL`` (or ``MODEL`` with the URL in
    ``NEARSPACE_RERANK_URL``) an endpoint speaking ``POST {URL}/rerank``; a bare existing folder
    is ``ce:``.
    """
    if spec is None:
        raise InputError("no reranker given")
    if not isinstance(spec, str):
        if not callable(getattr(spec, "score", None)) or not isinstance(getattr(spec, "name", None), str):
            raise InputError(f"a reranker needs a name and score(query, passages); got {type(spec).__name__}")
        return spec
    for prefix in ("ce:", "cross-encoder:"):
        if spec.startswith(prefix):
            from nearspace.rerank.cross_encoder import CrossEncoderReranker

            return CrossEncoderReranker(spec[len(prefix):])
    if spec.startswith("rerank:"):
        from nearspace.rerank.endpoint import EndpointReranker

        model, _, url = spec[len("rerank:"):].partition("@")
        return EndpointReranker(model, base_url=url or None)
    from pathlib import Path

    if Path(spec).expanduser().is_dir():
        from nearspace.rerank.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(spec)
    raise InputError(f"unknown reranker {spec!r}: use ce:FOLDER_OR_NAME (a cross-encoder) or rerank:MODEL@URL "
                     "(a /v1/rerank endpoint)")


def check_rerank_k(rerank_k: Any, k: int) -> int:
    if rerank_k is None:
        return max(k, DEFAULT_RERANK_K)
    if isinstance(rerank_k, bool) or not isinstance(rerank_k, int) or not 1 <= rerank_k <= MAX_RERANK_K:
        raise InputError(f"rerank_k must be a whole number from 1 to {MAX_RERANK_K}, got {rerank_k!r}")
    return max(rerank_k, k)


def rerank_hits(reranker: Reranker, query: str, hits: list, texts: list[str]) -> list[tuple[Any, float]]:
    """``hits`` (any keys) reordered by the reranker's scores of ``texts``, best first; ties keep
    the first stage's order."""
    if not hits:
        return []
    scores = np.asarray(reranker.score(query, texts), dtype=np.float64).reshape(-1)
    if scores.shape != (len(hits),):
        raise InputError(f"reranker {reranker.name!r} returned {scores.shape[0]} score(s) for {len(hits)} passages")
    if not np.isfinite(scores).all():
        raise InputError(f"reranker {reranker.name!r} returned non-finite scores")
    order = np.argsort(-scores, kind="stable")
    return [(hits[i], float(scores[i])) for i in order]


def rerank_stored(reranker: Reranker, query: str, ids: list[str], backend: Any) -> tuple[list[tuple[str, float]], dict]:
    """Stored documents ``ids`` (first stage's order) reordered by ``reranker`` on their title and
    text; returns the reordered ``(id, score)`` hits and the documents read (by id). An id no
    longer stored drops out."""
    from nearspace.types import embedding_text

    docs = {d.id: d for d in backend.get(ids) if d is not None}
    kept = [i for i in ids if i in docs]
    return rerank_hits(reranker, query, kept, [embedding_text(docs[i]) for i in kept]), docs
