"""Encoding on a local Ray cluster (started here, 2 CPUs) gives what a local run gives."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import SEED_QUERY, require_data

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install 'nearspace[ray]')")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """200 SciFact passages as a .jsonl file (a few long ones are chunked on the way)."""
    source = require_data("beir", "scifact", "corpus.jsonl")
    out = tmp_path_factory.mktemp("ray") / "scifact300.jsonl"
    lines = []
    with open(source) as fh:
        for line in fh:
            record = json.loads(line)
            lines.append(json.dumps({"id": record["_id"], "title": record.get("title", ""),
                                     "text": record["text"], "metadata": {"n": len(lines) % 3}}))
            if len(lines) == 200:
                break
    out.write_text("\n".join(lines) + "\n")
    return out


def _all(store_path, name="default"):
    from nearspace import open_store
    from nearspace.transfer import source_batches

    with open_store(store_path) as opened:
        coll = opened.get_collection(name)
        vectors = {}
        for docs, matrix in source_batches(coll):
            vectors.update({d.id: v for d, v in zip(docs, matrix)})
        hits = [r.id for r in coll.search("coronary heart disease risk", k=10, mode="hybrid")]
    return vectors, hits


def test_ray_equals_local_and_resumes(cluster, corpus, tmp_path):
    from nearspace import open_store
    from nearspace.ingest.distributed import index_with_ray
    from tests.cli.test_cli import run

    local = tmp_path / "local.db"
    run("--store", str(local), "index", str(corpus), "--precision", "fp32")
    distributed = tmp_path / "ray.db"
    done = index_with_ray([corpus], str(distributed), actors=2, batch_size=32, precision="fp32", show_progress=False)
    assert done["encoded"] == done["documents"] == done["count"] >= 200
    v_local, hits_local = _all(local)
    v_ray, hits_ray = _all(distributed)
    assert v_local.keys() == v_ray.keys()
    # fp32 on both sides: bf16 results depend on which texts share a padded batch, fp32's do not
    assert max(float(np.abs(v_local[i] - v_ray[i]).max()) for i in v_local) < 1e-5
    assert hits_ray == hits_local
    # resumable: an interrupted run left half; the rerun encodes only what is missing
    with open_store(distributed) as opened:
        coll = opened.get_collection("default")
        gone = sorted(v_ray)[::2]
        coll.delete(gone)
        coll.upsert([sorted(v_ray)[1]], [coll.get(sorted(v_ray)[1]).text], metadatas=[{"n": 99}],
                    titles=[coll.get(sorted(v_ray)[1]).title])
    again = index_with_ray([corpus], str(distributed), actors=2, batch_size=32, precision="fp32", show_progress=False)
    assert again["encoded"] == len(gone)
    assert again["added"] == len(gone) and again["metadata"] == 1  # metadata restored without encoding
    assert _all(distributed)[1] == hits_local


def test_ray_into_milvus_lite(cluster, corpus, tmp_path):
    pytest.importorskip("milvus_lite", reason="the 'milvus' extra is not installed")
    from nearspace.ingest.distributed import index_with_ray

    spec = f"milvus-lite:{tmp_path / 'm.db'}"
    done = index_with_ray([corpus], spec, actors=2, batch_size=64, show_progress=False)
    assert done["count"] == done["documents"]
    from nearspace import open_store

    with open_store(spec) as opened:
        assert opened.get_collection("default").search(SEED_QUERY, k=1, mode="dense")


def test_the_ray_cli_is_quiet_and_leaves_no_workers_behind(tmp_path):
    import subprocess
    import sys

    from tests.conftest import EXAMPLES, ROOT

    def raylets() -> int:
        found = subprocess.run(["pgrep", "-c", "-f", "raylet"], capture_output=True, text=True).stdout.strip()
        return int(found or 0)

    before = raylets()
    proc = subprocess.run([sys.executable, "-m", "nearspace.cli", "--store", str(tmp_path / "s.db"), "index",
                           str(EXAMPLES), "--ray"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) <= 3 and "60 encoded on Ray" in proc.stderr.replace("\n", " "), proc.stderr
    assert "ERROR" not in proc.stderr and "INFO" not in proc.stderr
    # the cluster the command started is shut down with it: no more raylets than before it ran
    import time

    deadline = time.monotonic() + 30
    while raylets() > before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert raylets() <= before
