"""Retrieval metrics through pytrec_eval; every judged query counts (a miss scores 0)."""
from __future__ import annotations

from typing import Mapping, Sequence

METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
_MEASURES = {"ndcg_cut.10": "ndcg@10", "recall.100": "recall@100", "map_cut.100": "map@100"}

Run = Mapping[str, Sequence[str]]  # query id -> ranked doc ids, best first


def _scored(run: Run, depth: int | None = None) -> dict[str, dict[str, float]]:
    # rank-derived scores: pytrec_eval re-sorts by score, so ties must not reorder our ranking
    out = {}
    for qid, docs in run.items():
        docs = list(docs)[:depth] if depth else list(docs)
        out[qid] = {doc: float(len(docs) - i) for i, doc in enumerate(docs)}
    return out


def evaluate_run(qrels: Mapping[str, Mapping[str, int]], run: Run) -> dict[str, float]:
    """Mean nDCG@10, Recall@100, MRR@10 and MAP@100 over all queries in ``qrels``."""
    import pytrec_eval

    judged = {q: dict(d) for q, d in qrels.items() if any(v > 0 for v in d.values())}
    if not judged:
        raise ValueError("qrels hold no relevant documents")
    full = pytrec_eval.RelevanceEvaluator(judged, set(_MEASURES)).evaluate(
        {q: d for q, d in _scored(run).items() if q in judged})
    top10 = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(
        {q: d for q, d in _scored(run, 10).items() if q in judged})
    totals = dict.fromkeys(METRICS, 0.0)
    for qid in judged:
        for measure, name in _MEASURES.items():
            totals[name] += full.get(qid, {}).get(measure.replace(".", "_"), 0.0)
        totals["mrr@10"] += top10.get(qid, {}).get("recip_rank", 0.0)
    return {name: totals[name] / len(judged) for name in METRICS}


def per_query_ndcg(qrels: Mapping[str, Mapping[str, int]], run: Run) -> dict[str, float]:
    import pytrec_eval

    judged = {q: dict(d) for q, d in qrels.items() if any(v > 0 for v in d.values())}
    scores = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10"}).evaluate(
        {q: d for q, d in _scored(run).items() if q in judged})
    return {q: scores.get(q, {}).get("ndcg_cut_10", 0.0) for q in judged}
