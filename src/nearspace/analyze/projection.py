"""2-D projections of a collection: PCA (fast, linear, deterministic) or UMAP (keeps local
neighbourhoods, slower: ~30 s of just-in-time compilation per process before it starts)."""
from __future__ import annotations

import numpy as np

from nearspace.errors import InputError

METHODS = ("pca", "umap")
MIN_DOCS = {"pca": 3, "umap": 10}


def project(vectors: np.ndarray, method: str = "pca", *, seed: int = 0, n_neighbors: int = 15,
            min_dist: float = 0.1) -> np.ndarray:
    """``(n, 2)`` coordinates for ``n`` vectors."""
    if method not in METHODS:
        raise InputError(f"unknown projection {method!r}; choose from {', '.join(METHODS)}")
    n = len(vectors)
    if n < MIN_DOCS[method]:
        hint = " (try --method pca)" if method == "umap" and n >= MIN_DOCS["pca"] else ""
        raise InputError(f"a {method.upper()} map needs at least {MIN_DOCS[method]} documents; "
                         f"the collection has {n}{hint}")
    vectors = np.asarray(vectors, dtype=np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors).astype(np.float32)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that a fixed seed disables parallelism: intended
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, n - 1), min_dist=min_dist,
                            metric="cosine", random_state=seed, init="spectral" if n > 20 else "random")
        return reducer.fit_transform(vectors).astype(np.float32)
