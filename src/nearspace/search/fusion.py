"""Rank fusion of several ranked lists into one."""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

RRF_K = 60
#: the hybrid used when a collection has no tuned fusion (chosen by benchmarks/fusion_select.py)
DEFAULT_FUSION: dict[str, object] = {"method": "adaptive", "weights": {"dense": 0.5, "keyword": 0.5}}


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


def adaptive_fusion(lists: Mapping[str, Sequence[tuple[Hashable, float]]], *,
                    weights: Mapping[str, float] | None = None) -> list[tuple[Hashable, float]]:
    """Convex z-score fusion whose weights follow each mode's confidence on this query.

    A mode's confidence is how far its best hit stands above the rest of its list (the top
    score minus the mean of the others, in standard deviations). A keyword list whose leaders
    are decoys that merely share a word is flat; a dense list with a clear meaning match
    stands out; so the weights tilt per query toward the mode that is sure, using only
    signals available at query time. Chosen by benchmarks/fusion_select.py across six BEIR
    sets (leave one dataset out), the seed example and a decoy set.
    """
    import numpy as np

    weights = dict(weights or {})
    tilted = {}
    for mode, hits in lists.items():
        scores = np.array([s for _, s in hits], dtype=np.float64)
        std = scores.std() if len(scores) > 1 else 0.0
        confidence = (scores[0] - scores[1:].mean()) / std if std > 0 else 1.0
        tilted[mode] = float(weights.get(mode, 1.0)) * max(confidence, 0.5)
    total = sum(tilted.values()) or 1.0
    return convex_fusion(lists, weights={m: w / total for m, w in tilted.items()}, norm="zscore")


def fuse_spec(lists: Mapping[str, Sequence[tuple[Hashable, float]]],
              spec: Mapping[str, object] | None) -> list[tuple[Hashable, float]]:
    """Fuse by a stored specification: ``{"method", "weights", "rrf_k", "norm"}``."""
    spec = dict(spec or DEFAULT_FUSION)
    return fuse(lists, method=str(spec.get("method", "rrf")), weights=spec.get("weights"),  # type: ignore[arg-type]
                rrf_k=int(spec.get("rrf_k", RRF_K)), norm=str(spec.get("norm", "minmax")))


def fuse(lists: Mapping[str, Sequence[tuple[Hashable, float]]], *, method: str = "rrf",
         weights: Mapping[str, float] | None = None, rrf_k: int = RRF_K,
         norm: str = "minmax") -> list[tuple[Hashable, float]]:
    """Fuse per-mode ``[(item, score)]`` lists (best first) by ``rrf`` or ``convex``."""
    if method == "rrf":
        return reciprocal_rank_fusion({m: [item for item, _ in hits] for m, hits in lists.items()},
                                      k=rrf_k, weights=weights)
    if method == "convex":
        return convex_fusion(lists, weights=weights, norm=norm)
    if method == "adaptive":
        return adaptive_fusion(lists, weights=weights)
    raise ValueError(f"unknown fusion method {method!r}; use one of {FUSION_METHODS}")
