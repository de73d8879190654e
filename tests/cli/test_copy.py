"""``nearspace copy`` between a SQLite file and milvus-lite, both ways, through the real command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.test_cli import run
from tests.conftest import EXAMPLES, SEED_QUERY
from tests.store.test_milvus import milvus_lite_available


@pytest.fixture()
def sqlite_store(tmp_path):
    path = tmp_path / "local.db"
    run("--store", str(path), "index", str(EXAMPLES))
    return path


def _vectors(store_spec: str, name: str = "default") -> dict[str, np.ndarray]:
    from nearspace import open_store
    from nearspace.transfer import source_batches

    with open_store(store_spec) as opened:
        out = {}
        for docs, vectors in source_batches(opened.get_collection(name)):
            out.update({d.id: v for d, v in zip(docs, vectors)})
        return out


def test_copy_both_ways_keeps_vectors_and_resumes(tmp_path, sqlite_store):
    reason = milvus_lite_available()
    if reason:
        pytest.skip(f"milvus-lite cannot start: {reason}")
    milvus = f"milvus-lite:{tmp_path / 'm.db'}"
    first = json.loads(run("copy", "--from", str(sqlite_store), "--to", milvus, "--json").stdout)
    assert first[0]["added"] == first[0]["source_count"] == first[0]["target_count"] == 60
    # resumable: a second run finds everything there and writes nothing
    again = json.loads(run("copy", "--from", str(sqlite_store), "--to", milvus, "--json").stdout)
    assert again[0]["unchanged"] == 60 and again[0]["added"] == again[0]["updated"] == 0
    local, remote = _vectors(str(sqlite_store)), _vectors(milvus)
    assert local.keys() == remote.keys()
    assert max(float(np.abs(local[i] - remote[i]).max()) for i in local) < 1e-6  # copied, not re-encoded
    # the CLI works unchanged on the Milvus store
    hits = json.loads(run("--store", milvus, "search", SEED_QUERY, "--mode", "dense", "--k", "3", "--json").stdout)
    assert hits[0]["id"] == "regularization-techniques"
    info = json.loads(run("--store", milvus, "info", "--json").stdout)
    assert info["collections"][0]["count"] == 60
    # export reads a Milvus store through the backend contract (it reached SQLite internals before)
    exported = tmp_path / "m.parquet"
    run("--store", milvus, "export", "default", str(exported))
    from nearspace.integrations.arrow import read_parquet

    docs, vectors, _ = read_parquet(exported)
    assert len(docs) == 60 and max(float(np.abs(vectors[i] - local[d.id]).max()) for i, d in enumerate(docs)) < 1e-6
    # and back, into a fresh SQLite file
    back = tmp_path / "back.db"
    done = json.loads(run("copy", "--from", milvus, "--to", str(back), "--collection", "default", "--json").stdout)
    assert done[0]["added"] == 60
    returned = _vectors(str(back))
    assert max(float(np.abs(local[i] - returned[i]).max()) for i in local) < 1e-6
    from nearspace import open_store

    with open_store(back) as opened, open_store(sqlite_store) as original:
        a = opened.get_collection("default").get(sorted(local))
        b = original.get_collection("default").get(sorted(local))
        assert [(d.id, d.title, d.text, d.metadata) for d in a] == [(d.id, d.title, d.text, d.metadata) for d in b]


def test_copy_refuses_an_encoder_mismatch(tmp_path, sqlite_store):
    reason = milvus_lite_available()
    if reason:
        pytest.skip(f"milvus-lite cannot start: {reason}")
    from nearspace import open_store

    milvus = f"milvus-lite:{tmp_path / 'm.db'}"
    with open_store(milvus) as opened:
        opened.backend.create_collection("default", "some-other-model", 8)
    failed = run("copy", "--from", str(sqlite_store), "--to", milvus, check=False)
    assert failed.returncode == 1 and "refusing" in failed.stderr
