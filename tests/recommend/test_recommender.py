"""The stored recommender on a synthetic log with known structure: real implicit, real SQLite,
real MiniLM. Users stick to one genre, so good recommendations stay in that genre."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from nearspace.errors import InputError
from nearspace.recommend import Params, Recommender, load_interactions, load_items
from nearspace.recommend.engine import ARTIFACT
from tests.recommend.conftest import genre_of, interactions, write_items, write_log

# small data: few factors, light regularisation (the MovieLens defaults are tuned for 100K ratings)
PARAMS = Params(factors=8, bpr_factors=8, als_regularization=0.5, bpr_iterations=100, bpr_learning_rate=0.05)
GENRE = genre_of()


def user_genre(user: str) -> str:
    return ["Sci-Fi", "Horror", "Romance", "Western"][int(user[1:]) % 4]


def _fit(path, encoder):
    from nearspace import open_store

    folder = path.parent
    store = open_store(path, encoder=encoder)
    rec = Recommender(store, "toy")
    extra = [("new-scifi", "Starship armada: the galaxy war returns", "Sci-Fi"),
             ("new-horror", "Haunted cellar of the zombie ghosts", "Horror")]
    report = rec.fit(load_interactions(write_log(folder / "ratings.csv", interactions())),
                     load_items(write_items(folder / "items.csv", extra)), params=PARAMS)
    return rec, report


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, encoder):
    """Fitted once for the read-only tests of this module."""
    rec, report = _fit(tmp_path_factory.mktemp("rec") / "store.db", encoder)
    yield rec, report
    rec.store.close()


@pytest.fixture()
def own(tmp_path, encoder):
    """A fit of its own, for tests that change or reopen the store."""
    rec, report = _fit(tmp_path / "store.db", encoder)
    yield rec, report
    rec.store.close()


def snapshot(db) -> list:
    with sqlite3.connect(db) as conn:
        return (conn.execute("SELECT collection_id, name, version, value FROM artifacts "
                             "WHERE name != 'encoder_probe' ORDER BY 1, 2").fetchall()
                + conn.execute("SELECT collection_id, doc_id, hash, metadata, vector FROM docs ORDER BY 1, 2").fetchall())


def test_fit_stores_models_collections_and_artifact(fitted):
    rec, report = fitted
    store = rec.store
    assert report["models"] == ["popular", "itemknn", "als", "bpr", "content", "hybrid"]
    assert (report["users"], report["items"], report["described_items"]) == (80, 40, 40)
    assert {"toy-items", "toy-users"} <= set(store.list_collections())
    assert store.get_collection("toy-items").count() == 42      # 40 interacted + 2 cold items
    assert store.get_collection("toy-users").count() == 80
    info = rec.info()
    assert info["cold_items"] == 2 and info["default_model"] == "hybrid"
    # users are searchable by text through their content profiles
    hits = store.get_collection("toy-users").search("haunted zombie ghosts", k=5, mode="dense")
    assert sum(user_genre(h.id) == "Horror" for h in hits) >= 4


@pytest.mark.parametrize("model", ["als", "bpr", "itemknn", "hybrid"])
def test_recommendations_follow_the_users_taste_and_skip_seen_items(fitted, model):
    rec, _ = fitted
    in_genre = total = 0
    for u in range(0, 80, 5):
        user = f"u{u}"
        seen = {i for uu, i, _r, _t in interactions() if uu == user}
        recs = rec.recommend(user, k=3, model=model)
        assert len(recs) == 3 and not seen & {r.id for r in recs}
        in_genre += sum(GENRE.get(r.id) == user_genre(user) for r in recs)
        total += len(recs)
    assert in_genre / total >= 0.7, f"{model}: only {in_genre}/{total} recommendations in the user's genre"


def test_popular_baseline_and_include_seen(fitted):
    rec, _ = fitted
    popular = [r.id for r in rec.recommend("u0", k=40, model="popular", exclude_seen=False)]
    assert "new-scifi" not in popular  # cold items have no popularity to rank by
    seen = {i for uu, i, _r, _t in interactions() if uu == "u0"}
    assert seen <= set(popular)


def test_metadata_filter_and_explanations(fitted):
    rec, _ = fitted
    recs = rec.recommend("u0", k=5, where={"genres": "Western"})
    assert recs and all(r.metadata["genres"] == ["Western"] for r in recs)
    seen = {i for uu, i, _r, _t in interactions() if uu == "u0"}
    for r in rec.recommend("u0", k=3):
        assert r.because and all(b.item in seen and b.contribution > 0 for b in r.because)
        assert r.because == sorted(r.because, key=lambda b: -b.contribution)
        assert r.title
    assert rec.recommend("u0", k=5, where={"genres": "Documentary"}) == []


def test_itemknn_explanation_adds_up_to_the_score(fitted):
    rec, _ = fitted
    (top,) = rec.recommend("u1", k=1, model="itemknn")
    reasons = rec.explain("u1", top.id, model="itemknn")
    assert sum(r.contribution for r in reasons) == pytest.approx(top.score, rel=1e-5)


def test_als_explanation_is_the_exact_decomposition(fitted):
    rec, _ = fitted
    state = rec._state()
    models = state.models
    user = state.user_index["u2"]
    row = models.train.getrow(user)
    conf = models.conf.getrow(user)
    # the user vector solved exactly from implicit's normal equations (the same A the explanation uses)
    a, y = models._als_system(conf.indices, conf.data.astype(np.float64), models.als_item)
    exact = np.linalg.solve(a, y.T @ conf.data)
    stored = models.als_user[user]
    assert float(exact @ stored / np.linalg.norm(exact) / np.linalg.norm(stored)) > 0.99
    item = state.item_index["i25"]
    (contributions,) = models.explain("als", [item], row.indices, row.data, user=user)
    assert contributions.sum() == pytest.approx(float(models.als_item[item] @ exact), rel=1e-4)


def test_similar_items_and_users(fitted):
    rec, _ = fitted
    for model in ("als", "itemknn", "content", "hybrid"):
        similar = rec.similar_items("i0", k=5, model=model)
        assert "i0" not in [s.id for s in similar]
        assert sum(GENRE.get(s.id, "Sci-Fi") == "Sci-Fi" for s in similar) >= 4, model
    # a cold item is placed by its content
    assert sum(GENRE.get(s.id) == "Horror" for s in rec.similar_items("new-horror", k=5)) >= 4
    users = rec.similar_users("u3", k=5)
    assert sum(user_genre(u.id) == user_genre("u3") for u in users) >= 4
    with pytest.raises(InputError, match="unknown user 'nobody'"):
        rec.similar_users("nobody")


def test_new_user_from_liked_items_including_a_cold_item(fitted):
    rec, _ = fitted
    recs = rec.recommend_for_items(["i1", "i2", "i3"], k=5)
    assert {r.id for r in recs}.isdisjoint({"i1", "i2", "i3"})
    assert sum(GENRE.get(r.id, "Sci-Fi") == "Sci-Fi" for r in recs) >= 4
    # an unknown user with liked items takes the same path
    assert [r.id for r in rec.recommend("stranger", k=5, liked=["i1", "i2", "i3"])] == [r.id for r in recs]
    # only a cold item liked: content carries it
    cold_only = rec.recommend_for_items(["new-horror"], k=5)
    assert sum(GENRE.get(r.id) == "Horror" for r in cold_only) >= 4
    with pytest.raises(InputError, match="none of the liked items has interactions"):
        rec.recommend_for_items(["new-horror"], model="als")
    # cold items are recommended to matching users by the hybrid
    ranked = [r.id for r in rec.recommend_for_items(["i0", "i1", "i2", "i4", "i5"], k=10)]
    assert "new-scifi" in ranked and "new-horror" not in ranked


def test_unknown_users_items_and_models_are_clear_errors(fitted):
    rec, _ = fitted
    with pytest.raises(InputError, match=r"unknown user 'u999' in recommender 'toy' \(80 users\); give liked items"):
        rec.recommend("u999")
    with pytest.raises(InputError, match="unknown item 'nope'"):
        rec.recommend_for_items(["i1", "nope"])
    with pytest.raises(InputError, match="unknown item 'nope'"):
        rec.similar_items("nope")
    with pytest.raises(InputError, match="unknown model 'svd'"):
        rec.recommend("u1", model="svd")
    with pytest.raises(InputError, match="value must be a finite number >= 0"):
        rec.recommend_for_items({"i1": -2})
    with pytest.raises(InputError, match="no recommender 'other'"):
        Recommender(rec.store, "other").recommend("u1")


def test_persisted_models_serve_after_reopening_and_refit_replaces_them(tmp_path, encoder, own):
    from nearspace import open_store

    rec, _ = own
    before = [(r.id, round(r.score, 4)) for r in rec.recommend("u5", k=5)]
    path = rec.store.path
    rec.store.close()
    with open_store(path, encoder=encoder) as reopened:
        again = Recommender(reopened, "toy")
        assert [(r.id, round(r.score, 4)) for r in again.recommend("u5", k=5)] == before
        refit_and_bad_input(again, tmp_path)


def refit_and_bad_input(rec: Recommender, tmp_path) -> None:
    """Refitting replaces everything; bad input changes nothing."""
    db = rec.store.path
    before = snapshot(db)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\nu1,i1,5\nu2,i2,-3\n")
    with pytest.raises(InputError, match="row 3, column 'rating': negative rating"):
        rec.fit(load_interactions(bad), params=PARAMS)
    with pytest.raises(InputError, match="unknown collaborative model"):
        rec.fit(load_interactions(write_log(tmp_path / "ok.csv", interactions(users=8))), models=["svd"],
                params=PARAMS)
    assert snapshot(db) == before
    # a refit on other data replaces the model in one artifact row; the users view follows
    version = rec.store.db.collection("toy-items").artifact_version(ARTIFACT)
    rows = [r for r in interactions(users=40, seed=7)] + [("fresh", "i0", 5, 2_000_000_000)]
    rec.fit(load_interactions(write_log(tmp_path / "new.csv", rows)), params=PARAMS)
    data = rec.store.db.collection("toy-items")
    assert data.artifact_version(ARTIFACT) > version
    assert rec.store.db.conn.execute("SELECT count(*) FROM artifacts WHERE collection_id = ? AND name != 'encoder_probe'",
                                     (data.cid,)).fetchone()[0] == 1
    assert rec.info()["users"] == 41
    assert rec.recommend("fresh", k=3)
    with pytest.raises(InputError, match="unknown user 'u60'"):
        rec.recommend("u60")
    users = rec.store.get_collection("toy-users")
    assert users.get("u60") is None and users.get("fresh") is not None and users.count() == 41


def test_pure_collaborative_fit_without_side_data(store, tmp_path):
    rec = Recommender(store, "plain")
    report = rec.fit(load_interactions(write_log(tmp_path / "log.csv", interactions(users=40))), models=["als"],
                     params=PARAMS)
    assert report["models"] == ["popular", "itemknn", "als", "hybrid"]
    assert report["users_collection"] is None
    assert len(rec.recommend("u0", k=3)) == 3
    with pytest.raises(InputError, match="model 'content' was not fitted"):
        rec.recommend("u0", model="content")
    # no side data, no item metadata: a filter matches nothing
    assert rec.recommend("u0", where={"genres": "Horror"}) == []


def test_top_k_masks_and_breaks_ties_by_position():
    import scipy.sparse as sp

    from nearspace.recommend.models import top_k, top_k_rows

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(40, 25)).astype(np.float32)  # many ties
    scores[3] = -np.inf
    seen = sp.random(40, 25, density=0.3, format="csr", random_state=1)
    rows = top_k_rows(scores, 10, seen)
    for r in range(40):
        excluded = seen.indices[seen.indptr[r]:seen.indptr[r + 1]]
        single = top_k(scores[r], 10, exclude=excluded)
        np.testing.assert_array_equal(single, rows[r])
        assert not set(single) & set(excluded)
        expected = [i for i in np.argsort(-scores[r], kind="stable") if i not in set(excluded)
                    and np.isfinite(scores[r, i])][:10]
        assert single.tolist() == expected
    assert rows[3].size == 0
    assert top_k(np.array([1.0, 5.0, 3.0]), 2, allowed=np.array([0, 2])).tolist() == [2, 0]
