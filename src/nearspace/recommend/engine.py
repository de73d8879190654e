"""``Recommender``: fitted models stored with a nearspace store, and the operations on them.

Layout in the store, for a recommender called ``NAME``:

* collection ``NAME-items`` (MiniLM, like any collection): one document per described item,
  title + genres/description as text, genres/year/... as metadata. Its vectors are the
  items' content embeddings, so items are searchable and filterable like any document, and
  ``where`` filters on recommendations are the store's own metadata filters.
* artifact ``recommender`` of that collection: one npz blob (float32 factors, the interaction
  matrix, id mappings, kNN similarities) plus JSON meta. The collaborative vectors have their
  own dimension (64), which a MiniLM collection cannot hold, so they live here. Writing it is
  one SQLite transaction: the commit point of a fit. A refit replaces it whole; readers see
  the old model or the new one, never a mix.
* collection ``NAME-users`` (written after the commit, derived): one document per user whose
  vector is the user's content profile (the mean of the liked items' MiniLM vectors) and whose
  text lists their favourite titles, so users are searchable by text ("fans of film noir")
  and filterable by genre. Recommendations never read it.

Item documents are upserted before the artifact; a new item only looks like a cold item to
the previous model until the artifact commits, so an interrupted fit leaves a usable store.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from nearspace.errors import InputError
from nearspace.recommend.data import Interactions, ItemData
from nearspace.recommend.models import (COLLABORATIVE, MODELS, ColdItems, Models, Params, blas_single_thread,
                                        fit_models, top_k)

ARTIFACT = "recommender"
_cache: dict[tuple, "_State"] = {}


def _single_blas(method):
    """Run a serving method with BLAS on one thread (see ``blas_single_thread``)."""
    import functools

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with blas_single_thread():
            return method(*args, **kwargs)

    return wrapper


@dataclass
class Reason:
    """One of the user's items and how much it pulled a recommendation in."""

    item: str
    title: str
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Recommendation:
    """A recommended (or similar) item or user, best first."""

    id: str
    score: float
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    because: list[Reason] = field(default_factory=list)
    cold: bool = False  # an item without interactions, ranked from its content

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "score": self.score, "title": self.title, "metadata": self.metadata,
               "because": [r.to_dict() for r in self.because]}
        if self.cold:
            out["cold"] = True
        return out


@dataclass
class _State:
    models: Models
    meta: dict[str, Any]
    user_index: dict[str, int]
    item_index: dict[str, int]           # model items, then cold items (catalogue positions)
    catalogue: list[str]
    cold: ColdItems | None
    stored: set[str]                     # ids of the items collection (described or given vectors)


def open_recommender(store: Any, name: str = "default") -> "Recommender":
    """A recommender in ``store`` (a ``Store`` or a path to one)."""
    if isinstance(store, (str, Path)):
        from nearspace.api import open_store

        store = open_store(store)
    return Recommender(store, name)


class Recommender:
    """Users and items of one interaction log, embedded together and served from the store.

        >>> rec = Recommender(store, "ml")
        >>> rec.fit(load_interactions("u.data"), items=load_items("u.item"))
        >>> rec.recommend("196", k=10, where={"genres": "Comedy"})
    """

    def __init__(self, store: Any, name: str = "default") -> None:
        from nearspace.store.sqlite.database import _NAME_RE

        if not _NAME_RE.match(f"{name}-items"):
            raise InputError(f"invalid recommender name {name!r}: use letters, digits, '_', '-', '.' (max 57)")
        self.store = store
        self.name = name
        self.items_name = f"{name}-items"
        self.users_name = f"{name}-users"

    def __repr__(self) -> str:
        return f"Recommender(name={self.name!r}, store={str(self.store.path)!r})"

    # -- fitting -------------------------------------------------------------------------
    def fit(self, interactions: Interactions, items: ItemData | None = None, *,
            models: Sequence[str] = ("als", "bpr"), params: Params | None = None,
            show_progress: bool | None = None) -> dict[str, Any]:
        """Fit every model on ``interactions`` and store them, replacing any previous fit.

        ``items`` (titles, genres, descriptions) are upserted into ``<name>-items`` and give
        content embeddings: the content model, the hybrid, and cold-start items (described
        but without interactions). Input is validated before anything is written; item
        documents are upserted first (to the previous model new items are just cold items),
        then the fitted model commits in one transaction. What ``params`` leaves open (ALS
        regularisation, hybrid weights) is chosen on a validation split first. BLAS is kept
        to one thread only around implicit (MiniLM encoding keeps its threads).
        """
        from nearspace.recommend.evaluate import tune_on_validation
        from nearspace.recommend.models import _unit

        started = time.perf_counter()
        params = Params(**asdict(params)) if params is not None else Params()
        params.validate()
        if len(interactions) == 0:
            raise InputError("no interactions to fit on")
        models = list(models)
        unknown = [m for m in models if m not in COLLABORATIVE]
        if unknown:  # checked before anything is written
            raise InputError(f"unknown collaborative model(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(COLLABORATIVE)}")
        collection = self.store.collection(self.items_name)
        content = None
        if items is not None:
            if len(items) == 0:
                raise InputError("item side data is empty")
            if getattr(collection, "vectors_only", False):  # nothing could encode the item texts
                raise InputError(f"{self.items_name!r} holds your own item vectors: fit without item side data "
                                 "(their metadata is stored with the vectors)")
            collection.upsert(ids=items.ids, texts=items.texts, titles=items.titles, metadatas=items.metadatas,
                              show_progress=show_progress)
        described = collection.backend.hashes(interactions.item_ids)
        if described:
            position_of, matrix = _id_vectors(collection.backend)
            content = np.zeros((interactions.n_items, matrix.shape[1]), dtype=np.float32)
            for position, item in enumerate(interactions.item_ids):
                if item in position_of:
                    content[position] = matrix[position_of[item]]
            content = _unit(content)
        tuning: dict[str, Any] = {}
        if "als" in models and (params.als_regularization is None or params.hybrid_weights is None):
            how = "temporal" if interactions.timestamps is not None else "random"
            try:
                params, tuning = tune_on_validation(interactions, np.ones(len(interactions), dtype=bool), how,
                                                    content, params)
            except InputError:  # too little data to validate on: defaults, and no blending without evidence
                params.hybrid_weights = params.hybrid_weights or [0.0, 0.0]
        fitted = fit_models(interactions.matrix(), interactions.user_ids, interactions.item_ids, params,
                            models=models, content=content)
        blob, meta = fitted.to_bytes()
        values = interactions.weights
        meta.update(name=self.name, source=interactions.source, fitted_at=time.time(),
                    value_kind=interactions.value_kind, described_items=len(described),
                    liked_value=float(np.percentile(values, 90) if interactions.value_kind == "rating"
                                      else np.median(values)),
                    tuning=tuning, summary=interactions.summary())
        collection.backend.put_artifact(ARTIFACT, blob, meta)  # the commit point
        if content is not None:
            users_written = self._write_users(fitted, collection)
        else:  # no content profiles: a users view from an earlier fit would be stale
            users_written = 0
            if self.users_name in self.store.list_collections():
                self.store.drop_collection(self.users_name)
        return {"name": self.name, "models": fitted.available, "users": fitted.train.shape[0],
                "items": fitted.n_items, "interactions": int(fitted.train.nnz), "described_items": len(described),
                "hybrid_weights": fitted.hybrid_weights, "als_regularization": fitted.params.als_regularization,
                "fit_seconds": fitted.fit_seconds,
                "users_collection": self.users_name if users_written else None,
                "seconds": time.perf_counter() - started}

    def _write_users(self, fitted: Models, items_collection: Any) -> int:
        """Rewrite the derived ``<name>-users`` view (content profiles, favourite titles)."""
        from nearspace.api import Collection

        # same encoder name and dimension as the items (the vectors are given: nothing to load)
        backend = self.store.backend
        if self.users_name in backend.collection_names():
            data = backend.open_collection(self.users_name)
        else:
            data = backend.create_collection(self.users_name, items_collection.backend.encoder,
                                             items_collection.backend.dim)
        users = Collection(self.store, data, None)
        titles = {d.id: (d.title or d.text[:60] or str(d.metadata.get("title") or d.id), d.metadata.get("genres") or [])
                  for d in items_collection.backend.get(fitted.item_ids) if d is not None}
        ids, texts, metas, vectors = [], [], [], []
        train = fitted.train
        profiles = np.asarray(train @ fitted.content, dtype=np.float32)
        norms = np.linalg.norm(profiles, axis=1)
        for u, user in enumerate(fitted.user_ids):
            if norms[u] == 0:
                continue
            row = train.getrow(u)
            order = row.indices[np.argsort(-row.data, kind="stable")]
            favourites = [titles[fitted.item_ids[i]][0] for i in order if fitted.item_ids[i] in titles][:10]
            genre_counts: dict[str, float] = {}
            for i, value in zip(row.indices, row.data):
                for genre in titles.get(fitted.item_ids[i], ("", []))[1]:
                    genre_counts[genre] = genre_counts.get(genre, 0.0) + float(value)
            top_genres = sorted(genre_counts, key=lambda g: -genre_counts[g])[:3]
            ids.append(user)
            texts.append("Likes " + "; ".join(favourites))
            metas.append({"interactions": int(row.nnz), **({"genres": top_genres} if top_genres else {})})
            vectors.append(profiles[u] / norms[u])
        if not ids:
            return 0
        matrix = np.vstack(vectors).astype(np.float32)
        # upsert keeps a stored vector when the text is unchanged: drop users whose profile moved
        stored_at, stored = _id_vectors(users.backend)
        position = {i: n for n, i in enumerate(ids)}
        stale = [u for u in stored_at if u not in position
                 or not np.allclose(stored[stored_at[u]], matrix[position[u]], atol=1e-5)]
        if stale:
            users.delete(stale)
        users.upsert(ids=ids, texts=texts, metadatas=metas, vectors=matrix)
        return len(ids)

    # -- loading -------------------------------------------------------------------------
    def _state(self) -> _State:
        if self.items_name not in self.store.list_collections():
            raise InputError(f"no recommender {self.name!r} in {self.store.path}; fit one first "
                             f"(nearspace recommend fit FILE --name {self.name})")
        data = self._data_cache = self.store.backend.open_collection(self.items_name)
        version = data.artifact_version(ARTIFACT)
        if version is None:
            raise InputError(f"recommender {self.name!r} has not been fitted; run nearspace recommend fit FILE")
        key = (str(self.store.path), data.name, version, data.version())
        state = _cache.get(key)
        if state is None:
            value, meta = data.get_artifact(ARTIFACT)
            models = Models.from_bytes(value, meta)
            item_index = {item: i for i, item in enumerate(models.item_ids)}
            cold = None
            position_of, matrix = _id_vectors(data)
            if position_of:
                from nearspace.recommend.models import _unit

                if meta.get("described_items"):
                    content = np.zeros((models.n_items, matrix.shape[1]), dtype=np.float32)
                    for item, i in item_index.items():
                        if item in position_of:
                            content[i] = matrix[position_of[item]]
                    models.content = _unit(content)  # the fitted content -> ALS map is kept as stored
                extra = [d for d in position_of if d not in item_index]
                if extra and models.content is not None:
                    cold_content = _unit(np.vstack([matrix[position_of[d]] for d in extra]))
                    factors = cold_content @ models.content_map if models.content_map is not None else None
                    cold = ColdItems(extra, cold_content, factors)
                    for j, d in enumerate(extra):
                        item_index[d] = models.n_items + j
            catalogue = list(models.item_ids) + (cold.ids if cold is not None else [])
            state = _State(models, meta, {u: i for i, u in enumerate(models.user_ids)}, item_index, catalogue,
                           cold, set(position_of))
            for stale in [k for k in _cache if k[:2] == key[:2]]:
                del _cache[stale]
            _cache[key] = state
        return state

    def info(self) -> dict[str, Any]:
        state = self._state()
        meta = dict(state.meta)
        meta.pop("params", None)
        return {**meta, "models": state.models.available, "default_model": state.models.default_model,
                "cold_items": len(state.cold) if state.cold is not None else 0,
                "params": asdict(state.models.params)}

    # -- operations ----------------------------------------------------------------------
    @_single_blas
    def recommend(self, user: str, k: int = 10, *, exclude_seen: bool = True, where: dict[str, Any] | None = None,
                  model: str | None = None, liked: Sequence[str] | Mapping[str, float] | None = None,
                  explain: bool = True) -> list[Recommendation]:
        """Top-``k`` items for ``user``: the user's seen items excluded (unless
        ``exclude_seen=False``), ``where`` filtering on item metadata (``{"genres": "Comedy"}``),
        each with the user's items that pulled it in. An unknown user with ``liked`` items
        takes the new-user path; known users' ``liked`` items are added to their history."""
        state = self._state()
        user = str(user)
        if user not in state.user_index:
            if liked:
                return self.recommend_for_items(liked, k, where=where, model=model, explain=explain)
            raise InputError(f"unknown user {user!r} in recommender {self.name!r} ({len(state.user_index)} users); "
                             "give liked items (CLI: --liked ITEM) to recommend for a new user")
        model = self._model(state, model)
        index = state.user_index[user]
        row = state.models.train.getrow(index)
        items, values = row.indices.astype(np.int64), row.data.astype(np.float32)
        if liked:
            extra_items, extra_values = self._liked(state, liked)
            merged = dict(zip(items.tolist(), values.tolist()))
            merged.update(zip(extra_items.tolist(), extra_values.tolist()))
            items = np.fromiter(merged, dtype=np.int64)
            values = np.asarray(list(merged.values()), dtype=np.float32)
            scores = state.models.user_scores(model, items=items, values=values, cold=state.cold)
            explained_user = None
        else:
            scores = state.models.user_scores(model, user=index, cold=state.cold)
            explained_user = index
        return self._rank(state, model, scores, k, items if exclude_seen else None, where, items, values,
                          explained_user, explain)

    @_single_blas
    def recommend_for_items(self, liked: Sequence[str] | Mapping[str, float], k: int = 10, *,
                            where: dict[str, Any] | None = None, model: str | None = None,
                            explain: bool = True) -> list[Recommendation]:
        """Top-``k`` items for a new user known only by a handful of liked items (a list, or
        ``{item: rating}``). Items without interactions (cold, described in ``<name>-items``)
        count through their content with the hybrid and content models."""
        state = self._state()
        model = self._model(state, model)
        items, values = self._liked(state, liked)
        if model in ("als", "bpr", "itemknn") and not (items < state.models.n_items).any():
            raise InputError(f"none of the liked items has interactions, so model {model!r} cannot use them; "
                             "use model 'hybrid' or 'content'")
        scores = state.models.user_scores(model, items=items, values=values, cold=state.cold)
        return self._rank(state, model, scores, k, items, where, items, values, None, explain)

    @_single_blas
    def explain(self, user: str, item: str, model: str | None = None) -> list[Reason]:
        """Which of ``user``'s items pulled ``item`` in, strongest first."""
        state = self._state()
        model = self._model(state, model)
        if str(user) not in state.user_index:
            raise InputError(f"unknown user {user!r} in recommender {self.name!r}")
        index = state.user_index[str(user)]
        target = self._item(state, item)
        row = state.models.train.getrow(index)
        (contrib,) = state.models.explain(model, [target], row.indices, row.data, state.cold, index)
        return self._reasons(state, row.indices, contrib, limit=len(row.indices))

    @_single_blas
    def similar_items(self, item: str, k: int = 10, *, where: dict[str, Any] | None = None,
                      model: str | None = None) -> list[Recommendation]:
        """Items nearest to ``item``: cosine in the model's item space (ALS for the hybrid,
        with cold items placed by their content), kNN similarity, or MiniLM content."""
        state = self._state()
        model = self._model(state, model)
        target = self._item(state, item)
        models = state.models
        if model == "popular":
            raise InputError("model 'popular' has no notion of similar items; use als, bpr, itemknn, content or hybrid")
        if model == "itemknn":
            if target >= models.n_items:
                raise InputError(f"item {item!r} has no interactions; item-kNN cannot place it (use hybrid or content)")
            scores = np.full(len(state.catalogue), -np.inf, dtype=np.float32)
            row = models.knn.getrow(target)
            scores[row.indices] = row.data
        elif model == "content":
            catalogue = models._catalogue_content(state.cold)
            scores = catalogue @ catalogue[target]
        else:
            vectors = self._item_space(state, model)
            scores = vectors @ vectors[target]
            if model in ("als", "bpr"):
                scores[models.n_items:] = -np.inf
                scores[models.cold_items] = -np.inf
        return self._rank(state, model, scores, k, np.array([target]), where, None, None, None, False)

    @_single_blas
    def similar_users(self, user: str, k: int = 10, *, model: str | None = None) -> list[Recommendation]:
        """Users nearest to ``user`` by cosine of their collaborative vectors (ALS, or BPR)."""
        state = self._state()
        model = self._model(state, model)
        if str(user) not in state.user_index:
            raise InputError(f"unknown user {user!r} in recommender {self.name!r} ({len(state.user_index)} users)")
        if model not in ("als", "bpr"):
            model = "als" if "als" in state.models.available else "bpr"
            state.models.require(model)
        vectors = state.models.user_vectors(model)
        index = state.user_index[str(user)]
        scores = vectors @ vectors[index]
        best = top_k(scores, k, exclude=np.array([index]))
        return [Recommendation(state.models.user_ids[i], float(scores[i]),
                               metadata={"interactions": int(state.models.train.indptr[i + 1] -
                                                             state.models.train.indptr[i])}) for i in best]

    # -- helpers -------------------------------------------------------------------------
    def _model(self, state: _State, model: str | None) -> str:
        chosen = model or state.models.default_model
        if chosen not in MODELS:
            raise InputError(f"unknown model {chosen!r}; choose one of {', '.join(MODELS)}")
        state.models.require(chosen)
        return chosen

    def _item(self, state: _State, item: str) -> int:
        index = state.item_index.get(str(item))
        if index is None:
            from nearspace.api import VECTORS_ONLY

            how = (f"upsert its vector into {self.items_name!r}" if self._data().encoder == VECTORS_ONLY
                   else "add it with item side data (fit --items)")
            raise InputError(f"unknown item {item!r} in recommender {self.name!r} ({len(state.item_index)} items); "
                             f"{how} to use it as a cold-start item")
        return index

    def _liked(self, state: _State, liked: Sequence[str] | Mapping[str, float | None]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(liked, str):
            liked = [liked]
        default = float(state.meta.get("liked_value") or 1.0)
        pairs = list(liked.items()) if isinstance(liked, Mapping) else [(i, default) for i in liked]
        if not pairs:
            raise InputError("give at least one liked item")
        chosen: dict[int, float] = {}
        for item, value in pairs:
            value = default if value is None else value
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(f"liked item {item!r}: value {value!r} is not a number") from None
            if not np.isfinite(number) or number < 0:
                raise InputError(f"liked item {item!r}: value must be a finite number >= 0, got {value!r}")
            chosen[self._item(state, item)] = number
        return np.fromiter(chosen, dtype=np.int64), np.asarray(list(chosen.values()), dtype=np.float32)

    def _item_space(self, state: _State, model: str) -> np.ndarray:
        from nearspace.recommend.models import _unit

        models = state.models
        if model == "bpr":
            return np.concatenate([models.item_vectors("bpr"),
                                   np.zeros((len(state.catalogue) - models.n_items, models.bpr_item.shape[1] - 1),
                                            dtype=np.float32)])
        factors = models.als_item.copy()
        if models.content_map is not None and len(models.cold_items):
            factors[models.cold_items] = models.mapped_factors(models.cold_items)
        if state.cold is not None and state.cold.factors is not None:
            factors = np.vstack([factors, state.cold.factors])
        elif len(state.catalogue) > models.n_items:
            factors = np.vstack([factors, np.zeros((len(state.catalogue) - models.n_items, factors.shape[1]))])
        return _unit(factors)

    def _allowed(self, state: _State, where: dict[str, Any] | None) -> np.ndarray | None:
        if not where:
            return None
        if not isinstance(where, dict):
            raise InputError(f"where must be a filter object such as {{'genres': 'Comedy'}}, got {where!r}")
        data = self._data()
        ids = data.selected_ids(data.select(where))
        return np.array(sorted(state.item_index[i] for i in ids if i in state.item_index), dtype=np.int64)

    def _rank(self, state: _State, model: str, scores: np.ndarray, k: int, exclude: np.ndarray | None,
              where: dict[str, Any] | None, items: np.ndarray | None, values: np.ndarray | None,
              user: int | None, explain: bool) -> list[Recommendation]:
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        best = top_k(scores, k, exclude=exclude, allowed=self._allowed(state, where))
        contributions: list[np.ndarray] = []
        if explain and items is not None and values is not None and len(items) and len(best):
            contributions = state.models.explain(model, best.tolist(), items, values, state.cold, user)
        picks = [self._top_reasons(c) for c in contributions]
        wanted = {state.catalogue[i] for i in best}
        wanted.update(state.catalogue[int(items[j])] for pick in picks for j in pick)  # type: ignore[index]
        docs = self._docs(wanted)
        n_model = state.models.n_items
        out = []
        for position, i in enumerate(best):
            item = state.catalogue[i]
            doc = docs.get(item)
            reasons = []
            if picks:
                for j in picks[position]:
                    source = state.catalogue[int(items[j])]  # type: ignore[index]
                    reasons.append(Reason(source, _title(docs[source]) if source in docs else "",
                                          float(contributions[position][j])))
            cold = bool(i >= n_model or state.models.popularity[i] <= 0)
            out.append(Recommendation(item, float(scores[i]), _title(doc) if doc else "",
                                      dict(doc.metadata) if doc else {}, reasons, cold))
        return out

    @staticmethod
    def _top_reasons(contributions: np.ndarray, limit: int = 3) -> list[int]:
        order = np.argsort(-contributions, kind="stable")[:limit]
        return [int(j) for j in order if contributions[j] > 0]

    def _docs(self, ids: Any) -> dict[str, Any]:
        ids = list(ids)
        return {d.id: d for d in self._data().get(ids) if d is not None} if ids else {}

    def _data(self) -> Any:
        data = getattr(self, "_data_cache", None)
        if data is None:
            data = self._data_cache = self.store.backend.open_collection(self.items_name)
        return data

    def _reasons(self, state: _State, items: np.ndarray, contributions: np.ndarray, limit: int = 3) -> list[Reason]:
        order = self._top_reasons(contributions, limit)
        ids = [state.catalogue[int(items[j])] for j in order]
        docs = self._docs(ids)
        return [Reason(item, _title(docs[item]) if item in docs else "", float(contributions[j]))
                for item, j in zip(ids, order)]


def _title(doc: Any) -> str:
    """An item's title; items of your own vectors may carry it in their metadata instead."""
    meta_title = doc.metadata.get("title") if isinstance(doc.metadata, dict) else None
    return doc.title or (meta_title if isinstance(meta_title, str) else "")


def _id_vectors(backend: Any) -> tuple[dict[str, int], np.ndarray]:
    """(doc id -> matrix row, matrix) of a collection's stored vectors."""
    from nearspace.store.base import vector_matrix

    ids, matrix = vector_matrix(backend)
    return {doc_id: n for n, doc_id in enumerate(ids)}, matrix


def dumps(results: Sequence[Recommendation]) -> str:
    return json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2)
