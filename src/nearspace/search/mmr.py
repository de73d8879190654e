"""Maximal marginal relevance: trade a little relevance for less redundant results."""
from __future__ import annotations

import numpy as np

from nearspace.store.vectors import VectorIndex


def maximal_marginal_relevance(hits: list[tuple[int, float]], index: VectorIndex, *, k: int,
                               diversity: float) -> list[tuple[int, float]]:
    """Greedy MMR over ``hits`` (doc_row, score), best first.

    Each step picks ``argmax (1 - diversity) * rel(d) - diversity * max_s cos(d, s)`` where
    rel is the hit's score min-max normalised over the pool and s ranges over the picks so
    far; ``diversity=0`` keeps the original order. Returned scores are the original ones.
    """
    if not hits or diversity <= 0:
        return hits[:k]
    rows = np.array([row for row, _ in hits], dtype=np.int64)
    scores = np.array([score for _, score in hits], dtype=np.float64)
    span = scores.max() - scores.min()
    relevance = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    # only the pool's rows: gathering the whole matrix would cost O(N) memory after every write
    vectors = index.vectors_for(rows, missing_as_zero=True)
    similarity = vectors @ vectors.T
    chosen: list[int] = []
    redundancy = np.full(len(hits), -np.inf)
    remaining = np.ones(len(hits), dtype=bool)
    for _ in range(min(k, len(hits))):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        objective = (1 - diversity) * relevance - diversity * penalty
        objective[~remaining] = -np.inf
        pick = int(np.argmax(objective))
        chosen.append(pick)
        remaining[pick] = False
        redundancy = np.maximum(redundancy, similarity[pick])
    return [hits[i] for i in chosen]
