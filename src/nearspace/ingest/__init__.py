"""Ingest: read files into validated documents ready for a collection.

Owns file readers (JSON Lines, including the BEIR ``corpus.jsonl`` format; plain text and
Markdown, one document per file) and the walk over folders. Every problem is reported
with its file (and line) before anything is written.
"""
from __future__ import annotations

from nearspace.ingest.readers import collect_documents, read_jsonl, read_text_file

__all__ = ["collect_documents", "read_jsonl", "read_text_file"]
