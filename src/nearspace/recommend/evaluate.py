"""Offline evaluation: temporal and random splits, top-10 metrics, cold-start items.

Metrics come from pytrec_eval (the TREC implementation nearspace already uses for search):
P@10, recall@10, nDCG@10 and MAP@10 with each user as a query and the user's held-out items
as the relevant documents (every held-out user counts; an empty list scores 0). Coverage is
the share of the catalogue (every item in the file) that appears in at least one top-10 list.
Items a user interacted with in training are never recommended.
"""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nearspace.errors import InputError
from nearspace.recommend.data import Interactions
from nearspace.recommend.models import ALS_REGULARIZATION_GRID, Models, Params, fit_models, top_k, top_k_rows, zscore

METRIC_KEYS = ("precision@10", "recall@10", "ndcg@10", "map@10", "coverage")
_TREC = {"P_10": "precision@10", "recall_10": "recall@10", "ndcg_cut_10": "ndcg@10", "map_cut_10": "map@10"}
SPLITS = ("temporal", "random")
HYBRID_KNN_GRID = (0.0, 0.25, 0.5, 1.0, 2.0)
HYBRID_CONTENT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5)


def split(interactions: Interactions, how: str, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks holding out ``fraction`` of each user's interactions.

    ``temporal``: each user's latest interactions (ties keep file order); ``random``: a seeded
    random choice per user. A user with a single interaction keeps it in training.
    """
    if how not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, got {how!r}")
    if not 0 < fraction < 1:
        raise InputError(f"holdout fraction must be between 0 and 1, got {fraction}")
    n = len(interactions)
    order_in_file = np.arange(n)
    if how == "temporal":
        if interactions.timestamps is None:
            raise InputError(f"{interactions.source or 'the interactions'} have no timestamps; use the random split")
        key = interactions.timestamps
    else:
        key = np.random.default_rng(seed).random(n)
    order = np.lexsort((order_in_file, key, interactions.users))
    users_sorted = interactions.users[order]
    counts = np.bincount(interactions.users, minlength=interactions.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(n) - starts[users_sorted]
    per_user = counts[users_sorted]
    held = np.where(per_user >= 2, np.maximum(1, np.round(per_user * fraction)).astype(np.int64), 0)
    test_sorted = position >= per_user - held
    test = np.zeros(n, dtype=bool)
    test[order[test_sorted]] = True
    return ~test, test


def ranking_metrics(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Mean P@10, recall@10, nDCG@10 and MAP@10 over every query in ``qrels`` (pytrec_eval)."""
    import pytrec_eval

    judged = {q: dict(d) for q, d in qrels.items() if any(v > 0 for v in d.values())}
    if not judged:
        raise InputError("no held-out interactions to score")
    scored = {q: {doc: float(len(docs) - i) for i, doc in enumerate(list(docs)[:10])}
              for q, docs in run.items() if q in judged and len(docs)}
    measures = {"P.10", "recall.10", "ndcg_cut.10", "map_cut.10"}
    results = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(scored)
    totals = dict.fromkeys(_TREC.values(), 0.0)
    for qid in judged:
        for measure, name in _TREC.items():
            totals[name] += results.get(qid, {}).get(measure, 0.0)
    return {name: totals[name] / len(judged) for name in _TREC.values()}


def test_relevance(interactions: Interactions, test: np.ndarray) -> dict[int, np.ndarray]:
    """user code -> held-out item codes."""
    users, items = interactions.users[test], interactions.items[test]
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    return {int(group_users[0]): group_items
            for group_users, group_items in zip(np.split(users, bounds), np.split(items, bounds)) if len(group_users)}


def score_models(models: Models, held_out: Mapping[int, np.ndarray], names: Sequence[str], *, k: int = 10,
                 n_catalogue: int | None = None, batch: int = 256) -> dict[str, dict[str, float]]:
    """Top-``k`` metrics and coverage for each model over the held-out users."""
    users = np.array(sorted(held_out), dtype=np.int64)
    qrels = {str(u): {str(i): 1 for i in held_out[u]} for u in users}
    out: dict[str, dict[str, float]] = {}
    for name in names:
        run: dict[str, list[str]] = {}
        shown: set[int] = set()
        for start in range(0, len(users), batch):
            chunk = users[start:start + batch]
            for user, best in zip(chunk, top_k_rows(models.batch_scores(name, chunk), k, models.train[chunk])):
                run[str(user)] = [str(i) for i in best]
                shown.update(best.tolist())
        metrics = ranking_metrics(qrels, run)
        metrics["coverage"] = len(shown) / float(n_catalogue or models.n_items)
        out[name] = metrics
    return out


def tune_on_validation(interactions: Interactions, train: np.ndarray, how: str, content: np.ndarray | None,
                       params: Params, seed: int = 0) -> tuple[Params, dict[str, Any]]:
    """Choose what ``params`` leaves open (None) by nDCG@10 on a validation split carved out
    of the ``train`` interactions only (the same kind of split), never a test part:

    * the ALS regularisation, from ``ALS_REGULARIZATION_GRID``;
    * the hybrid's item-kNN and content weights, from ``HYBRID_*_GRID``, with that ALS.
    """
    started = time.perf_counter()
    chosen = Params(**asdict(params))
    sub = _subset(interactions, train)
    how = how if sub.timestamps is not None else "random"
    inner_train, inner_test = split(sub, how, seed=seed + 1)
    held = test_relevance(sub, inner_test)
    if not held:
        raise InputError("too few interactions to carve out a validation split")
    users = np.array(sorted(held), dtype=np.int64)
    qrels = {str(u): {str(i): 1 for i in held[u]} for u in users}
    matrix = sub.matrix(inner_train)
    report: dict[str, Any] = {"split": how, "validation_users": len(users)}
    grid = [params.als_regularization] if params.als_regularization is not None else ALS_REGULARIZATION_GRID
    best: tuple[float, Models] | None = None
    by_reg: dict[str, float] = {}
    for reg in grid:
        trial = Params(**{**asdict(params), "als_regularization": reg, "hybrid_weights": [0.0, 0.0]})
        models = fit_models(matrix, sub.user_ids, sub.item_ids, trial, models=("als",), content=content)
        score = score_models(models, held, ["als"])["als"]["ndcg@10"]
        by_reg[str(reg)] = score
        if best is None or score > best[0] + 1e-9:
            best = (score, models)
    assert best is not None
    models = best[1]
    chosen.als_regularization = models.params.als_regularization
    if len(grid) > 1:
        report["als_regularization"] = {"chosen": chosen.als_regularization, "validation_ndcg@10": by_reg}
    if params.hybrid_weights is None:
        parts = models.hybrid_parts(users, {"itemknn": 1.0, "content": 1.0})
        standard = [zscore(scores) for scores, _ in parts]
        seen = models.train[users]
        results: dict[str, float] = {}
        top: tuple[float, list[float]] | None = None
        for knn_weight in HYBRID_KNN_GRID:
            for content_weight in (HYBRID_CONTENT_GRID if content is not None else (0.0,)):
                scores = standard[0] + knn_weight * standard[1]
                if content is not None:
                    scores = scores + content_weight * standard[2]
                run = {str(user): [str(i) for i in ranked]
                       for user, ranked in zip(users, top_k_rows(scores, 10, seen))}
                score = ranking_metrics(qrels, run)["ndcg@10"]
                results[f"itemknn={knn_weight},content={content_weight}"] = score
                if top is None or score > top[0] + 1e-9:
                    top = (score, [knn_weight, content_weight])
        assert top is not None
        chosen.hybrid_weights = top[1]
        report["hybrid_weights"] = {"chosen": {"itemknn": top[1][0], "content": top[1][1]},
                                    "validation_ndcg@10": results}
    report["seconds"] = time.perf_counter() - started
    return chosen, report


def _subset(interactions: Interactions, mask: np.ndarray) -> Interactions:
    return replace(interactions, users=interactions.users[mask], items=interactions.items[mask],
                   weights=interactions.weights[mask],
                   timestamps=None if interactions.timestamps is None else interactions.timestamps[mask])


def evaluate_split(interactions: Interactions, how: str, *, content: np.ndarray | None = None,
                   params: Params | None = None, models: Sequence[str] = ("als", "bpr"), fraction: float = 0.2,
                   seed: int = 0, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit every model on the training part of one split and score it on the held-out part.

    What ``params`` leaves open (ALS regularisation, hybrid weights) is chosen on a validation
    split of the training part first. Returns ``{"results": {model: metrics}, "split": ...,
    "tuning": ..., "fit_seconds": ...}``; the results always include the ``popular`` and
    ``itemknn`` baselines.
    """
    params = (params or Params()).validate()
    train, test = split(interactions, how, fraction, seed)
    held = test_relevance(interactions, test)
    info: dict[str, Any] = {"split": how, "holdout_fraction": fraction, "train_interactions": int(train.sum()),
                            "test_interactions": int(test.sum()), "test_users": len(held)}
    tuning = None
    if "als" in models and (params.als_regularization is None or params.hybrid_weights is None):
        params, tuning = tune_on_validation(interactions, train, how, content, params, seed=seed)
        if log:
            log(f"chosen on a validation split of the training part: ALS regularization "
                f"{params.als_regularization}, hybrid weights itemknn {params.hybrid_weights[0]}, "
                f"content {params.hybrid_weights[1]}")
    fitted = fit_models(interactions.matrix(train), interactions.user_ids, interactions.item_ids, params,
                        models=models, content=content)
    names = ["popular", "itemknn"] + [m for m in ("als", "bpr", "content", "hybrid") if m in fitted.available]
    results = score_models(fitted, held, names, n_catalogue=interactions.n_items)
    info.update(results=results, fit_seconds=fitted.fit_seconds, tuning=tuning, params=asdict(fitted.params))
    return info


def evaluate_cold_start(interactions: Interactions, content: np.ndarray, *, params: Params | None = None,
                        fraction: float = 0.1, min_users: int = 5, seed: int = 0) -> dict[str, Any]:
    """Cold-start items: can content embeddings tell which users will interact with an item
    that no training interaction mentions?

    Protocol: a seeded random ``fraction`` of the items with at least ``min_users`` users is
    held out entirely (every interaction on them is removed from training). ALS is fitted on
    the rest. For each held-out item, every training user is ranked and the users who did
    interact with it are the relevant ones (item as query, users as documents; P@10,
    recall@10, nDCG@10, MAP@10 via pytrec_eval). Rankers:

    * ``popular``: the popularity guess, most active users first (activity is the only
      signal a catalogue-level guess has about who takes up a new item);
    * ``content``: cosine between the user's content profile and the item's MiniLM vector;
    * ``content->als``: the item's MiniLM vector mapped into the ALS item space (ridge
      regression learned on warm items), scored against the ALS user vectors, which is how
      the hybrid ranks cold items.
    """
    params = (params or Params()).validate()
    rng = np.random.default_rng(seed)
    users_per_item = np.bincount(interactions.items, minlength=interactions.n_items)
    eligible = np.flatnonzero(users_per_item >= min_users)
    if len(eligible) < 2:
        raise InputError(f"too few items with >= {min_users} users for a cold-start test")
    n_cold = max(1, int(round(len(eligible) * fraction)))
    cold = np.sort(rng.choice(eligible, size=n_cold, replace=False))
    is_cold = np.isin(interactions.items, cold)
    train = ~is_cold
    models = fit_models(interactions.matrix(train), interactions.user_ids, interactions.item_ids, params,
                        models=("als",), content=content)
    active = np.asarray((models.train > 0).sum(axis=1)).ravel()
    candidates = np.flatnonzero(active > 0)
    qrels: dict[str, dict[str, int]] = {}
    for user, item in zip(interactions.users[is_cold], interactions.items[is_cold]):
        if active[user] > 0:
            qrels.setdefault(str(item), {})[str(user)] = 1
    # scores: rows = cold items, columns = candidate users
    profiles = np.asarray(models.train[candidates] @ models.content, dtype=np.float32)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    rankers = {
        "popular": np.broadcast_to(active[candidates].astype(np.float32), (len(cold), len(candidates))),
        "content": models.content[cold] @ profiles.T,
        "content->als": models.mapped_factors(cold) @ models.als_user[candidates].T,
    }
    results = {}
    for name, scores in rankers.items():
        run = {}
        for row, item in enumerate(cold):
            best = top_k(scores[row], 10)
            run[str(item)] = [str(candidates[j]) for j in best]
        results[name] = ranking_metrics(qrels, run)
    return {"protocol": f"{len(cold)} items ({fraction:.0%} of the {len(eligible)} with >= {min_users} users) "
                        "held out of training entirely; each ranks all training users; relevant = its actual users",
            "cold_items": int(len(cold)), "candidate_users": int(len(candidates)),
            "removed_interactions": int(is_cold.sum()), "results": results}
