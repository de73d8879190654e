"""Clustering, maps, neighbours and classification on collections of your own vectors (no model,
no text): stored vectors used as they are, clusters named by metadata, stored items labelled by
id; and none of it imports a model library. Seeded synthetic clusters, plus MovieLens item
vectors (a factorisation of the real rating matrix) when ../shared/data has them."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import nearspace
from nearspace.errors import InputError
from tests.conftest import require_data

GROUPS, PER, DIM = 6, 60, 32


def clustered(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((GROUPS, DIM)) * 2.0
    labels = np.repeat(np.arange(GROUPS), PER)
    V = centres[labels] + rng.standard_normal((len(labels), DIM)) * 0.6
    return V.astype(np.float32), [f"g{g}" for g in labels]


@pytest.fixture()
def own(tmp_path):
    V, groups = clustered()
    rng = np.random.default_rng(1)
    unlabelled = set(rng.choice(len(groups), size=len(groups) // 5, replace=False).tolist())
    metas = [{"group": g, **({} if i in unlabelled else {"label": g})} for i, g in enumerate(groups)]
    db = tmp_path / "own.db"
    with nearspace.open_store(db) as store:
        store.collection("points", dim=DIM).upsert(ids=[f"p{i}" for i in range(len(groups))], vectors=V,
                                                   metadatas=metas)
    return db, V, groups, sorted(unlabelled)


def purity(assigned: list[int], truth: list[str]) -> float:
    total = 0
    for c in set(assigned):
        members = [t for a, t in zip(assigned, truth) if a == c]
        total += max(members.count(t) for t in set(members))
    return total / len(truth)


def test_cluster_map_neighbours_on_own_vectors(own, tmp_path):
    from nearspace.analyze.cluster import cluster_collection, load_clustering
    from nearspace.analyze.maps import build_map, render
    from nearspace.analyze.neighbors import neighbors, outliers

    db, V, groups, _ = own
    with nearspace.open_store(db) as store:
        points = store.get_collection("points")
        result = cluster_collection(points, seed=0)
        assert result.k == GROUPS  # suggested by silhouette
        by_id = result.by_id()
        assert purity([by_id[f"p{i}"] for i in range(len(groups))], groups) >= 0.98
        # no text to name clusters by: the distinctive metadata value names each one
        for c in result.clusters:
            members = [groups[int(i[1:])] for i, a in by_id.items() if a == c.id]
            assert c.terms[0] == f"group={max(set(members), key=members.count)}"
        assert load_clustering(points) is not None
        data = build_map(points, color_by="group")
        assert data.xy.shape == (len(groups), 2) and np.isfinite(data.xy).all()
        assert json.loads(data.texts[0])["group"] == groups[0]  # hover shows the metadata
        render(data, tmp_path / "map.html")
        assert "p0" in (tmp_path / "map.html").read_text(encoding="utf-8")
        near = neighbors(points, "p3", k=5)
        unit = V / np.linalg.norm(V, axis=1, keepdims=True)
        expected = [f"p{i}" for i in np.argsort(-(unit @ unit[3])) if i != 3][:5]
        assert [n.id for n in near] == expected
        assert len(outliers(points, top=3)) == 3


def test_classify_stored_items_of_own_vectors(own):
    from nearspace.analyze.classify import fit_collection, predict, predict_ids, zero_shot_classifier

    db, _, groups, unlabelled = own
    with nearspace.open_store(db) as store:
        points = store.get_collection("points")
        for method in ("logreg", "knn"):
            fit_collection(points, method=method, allow_unlabelled=True)
            predicted = predict_ids(points, [f"p{i}" for i in unlabelled])
            accuracy = np.mean([p.label == groups[i] for p, i in zip(predicted, unlabelled)])
            assert accuracy >= 0.95, (method, accuracy)
            assert predicted[0].text == f"p{unlabelled[0]}"
        with pytest.raises(InputError, match="classify stored items by id"):
            predict(points, ["a text"])
        with pytest.raises(InputError, match="zero-shot embeds the label names"):
            zero_shot_classifier(points, ["a", "b"])
        with pytest.raises(InputError, match="not stored"):
            predict_ids(points, ["p1", "nope"])


def test_analysis_commands_on_own_vectors_import_no_model(own, tmp_path):
    db, *_ = own
    out_map = tmp_path / "m.html"
    code = f"""
import contextlib, io, json, sys
from nearspace.cli.app import app
base = ["--store", {str(db)!r}, "-c", "points"]
outputs = {{}}
for args in (["cluster", "--k", "6", "--json"], ["map", "--out", {str(out_map)!r}, "--color", "group"],
             ["classify", "fit", "--allow-unlabelled"], ["classify", "predict", "--id", "p1", "--id", "p61", "--json"],
             ["neighbors", "p2", "--json"], ["search", "--vector-of", "p2", "--json"]):
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            app(base + args)
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
    outputs[args[0] + " " + args[1]] = printed.getvalue()
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "onnxruntime") if m in sys.modules)
print(json.dumps({{"heavy": heavy, "outputs": outputs}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert out_map.exists()
    predicted = json.loads(report["outputs"]["classify predict"])
    assert [(p["text"], p["label"]) for p in predicted] == [("p1", "g0"), ("p61", "g1")]
    assert json.loads(report["outputs"]["cluster --k"])["k"] == GROUPS
    assert "p2" not in [r["id"] for r in json.loads(report["outputs"]["search --vector-of"])]


# -- real data: MovieLens item vectors -----------------------------------------------------------------
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def movielens_item_vectors(folder, dim: int = 24):
    """Item vectors a user could bring: a truncated SVD of the item x user rating matrix."""
    ratings = np.loadtxt(folder / "u.data", dtype=np.int64)[:, :3]
    items = {}
    for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
        parts = line.split("|")
        items[parts[0]] = {"title": parts[1], "genres": [g for g, f in zip(GENRES, parts[5:24]) if f == "1"]}
    M = np.zeros((ratings[:, 1].max() + 1, ratings[:, 0].max() + 1), dtype=np.float32)
    M[ratings[:, 1], ratings[:, 0]] = ratings[:, 2]
    M = M[1:, 1:]
    from sklearn.utils.extmath import randomized_svd  # a full SVD is slow on a shared CPU

    u, s, _ = randomized_svd(M - M.mean(axis=1, keepdims=True), dim, random_state=0)
    V = (u * s).astype(np.float32)
    keep = np.linalg.norm(V, axis=1) > 0
    ids = [str(i + 1) for i in range(len(V))]
    return V[keep], [ids[i] for i in np.flatnonzero(keep)], [items[ids[i]] for i in np.flatnonzero(keep)]


def test_movielens_item_vectors_cluster_and_classify(tmp_path):
    from nearspace.analyze.classify import fit_collection, predict_ids

    folder = require_data("movielens-100k")
    V, ids, metas = movielens_item_vectors(folder)
    rng = np.random.default_rng(0)
    held = set(rng.choice(len(ids), size=300, replace=False).tolist())
    # a 2-class task the ratings carry: is a film Children's/Animation or Horror/Thriller?
    kind = ["family" if {"Children's", "Animation"} & set(m["genres"]) else
            "dark" if {"Horror", "Thriller"} & set(m["genres"]) else None for m in metas]
    stored = [{**m, **({"label": k} if k and i not in held else {})} for i, (m, k) in enumerate(zip(metas, kind))]
    with nearspace.open_store(tmp_path / "ml.db") as store:
        films = store.collection("films", dim=V.shape[1])
        films.upsert(ids=ids, vectors=V, metadatas=stored)
        fit_collection(films, method="logreg", allow_unlabelled=True)
        test = [i for i in held if kind[i]]
        predicted = predict_ids(films, [ids[i] for i in test])
        accuracy = np.mean([p.label == kind[i] for p, i in zip(predicted, test)])
        majority = max(sum(kind[i] == c for i in test) for c in ("family", "dark")) / len(test)
        print(f"MovieLens SVD item vectors: held-out accuracy {accuracy:.3f}, majority class {majority:.3f}")
        assert accuracy > majority + 0.1, (accuracy, majority)  # the vectors carry the signal
        hits = films.search(vector=films.vector_of("1"), k=5, where={"genres": "Animation"})  # Toy Story
        assert hits and all("Animation" in h.metadata["genres"] for h in hits)
