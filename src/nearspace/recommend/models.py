"""Fitting and scoring: most-popular, item-kNN, ALS, BPR, content and the hybrid.

``fit_models`` trains with the ``implicit`` library (ALS, BPR, cosine item-kNN) and keeps only
arrays; scoring is plain numpy over those arrays, so serving never imports ``implicit`` and
the evaluation scores exactly what the store serves.

Scores for one user are a dense vector over the catalogue; ``top_k`` turns them into a ranking
with seen and filtered-out items masked.
"""
from __future__ import annotations

import io
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from nearspace.errors import InputError

MODELS = ("popular", "itemknn", "als", "bpr", "content", "hybrid")
COLLABORATIVE = ("als", "bpr")
WEIGHTINGS = ("bm25", "rating", "binary")
ALS_REGULARIZATION_GRID = (0.5, 5.0, 30.0, 100.0)
DEFAULT_ALS_REGULARIZATION = 30.0  # when fit_models is called without validation


@dataclass
class Params:
    """Hyper-parameters. Defaults were chosen on a validation split carved out of the MovieLens
    100K training data (never its test part); see benchmarks/recommend.py."""

    factors: int = 64
    # None: chosen at fit time from ALS_REGULARIZATION_GRID on a validation split (the best
    # value depends on the data's size: 30 on MovieLens 100K, far less on a small log)
    als_regularization: float | None = None
    als_iterations: int = 15
    # confidence weighting of the interaction values for ALS: BM25 (implicit's own
    # recommendation) damps prolific users and popular items; "rating" uses 1 + alpha * value
    weighting: str = "rating"
    alpha: float = 0.5
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    bpr_factors: int = 64
    bpr_learning_rate: float = 0.01
    bpr_regularization: float = 0.05
    bpr_iterations: int = 50
    knn_neighbours: int = 100
    # hybrid = z(als) + a * z(itemknn) + b * z(content), scores standardised per user;
    # [a, b], or None to choose them on a validation split at fit time
    hybrid_weights: list[float] | None = None
    content_map_ridge: float = 10.0
    seed: int = 0
    threads: int = 0

    def validate(self) -> "Params":
        if self.weighting not in WEIGHTINGS:
            raise InputError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        for name in ("factors", "als_iterations", "bpr_factors", "bpr_iterations", "knn_neighbours"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("als_regularization", "alpha", "bpr_learning_rate", "bpr_regularization", "content_map_ridge"):
            if getattr(self, name) is None and name == "als_regularization":
                continue
            if not float(getattr(self, name)) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.hybrid_weights is not None:
            if len(self.hybrid_weights) != 2 or any(not w >= 0 for w in self.hybrid_weights):
                raise InputError(f"hybrid_weights must be two numbers >= 0 (itemknn, content), "
                                 f"got {self.hybrid_weights}")
            self.hybrid_weights = [float(w) for w in self.hybrid_weights]
        return self


_controller = None


def blas_single_thread():
    """Context manager limiting BLAS to one thread.

    implicit runs its own threads and warns that a multi-threaded OpenBLAS underneath slows
    it badly; serving is small matrix-vector work where BLAS threads only add wake-up cost
    (measured: 12 ms -> under 3 ms per recommendation on a busy 2-core machine). The
    controller is built once (about 2 ms) and each limit costs about 20 us."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (load scipy's own BLAS first so it is limited too)
        import scipy.sparse  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def confidence(matrix, params: Params):
    """The confidence matrix ALS is fitted on (and that explanations and fold-in reuse)."""
    import scipy.sparse as sp

    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    if params.weighting == "binary":
        m.data[:] = 1.0
    elif params.weighting == "rating":
        m.data = (1.0 + params.alpha * m.data).astype(np.float32)
    else:
        from implicit.nearest_neighbours import bm25_weight

        m = bm25_weight(m, K1=params.bm25_k1, B=params.bm25_b).tocsr().astype(np.float32)
        m.data *= params.alpha
    m.eliminate_zeros()
    return m


@dataclass
class Models:
    """Fitted arrays over one user and item index space (codes from ``Interactions``)."""

    user_ids: list[str]
    item_ids: list[str]
    train: Any                       # users x items CSR of the interaction values
    params: Params
    popularity: np.ndarray           # users per item
    als_user: np.ndarray | None = None
    als_item: np.ndarray | None = None
    bpr_user: np.ndarray | None = None
    bpr_item: np.ndarray | None = None
    knn: Any = None                  # items x items CSR (cosine, top-K neighbours per item)
    content: np.ndarray | None = None  # items x d, unit rows (MiniLM of the item texts)
    content_map: np.ndarray | None = None  # d x factors: content -> ALS item space (cold items)
    hybrid_weights: dict[str, float] = field(default_factory=lambda: {"itemknn": 0.0, "content": 0.0})
    fit_seconds: dict[str, float] = field(default_factory=dict)
    _conf: Any = None
    _yty: np.ndarray | None = None
    _parts_cache: Any = None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def available(self) -> list[str]:
        out = ["popular", "itemknn"]
        if self.als_item is not None:
            out.append("als")
        if self.bpr_item is not None:
            out.append("bpr")
        if self.content is not None:
            out.append("content")
        if self.als_item is not None:
            out.append("hybrid")
        return out

    @property
    def default_model(self) -> str:
        return "hybrid" if "hybrid" in self.available else "als" if "als" in self.available else "itemknn"

    def require(self, model: str) -> None:
        if model not in MODELS:
            raise InputError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        if model not in self.available:
            why = " (needs item side data: fit with items=...)" if model in ("content", "hybrid") else ""
            raise InputError(f"model {model!r} was not fitted{why}; available: {', '.join(self.available)}")

    # -- ALS algebra shared by fold-in and explanations -------------------------------------
    @property
    def conf(self):
        if self._conf is None:
            self._conf = confidence(self.train, self.params)
        return self._conf

    def _als_system(self, items: np.ndarray, conf: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # implicit's normal equations: (YtY + reg I + Yt (Cu - I) Y) x = Yt Cu p, with YtY over
        # the fitted item vectors; ``factors`` may extend them with content-mapped cold items
        if self._yty is None:
            self._yty = self.als_item.T.astype(np.float64) @ self.als_item
        y = factors[items].astype(np.float64)
        a = self._yty + self.params.als_regularization * np.eye(y.shape[1]) + (y.T * (conf - 1.0)) @ y
        return a, y

    def fold_in(self, items: np.ndarray, values: np.ndarray, model: str = "als",
                extra_factors: np.ndarray | None = None) -> np.ndarray:
        """A user vector for a user known only by items and values (the new-user path).

        ``extra_factors`` supplies item vectors for items outside the model (cold items,
        mapped from their content)."""
        factors = self.als_item if model in ("als", "hybrid") else self.bpr_item
        if model != "bpr" and self.content_map is not None and len(self.cold_items):
            factors = factors.copy()
            factors[self.cold_items] = self.mapped_factors(self.cold_items)
        if extra_factors is not None:
            factors = np.vstack([factors, extra_factors])
        conf = self._confidence_of(values)
        if model == "bpr":
            # BPR has no closed-form fold-in: ridge regression onto its item factors (bias column
            # fixed to 1, as implicit's BPR user vectors carry it)
            y = factors[items, :-1].astype(np.float64)
            bias = factors[items, -1]
            a = y.T @ (y * conf[:, None]) + self.params.bpr_regularization * len(items) * np.eye(y.shape[1])
            x = np.linalg.solve(a, y.T @ (conf * (1.0 - bias)))
            return np.append(x, 1.0).astype(np.float32)
        a, y = self._als_system(items, conf, factors)
        return np.linalg.solve(a, y.T @ conf).astype(np.float32)

    def _confidence_of(self, values: np.ndarray) -> np.ndarray:
        """Confidences for a new user's values, on the scale of the training confidences."""
        values = np.asarray(values, dtype=np.float64)
        if self.params.weighting == "binary":
            return np.ones_like(values)
        if self.params.weighting == "rating":
            return 1.0 + self.params.alpha * values
        # bm25 rows of the training data: use the median confidence per unit of value
        data, raw = self.conf.data, self.train.data
        scale = float(np.median(data / np.maximum(raw, 1e-9))) if data.size else 1.0
        return np.maximum(values * scale, 1e-3)

    # -- scoring -------------------------------------------------------------------------
    @property
    def cold_items(self) -> np.ndarray:
        """Model items without a training interaction (collaborative models cannot rank them)."""
        return np.flatnonzero(self.popularity <= 0)

    def mapped_factors(self, items: np.ndarray) -> np.ndarray:
        """ALS item vectors guessed from content (for items nobody interacted with)."""
        return self.content[items] @ self.content_map

    def user_scores(self, model: str, user: int | None = None, items: np.ndarray | None = None,
                    values: np.ndarray | None = None, cold: "ColdItems | None" = None) -> np.ndarray:
        """Scores over the catalogue (model items, then ``cold`` items) for a stored user
        (``user``) or a new one known by ``items`` and ``values`` (indices may point at cold
        items). Items a model cannot rank score ``-inf``."""
        self.require(model)
        if user is not None:
            row = self.train.getrow(user)
            items, values = row.indices, row.data
        assert items is not None and values is not None
        items = np.asarray(items, dtype=np.int64)
        values = np.asarray(values, dtype=np.float32)
        n_cold = 0 if cold is None else len(cold)
        known = items < self.n_items
        if model == "content":
            return self._content_scores(items, values, cold)
        if model == "popular":
            scores = self.popularity.astype(np.float32)
        elif model == "itemknn":
            scores = self._knn_scores(items[known], values[known])
        elif model == "bpr":
            x = self.bpr_user[user] if user is not None else self.fold_in(items[known], values[known], "bpr")
            scores = self.bpr_item @ x
        elif model == "als":
            x = self.als_user[user] if user is not None else self.fold_in(items[known], values[known], "als")
            scores = self.als_item @ x
        else:
            return self._hybrid_scores(user, items, values, cold)
        scores = np.asarray(scores, dtype=np.float32)
        scores[self.cold_items] = -np.inf
        return np.concatenate([scores, np.full(n_cold, -np.inf, np.float32)])

    def _knn_scores(self, items: np.ndarray, values: np.ndarray) -> np.ndarray:
        import scipy.sparse as sp

        if len(items) == 0:
            return np.zeros(self.n_items, np.float32)
        row = sp.csr_matrix((values.astype(np.float32), items, [0, len(items)]), shape=(1, self.n_items))
        return np.asarray((row @ self.knn).todense(), dtype=np.float32).ravel()

    def _hybrid_scores(self, user: int | None, items: np.ndarray, values: np.ndarray,
                       cold: "ColdItems | None") -> np.ndarray:
        return blend([(scores, weight) for _name, scores, weight in self._hybrid_parts_one(user, items, values, cold)])

    def _hybrid_parts_one(self, user: int | None, items: np.ndarray, values: np.ndarray,
                          cold: "ColdItems | None") -> list[tuple[str, np.ndarray, float]]:
        # explanations right after scoring reuse the parts (the same user, items and values)
        key = (user, np.asarray(items).tobytes(), np.asarray(values, dtype=np.float32).tobytes(), id(cold))
        if self._parts_cache is not None and self._parts_cache[0] == key:
            return self._parts_cache[1]
        parts = self._compute_hybrid_parts(user, items, values, cold)
        self._parts_cache = (key, parts)
        return parts

    def _compute_hybrid_parts(self, user: int | None, items: np.ndarray, values: np.ndarray,
                              cold: "ColdItems | None") -> list[tuple[str, np.ndarray, float]]:
        cold_factors = cold.factors if cold is not None and cold.factors is not None else None
        n_cold = 0 if cold is None else len(cold)
        if user is not None:
            x = self.als_user[user]
        else:  # cold items the user liked take part through their content-mapped vectors
            x = self.fold_in(items, values, "als", cold_factors)
        als = self.als_item @ x
        internal = self.cold_items
        if len(internal) and self.content_map is not None:
            als[internal] = self.mapped_factors(internal) @ x
        if n_cold:
            als = np.concatenate([als, cold_factors @ x if cold_factors is not None else np.zeros(n_cold, np.float32)])
        known = items < self.n_items
        knn = np.concatenate([self._knn_scores(items[known], values[known]), np.zeros(n_cold, np.float32)])
        parts = [("als", als, 1.0), ("itemknn", knn, self.hybrid_weights.get("itemknn", 0.0))]
        if self.content is not None:
            parts.append(("content", self._content_scores(items, values, cold),
                          self.hybrid_weights.get("content", 0.0)))
        return parts

    def _content_scores(self, items: np.ndarray, values: np.ndarray, cold: "ColdItems | None") -> np.ndarray:
        catalogue = self._catalogue_content(cold)
        return catalogue @ content_profile(catalogue, items, values)

    def batch_scores(self, model: str, users: np.ndarray) -> np.ndarray:
        """users x items scores for stored users (evaluation): the same arithmetic, in bulk."""
        self.require(model)
        if model == "content":
            return self._batch_content(users)
        if model == "popular":
            scores = np.broadcast_to(self.popularity.astype(np.float32), (len(users), self.n_items)).copy()
        elif model == "itemknn":
            scores = np.asarray((self.train[users] @ self.knn).todense(), dtype=np.float32)
        elif model == "bpr":
            scores = self.bpr_user[users] @ self.bpr_item.T
        elif model == "als":
            scores = self.als_user[users] @ self.als_item.T
        else:
            return blend(self.hybrid_parts(users))
        scores[:, self.cold_items] = -np.inf
        return scores

    def hybrid_parts(self, users: np.ndarray, weights: dict[str, float] | None = None) -> list[tuple[np.ndarray, float]]:
        """The hybrid's standardisable parts for stored users: ALS (cold items content-mapped),
        item-kNN and content, with their weights."""
        weights = weights or self.hybrid_weights
        als = self.als_user[users] @ self.als_item.T
        internal = self.cold_items
        if len(internal) and self.content_map is not None:
            als[:, internal] = self.als_user[users] @ self.mapped_factors(internal).T
        parts = [(als, 1.0),
                 (np.asarray((self.train[users] @ self.knn).todense(), dtype=np.float32), weights.get("itemknn", 0.0))]
        if self.content is not None:
            parts.append((self._batch_content(users), weights.get("content", 0.0)))
        return parts

    def _batch_content(self, users: np.ndarray) -> np.ndarray:
        profiles = np.asarray(self.train[users] @ self.content, dtype=np.float32)
        profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
        return profiles @ self.content.T

    def item_vectors(self, model: str) -> np.ndarray:
        """Item vectors that define 'similar items' for a model (unit rows)."""
        self.require(model)
        if model == "content":
            return self.content
        if model == "bpr":
            vectors = self.bpr_item[:, :-1]
        elif model in ("als", "hybrid"):
            vectors = self.als_item
        else:  # popular / itemknn: use the kNN similarity rows directly (see similar_items)
            raise InputError(f"model {model!r} has no item vectors")
        return _unit(vectors)

    def user_vectors(self, model: str) -> np.ndarray:
        self.require(model)
        if model == "bpr":
            return _unit(self.bpr_user[:, :-1])
        if model in ("als", "hybrid"):
            return _unit(self.als_user)
        raise InputError(f"similar users needs a factor model (als or bpr), not {model!r}")

    # -- explanations --------------------------------------------------------------------
    def explain(self, model: str, targets: Sequence[int], items: np.ndarray, values: np.ndarray,
                cold: "ColdItems | None" = None, user: int | None = None) -> list[np.ndarray]:
        """For each target item, how much each of the user's ``items`` adds to its score.

        ALS: exact, from implicit's normal equations, score_i = sum_j c_j * y_i' A_u^-1 y_j.
        Item-kNN: exact, sim(i, j) * value_j. Content: exact for the profile sum,
        cos(i, j) * value_j. Hybrid: the parts' contributions divided by the standard deviation
        its per-user standardisation uses, weighted as in the blend (exact up to the per-user
        constant). BPR: dot products of item factors (BPR has no additive decomposition).
        """
        items = np.asarray(items, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        targets = [int(t) for t in targets]
        if model == "popular" or len(items) == 0:
            return [np.zeros(len(items)) for _ in targets]
        if model == "hybrid":
            parts = self._hybrid_parts_one(user, items, values, cold)
            out = [np.zeros(len(items)) for _ in targets]
            for name, scores, weight in parts:
                if weight == 0:
                    continue
                finite = scores[np.isfinite(scores)]
                std = float(finite.std()) if finite.size else 1.0
                for t, contrib in enumerate(self.explain(name, targets, items, values, cold, user)):
                    out[t] += weight * contrib / (std if std > 0 else 1.0)
            return out
        if model == "itemknn":
            known = items < self.n_items
            sims = np.zeros((len(items), len(targets)))
            cols = [t for t in targets]
            inside = [j for j, t in enumerate(cols) if t < self.n_items]
            if known.any() and inside:
                block = self.knn[items[known]][:, [cols[j] for j in inside]].toarray()
                sims[np.ix_(np.flatnonzero(known), inside)] = block
            return [sims[:, j] * values for j in range(len(targets))]
        if model == "content":
            catalogue = self._catalogue_content(cold)
            return [(catalogue[items] @ catalogue[t]) * values for t in targets]
        if model == "bpr":
            factors = self.bpr_item[:, :-1]
            known = items < self.n_items
            out = []
            for t in targets:
                contrib = np.zeros(len(items))
                if t < self.n_items:
                    contrib[known] = factors[items[known]] @ factors[t]
                out.append(contrib)
            return out
        factors = self.als_item
        if cold is not None and cold.factors is not None and len(cold.factors):
            factors = np.vstack([factors, cold.factors])
        if self.content_map is not None and len(self.cold_items):
            factors = factors.copy()
            factors[self.cold_items] = self.mapped_factors(self.cold_items)
        if user is not None:  # the exact confidences the user was fitted with
            row = self.conf.getrow(user)
            lookup = dict(zip(row.indices.tolist(), row.data.tolist()))
            conf = np.array([lookup.get(int(j), 1.0) for j in items], dtype=np.float64)
        else:
            conf = self._confidence_of(values)
        a, y = self._als_system(items, conf, factors)
        solved = np.linalg.solve(a, factors[targets].astype(np.float64).T)  # f x targets
        return [(y @ solved[:, t]) * conf for t in range(len(targets))]

    def _catalogue_content(self, cold: "ColdItems | None") -> np.ndarray:
        if cold is None or cold.content is None:
            return self.content
        return np.vstack([self.content, cold.content])

    # -- persistence ---------------------------------------------------------------------
    def to_bytes(self) -> tuple[bytes, dict[str, Any]]:
        """One npz blob (no pickle) and its JSON meta: everything needed to serve."""
        arrays: dict[str, np.ndarray] = {
            "user_ids": np.asarray(self.user_ids, dtype=str), "item_ids": np.asarray(self.item_ids, dtype=str),
            "train_indptr": self.train.indptr, "train_indices": self.train.indices,
            "train_data": self.train.data.astype(np.float32), "popularity": self.popularity,
            "knn_indptr": self.knn.indptr, "knn_indices": self.knn.indices,
            "knn_data": self.knn.data.astype(np.float32)}
        for name in ("als_user", "als_item", "bpr_user", "bpr_item", "content_map"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.ascontiguousarray(value, dtype=np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        meta = {"format": 1, "params": asdict(self.params), "hybrid_weights": self.hybrid_weights,
                "models": [m for m in self.available if m != "content"],
                "has_content_map": self.content_map is not None, "users": len(self.user_ids),
                "items": len(self.item_ids), "interactions": int(self.train.nnz), "fit_seconds": self.fit_seconds}
        return buffer.getvalue(), meta

    @classmethod
    def from_bytes(cls, value: bytes, meta: dict[str, Any]) -> "Models":
        import scipy.sparse as sp

        with np.load(io.BytesIO(value), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        user_ids = [str(u) for u in arrays["user_ids"]]
        item_ids = [str(i) for i in arrays["item_ids"]]
        n_users, n_items = len(user_ids), len(item_ids)
        train = sp.csr_matrix((arrays["train_data"], arrays["train_indices"], arrays["train_indptr"]),
                              shape=(n_users, n_items))
        knn = sp.csr_matrix((arrays["knn_data"], arrays["knn_indices"], arrays["knn_indptr"]),
                            shape=(n_items, n_items))
        params = Params(**{k: v for k, v in meta["params"].items() if k in Params.__dataclass_fields__})
        return cls(user_ids, item_ids, train, params, arrays["popularity"], arrays.get("als_user"),
                   arrays.get("als_item"), arrays.get("bpr_user"), arrays.get("bpr_item"), knn,
                   None, arrays.get("content_map"), dict(meta.get("hybrid_weights") or {}),
                   dict(meta.get("fit_seconds", {})))


@dataclass
class ColdItems:
    """Items outside the fitted model (described, never interacted with in training)."""

    ids: list[str]
    content: np.ndarray | None       # unit rows
    factors: np.ndarray | None       # content mapped into the ALS item space

    def __len__(self) -> int:
        return len(self.ids)


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def content_profile(content: np.ndarray, items: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A user's taste in content space: the value-weighted sum of their items' unit vectors."""
    if len(items) == 0:
        return np.zeros(content.shape[1], dtype=np.float32)
    profile = values.astype(np.float32) @ content[items]
    return profile / max(float(np.linalg.norm(profile)), 1e-12)


def zscore(scores: np.ndarray) -> np.ndarray:
    """Standardise scores per row (per user) so two models' scales can be added."""
    scores = np.asarray(scores, dtype=np.float32)
    finite = np.isfinite(scores)
    if scores.ndim == 1:
        if not finite.any():
            return scores
        mean, std = scores[finite].mean(), scores[finite].std()
        return (scores - mean) / (std if std > 0 else 1.0)
    safe = np.where(finite, scores, np.nan)
    mean = np.nanmean(safe, axis=1, keepdims=True)
    std = np.nanstd(safe, axis=1, keepdims=True)
    return (scores - mean) / np.where(std > 0, std, 1.0)


def blend(parts: Sequence[tuple[np.ndarray, float]]) -> np.ndarray:
    """Sum of per-user standardised scores, weighted (parts with weight 0 are skipped)."""
    out = None
    for scores, weight in parts:
        if weight == 0 and out is not None:
            continue
        term = zscore(scores) * weight
        out = term if out is None else out + term
    return out


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None,
          allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` best scores, best first; ``exclude`` masked, only ``allowed`` kept."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    if allowed is not None:
        mask = np.full(scores.shape, True)
        mask[allowed] = False
        scores[mask] = -np.inf
    candidates = np.flatnonzero(np.isfinite(scores))
    if candidates.size == 0:
        return candidates
    k = min(k, candidates.size)
    if k < candidates.size:
        # ties at the k-th score go to the lowest item positions, as a stable sort would
        kth = scores[candidates[np.argpartition(-scores[candidates], k - 1)[k - 1]]]
        above = candidates[scores[candidates] > kth]
        part = np.concatenate([above, candidates[scores[candidates] == kth][:k - above.size]])
    else:
        part = candidates
    return part[np.lexsort((part, -scores[part]))]


def top_k_rows(scores: np.ndarray, k: int, seen=None) -> list[np.ndarray]:
    """``top_k`` for every row of a users x items matrix at once (evaluation), ``seen`` (a CSR
    of the same shape) masked. Items scoring -inf are never returned."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if seen is not None and seen.nnz:
        rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        scores[rows, seen.indices] = -np.inf
    k = min(k, scores.shape[1])
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # stable: ties to the lowest position
    finite = np.isfinite(np.take_along_axis(scores, ranked, axis=1))
    return [row[ok] for row, ok in zip(ranked, finite)]


def fit_models(train, user_ids: Sequence[str], item_ids: Sequence[str], params: Params | None = None, *,
               models: Sequence[str] = ("als", "bpr"), content: np.ndarray | None = None,
               hybrid_weights: Sequence[float] | None = None) -> Models:
    """Fit the requested collaborative models (item-kNN and popularity always) on a
    users x items CSR of interaction values. ``content`` (items x d unit rows) enables the
    content model, the hybrid and the content -> ALS map used for cold items."""
    import scipy.sparse as sp

    params = Params(**asdict(params)) if params is not None else Params()
    params.validate()
    if params.als_regularization is None:
        params.als_regularization = DEFAULT_ALS_REGULARIZATION
    unknown = [m for m in models if m not in COLLABORATIVE]
    if unknown:
        raise InputError(f"unknown collaborative model(s) {', '.join(unknown)}; choose from {', '.join(COLLABORATIVE)}")
    train = sp.csr_matrix(train, dtype=np.float32)
    train.sum_duplicates()
    train.eliminate_zeros()
    if train.nnz == 0:
        raise InputError("no interactions to fit on")
    timings: dict[str, float] = {}
    out = Models(list(user_ids), list(item_ids), train, params,
                 np.asarray((train > 0).sum(axis=0), dtype=np.float32).ravel(), fit_seconds=timings)
    with blas_single_thread():
        from implicit.nearest_neighbours import CosineRecommender

        started = time.perf_counter()
        knn = CosineRecommender(K=params.knn_neighbours, num_threads=params.threads)
        with warnings.catch_warnings():
            # implicit 0.7.3 normalises into a COO matrix itself, then warns that it is not CSR
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            knn.fit(train, show_progress=False)
        out.knn = sp.csr_matrix(knn.similarity, dtype=np.float32)
        timings["itemknn"] = time.perf_counter() - started
        if "als" in models:
            from implicit.cpu.als import AlternatingLeastSquares

            started = time.perf_counter()
            als = AlternatingLeastSquares(factors=params.factors, regularization=params.als_regularization,
                                          iterations=params.als_iterations, random_state=params.seed,
                                          num_threads=params.threads)
            als.fit(out.conf, show_progress=False)
            out.als_user = np.asarray(als.user_factors, dtype=np.float32)
            out.als_item = np.asarray(als.item_factors, dtype=np.float32)
            timings["als"] = time.perf_counter() - started
        if "bpr" in models:
            from implicit.cpu.bpr import BayesianPersonalizedRanking

            started = time.perf_counter()
            bpr = BayesianPersonalizedRanking(factors=params.bpr_factors, learning_rate=params.bpr_learning_rate,
                                              regularization=params.bpr_regularization,
                                              iterations=params.bpr_iterations, random_state=params.seed,
                                              num_threads=params.threads)
            bpr.fit(train, show_progress=False)
            out.bpr_user = np.asarray(bpr.user_factors, dtype=np.float32)
            out.bpr_item = np.asarray(bpr.item_factors, dtype=np.float32)
            timings["bpr"] = time.perf_counter() - started
    if content is not None:
        attach_content(out, content)
    weights = hybrid_weights if hybrid_weights is not None else params.hybrid_weights
    if weights is not None:
        out.hybrid_weights = {"itemknn": float(weights[0]), "content": float(weights[1])}
    return out


def attach_content(models: Models, content: np.ndarray) -> None:
    """Give the models item content vectors and learn the content -> ALS map from warm items."""
    content = _unit(content)
    if content.shape[0] != models.n_items:
        raise InputError(f"content vectors for {content.shape[0]} items, the model has {models.n_items}")
    models.content = content
    if models.als_item is not None:
        warm = models.popularity > 0
        models.content_map = ridge_map(content[warm], models.als_item[warm], models.params.content_map_ridge)


def ridge_map(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """W minimising |x W - y|^2 + ridge |W|^2 (content -> collaborative item vectors)."""
    x = x.astype(np.float64)
    a = x.T @ x + ridge * np.eye(x.shape[1])
    return np.linalg.solve(a, x.T @ y.astype(np.float64)).astype(np.float32)
