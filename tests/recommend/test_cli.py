"""``nearspace recommend ...`` and ``nearspace eval recs`` in subprocesses against real store files."""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.cli.test_cli import run
from tests.recommend.conftest import genre_of, interactions, write_items, write_log


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, encoder):
    """Fitted in-process with the session's encoder, then refitted by the CLI: the items are
    unchanged, so the subprocess encodes nothing and the refit replaces the model."""
    from nearspace import open_store
    from nearspace.recommend import Params, Recommender, load_interactions, load_items

    folder = tmp_path_factory.mktemp("reccli")
    db = folder / "store.db"
    log = write_log(folder / "ratings.csv", interactions())
    items = write_items(folder / "items.csv", extra=[("new-horror", "Haunted cellar of the zombie ghosts", "Horror")])
    with open_store(db, encoder=encoder) as store:
        Recommender(store, "toy").fit(load_interactions(log), load_items(items), params=Params(factors=8))
    before = _artifacts(db)
    proc = run("--store", str(db), "recommend", "fit", str(log), "--items", str(items), "-n", "toy",
               "--factors", "8", "--json")
    report = json.loads(proc.stdout)
    assert report["models"] == ["popular", "itemknn", "als", "bpr", "content", "hybrid"]
    after = _artifacts(db)
    assert len(after) == len(before) == 1 and after[0][2] > before[0][2]  # one row, a newer version
    return db, folder


def _artifacts(db) -> list:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT collection_id, name, version, value FROM artifacts WHERE name != 'encoder_probe'").fetchall()


def test_user_recommendations_with_filter_and_reasons(fitted):
    db, _ = fitted
    recs = json.loads(run("--store", str(db), "recommend", "user", "u0", "-k", "5", "-n", "toy", "--json").stdout)
    assert len(recs) == 5 and all({"id", "score", "title", "metadata", "because"} <= set(r) for r in recs)
    assert recs[0]["because"] and recs[0]["because"][0]["title"]
    western = json.loads(run("--store", str(db), "recommend", "user", "u0", "-n", "toy", "--json",
                             "--where", "genres=Western").stdout)
    assert western and all(r["metadata"]["genres"] == ["Western"] for r in western)
    table = run("--store", str(db), "recommend", "user", "u0", "-k", "3", "-n", "toy").stdout
    assert "because" in table


def test_new_user_similar_items_users_explain_info(fitted):
    db, _ = fitted
    genre = genre_of()
    recs = json.loads(run("--store", str(db), "recommend", "new-user", "i10", "i11", "i12=5", "-n", "toy",
                          "-k", "5", "--json").stdout)
    assert sum(genre.get(r["id"], "Horror") == "Horror" for r in recs) >= 4
    stranger = json.loads(run("--store", str(db), "recommend", "user", "stranger", "--liked", "new-horror",
                              "-n", "toy", "--json").stdout)
    assert stranger and sum(genre.get(r["id"]) == "Horror" for r in stranger[:5]) >= 4
    similar = json.loads(run("--store", str(db), "recommend", "item", "i0", "-n", "toy", "-k", "3", "--json").stdout)
    assert [s["id"] for s in similar] and all(genre[s["id"]] == "Sci-Fi" for s in similar)
    users = json.loads(run("--store", str(db), "recommend", "similar-users", "u1", "-n", "toy", "--json").stdout)
    assert len(users) == 10
    reasons = json.loads(run("--store", str(db), "recommend", "explain", "u0", "i1", "-n", "toy", "--json").stdout)
    assert reasons and {"item", "title", "contribution"} <= set(reasons[0])
    info = json.loads(run("--store", str(db), "recommend", "info", "-n", "toy", "--json").stdout)
    assert info["users"] == 80 and info["cold_items"] == 1


@pytest.mark.parametrize("args,message", [
    (("user", "nobody"), "error: unknown user 'nobody' in recommender 'toy' (80 users)"),
    (("item", "nope"), "error: unknown item 'nope'"),
    (("new-user", "nope"), "error: unknown item 'nope'"),
    (("user", "u0", "--model", "svd"), "error: unknown model 'svd'"),
])
def test_bad_requests_are_one_line_errors(fitted, args, message):
    db, _ = fitted
    proc = run("--store", str(db), "recommend", *args, "-n", "toy", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().replace("\n", " ").startswith(message)
    assert "Traceback" not in proc.stderr


def test_bad_file_refit_leaves_the_store_unchanged(fitted):
    db, folder = fitted
    before = _artifacts(db)
    bad = folder / "bad.csv"
    bad.write_text("user,item,rating\nu1,i1,5\nu1,i1,4\n")
    proc = run("--store", str(db), "recommend", "fit", str(bad), "-n", "toy", check=False)
    assert proc.returncode == 1 and "bad.csv row 3, column 'rating'" in proc.stderr
    wrong = folder / "wrong.csv"
    wrong.write_text("a,b,c\nx,y,1\n")
    proc = run("--store", str(db), "recommend", "fit", str(wrong), "-n", "toy", check=False)
    assert proc.returncode == 1 and "no user or item column among its columns (a, b, c)" in proc.stderr
    assert _artifacts(db) == before


def test_eval_recs_json_on_a_weighted_csv(tmp_path):
    # header user,item,weight: loads with no flags; no timestamps, so the random split
    rows = [(u, i, r) for u, i, r, _t in interactions(users=120, seed=3)]
    path = write_log(tmp_path / "log.csv", rows, header="user,item,weight")
    proc = run("--store", str(tmp_path / "s.db"), "eval", "recs", str(path), "--split", "temporal", "--json")
    assert "no timestamps: using the random split" in proc.stderr.replace("\n", " ")
    results = json.loads(proc.stdout)
    assert set(results) == {"popular", "itemknn", "als", "bpr", "hybrid"}
    for metrics in results.values():
        assert set(metrics) == {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage"}
        assert all(0 <= v <= 1 for v in metrics.values())
    # users stick to one genre: the collaborative models must beat popularity clearly
    assert results["itemknn"]["ndcg@10"] > 1.5 * results["popular"]["ndcg@10"]
    assert results["als"]["ndcg@10"] > 1.5 * results["popular"]["ndcg@10"]
    proc = run("eval", "recs", str(path), "--split", "weekly", "--store", str(tmp_path / "s.db"), check=False)
    assert proc.returncode == 1 and "--split for recs must be temporal or random" in proc.stderr
