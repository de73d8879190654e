"""Typed search results: one ``SearchResult`` per hit, ``SearchResults`` (a list) per search.

The classes live in ``nearspace.types`` (every layer shares them); this name is kept for
existing imports.
"""
from __future__ import annotations

from nearspace.types import SearchResult, SearchResults

__all__ = ["SearchResult", "SearchResults"]
