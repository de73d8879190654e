"""Run every search mode over a query set, fuse offline, tune fusion, report metrics."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from nearspace.evaluate.metrics import evaluate_run
from nearspace.search.fusion import DEFAULT_FUSION, RRF_K, fuse, query_terms

Lists = dict[str, list[tuple[str, float]]]  # query id -> [(doc id, score)] best first
DEPTH = 100


@dataclass
class Candidates:
    """Per-mode candidate lists for a query set, with the seconds each mode took."""

    lists: dict[str, Lists]
    seconds: dict[str, float]
    n_queries: int
    #: query id -> the query's length in keyword terms (adaptive fusion reads it)
    n_terms: dict[str, int] = field(default_factory=dict)


def retrieve_candidates(collection, queries: Mapping[str, str], *, depth: int = DEPTH,
                        use_adapter: bool = False) -> Candidates:
    """Dense (query encoding included) and keyword lists of ``depth`` for every query."""
    qids = list(queries)
    backend = collection.backend
    warm = collection.embed_queries(["warm-up"], use_adapter=use_adapter)  # model loading is not query time
    backend.dense_candidates(warm[0], 1)  # nor is loading (or catching up) the vector index
    started = time.perf_counter()
    vectors = collection.embed_queries([queries[q] for q in qids], use_adapter=use_adapter)
    dense: Lists = {qid: backend.dense_candidates(vector, depth) for qid, vector in zip(qids, vectors)}
    dense_seconds = time.perf_counter() - started
    backend.keyword_candidates("warm up", 1)  # tokenising the corpus is indexing, not query time
    started = time.perf_counter()
    keyword: Lists = {qid: backend.keyword_candidates(queries[qid], depth) for qid in qids}
    keyword_seconds = time.perf_counter() - started
    return Candidates({"dense": dense, "keyword": keyword},
                      {"dense": dense_seconds, "keyword": keyword_seconds}, len(qids),
                      {q: query_terms(queries[q]) for q in qids})


def fused_run(candidates: Candidates, fusion: Mapping[str, Any], depth: int = DEPTH) -> dict[str, list[str]]:
    run = {}
    for qid in candidates.lists["dense"]:
        per_mode = {m: candidates.lists[m][qid] for m in ("dense", "keyword")}
        fused = fuse(per_mode, method=fusion.get("method", "rrf"), weights=fusion.get("weights"),
                     rrf_k=int(fusion.get("rrf_k", RRF_K)), norm=fusion.get("norm", "minmax"),
                     n_terms=candidates.n_terms.get(qid))
        run[qid] = [doc for doc, _ in fused[:depth]]
    return run


def mode_run(candidates: Candidates, mode: str) -> dict[str, list[str]]:
    return {qid: [doc for doc, _ in hits] for qid, hits in candidates.lists[mode].items()}


def fusion_grid() -> list[dict[str, Any]]:
    """Candidate fusions: RRF over k and weights, convex over normalisations and weights."""
    grid: list[dict[str, Any]] = []
    for rrf_k, w in itertools.product((5, 10, 20, 40, 60, 100), np.linspace(0.2, 0.8, 13)):
        grid.append({"method": "rrf", "rrf_k": int(rrf_k),
                     "weights": {"dense": round(float(w), 3), "keyword": round(float(1 - w), 3)}})
    for norm, w in itertools.product(("minmax", "zscore"), np.linspace(0.05, 0.95, 19)):
        grid.append({"method": "convex", "norm": norm,
                     "weights": {"dense": round(float(w), 3), "keyword": round(float(1 - w), 3)}})
    for w in np.linspace(0.2, 0.8, 13):
        grid.append({"method": "adaptive", "weights": {"dense": round(float(w), 3), "keyword": round(float(1 - w), 3)}})
    return grid


def subset(candidates: Candidates, qids: set[str]) -> Candidates:
    """The candidate lists of some queries only."""
    return Candidates({m: {q: hits for q, hits in lists.items() if q in qids} for m, lists in candidates.lists.items()},
                      dict(candidates.seconds), len(qids), {q: n for q, n in candidates.n_terms.items() if q in qids})


def choose_fusion(candidates: Candidates, qrels: Mapping[str, Mapping[str, int]], *, metric: str = "ndcg@10",
                  held_out: float = 0.2, seed: int = 0, default: Mapping[str, Any] = DEFAULT_FUSION) -> dict[str, Any]:
    """Tune on most of the queries, then keep the choice only if it beats the default fusion on
    the rest (held out, never tuned on): a grid's best on a few queries often loses elsewhere.

    Returns ``{"fusion", "score", "held_out", "default_held_out", "store", "queries"}``; ``store``
    is False when the default fusion did at least as well on the held-out queries (or there are
    too few queries to hold any out and the choice does not beat the default on them all)."""
    import random

    qids = sorted(q for q in candidates.lists["dense"] if q in qrels)
    random.Random(seed).shuffle(qids)
    n_out = int(len(qids) * held_out) if len(qids) >= 5 else 0
    tune_ids, out_ids = set(qids[n_out:]), set(qids[:n_out])
    tune_q = {q: qrels[q] for q in tune_ids}
    best, score, _ = tune_fusion(subset(candidates, tune_ids), tune_q, metric)
    check_ids = out_ids or tune_ids  # nothing to hold out: the choice must beat the default where it was chosen
    check_q = {q: qrels[q] for q in check_ids}
    check = subset(candidates, check_ids)
    chosen = evaluate_run(check_q, fused_run(check, best))[metric]
    baseline = evaluate_run(check_q, fused_run(check, default))[metric]
    return {"fusion": best, "score": score, "held_out": chosen, "default_held_out": baseline,
            "store": chosen > baseline, "queries": {"tuned": len(tune_ids), "held_out": len(out_ids)}}


def tune_fusion(candidates: Candidates, qrels: Mapping[str, Mapping[str, int]],
                metric: str = "ndcg@10") -> tuple[dict[str, Any], float, list[tuple[dict[str, Any], float]]]:
    """Pick the fusion with the best ``metric`` on these (training or dev) qrels."""
    scored = []
    for fusion in fusion_grid():
        scored.append((fusion, evaluate_run(qrels, fused_run(candidates, fusion))[metric]))
    best, best_score = max(scored, key=lambda pair: pair[1])
    return best, best_score, scored


def reranked_run(collection, queries: Mapping[str, str], run: Mapping[str, list[str]], reranker: Any,
                 rerank_k: int) -> dict[str, list[str]]:
    """``run`` with each query's top ``rerank_k`` reordered by ``reranker`` (the rest keep their
    places after them, so recall at the run's depth is what the first stage found)."""
    from nearspace.rerank.base import rerank_stored

    out = {}
    for qid, ids in run.items():
        reordered, _ = rerank_stored(reranker, queries[qid], ids[:rerank_k], collection.backend)
        out[qid] = [i for i, _ in reordered] + ids[rerank_k:]
    return out


def evaluate_modes(collection, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                   *, tuned: Mapping[str, Any] | None = None, adapter: bool = False, rerank: Any = None,
                   rerank_k: int | None = None) -> dict[str, dict[str, float]]:
    """Metrics (plus queries/s) for keyword, dense, hybrid (the default fusion), hybrid-rrf
    (plain RRF, k=60, for reference), tuned hybrid and adapted variants over the judged queries;
    with ``rerank``, keyword, dense and hybrid again with the reranker on their top ``rerank_k``
    (queries/s then includes the reranker), so its gain or loss on this data is in the table."""
    judged = {q: queries[q] for q in qrels if q in queries}
    cands = retrieve_candidates(collection, judged)
    n = max(cands.n_queries, 1)
    results: dict[str, dict[str, float]] = {}

    def add(name: str, run, seconds: float) -> None:
        results[name] = {**evaluate_run(qrels, run), "queries/s": n / seconds if seconds else float("inf")}

    add("keyword", mode_run(cands, "keyword"), cands.seconds["keyword"])
    add("dense", mode_run(cands, "dense"), cands.seconds["dense"])
    both = cands.seconds["dense"] + cands.seconds["keyword"]
    started = time.perf_counter()
    add("hybrid", fused_run(cands, DEFAULT_FUSION), both + time.perf_counter() - started)
    add("hybrid-rrf", fused_run(cands, {"method": "rrf", "rrf_k": RRF_K}), both)
    if tuned:
        started = time.perf_counter()
        run = fused_run(cands, tuned)
        add("hybrid-tuned", run, both + time.perf_counter() - started)
    if adapter and collection.adapter() is not None:
        adapted = retrieve_candidates(collection, judged, use_adapter=True)
        add("dense+adapter", mode_run(adapted, "dense"), adapted.seconds["dense"])
        both = adapted.seconds["dense"] + adapted.seconds["keyword"]
        add("hybrid+adapter", fused_run(adapted, DEFAULT_FUSION), both)
        if tuned:
            add("hybrid-tuned+adapter", fused_run(adapted, tuned), both)
    if rerank is not None:
        from nearspace.rerank.base import DEFAULT_RERANK_K, load_reranker

        reranker, depth = load_reranker(rerank), rerank_k or DEFAULT_RERANK_K
        both = cands.seconds["dense"] + cands.seconds["keyword"]
        for name, run, first in (("keyword", mode_run(cands, "keyword"), cands.seconds["keyword"]),
                                 ("dense", mode_run(cands, "dense"), cands.seconds["dense"]),
                                 ("hybrid", fused_run(cands, DEFAULT_FUSION), both)):
            started = time.perf_counter()
            reordered = reranked_run(collection, judged, run, reranker, depth)
            add(f"{name}+rerank", reordered, first + time.perf_counter() - started)
    return results
