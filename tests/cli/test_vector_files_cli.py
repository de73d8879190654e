"""``nearspace index`` of your own vectors (.npy + ids + metadata, Parquet) and
``nearspace search --vector-of ID``, through the real command in subprocesses."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nearspace
from tests.cli.test_cli import run

N, DIM = 400, 32


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture()
def npy_files(tmp_path):
    V = np.random.default_rng(7).standard_normal((N, DIM)).astype(np.float32)
    np.save(tmp_path / "items.npy", V)
    ids = [f"sku-{i}" for i in range(N)]
    (tmp_path / "items.ids").write_text("\n".join(ids) + "\n", encoding="utf-8")
    metas = [{"shop": ["north", "south"][i % 2], "price": i} for i in range(N)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas), encoding="utf-8")
    return tmp_path, V, ids, metas


def exact_neighbours(V, ids, metas, of: int, k: int, keep=lambda m: True) -> list[str]:
    """Reference: brute-force cosine over the allowed rows, the item itself left out."""
    allowed = [i for i in range(len(ids)) if i != of and keep(metas[i])]
    scores = unit(V[allowed]) @ unit(V[of])
    return [ids[allowed[j]] for j in np.argsort(-scores)[:k]]


def test_npy_in_vector_of_out(npy_files):
    tmp, V, ids, metas = npy_files
    db = str(tmp / "s.db")
    done = run("--store", db, "-c", "shop", "index", str(tmp / "items.npy"), "--ids", str(tmp / "items.ids"),
               "--metadata", str(tmp / "items.jsonl"))
    assert f"{N} added" in done.stderr and "your own 32-d vectors" in done.stderr
    out = json.loads(run("--store", db, "-c", "shop", "search", "--vector-of", "sku-11", "-k", "7", "--json").stdout)
    assert [r["id"] for r in out] == exact_neighbours(V, ids, metas, 11, 7)
    assert [r["ranks"]["dense"] for r in out] == list(range(1, 8))
    np.testing.assert_allclose([r["score"] for r in out],
                               [float(unit(V[int(r["id"][4:])]) @ unit(V[11])) for r in out], atol=1e-5)
    filtered = json.loads(run("--store", db, "-c", "shop", "search", "--vector-of", "sku-11", "-k", "5",
                              "-w", "shop=south", "-w", "price<200", "--json").stdout)
    assert [r["id"] for r in filtered] == exact_neighbours(
        V, ids, metas, 11, 5, keep=lambda m: m["shop"] == "south" and m["price"] < 200)
    table = run("--store", db, "-c", "shop", "search", "--vector-of", "sku-11", "-k", "3").stdout
    assert "neighbours of sku-11" in table and '"shop": ' in table  # metadata shown where there is no text
    # deleting an item removes it from everyone's neighbours; reopening keeps all of it
    first = out[0]["id"]
    run("--store", db, "-c", "shop", "delete", first)
    again = json.loads(run("--store", db, "-c", "shop", "search", "--vector-of", "sku-11", "-k", "6",
                           "--json").stdout)
    assert [r["id"] for r in again] == [i for i in exact_neighbours(V, ids, metas, 11, 7) if i != first]


def test_vectors_only_search_says_what_it_can_do(npy_files):
    tmp, *_ = npy_files
    db = str(tmp / "s.db")
    run("--store", db, "-c", "shop", "index", str(tmp / "items.npy"), "--ids", str(tmp / "items.ids"))
    cases = {("search", "cheap lamp"): "no model to encode a query",
             ("search", "cheap lamp", "--mode", "keyword"): "there is nothing to search by keyword",
             ("search", "--vector-of", "sku-404"): "'sku-404' is not stored",
             ("search", "--vector-of", "sku-1", "--mode", "keyword"): "--mode keyword does not apply",
             ("search", "lamp", "--vector-of", "sku-1"): "not both",
             ("index", str(tmp / "items.npy")): "needs --ids FILE"}
    for args, message in cases.items():
        proc = run("--store", db, "-c", "shop", *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_bad_npy_via_cli_keeps_the_store(npy_files):
    tmp, V, ids, _ = npy_files
    db = tmp / "s.db"
    run("--store", str(db), "-c", "shop", "index", str(tmp / "items.npy"), "--ids", str(tmp / "items.ids"))
    bad = V.copy()
    bad[123] = np.inf
    np.save(tmp / "bad.npy", bad * 2)
    proc = run("--store", str(db), "-c", "shop", "index", str(tmp / "bad.npy"), "--ids", str(tmp / "items.ids"),
               check=False)
    assert proc.returncode == 1 and "row 123 (id 'sku-123')" in proc.stderr
    with nearspace.open_store(db) as store:  # the first import is intact, nothing of the second
        c = store.get_collection("shop")
        assert c.count() == N
        np.testing.assert_allclose(c.vector_of("sku-5"), unit(V[5]), atol=1e-6)


def test_parquet_in_search_filter_delete_reopen(tmp_path):
    rng = np.random.default_rng(11)
    V = rng.standard_normal((200, 16)).astype(np.float32)
    path = tmp_path / "catalogue.parquet"
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(200)],
                             "vector": pa.array(list(V), pa.list_(pa.float32(), 16)),
                             "metadata": [json.dumps({"colour": ["red", "blue"][i % 2]}) for i in range(200)],
                             "price": [float(i) for i in range(200)]}), path)
    db = tmp_path / "s.db"
    done = run("--store", str(db), "-c", "catalogue", "index", str(path))
    assert "200 added" in done.stderr and "your own 16-d vectors" in done.stderr
    with nearspace.open_store(db) as store:
        c = store.get_collection("catalogue")
        assert c.vectors_only and c.get("p3").metadata == {"colour": "blue", "price": 3.0}
        hits = c.search(vector=V[3], k=4, where={"colour": "blue", "price": {"$lt": 100}})
        assert hits[0].id == "p3" and all(h.metadata["colour"] == "blue" and h.metadata["price"] < 100
                                          for h in hits)
        assert c.delete(["p3"]) == 1
    with nearspace.open_store(db) as store:  # reopened: the delete held, the rest is searchable
        c = store.get_collection("catalogue")
        assert c.count() == 199
        top = c.search(vector=V[3], k=1)[0].id
        assert top != "p3" and top == f"p{int(np.argsort(-(unit(V) @ unit(V[3])))[1])}"
    # exported and indexed again: the same vectors-only collection, bit for bit
    run("--store", str(db), "export", "catalogue", str(tmp_path / "out.parquet"))
    run("--store", str(tmp_path / "copy.db"), "-c", "copy", "index", str(tmp_path / "out.parquet"))
    with nearspace.open_store(db) as a, nearspace.open_store(tmp_path / "copy.db") as b:
        source, copy = a.get_collection("catalogue"), b.get_collection("copy")
        assert copy.vectors_only and copy.count() == 199
        assert copy.get("p8").metadata == source.get("p8").metadata
        assert copy.vector_of("p8").tobytes() == source.vector_of("p8").tobytes()
    # a second file of another dimension into the same collection is refused, naming both
    pq.write_table(pa.table({"id": ["x"], "vector": pa.array([[1.0, 2.0]], pa.list_(pa.float32()))}),
                   tmp_path / "small.parquet")
    proc = run("--store", str(db), "-c", "catalogue", "index", str(tmp_path / "small.parquet"), check=False)
    assert proc.returncode == 1 and "dimension 2 but collection 'catalogue' holds dimension 16" in proc.stderr


def test_vector_commands_never_import_a_model(npy_files):
    """index .npy and search --vector-of on a vectors-only collection load no model library."""
    tmp, *_ = npy_files
    db = str(tmp / "s.db")
    code = f"""
import json, sys
from nearspace.cli.app import app
for args in (["--store", {db!r}, "-c", "own", "index", {str(tmp / "items.npy")!r}, "--ids", {str(tmp / "items.ids")!r}],
             ["--store", {db!r}, "-c", "own", "search", "--vector-of", "sku-3", "--json"]):
    try:
        app(args)
    except SystemExit as exc:
        assert not exc.code, exc.code
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "onnxruntime") if m in sys.modules)
print(json.dumps(heavy))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_npy_and_vector_of_on_a_milvus_lite_store(npy_files):
    """The same commands on a Milvus-backed store give the same neighbours as exact search."""
    pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (extra 'milvus')")
    tmp, V, ids, metas = npy_files
    uri = f"milvus-lite:{tmp / 'm.db'}"
    proc = run("--store", uri, "-c", "shop", "index", str(tmp / "items.npy"), "--ids", str(tmp / "items.ids"),
               "--metadata", str(tmp / "items.jsonl"), check=False)
    if proc.returncode != 0 and "milvus" in proc.stderr.lower() and "start" in proc.stderr.lower():
        pytest.skip(f"milvus-lite could not start here: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(run("--store", uri, "-c", "shop", "search", "--vector-of", "sku-11", "-k", "5",
                         "-w", "shop=south", "--json").stdout)
    assert [r["id"] for r in out] == exact_neighbours(V, ids, metas, 11, 5, keep=lambda m: m["shop"] == "south")


def test_vector_of_on_a_text_collection_needs_no_model(tmp_path):
    """Neighbours of a stored document come from its stored vector: the encoder is not loaded."""
    from tests.conftest import EXAMPLES

    db = str(tmp_path / "texts.db")
    run("--store", db, "index", str(EXAMPLES))
    with nearspace.open_store(db) as store:
        docs = store.get_collection("default")
        ids = docs.ids()
        matrix = np.vstack([docs.vector_of(i) for i in ids])
    of = ids[0]
    code = f"""
import contextlib, io, json, sys
from nearspace.cli.app import app
printed = io.StringIO()
try:
    with contextlib.redirect_stdout(printed):
        app(["--store", {db!r}, "search", "--vector-of", {of!r}, "-k", "4", "--json"])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "onnxruntime") if m in sys.modules)
print(json.dumps({{"heavy": heavy, "hits": [r["id"] for r in json.loads(printed.getvalue())]}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = [ids[i] for i in np.argsort(-(matrix @ matrix[0])) if ids[i] != of][:4]
    assert out == {"heavy": [], "hits": expected}
