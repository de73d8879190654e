"""A ``/v1/rerank`` endpoint as a reranker: the shape Cohere, Jina, vLLM and TEI speak.

``POST {base_url}/rerank`` with ``{"model", "query", "documents": [...], "top_n"}``; the answer's
``results`` (Cohere/Jina/vLLM) or top-level list (TEI) holds ``{"index", "relevance_score"}``
(or ``"score"``) per document. Base URL from options or ``NEARSPACE_RERANK_URL``; the key from
``NEARSPACE_RERANK_KEY`` (never printed). Retries, backoff and ``Retry-After`` as for the
embeddings endpoint (``nearspace.endpoints``).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from nearspace.endpoints import JsonClient
from nearspace.errors import EncoderUnavailable

URL_VARIABLE, KEY_VARIABLE = "NEARSPACE_RERANK_URL", "NEARSPACE_RERANK_KEY"


class RerankError(EncoderUnavailable):
    """The rerank endpoint refused, kept failing or answered out of shape."""


class EndpointReranker:
    def __init__(self, model: str, *, base_url: str | None = None, timeout: float = 60.0, retries: int = 6,
                 backoff: float = 0.5, max_documents: int = 1000) -> None:
        url = base_url or os.environ.get(URL_VARIABLE, "")
        if not url:
            raise EncoderUnavailable(f"a rerank endpoint needs a URL: rerank:MODEL@URL, or set {URL_VARIABLE}")
        self.name = model
        self.url = url.rstrip("/") + "/rerank"
        self.max_documents = max_documents
        self.client = JsonClient(self.url, key=lambda: os.environ.get(KEY_VARIABLE, ""), timeout=timeout,
                                 retries=retries, backoff=backoff, error=RerankError)

    def __repr__(self) -> str:
        return f"EndpointReranker(model={self.name!r}, url={self.url!r})"

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        passages = list(passages)
        out = np.full(len(passages), np.nan, dtype=np.float64)
        for start in range(0, len(passages), self.max_documents):
            part = passages[start:start + self.max_documents]
            answer = self.client.post({"model": self.name, "query": query, "documents": part, "top_n": len(part)})
            for index, score in _results(answer, len(part), self.url):
                out[start + index] = score
        if np.isnan(out).any():
            raise RerankError(f"{self.url} scored {int((~np.isnan(out)).sum())} of {len(passages)} documents")
        return out


def _results(answer: Any, n: int, url: str) -> list[tuple[int, float]]:
    items = answer.get("results") if isinstance(answer, dict) else answer
    if not isinstance(items, list):
        raise RerankError(f"{url} answered without a results list")
    out = []
    for item in items:
        try:
            index = int(item["index"])
            score = float(item["relevance_score"] if "relevance_score" in item else item["score"])
        except (KeyError, TypeError, ValueError):
            raise RerankError(f"{url} answered with a result that has no index and score: {str(item)[:120]}") from None
        if not 0 <= index < n:
            raise RerankError(f"{url} answered with index {index} for {n} documents")
        out.append((index, score))
    return out
