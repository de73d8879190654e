"""Rerankers: a second, slower look at a search's top candidates (``search(..., rerank=...)``).

A reranker scores ``(query, passage)`` pairs jointly (a cross-encoder reads both at once, which
a bi-encoder's separate vectors cannot). Whether it helps depends on the corpus and on the first
stage -- published BEIR figures show gains on some sets and losses on others -- so it is a stage
you measure (``nearspace eval --rerank``), not a switch to flip blind.

``base.py`` holds the protocol and the model strings (``load_reranker``); ``cross_encoder.py``
sentence-transformers ``CrossEncoder`` models by folder or cached name; ``endpoint.py`` the
``/v1/rerank`` shape that Cohere, Jina, vLLM and TEI speak (and ``nearspace serve --rerank``).
"""
from __future__ import annotations

from nearspace.rerank.base import Reranker, load_reranker, rerank_hits

__all__ = ["Reranker", "load_reranker", "rerank_hits"]
