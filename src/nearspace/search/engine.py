"""Query execution: the one search, over any backend (``store/base.py``'s contract).

Dense and keyword candidates come from the backend keyed by document id, with the filter's
:class:`~nearspace.store.base.Selection` pushed down; fusion, MMR and result assembly happen
here, so a tuned fusion means the same thing on SQLite and on Milvus."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from nearspace.errors import InputError
from nearspace.search.fusion import DEFAULT_FUSION, RRF_K, fuse, query_terms
from nearspace.types import SearchResult, SearchResults
from nearspace.store.base import CollectionBackend

MODES = ("hybrid", "dense", "keyword")
#: each mode contributes at least this many candidates to a hybrid fusion
HYBRID_CANDIDATES = 100
#: largest k a search may ask for (results are materialised in memory)
MAX_K = 1_000_000


def search(backend: CollectionBackend, embed_query: Callable[[str], np.ndarray],
           query: str, *, k: int = 10, mode: str = "hybrid", where: dict[str, Any] | None = None,
           weights: Mapping[str, float] | None = None, fusion: Mapping[str, Any] | None = None,
           candidates: int = HYBRID_CANDIDATES, diversity: float | None = None,
           rerank: Any = None, rerank_k: int | None = None) -> SearchResults:
    """Search a collection; see ``Collection.search`` for the user-facing contract.

    ``fusion`` holds ``method`` (rrf|convex), ``weights``, ``rrf_k`` and ``norm``; explicit
    ``weights`` override its weights.
    """
    if not isinstance(query, str) or not query.strip():
        raise InputError("the query is empty")
    if mode not in MODES:
        raise InputError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if k > MAX_K:  # a bound before any allocation sized by k
        raise InputError(f"k must be at most {MAX_K:,}, got {k:,}")
    selection = backend.select(where) if where else None
    if selection is not None and selection.empty:
        return SearchResults(query=query, mode=mode)
    if diversity is not None and not 0.0 <= diversity <= 1.0:
        raise InputError(f"diversity must be between 0 and 1, got {diversity!r}")
    fusion = dict(fusion or DEFAULT_FUSION)
    if weights is not None:
        fusion["weights"] = dict(weights)
    reranker = None
    if rerank is not None:
        from nearspace.rerank.base import check_rerank_k, load_reranker

        reranker, rerank_k = load_reranker(rerank), check_rerank_k(rerank_k, k)
    pool = k if not diversity else max(4 * k, 50)  # MMR re-ranks a wider pool
    if reranker is not None:
        pool = max(pool, rerank_k)
    depth = pool if mode != "hybrid" else max(pool, candidates)
    if backend.max_candidates is not None and depth > backend.max_candidates:
        raise InputError(f"this store returns at most {backend.max_candidates:,} hits per search; "
                         f"asked for {depth:,}")
    lists: dict[str, list[tuple[str, float]]] = {}
    if mode in ("dense", "hybrid"):
        lists["dense"] = backend.dense_candidates(embed_query(query), depth, selection)
    if mode in ("keyword", "hybrid"):
        lists["keyword"] = backend.keyword_candidates(query, depth, selection)
    if mode == "hybrid":
        try:
            fused = fuse(lists, method=fusion.get("method", "rrf"), weights=fusion.get("weights"),
                         rrf_k=int(fusion.get("rrf_k", RRF_K)), norm=fusion.get("norm", "minmax"),
                         n_terms=query_terms(query))[:pool]
        except ValueError as exc:
            raise InputError(str(exc)) from None
    else:
        fused = lists[mode][:pool]
    docs_of: dict[str, Any] = {}
    if reranker is not None and fused:
        from nearspace.rerank.base import rerank_stored

        lists["rerank"], docs_of = rerank_stored(reranker, query, [doc_id for doc_id, _ in fused[:rerank_k]],
                                                 backend)
        fused = lists["rerank"]
    if diversity and fused:
        from nearspace.search.mmr import maximal_marginal_relevance

        stored = backend.vectors_for_ids([doc_id for doc_id, _ in fused])
        zero = np.zeros(backend.dim, dtype=np.float32)
        vectors = np.stack([stored.get(doc_id, zero) for doc_id, _ in fused])
        fused = maximal_marginal_relevance(fused, vectors, k=k, diversity=diversity)
    fused = fused[:k]
    ranks = {m: {doc_id: r for r, (doc_id, _) in enumerate(hits, start=1)} for m, hits in lists.items()}
    raw = {m: dict(hits) for m, hits in lists.items()}
    missing = [doc_id for doc_id, _ in fused if doc_id not in docs_of]
    fetched = {d.id: d for d in backend.get(missing) if d is not None} if missing else {}
    docs = [docs_of.get(doc_id) or fetched.get(doc_id) for doc_id, _ in fused]
    results = SearchResults(query=query, mode=mode)
    for (doc_id, score), doc in zip(fused, docs):
        if doc is None:  # deleted between the candidate lookup and now
            continue
        results.append(SearchResult(
            id=doc.id, score=float(score), text=doc.text, metadata=doc.metadata, title=doc.title,
            ranks={m: ranks[m].get(doc_id) for m in lists}, scores={m: raw[m].get(doc_id) for m in lists}))
    return results
