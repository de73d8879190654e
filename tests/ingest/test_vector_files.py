"""Vector files (Parquet, .npy + ids + metadata) into vectors-only collections: what is stored,
and that every bad file is one clear error that leaves the store exactly as it was."""
from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nearspace
from nearspace.errors import InputError
from nearspace.ingest.vectors import (index_vectors, parquet_vector_column, read_npy_vectors,
                                      read_parquet_vectors)

DIM = 24


def matrix(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def write_npy(tmp_path, V, ids, metas=None, name="v"):
    np.save(tmp_path / f"{name}.npy", V)
    (tmp_path / f"{name}.ids").write_text("\n".join(ids) + "\n", encoding="utf-8")
    if metas is not None:
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas), encoding="utf-8")
    return tmp_path / f"{name}.npy", tmp_path / f"{name}.ids", (tmp_path / f"{name}.jsonl" if metas else None)


def state(path) -> tuple:
    """Everything a failed import must leave alone: ids, metadata and vectors of every collection."""
    with nearspace.open_store(path) as store:
        out = []
        for name in store.list_collections():
            c = store.get_collection(name)
            rows, vecs = c.backend.data.vectors()
            out.append((name, c.dim, sorted((d.id, json.dumps(d.metadata, sort_keys=True))
                                            for d in c.get(c.ids())), vecs.tobytes()))
        return tuple(out)


def test_npy_with_ids_and_metadata(tmp_path):
    V = matrix(300)
    ids = [f"item-{i}" for i in range(300)]
    metas = [{"shop": i % 4, "price": float(i)} for i in range(300)]
    items = read_npy_vectors(*write_npy(tmp_path, V, ids, metas))
    assert isinstance(items.vectors, np.memmap)  # a large matrix is never read whole
    with nearspace.open_store(tmp_path / "s.db") as store:
        counts = index_vectors(store, "products", items, batch_size=64)
        assert counts == {"added": 300, "updated": 0, "metadata": 0, "unchanged": 0}
        c = store.get_collection("products")
        assert c.vectors_only and c.dim == DIM and c.count() == 300
        np.testing.assert_allclose(c.vector_of("item-42"), unit(V[42]), atol=1e-6)
        assert c.get("item-42").metadata == {"shop": 2, "price": 42.0}
        hits = c.search(vector=V[10], k=5, where={"shop": 2})
        assert hits[0].id == "item-10"
        # exact reference: cosine over the shop-2 rows
        allowed = [i for i in range(300) if i % 4 == 2]
        best = np.array(allowed)[np.argsort(-(unit(V[allowed]) @ unit(V[10])))[:5]]
        assert [h.id for h in hits] == [f"item-{i}" for i in best]
        # the same file again changes nothing; changed metadata is only metadata
        again = index_vectors(store, "products", items)
        assert again == {"added": 0, "updated": 0, "metadata": 0, "unchanged": 300}


@pytest.mark.parametrize("case, message", [
    ("fewer ids", "has 299 ids but"),
    ("blank id", "empty id"),
    ("repeated id", "appear more than once"),
    ("nan", "row 5 (id 'n5'): the vector contains NaN"),
    ("zero", "row 7 (id 'n7'): the vector is all zeros"),
    ("wrong dim", "dimension 12 but collection 'own' holds dimension 24"),
    ("metadata lines", "metadata lines but there are 300 ids"),
    ("metadata order", "does not match line 2 of the id file"),
    ("metadata not object", "expected a JSON object"),
    ("one-dimensional", "expected a 2-D matrix"),
    ("not npy", "not a readable .npy matrix"),
    ("model collection", "holds vectors of the model"),
])
def test_bad_vector_files_are_one_clear_error_and_store_nothing(tmp_path, case, message):
    db = tmp_path / "s.db"
    with nearspace.open_store(db) as store:  # something already stored, which must survive
        store.collection("own", dim=DIM).upsert(ids=["keep"], vectors=matrix(1, seed=9), metadatas=[{"a": 1}])
        # a model collection recorded without loading a model (its name is all that is checked)
        store.db.collection("texts", encoder="sentence-transformers/all-MiniLM-L6-v2", dim=DIM, create=True)
    before = state(db)
    V, ids, metas, target = matrix(300), [f"n{i}" for i in range(300)], [{"i": i} for i in range(300)], "own"
    if case == "fewer ids":
        ids = ids[:-1]
    elif case == "blank id":
        ids[3] = "  "
    elif case == "repeated id":
        ids[250] = ids[1]
    elif case == "nan":
        V[5, 3] = np.nan
    elif case == "zero":
        V[7] = 0
    elif case == "wrong dim":
        V = matrix(300, dim=12)
    elif case == "metadata lines":
        metas = metas[:-2]
    elif case == "metadata order":
        metas = [{"id": ids[(i + 1) % 300] if i == 1 else ids[i], "i": i} for i in range(300)]
    elif case == "metadata not object":
        metas[4] = [1, 2]
    elif case == "one-dimensional":
        V = V[:, 0]
    elif case == "model collection":
        target = "texts"
    npy, ids_path, meta_path = write_npy(tmp_path, V, ids, metas)
    if case == "not npy":
        npy.write_bytes(b"not a numpy file at all")
    with nearspace.open_store(db) as store:
        with pytest.raises(InputError) as caught:
            index_vectors(store, target, read_npy_vectors(npy, ids_path, meta_path))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert state(db) == before


def test_parquet_of_your_own_vectors(tmp_path):
    """A file from another tool: integer ids, an ``embedding`` column, plain columns as metadata."""
    V = matrix(120, seed=3)
    path = tmp_path / "theirs.parquet"
    pq.write_table(pa.table({"id": pa.array(range(1000, 1120), pa.int64()),
                             "embedding": pa.array(list(V), pa.list_(pa.float32())),
                             "genre": [["comedy", "drama", "horror"][i % 3] for i in range(120)],
                             "year": [1990 + i % 30 for i in range(120)]}), path)
    assert parquet_vector_column(path) == "embedding"
    items = read_parquet_vectors(path, "embedding")
    assert items.ids[0] == "1000" and items.docs[4].metadata == {"genre": "drama", "year": 1994}
    with nearspace.open_store(tmp_path / "s.db") as store:
        index_vectors(store, "movies", items)
        c = store.get_collection("movies")
        hits = c.search(vector=V[4], k=3, where={"genre": "drama", "year": {"$gte": 1990}})
        assert hits[0].id == "1004" and all(h.metadata["genre"] == "drama" for h in hits)
        with pytest.raises(InputError, match="nothing to search by keyword"):
            c.search("drama", mode="keyword")  # metadata is not text: keyword mode says so


def test_parquet_with_text_and_own_vectors_keeps_the_text_for_keywords(tmp_path):
    V = matrix(3, seed=4, dim=8)
    path = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "title": ["Moon", "", ""],
                             "text": ["the moon orbits the earth", "bread rises with yeast", ""],
                             "vector": pa.array(list(V), pa.list_(pa.float32(), 8))}), path)
    with nearspace.open_store(tmp_path / "s.db") as store:
        index_vectors(store, "mixed", read_parquet_vectors(path))
        c = store.get_collection("mixed")
        assert c.vectors_only and c.get("a").title == "Moon"
        assert [h.id for h in c.search("yeast", mode="keyword")] == ["b"]
        assert c.search("nothing matches this", mode="keyword") == []  # there are words: just no hit
        with pytest.raises(InputError, match="no model to encode|own vectors"):
            c.search("yeast")  # hybrid needs a query vector


def test_parquet_export_of_a_model_collection_is_not_taken_as_your_own(tmp_path):
    path = tmp_path / "export.parquet"
    table = pa.table({"id": ["a"], "text": ["x"], "vector": pa.array([[1.0, 0.0]], pa.list_(pa.float32(), 2))})
    pq.write_table(table.replace_schema_metadata({b"nearspace": json.dumps({"encoder": "m", "dim": 2})}), path)
    assert parquet_vector_column(path) is None  # the export path (same encoder or re-encode) handles it
    with pytest.raises(InputError, match="no column 'vec'"):
        parquet_vector_column(path, "vec")


def test_progress_bar_counts_every_row(tmp_path):
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, TextColumn

    buffer = io.StringIO()
    V = matrix(1000, seed=5)
    items = read_npy_vectors(*write_npy(tmp_path, V, [f"r{i}" for i in range(1000)]))

    def bar():
        return Progress(TextColumn("{task.description}"), MofNCompleteColumn(),
                        console=Console(file=buffer, width=100, force_terminal=False))

    with nearspace.open_store(tmp_path / "s.db") as store:
        index_vectors(store, "big", items, batch_size=100, show_progress=True, progress_factory=bar)
        assert store.get_collection("big").count() == 1000
    assert "vectors into big" in buffer.getvalue() and "1000/1000" in buffer.getvalue()


@pytest.mark.parametrize("columns, vector_column, message", [
    ({"vector": pa.array([["x", "y"], ["z", "w"]])}, None, "must hold lists of numbers"),
    ({"emb": [1.0, 2.0]}, "emb", "must hold lists of numbers (one vector per row), not double"),
    ({"vector": pa.array([[1.0, None], [2.0, 3.0]])}, None, "row 0 (id 'a'): the vector contains NaN"),
    ({"vector": pa.array([[1.0, 2.0], [2.0, 3.0, 4.0]])}, None, "vectors have differing lengths"),
    ({"vector": pa.array([[1.0, 2.0], None])}, None, "the vector column has 1 empty row"),
])
def test_bad_parquet_vector_files(tmp_path, columns, vector_column, message):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], **columns}), path)
    db = tmp_path / "s.db"
    with nearspace.open_store(db) as store:
        store.collection("own", dim=2).upsert(ids=["keep"], vectors=np.ones((1, 2)))
    before = state(db)
    with nearspace.open_store(db) as store:
        with pytest.raises(InputError) as caught:
            column = parquet_vector_column(path, vector_column)
            index_vectors(store, "own", read_parquet_vectors(path, column))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert state(db) == before


def test_a_second_vector_file_that_replaces_metadata_says_so(tmp_path):
    from tests.cli.test_cli import run

    V = matrix(10, seed=4)
    ids = [f"sku-{i}" for i in range(10)]
    npy, id_file, meta = write_npy(tmp_path, V, ids, [{"label": "a" if i % 2 else "b"} for i in range(10)])
    store = str(tmp_path / "s.db")
    run("--store", store, "-c", "products", "index", str(npy), "--ids", str(id_file), "--metadata", str(meta))
    path = tmp_path / "catalogue.parquet"
    pq.write_table(pa.table({"id": ids, "vector": pa.array(list(V), pa.list_(pa.float32())),
                             "shop": ["north"] * 10}), path)
    second = run("--store", store, "-c", "products", "index", str(path))
    assert "10 metadata-only" in second.stderr and "had their metadata replaced by catalogue.parquet" in second.stderr
