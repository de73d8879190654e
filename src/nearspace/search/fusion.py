"""Rank fusion of several ranked lists into one."""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

RRF_K = 60
#: the hybrid used when a collection has no tuned fusion (chosen by benchmarks/fusion_select.py)
DEFAULT_FUSION: dict[str, object] = {"method": "adaptive", "weights": {"dense": 0.5, "keyword": 0.5}}
#: adaptive fusion: how strongly the confidence ratio, and the query's length, tilt the weights
CONFIDENCE_TILT = 1.0
LENGTH_TILT = 0.2
#: a query of this many terms (after stop words) gets the prior weights unchanged by length
PIVOT_TERMS = 10
#: adaptive fusion: keyword confidence below lo gives keyword no say, above hi its full say (None: off)
KEYWORD_GATE: tuple[float, float] | None = (2.0, 3.5)


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[Hashable]], *, k: int = RRF_K,
                           weights: Mapping[str, float] | None = None) -> list[tuple[Hashable, float]]:
    """Fuse ranked lists: ``score(d) = sum_m w_m / (k + rank_m(d))`` with 1-based ranks.

    Ties keep the order in which items were first seen, so the result is deterministic.
    """
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    weights = weights or {}
    scores: dict[Hashable, float] = {}
    for mode, ranking in rankings.items():
        weight = float(weights.get(mode, 1.0))
        if weight < 0:
            raise ValueError(f"fusion weight for {mode!r} must be >= 0, got {weight}")
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


FUSION_METHODS = ("rrf", "convex", "adaptive")
NORMALISATIONS = ("minmax", "zscore")


def normalise_scores(hits: Sequence[tuple[Hashable, float]], how: str) -> dict[Hashable, float]:
    """Per-query score normalisation so that modes with different scales can be mixed."""
    if not hits:
        return {}
    import numpy as np

    scores = np.array([s for _, s in hits], dtype=np.float64)
    if how == "minmax":
        span = scores.max() - scores.min()
        normed = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    elif how == "zscore":
        std = scores.std()
        normed = (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
    else:
        raise ValueError(f"unknown normalisation {how!r}; use one of {NORMALISATIONS}")
    return {item: float(v) for (item, _), v in zip(hits, normed)}


def convex_fusion(lists: Mapping[str, Sequence[tuple[Hashable, float]]], *,
                  weights: Mapping[str, float] | None = None, norm: str = "minmax") -> list[tuple[Hashable, float]]:
    """``score(d) = sum_m w_m * norm_m(d)``; a document a mode did not return gets that
    mode's lowest normalised score (it ranked below everything the mode returned)."""
    weights = weights or {}
    normed = {m: normalise_scores(hits, norm) for m, hits in lists.items()}
    floors = {m: min(v.values()) if v else 0.0 for m, v in normed.items()}
    items: dict[Hashable, None] = {}
    for hits in lists.values():
        items.update((item, None) for item, _ in hits)
    fused = {item: sum(float(weights.get(m, 1.0)) * normed[m].get(item, floors[m]) for m in lists)
             for item in items}
    return sorted(fused.items(), key=lambda pair: -pair[1])


def query_terms(query: str) -> int:
    """How many terms keyword search sees in ``query`` (stop words and single characters left out)."""
    from nearspace.store.sqlite.keywords import STOPWORDS, _TOKEN

    return sum(1 for w in _TOKEN.findall(query.lower()) if w not in STOPWORDS)


def _confidence(scores) -> float:
    """How far a list's best hit stands above the rest, in standard deviations (>= 0.5)."""
    if len(scores) < 2:
        return 1.0
    std = scores.std()
    return max(float((scores[0] - scores[1:].mean()) / std), 0.5) if std > 0 else 1.0


def adaptive_fusion(lists: Mapping[str, Sequence[tuple[Hashable, float]]], *,
                    weights: Mapping[str, float] | None = None, n_terms: int | None = None,
                    tilt: float = CONFIDENCE_TILT, length_tilt: float = LENGTH_TILT,
                    pivot: float = PIVOT_TERMS,
                    keyword_gate: tuple[float, float] | None = KEYWORD_GATE) -> list[tuple[Hashable, float]]:
    """Convex z-score fusion of dense and keyword whose weights follow this query's signals.

    The dense share ``a`` starts from the given weights (as log-odds) and moves by two
    signals available at query time:

    - each mode's confidence, how far its best hit stands above the rest of its list (top
      minus the mean of the others, in standard deviations): keyword leaders that merely
      share a word with the query are flat, a dense list with a clear meaning match stands
      out, so ``a`` tilts by ``tilt * ln(dense confidence / keyword confidence)``;
    - the query's length in terms: a paragraph-long query names its need in many words,
      which BM25 uses term by term while one embedding blurs them, so ``a`` falls by
      ``length_tilt * ln(n_terms / pivot)`` (rises for short queries);
    - a gate on keyword confidence: below ``keyword_gate[0]`` the keyword list has no say (its
      leaders are a handful of hits that each share a word with the query, as lexical decoys
      do), above ``keyword_gate[1]`` its full say, linear in between.

    Defaults (prior 0.5/0.5, tilt 1.0, length tilt 0.2 around 10 terms, gate 2.0-3.5) were
    chosen by benchmarks/fusion_select.py: mean nDCG@10 0.607 over six BEIR sets vs 0.598 for
    plain RRF, never more than 0.005 below the better single mode, the seed example's meaning
    match first and the decoy set 11/12 (leave-one-dataset-out held-out mean 0.606).

    Chosen by benchmarks/fusion_select.py across six BEIR sets (leave one dataset out), the
    seed example and the decoy set (tests/search/data/decoys.json); the table is in the
    [8/13] note. Modes other than dense/keyword keep their given weights.
    """
    import math

    import numpy as np

    weights = dict(weights or {})
    if set(lists) != {"dense", "keyword"} or not lists["dense"] or not lists["keyword"]:
        return convex_fusion(lists, weights=weights, norm="zscore")
    wd, wk = float(weights.get("dense", 1.0)), float(weights.get("keyword", 1.0))
    if wd <= 0 or wk <= 0:  # a mode switched off stays off
        return convex_fusion(lists, weights={"dense": wd, "keyword": wk}, norm="zscore")
    conf = {m: _confidence(np.array([s for _, s in hits], dtype=np.float64)) for m, hits in lists.items()}
    logit = math.log(wd / wk) + tilt * math.log(conf["dense"] / conf["keyword"])
    if n_terms:
        logit -= length_tilt * math.log(n_terms / pivot)
    if keyword_gate is not None:
        # keyword evidence whose best hit barely stands out (a handful of hits that each share
        # one word with the query: the decoys) fades out linearly between lo and hi
        lo, hi = keyword_gate
        gate = min(max((conf["keyword"] - lo) / (hi - lo), 0.0), 1.0)
        if gate == 0.0:
            return convex_fusion(lists, weights={"dense": 1.0, "keyword": 0.0}, norm="zscore")
        logit -= math.log(gate)
    a = 1.0 / (1.0 + math.exp(-max(min(logit, 30.0), -30.0)))
    return convex_fusion(lists, weights={"dense": a, "keyword": 1.0 - a}, norm="zscore")


def fuse_spec(lists: Mapping[str, Sequence[tuple[Hashable, float]]],
              spec: Mapping[str, object] | None, *, n_terms: int | None = None) -> list[tuple[Hashable, float]]:
    """Fuse by a stored specification: ``{"method", "weights", "rrf_k", "norm"}``."""
    spec = dict(spec or DEFAULT_FUSION)
    return fuse(lists, method=str(spec.get("method", "rrf")), weights=spec.get("weights"),  # type: ignore[arg-type]
                rrf_k=int(spec.get("rrf_k", RRF_K)), norm=str(spec.get("norm", "minmax")), n_terms=n_terms)


def fuse(lists: Mapping[str, Sequence[tuple[Hashable, float]]], *, method: str = "rrf",
         weights: Mapping[str, float] | None = None, rrf_k: int = RRF_K,
         norm: str = "minmax", n_terms: int | None = None) -> list[tuple[Hashable, float]]:
    """Fuse per-mode ``[(item, score)]`` lists (best first) by ``rrf``, ``convex`` or
    ``adaptive`` (which also reads ``n_terms``, the query's length; see ``query_terms``)."""
    if method == "rrf":
        return reciprocal_rank_fusion({m: [item for item, _ in hits] for m, hits in lists.items()},
                                      k=rrf_k, weights=weights)
    if method == "convex":
        return convex_fusion(lists, weights=weights, norm=norm)
    if method == "adaptive":
        return adaptive_fusion(lists, weights=weights, n_terms=n_terms)
    raise ValueError(f"unknown fusion method {method!r}; use one of {FUSION_METHODS}")
