"""RAG: retrieve context for a language model, with a citation for every passage.

Owns question answering over chunked collections: hybrid retrieval of chunks, merging of
neighbouring chunks, near-duplicate removal, packing into a token budget, an extractive
answer (the sentences most similar to the question), and optional generation through an
OpenAI-compatible chat endpoint named by ``NEARSPACE_LLM_URL``.
"""
from __future__ import annotations

from nearspace.rag.ask import Answer, Passage, ask

__all__ = ["Answer", "Passage", "ask"]
