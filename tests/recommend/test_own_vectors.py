"""A recommender whose item vectors are your own: ``<name>-items`` created as a vectors-only
collection (here a factorisation of the MovieLens u1.base ratings, titles and genres as
metadata), fitted without item side data. Content and hybrid models, filters, titles and a
cold-start item come from the stored vectors, and no model library is ever imported."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, require_data

SCRIPT = r"""
import json, sys
from pathlib import Path
import numpy as np
from sklearn.utils.extmath import randomized_svd
import nearspace
from nearspace.recommend import Recommender, load_interactions, load_items

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
folder, db = Path(sys.argv[1]), sys.argv[2]
ratings = np.loadtxt(folder / "u1.base", dtype=np.int64)[:, :3]  # the training split only
M = np.zeros((1683, 944), np.float32)
M[ratings[:, 1], ratings[:, 0]] = ratings[:, 2]
M = M[1:, 1:]
U, S, _ = randomized_svd(M - M.mean(axis=1, keepdims=True), 24, random_state=0)
V = (U * S).astype(np.float32)
items = {}
for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
    p = line.split("|")
    items[p[0]] = {"title": p[1], "genres": [g for g, f in zip(GENRES, p[5:24]) if f == "1"]}
rated = np.flatnonzero(np.linalg.norm(V, axis=1) > 0)
ids = [str(i + 1) for i in rated]
store = nearspace.open_store(db)
own = store.collection("ml-items", dim=24)
# one new film nobody has rated yet, described by a vector beside Toy Story's
own.upsert(ids=ids + ["new-toy"], vectors=np.vstack([V[rated], V[0:1] * 1.01]),
           metadatas=[items[i] for i in ids] + [{"title": "Toy Story sequel (new)", "genres": ["Animation"]}])
rec = Recommender(store, "ml")
fitted = rec.fit(load_interactions(folder / "u1.base"), models=("als",))
comedies = rec.recommend("1", k=5, where={"genres": "Comedy"}, model="hybrid")
similar = rec.similar_items("1", k=3)
users = store.get_collection("ml-users")
try:
    rec.fit(load_interactions(folder / "u1.base"), items=load_items(folder / "u.item"))
    refused = ""
except nearspace.errors.InputError as exc:
    refused = str(exc)
try:
    rec.similar_items("not-a-film")
    unknown = ""
except nearspace.errors.InputError as exc:
    unknown = str(exc)
print(json.dumps({
    "models": fitted["models"], "described": fitted["described_items"], "users_collection": fitted["users_collection"],
    "comedies": [[r.id, r.title, r.metadata.get("genres")] for r in comedies],
    "similar": [[r.id, r.title, r.cold] for r in similar],
    "user_text": users.get("1").text, "users_vectors_only": users.vectors_only, "refused": refused, "unknown": unknown,
    "heavy": sorted(m for m in ("torch", "sentence_transformers", "transformers", "onnxruntime") if m in sys.modules)}))
"""


def test_recommender_on_own_item_vectors(tmp_path):
    folder = require_data("movielens-100k")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(tmp_path / "ml.db")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []  # no model library was imported for any of it
    assert {"content", "hybrid", "als"} <= set(out["models"]) and out["described"] == 1650
    assert len(out["comedies"]) == 5 and all("Comedy" in genres and title for _, title, genres in out["comedies"])
    # the unrated new film is found from its vector alone, first beside Toy Story
    assert out["similar"][0] == ["new-toy", "Toy Story sequel (new)", True]
    assert out["user_text"].startswith("Likes ") and "(19" in out["user_text"]  # titles from the metadata
    assert out["users_vectors_only"] and out["users_collection"] == "ml-users"
    assert "holds your own item vectors" in out["refused"]
    assert "upsert its vector into 'ml-items'" in out["unknown"]
