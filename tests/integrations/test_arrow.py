"""Arrow / Parquet: collection.to_arrow()/to_pandas(), `nearspace export` and `nearspace index
file.parquet` round-tripping ids, titles, texts, metadata and vectors bit for bit, reuse of
stored vectors only when the encoder matches, and Hugging Face datasets reading the export."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nearspace import open_store
from nearspace.integrations.arrow import index_parquet

from tests.cli.test_cli import run
from tests.conftest import SEED_QUERY

RICH = {"title": "Ünïcode ✓", "nested": {"a": [1, 2.5, None, "x"], "b": {"c": True}}, "big": 2 ** 53,
        "tiny": 1e-300, "neg": -0.0, "empty": [], "year": 2021}


@pytest.fixture()
def source(examples):
    examples.upsert(ids=["rich"], texts=["A record whose metadata exercises every JSON type."],
                    titles=["Rich ✓"], metadatas=[RICH])
    return examples


def _table_rows(table: pa.Table) -> list[tuple]:
    return list(zip(*(table.column(c).to_pylist() for c in ("id", "title", "text", "metadata"))))


def test_to_arrow_and_pandas(source):
    table = source.to_arrow()
    assert table.num_rows == source.count()
    assert table.schema.field("vector").type == pa.list_(pa.float32(), source.backend.dim)
    info = json.loads(table.schema.metadata[b"nearspace"])
    assert info["encoder"] == source.backend.encoder and info["dim"] == source.backend.dim
    rows, matrix = source.backend.data.vectors()
    exported = np.asarray(table.column("vector").combine_chunks().flatten(), dtype=np.float32)
    assert exported.tobytes() == matrix.tobytes()  # storage order, same bits
    frame = source.to_pandas()
    rich = frame.set_index("id").loc["rich"]
    assert rich["metadata"] == RICH and rich["title"] == "Rich ✓"
    assert rich["vector"].dtype == np.float32 and rich["vector"].shape == (source.backend.dim,)


def test_cli_export_index_round_trip_is_lossless(source, tmp_path):
    source.store.close()
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    run("--store", str(source.store.path), "export", "examples", str(first))
    indexed = run("--store", str(tmp_path / "copy.db"), "-c", "copied", "index", str(first))
    assert "vectors taken from the file" in indexed.stderr
    run("--store", str(tmp_path / "copy.db"), "export", "copied", str(second))
    a, b = pq.read_table(first), pq.read_table(second)
    assert _table_rows(a) == _table_rows(b) and len(_table_rows(a)) == 61
    assert a.column("vector").combine_chunks().equals(b.column("vector").combine_chunks())
    with open_store(tmp_path / "copy.db") as store:  # the copy searches exactly like the source
        copy = store.collection("copied")
        with open_store(source.store.path) as original:
            orig = original.collection("examples")
            assert [h.id for h in copy.search(SEED_QUERY, k=5)] == [h.id for h in orig.search(SEED_QUERY, k=5)]
        assert copy.get("rich").metadata == RICH


def test_vectors_from_another_encoder_are_not_reused(store, tmp_path, encoder):
    path = tmp_path / "foreign.parquet"
    table = pa.table({"id": ["a", "b"], "text": ["the moon orbits the earth", "bread rises with yeast"],
                      "vector": pa.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], pa.list_(pa.float32(), 3))})
    table = table.replace_schema_metadata({b"nearspace": json.dumps({"encoder": "langchain:Fake", "dim": 3})})
    pq.write_table(table, path)
    store.collection("target").upsert(ids=["seed"], texts=["already here"])
    said = []
    assert index_parquet(store, "target", path, echo=said.append) is None  # caller encodes the texts
    assert "encoding the texts instead" in said[0]
    # and into a new collection the file's own encoder name and vectors are kept
    index_parquet(store, "theirs", path)
    theirs = store.db.collection("theirs")
    assert theirs.encoder == "langchain:Fake" and theirs.dim == 3
    np.testing.assert_array_equal(theirs.vectors()[1], np.eye(3, dtype=np.float32)[:2])


def test_index_parquet_without_vectors_encodes(tmp_path, encoder):
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["the moon orbits the earth", "bread rises with yeast"],
                             "metadata": ['{"k": 1}', '{"k": 2}']}), path)
    run("--store", str(tmp_path / "p.db"), "index", str(path))
    with open_store(tmp_path / "p.db") as store:
        coll = store.collection()
        assert coll.get("b").metadata == {"k": 2}
        rows, matrix = coll.backend.data.vectors()
        np.testing.assert_allclose(matrix, encoder.encode(["the moon orbits the earth", "bread rises with yeast"]),
                                   atol=2e-2)  # bf16/fp32 paths may differ slightly


def test_bad_parquet_is_one_line_error(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": ["no text column"]}), path)
    proc = run("--store", str(tmp_path / "b.db"), "index", str(path), check=False)
    assert proc.returncode == 1 and "needs 'id' and 'text' columns" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_huggingface_datasets_loads_the_export(source, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # a local file: nothing to fetch
    datasets = pytest.importorskip("datasets", reason="datasets is in nearspace[integrations-test]")
    path = tmp_path / "hf.parquet"
    from nearspace.integrations.arrow import export_parquet

    export_parquet(source, path)
    ds = datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "hf-cache"))
    assert ds.num_rows == source.count() and set(ds.column_names) == {"id", "title", "text", "metadata", "vector"}
    row = ds.filter(lambda r: r["id"] == "rich")[0]
    assert json.loads(row["metadata"]) == RICH and len(row["vector"]) == source.backend.dim
    vectors = np.asarray(ds.with_format("numpy")["vector"], dtype=np.float32)
    assert vectors.tobytes() == source.backend.data.vectors()[1].tobytes()
