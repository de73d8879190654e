"""Maximal marginal relevance: trade a little relevance for less redundant results."""
from __future__ import annotations

import numpy as np

from typing import TypeVar

Key = TypeVar("Key")


def maximal_marginal_relevance(hits: list[tuple[Key, float]], vectors: np.ndarray, *, k: int,
                               diversity: float) -> list[tuple[Key, float]]:
    """Greedy MMR over ``hits`` (key, score), best first; ``vectors[i]`` is hit i's unit vector
    (zeros where it is unknown).

    Each step picks ``argmax (1 - diversity) * rel(d) - diversity * max_s cos(d, s)`` where
    rel is the hit's score min-max normalised over the pool and s ranges over the picks so
    far; ``diversity=0`` keeps the original order. Returned scores are the original ones.
    """
    if not hits or diversity <= 0:
        return hits[:k]
    scores = np.array([score for _, score in hits], dtype=np.float64)
    span = scores.max() - scores.min()
    relevance = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
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
