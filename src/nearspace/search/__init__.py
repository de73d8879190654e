"""Search: dense, keyword and hybrid retrieval over a collection, with typed results.

Owns query-time logic only: candidate generation from the store's vector and FTS5
indexes, rank fusion (reciprocal rank fusion by default), and the result objects that
say which mode found each hit at which rank.
"""
from __future__ import annotations

from nearspace.search.fusion import reciprocal_rank_fusion
from nearspace.search.results import SearchResult

__all__ = ["SearchResult", "reciprocal_rank_fusion"]
