"""Store: SQLite is the source of truth for every collection.

Owns the schema (documents, vectors, metadata index, FTS5 keyword index, change log),
atomic batch writes, metadata filters compiled to indexed SQL, and the derived vector
index (exact or HNSW) that is rebuilt or caught up from SQLite whenever it lags.
"""
from __future__ import annotations

from nearspace.store.database import CollectionData, Database
from nearspace.types import Document

__all__ = ["Database", "CollectionData", "Document"]
