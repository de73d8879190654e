"""Store: where collections live, behind one backend contract (``store/base.py``).

``store/sqlite`` (the default: one SQLite file, derived indexes beside it) and ``store/milvus``
(a Milvus server or milvus-lite file) implement it side by side; ``store/filters.py`` is the
metadata filter language both speak and ``transfer.py`` copies collections between them.
Nothing here knows about encoders or search modes.
"""
from __future__ import annotations

from nearspace.store.base import CollectionBackend, Selection, StoreBackend
from nearspace.store.registry import open_backend, register_backend
from nearspace.types import Document

__all__ = ["CollectionBackend", "StoreBackend", "Selection", "open_backend", "register_backend", "Document"]
