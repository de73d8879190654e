"""Clustering a collection, each cluster named by its most distinctive terms.

k-means (with ``k`` suggested by the silhouette score when not given) or HDBSCAN
(density-based: finds its own number of clusters and leaves outliers as noise, ``-1``).
Terms come from class-based TF-IDF (c-TF-IDF, as in BERTopic): the documents of a cluster
are treated as one document, and a term scores high when it is frequent in that cluster and
rare across the others. A clustering can be stored with the collection (one artifact, one
transaction) so maps and later runs reuse it until the collection changes.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from nearspace.analyze.data import CollectionView, load_collection, require_size
from nearspace.errors import InputError

ARTIFACT = "clustering"
METHODS = ("kmeans", "hdbscan")
MIN_DOCS = 3
NOISE = -1


@dataclass
class Cluster:
    id: int
    size: int
    terms: list[str]
    examples: list[str]  # ids of the documents nearest the cluster's centre

    @property
    def label(self) -> str:
        name = "noise" if self.id == NOISE else f"{self.id}"
        return f"{name}: {', '.join(self.terms[:4])}" if self.terms else name


@dataclass
class Clustering:
    method: str
    ids: list[str]
    labels: list[int]
    clusters: list[Cluster]
    params: dict[str, Any] = field(default_factory=dict)
    seq: int = -1  # collection change sequence it was computed at

    @property
    def k(self) -> int:
        return sum(1 for c in self.clusters if c.id != NOISE)

    def by_id(self) -> dict[str, int]:
        return dict(zip(self.ids, self.labels))

    def cluster(self, cluster_id: int) -> Cluster:
        return next(c for c in self.clusters if c.id == cluster_id)

    def to_dict(self, *, assignments: bool = False) -> dict[str, Any]:
        out = {"method": self.method, "k": self.k, "noise": sum(1 for x in self.labels if x == NOISE),
               "params": self.params, "clusters": [asdict(c) for c in self.clusters]}
        if assignments:
            out["assignments"] = self.by_id()
        return out


def distinctive_terms(texts: Sequence[str], labels: Sequence[int], *, top: int = 8) -> dict[int, list[str]]:
    """c-TF-IDF: ``tf(t, c) * log(1 + A / f(t))``, A = mean words per cluster, f(t) = total count of t."""
    from sklearn.feature_extraction.text import CountVectorizer

    groups = sorted(set(labels))
    joined = [" ".join(t for t, label in zip(texts, labels) if label == g) for g in groups]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b",
                                 ngram_range=(1, 1))
    try:
        counts = vectorizer.fit_transform(joined).toarray().astype(np.float64)
    except ValueError:  # every word is a stop word
        return {g: [] for g in groups}
    vocab = vectorizer.get_feature_names_out()
    words_per_cluster = counts.sum(axis=1, keepdims=True)
    tf = counts / np.maximum(words_per_cluster, 1)
    idf = np.log(1 + words_per_cluster.mean() / np.maximum(counts.sum(axis=0), 1))
    scores = tf * idf
    out = {}
    for row, g in enumerate(groups):
        order = np.argsort(-scores[row])
        out[g] = [str(vocab[i]) for i in order[:top] if counts[row, i] > 0]
    return out


def distinctive_values(metadatas: Sequence[dict[str, Any]], labels: Sequence[int], *,
                       top: int = 8) -> dict[int, list[str]]:
    """Clusters of items without text (your own vectors) named by metadata instead: the same
    c-TF-IDF over ``key=value`` tokens (each element of a list value counts), so a cluster of
    comedies reads ``genres=Comedy``."""
    groups = sorted(set(labels))
    counts: dict[int, Counter] = {g: Counter() for g in groups}
    for meta, label in zip(metadatas, labels):
        for key, value in (meta or {}).items():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, (str, int, bool)) and not isinstance(v, float) and str(v).strip():
                    counts[label][f"{key}={v}"] += 1
    total = Counter()
    for c in counts.values():
        total.update(c)
    if not total:
        return {g: [] for g in groups}
    mean_size = np.mean([sum(c.values()) for c in counts.values()]) or 1.0
    out = {}
    for g, c in counts.items():
        size = max(sum(c.values()), 1)
        scored = sorted(c, key=lambda t: (-(c[t] / size) * np.log(1 + mean_size / total[t]), t))
        out[g] = scored[:top]
    return out


def suggest_k(vectors: np.ndarray, *, k_min: int = 2, k_max: int | None = None, seed: int = 0,
              sample: int = 3000) -> tuple[int, dict[int, float]]:
    """The k in ``k_min..k_max`` with the best silhouette (cosine); scores by k."""
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    k_max = min(k_max or 30, n - 1, max(k_min, int(np.sqrt(n) * 2)))
    if k_max < k_min:
        raise InputError(f"clustering needs at least {k_min + 1} documents; the collection has {n}")
    scores: dict[int, float] = {}
    rng = np.random.RandomState(seed)
    for k in range(k_min, k_max + 1):
        labels = _kmeans(vectors, k, seed)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(vectors, labels, metric="cosine",
                                           sample_size=min(sample, n), random_state=rng))
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores


def _kmeans(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(vectors) > 20_000:  # full k-means is needlessly slow there; mini-batches converge as well
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=4)
    return model.fit_predict(vectors)


def cluster_vectors(vectors: np.ndarray, texts: Sequence[str], ids: Sequence[str], *, method: str = "kmeans",
                    k: int | None = None, min_cluster_size: int | None = None, seed: int = 0,
                    top_terms: int = 8, metadatas: Sequence[dict[str, Any]] | None = None) -> Clustering:
    """Cluster unit vectors and name each cluster by its distinctive terms (by distinctive
    metadata values when the texts hold no words, as for your own vectors)."""
    if method not in METHODS:
        raise InputError(f"unknown clustering method {method!r}; choose from {', '.join(METHODS)}")
    n = len(vectors)
    require_size(n, MIN_DOCS, "clustering")
    started = time.perf_counter()
    params: dict[str, Any] = {"seed": seed}
    if method == "kmeans":
        if k is None:
            k, scores = suggest_k(vectors, seed=seed)
            params["suggested_k"] = k
            params["silhouette_by_k"] = {str(key): round(v, 4) for key, v in scores.items()}
        elif not 2 <= k < n:
            raise InputError(f"k must be between 2 and {n - 1} for {n} documents, got {k}")
        labels = _kmeans(vectors, k, seed)
        params["k"] = int(k)
    else:
        from sklearn.cluster import HDBSCAN

        size = min_cluster_size or max(3, min(50, n // 40))
        if size < 2 or size > n:
            raise InputError(f"min_cluster_size must be between 2 and {n}, got {size}")
        # density estimates degrade in 384 dimensions; a PCA to 20 keeps the structure HDBSCAN needs
        reduced = _reduce(vectors, 20, seed)
        labels = HDBSCAN(min_cluster_size=size, min_samples=min(size, 5), copy=True).fit_predict(reduced)
        params["min_cluster_size"] = size
    labels = np.asarray(labels, dtype=int)
    if method == "kmeans" or (labels >= 0).any():
        params["silhouette"] = _silhouette(vectors, labels, seed)
    terms = distinctive_terms(list(texts), labels.tolist(), top=top_terms)
    if metadatas is not None and not any(terms.values()):
        terms = distinctive_values(metadatas, labels.tolist(), top=top_terms)
    clusters = []
    for cid, size in sorted(Counter(labels.tolist()).items(), key=lambda kv: (kv[0] == NOISE, -kv[1])):
        members = np.flatnonzero(labels == cid)
        centre = vectors[members].mean(axis=0)
        nearest = members[np.argsort(-(vectors[members] @ centre))[:3]]
        clusters.append(Cluster(int(cid), int(size), terms.get(cid, []) if cid != NOISE else [],
                                [ids[i] for i in nearest]))
    # renumber by size so cluster 0 is the largest (stable, readable output)
    order = {c.id: i for i, c in enumerate(c for c in clusters if c.id != NOISE)}
    for c in clusters:
        c.id = order.get(c.id, NOISE)
    labels = np.array([order.get(int(x), NOISE) for x in labels])
    params["seconds"] = round(time.perf_counter() - started, 3)
    return Clustering(method, list(ids), labels.tolist(), clusters, params)


def _reduce(vectors: np.ndarray, dims: int, seed: int) -> np.ndarray:
    if vectors.shape[1] <= dims or len(vectors) <= dims:
        return vectors
    from sklearn.decomposition import PCA

    return PCA(n_components=dims, random_state=seed).fit_transform(vectors)


def _silhouette(vectors: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    from sklearn.metrics import silhouette_score

    keep = labels != NOISE
    if len(set(labels[keep].tolist())) < 2 or keep.sum() <= len(set(labels[keep].tolist())):
        return None
    return round(float(silhouette_score(vectors[keep], labels[keep], metric="cosine",
                                        sample_size=min(3000, int(keep.sum())), random_state=seed)), 4)


def cluster_collection(collection, *, method: str = "kmeans", k: int | None = None,
                       min_cluster_size: int | None = None, seed: int = 0, save: bool = True,
                       view: CollectionView | None = None) -> Clustering:
    """Cluster a collection's stored vectors; with ``save`` store the result with it."""
    view = view or load_collection(collection)
    result = cluster_vectors(view.vectors, view.full_texts(), view.ids, method=method, k=k,
                             min_cluster_size=min_cluster_size, seed=seed, metadatas=view.metadatas)
    result.seq = view.seq
    if save:
        payload = json.dumps({"ids": result.ids, "labels": result.labels}).encode()
        collection.backend.put_artifact(ARTIFACT, payload, {**result.to_dict(), "seq": result.seq})
    return result


def load_clustering(collection, *, fresh_only: bool = True) -> Clustering | None:
    """The stored clustering; None when there is none or (``fresh_only``) the collection changed since."""
    stored = collection.backend.get_artifact(ARTIFACT)
    if stored is None:
        return None
    value, meta = stored
    if fresh_only and meta.get("seq") != collection.backend.version():
        return None
    payload = json.loads(value)
    clusters = [Cluster(**c) for c in meta["clusters"]]
    return Clustering(meta["method"], payload["ids"], payload["labels"], clusters, meta.get("params", {}),
                      meta.get("seq", -1))
