"""Clusters, maps (rendered in a real headless Chromium), neighbours, duplicates, outliers."""
from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest

from nearspace.analyze import cluster as K
from nearspace.analyze import maps as M
from nearspace.analyze import neighbors as N
from nearspace.analyze.projection import project
from nearspace.encoders.base import normalize_rows
from nearspace.errors import InputError
from tests.cli.test_cli import run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                    "(apt-get install -y chromium) - the HTML map is not rendered in a browser")


def _blobs(n_per: int = 30, centres: int = 3, dim: int = 384, spread: float = 0.25, seed: int = 0,
           shared: float = 0.0):
    """Unit vectors around ``centres`` random directions (with a ``shared`` common component, so
    groups are related as real topics are); texts name each blob's topic."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    common /= np.linalg.norm(common)
    words = [("bread yeast dough oven", "bake"), ("planet orbit telescope star", "space"),
             ("guitar chord melody rhythm", "music"), ("river delta flood plain", "water")][:centres]
    vectors, texts, truth = [], [], []
    for c, (topic_words, _) in enumerate(words):
        centre = rng.normal(size=dim)
        centre = centre / np.linalg.norm(centre) + shared * common
        centre /= np.linalg.norm(centre)
        for i in range(n_per):
            vectors.append(centre + spread * rng.normal(size=dim) / np.sqrt(dim))
            texts.append(f"{topic_words} note {i}")
            truth.append(c)
    return normalize_rows(np.array(vectors)), texts, truth


def _synthetic(store, name="blobs", **kw):
    vectors, texts, truth = _blobs(**kw)
    coll = store.collection(name)
    coll.upsert(ids=[f"d{i}" for i in range(len(texts))], texts=texts, vectors=vectors,
                metadatas=[{"topic": ["bake", "space", "music", "water"][t], "n": i} for i, t in enumerate(truth)])
    return coll, truth


def test_kmeans_suggests_k_and_names_clusters_by_distinctive_terms(store):
    from sklearn.metrics import adjusted_rand_score

    coll, truth = _synthetic(store, centres=4)
    result = K.cluster_collection(coll)
    assert result.params["suggested_k"] == 4 and result.k == 4
    assert adjusted_rand_score(truth, result.labels) == 1.0
    named = {frozenset(c.terms[:4]) for c in result.clusters}
    assert frozenset("bread yeast dough oven".split()) in named
    assert frozenset("planet orbit telescope star".split()) in named
    assert all("note" not in c.terms[:4] for c in result.clusters)  # shared by every cluster: not distinctive
    # stored with the collection, until the collection changes
    assert K.load_clustering(coll).labels == result.labels
    coll.upsert(ids=["new"], texts=["bread again"], vectors=normalize_rows(np.ones((1, 384))))
    assert K.load_clustering(coll) is None and K.load_clustering(coll, fresh_only=False) is not None


def test_hdbscan_finds_dense_groups_and_leaves_noise():
    vectors, texts, truth = _blobs(n_per=25, centres=3, spread=0.2, seed=1, shared=1.0)
    rng = np.random.default_rng(5)
    stray = normalize_rows(rng.normal(size=(5, 384)))  # unrelated directions: far from every group
    result = K.cluster_vectors(np.vstack([vectors, stray]), texts + [f"stray {i}" for i in range(5)],
                               [str(i) for i in range(80)], method="hdbscan", min_cluster_size=5)
    assert result.k == 3
    assert all(label == K.NOISE for label in result.labels[75:])
    assert Counter(result.labels[:75]) == Counter({0: 25, 1: 25, 2: 25})


def test_real_collection_clusters_by_topic(examples):
    from sklearn.metrics import adjusted_rand_score

    result = K.cluster_collection(examples, k=15, save=False)
    topics = [d.metadata["topic"] for d in examples.get(result.ids)]
    # 60 documents on 15 topics, 4 each, and the topics overlap (ML/statistics, sports/health):
    # far from perfect, but far above chance
    score = adjusted_rand_score(topics, result.labels)
    rng = np.random.default_rng(0)
    chance = np.mean([adjusted_rand_score(rng.permutation(topics), result.labels) for _ in range(50)])
    assert score > 0.15 and score > chance + 0.15
    assert all(c.terms for c in result.clusters)


def test_too_small_or_bad_parameters_are_refused_and_nothing_is_stored(store):
    coll = store.collection("tiny")
    coll.upsert(ids=["a", "b"], texts=["one", "two"], vectors=normalize_rows(np.eye(2, 384)))
    for call in (lambda: K.cluster_collection(coll), lambda: M.build_map(coll),
                 lambda: N.outliers(coll)):
        with pytest.raises(InputError, match="needs at least 3 documents; the collection has 2"):
            call()
    big, _ = _synthetic(store, name="big")
    with pytest.raises(InputError, match="k must be between 2 and 89"):
        K.cluster_collection(big, k=200)
    with pytest.raises(InputError, match="unknown clustering method"):
        K.cluster_collection(big, method="dbscan")
    with pytest.raises(InputError, match="UMAP map needs at least 10 documents.*--method pca"):
        project(np.eye(5, 8), "umap")
    for c in (coll, big):
        assert c.backend.get_artifact(K.ARTIFACT) is None


def test_neighbors_duplicates_outliers(store):
    coll, truth = _synthetic(store, centres=2, n_per=20)
    vectors = coll.backend.data.vectors()[1]
    twin = normalize_rows(vectors[:1] + 0.003 * np.random.default_rng(0).normal(size=(1, 384)))
    odd = normalize_rows(np.random.default_rng(9).normal(size=(1, 384)))
    coll.upsert(ids=["twin", "odd"], texts=["bread yeast dough oven twin", "something else"],
                vectors=np.vstack([twin, odd]))
    near = N.neighbors(coll, "d0", k=5)
    assert near[0].id == "twin" and near[0].score > 0.99
    assert all(n.id != "d0" for n in near) and all(n.id == "twin" or int(n.id[1:]) < 20 for n in near)
    groups = N.duplicates(coll, threshold=0.98)
    assert [g["ids"] for g in groups] == [["d0", "twin"]]
    assert N.outliers(coll, top=1)[0]["id"] == "odd"
    with pytest.raises(InputError, match="no document 'missing'"):
        N.neighbors(coll, "missing")


def test_png_map_is_a_real_figure(tmp_path, store):
    from PIL import Image

    coll, _ = _synthetic(store, centres=3)
    out = M.render(M.build_map(coll, color_by="topic", title="Three topics"), tmp_path / "map.png")
    image = Image.open(out).convert("RGB")
    assert image.width >= 1200 and image.height >= 900  # print resolution (200 dpi)
    pixels = np.asarray(image).reshape(-1, 3)
    colours = {tuple(p) for p in pixels[(pixels.std(axis=1) > 40)][::7]}  # saturated pixels only
    assert len(colours) >= 3
    numeric = M.build_map(coll, color_by="n")  # 90 distinct numbers: a colour scale, not categories
    assert numeric.values is not None and numeric.categories is None
    with pytest.raises(InputError, match="no document .* has a 'nope' metadata field"):
        M.build_map(coll, color_by="nope")
    with pytest.raises(InputError, match="unsupported map format '.jpg'"):
        M.render(numeric, tmp_path / "map.jpg")


def _chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=3000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@needs_chromium
def test_html_map_renders_searches_and_shows_tooltips_in_chromium(tmp_path, store):
    from PIL import Image

    coll, _ = _synthetic(store, centres=3)
    # a hostile text must not break out of the embedded data
    coll.upsert(ids=["evil"], texts=["</script><script>document.title='pwned'</script> guitar"],
                vectors=coll.backend.data.vectors()[1][:1])
    out = M.render(M.build_map(coll, color_by="topic"), tmp_path / "map.html")
    page = out.read_text()
    assert "<script src" not in page and "<link" not in page and "http" not in page.split("<body>")[0]

    dom = _chromium(["--dump-dom", f"{out.as_uri()}#q=guitar&focus=d5"], tmp_path).stdout
    assert 'data-rendered="ok"' in dom and 'data-points="91"' in dom and "data-error" not in dom
    assert 'data-matches="31"' in dom  # 30 music documents + the hostile one mention "guitar"
    assert "31 of 91 match" in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert 'id="tip" data-id="d5"' in dom  # hover tooltip for the focused point
    assert dom.count('class="item"') == 4  # legend: three topics + "(none)" for the unlabelled one

    shot = tmp_path / "shot.png"
    _chromium([f"--screenshot={shot}", "--window-size=1200,800", out.as_uri()], tmp_path)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    drawn = pixels[(pixels.std(axis=1) > 40)]  # coloured points on the canvas, not white or grey
    assert len(drawn) > 1000
    assert len({tuple(p // 64) for p in drawn}) >= 3  # several distinct colours, one per topic


def test_umap_projection_keeps_groups_apart():
    vectors, _, truth = _blobs(n_per=15, centres=3, seed=2)
    xy = project(vectors, "umap", seed=0)
    assert xy.shape == (45, 2) and np.isfinite(xy).all()
    truth = np.array(truth)
    centres = np.array([xy[truth == c].mean(axis=0) for c in range(3)])
    within = max(np.linalg.norm(xy[truth == c] - centres[c], axis=1).mean() for c in range(3))
    between = min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3))
    assert between > 2 * within


def test_cluster_and_map_commands(tmp_path, store):
    _synthetic(store, centres=3)
    db = str(store.path)
    store.close()
    report = json.loads(run("--store", db, "-c", "blobs", "cluster", "--json").stdout)
    assert report["k"] == 3 and sum(c["size"] for c in report["clusters"]) == 90
    proc = run("--store", db, "-c", "blobs", "map", "--out", str(tmp_path / "m.html"))
    assert "90 documents" in proc.stderr and "3 groups" in proc.stderr
    assert (tmp_path / "m.html").stat().st_size > 10_000
    bad = run("--store", db, "-c", "blobs", "map", "--out", str(tmp_path / "m.gif"), check=False)
    assert bad.returncode == 1 and "unsupported map format" in bad.stderr and "Traceback" not in bad.stderr
    dup = json.loads(run("--store", db, "-c", "blobs", "duplicates", "--threshold", "0.999", "--json").stdout)
    assert dup == []
