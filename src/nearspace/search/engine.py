"""Query execution: one function per mode, and the hybrid that fuses them."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from nearspace.errors import InputError
from nearspace.search.fusion import RRF_K, reciprocal_rank_fusion
from nearspace.search.results import SearchResult
from nearspace.store.database import CollectionData
from nearspace.store.vectors import VectorIndex

MODES = ("hybrid", "dense", "keyword")
#: each mode contributes at least this many candidates to a hybrid fusion
HYBRID_CANDIDATES = 100


def search(data: CollectionData, index: VectorIndex, embed_query: Callable[[str], np.ndarray],
           query: str, *, k: int = 10, mode: str = "hybrid", where: dict[str, Any] | None = None,
           weights: Mapping[str, float] | None = None, rrf_k: int = RRF_K,
           candidates: int = HYBRID_CANDIDATES) -> list[SearchResult]:
    """Search a collection; see ``Collection.search`` for the user-facing contract."""
    if not isinstance(query, str) or not query.strip():
        raise InputError("the query is empty")
    if mode not in MODES:
        raise InputError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    allowed = data.filter_rows(where) if where else None
    if allowed is not None and len(allowed) == 0:
        return []
    depth = k if mode != "hybrid" else max(k, candidates)
    lists: dict[str, list[tuple[int, float]]] = {}
    if mode in ("dense", "hybrid"):
        lists["dense"] = index.search(embed_query(query), depth, allowed)
    if mode in ("keyword", "hybrid"):
        lists["keyword"] = data.keyword_search(query, depth, allowed)
    if mode == "hybrid":
        fused = reciprocal_rank_fusion({m: [row for row, _ in hits] for m, hits in lists.items()},
                                       k=rrf_k, weights=weights)[:k]
    else:
        fused = lists[mode][:k]
    ranks = {m: {row: r for r, (row, _) in enumerate(hits, start=1)} for m, hits in lists.items()}
    raw = {m: dict(hits) for m, hits in lists.items()}
    docs = data.rows_to_documents([row for row, _ in fused])
    results = []
    for row, score in fused:
        doc = docs.get(row)
        if doc is None:  # deleted between the index lookup and now
            continue
        results.append(SearchResult(
            id=doc.id, score=float(score), text=doc.text, metadata=doc.metadata, title=doc.title,
            ranks={m: ranks[m].get(row) for m in lists}, scores={m: raw[m].get(row) for m in lists}))
    return results
