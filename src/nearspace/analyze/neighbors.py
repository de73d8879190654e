"""Neighbours of a document, near-duplicate groups and outliers, from stored vectors.

All three are exact (blocked matrix products over unit vectors), so they need no index and
hold for any collection size that fits in memory: about n^2 * dim / 1e10 seconds of
arithmetic on a laptop core, i.e. seconds at 20,000 documents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nearspace.analyze.data import CollectionView, load_collection, require_size
from nearspace.errors import InputError

BLOCK = 2048
MAX_PAIRS = 2_000_000


@dataclass
class Neighbor:
    id: str
    score: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "text": self.text}


def neighbors(collection, doc_id: str, *, k: int = 10, view: CollectionView | None = None) -> list[Neighbor]:
    """The ``k`` documents most similar to the stored document ``doc_id`` (itself excluded)."""
    view = view or load_collection(collection)
    try:
        row = view.ids.index(doc_id)
    except ValueError:
        raise InputError(f"no document {doc_id!r} in collection {view.name!r}") from None
    sims = view.vectors @ view.vectors[row]
    sims[row] = -np.inf
    order = np.argsort(-sims)[:max(0, min(k, len(view) - 1))]
    return [Neighbor(view.ids[i], float(sims[i]), view.texts[i]) for i in order]


def _top_k_similar(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For every row, its ``k`` most similar other rows: (indices, similarities), best first."""
    n = len(vectors)
    k = min(k, n - 1)
    idx = np.empty((n, k), dtype=np.int64)
    val = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, BLOCK):
        sims = vectors[start:start + BLOCK] @ vectors.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_vals = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_vals, axis=1)
        idx[start:start + len(sims)] = np.take_along_axis(top, order, axis=1)
        val[start:start + len(sims)] = np.take_along_axis(top_vals, order, axis=1)
    return idx, val


def duplicates(collection, *, threshold: float = 0.95, view: CollectionView | None = None) -> list[dict[str, Any]]:
    """Groups of near-duplicates: documents linked by cosine >= ``threshold`` (transitively).

    Each group lists its ids and the lowest and highest similarity of the links that
    formed it; largest groups first.
    """
    if not -1.0 <= threshold <= 1.0:
        raise InputError(f"threshold is a cosine similarity between -1 and 1, got {threshold}")
    view = view or load_collection(collection)
    require_size(len(view), 2, "finding duplicates")
    vectors = view.vectors
    parent = list(range(len(view)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links: dict[int, list[float]] = {}
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(view), BLOCK):
        sims = vectors[start:start + BLOCK] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold - 1e-6)
        if len(pairs) + len(rows) > MAX_PAIRS:
            raise InputError(f"more than {MAX_PAIRS:,} pairs reach cosine {threshold}: that is not "
                             "near-duplication; raise the threshold")
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if c > i:  # each pair once, never a document with itself
                pairs.append((i, c, float(sims[r, c])))
                parent[find(i)] = find(c)
    for i, j, s in pairs:
        links.setdefault(find(i), []).append(s)
    groups: dict[int, list[int]] = {}
    for i in range(len(view)):
        root = find(i)
        if root in links:
            groups.setdefault(root, []).append(i)
    out = [{"ids": [view.ids[i] for i in members], "size": len(members),
            "min_similarity": min(links[root]), "max_similarity": max(links[root]),
            "texts": [view.texts[i][:200] for i in members]}
           for root, members in groups.items()]
    return sorted(out, key=lambda g: (-g["size"], -g["max_similarity"]))


def outliers(collection, *, top: int = 10, k: int = 10, view: CollectionView | None = None) -> list[dict[str, Any]]:
    """Documents farthest from their own neighbourhood.

    Score = 1 - mean cosine similarity to the ``k`` nearest other documents (the kNN distance):
    high when nothing in the collection resembles the document.
    """
    view = view or load_collection(collection)
    require_size(len(view), 3, "finding outliers")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    idx, val = _top_k_similar(view.vectors, k)
    score = 1.0 - val.mean(axis=1)
    order = np.argsort(-score)[:max(0, top)]
    return [{"id": view.ids[i], "score": float(score[i]), "nearest": view.ids[int(idx[i, 0])],
             "nearest_similarity": float(val[i, 0]), "text": view.texts[i][:200]} for i in order]
