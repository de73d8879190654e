"""Rank fusion of several ranked lists into one."""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

RRF_K = 60


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
