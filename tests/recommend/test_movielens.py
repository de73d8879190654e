"""MovieLens 100K: the targets of the issue, measured with the real models and MiniLM."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_data


@pytest.fixture(scope="module")
def movielens(encoder):
    from nearspace.recommend import load_interactions, load_items

    data = load_interactions(require_data("movielens-100k", "u.data"))
    items = load_items(require_data("movielens-100k", "u.item"))
    assert (len(data), data.n_users, data.n_items, len(items)) == (100_000, 943, 1682, 1682)
    vectors = encoder.encode([f"{t} {x}" for t, x in zip(items.titles, items.texts)], show_progress=False)
    position = {item: n for n, item in enumerate(items.ids)}
    content = np.stack([vectors[position[i]] for i in data.item_ids])
    return data, content


@pytest.mark.parametrize("how,target", [("temporal", 1.5), ("random", 2.0)])
def test_best_model_beats_most_popular(movielens, how, target):
    from nearspace.recommend import evaluate_split

    data, content = movielens
    report = evaluate_split(data, how, content=content, models=("als",))
    results = report["results"]
    popular = results["popular"]["ndcg@10"]
    best = max(("als", "hybrid"), key=lambda m: results[m]["ndcg@10"])
    assert results[best]["ndcg@10"] >= target * popular, (how, results)
    # the hybrid is chosen on validation data, so it may only tie ALS; it must not fall behind
    assert results["hybrid"]["ndcg@10"] >= 0.97 * results["als"]["ndcg@10"]
    # a collaborative model that only repeats the bestsellers would show here
    assert results["als"]["coverage"] > 3 * results["popular"]["coverage"]


def test_cold_items_content_beats_a_popularity_guess(movielens):
    from nearspace.recommend import evaluate_cold_start

    data, content = movielens
    report = evaluate_cold_start(data, content)
    results = report["results"]
    assert report["cold_items"] >= 100
    assert results["content->als"]["ndcg@10"] > 1.1 * results["popular"]["ndcg@10"], results
    assert results["content->als"]["recall@10"] > results["popular"]["recall@10"]
