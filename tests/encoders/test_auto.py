"""``auto`` picks: ONNX Runtime for queries, torch bf16 for big batches only on a native-bf16 CPU,
vectors from the two agreeing; the ONNX cache's fast (size + mtime) trust and its re-hash."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nearspace.encoders.cpu import has_native_bf16
from nearspace.errors import InputError
from nearspace.encoders.onnx import _valid, cache_dir, graph_files
from nearspace.encoders.registry import bf16_for_batches, choose_backend, describe_choice, load_encoder
from nearspace.encoders.sentence import bundled_model_path
from tests.conftest import require_data


def test_choice_follows_the_cpu_and_the_overrides(monkeypatch):
    monkeypatch.delenv("NEARSPACE_BACKEND", raising=False)
    assert choose_backend("auto", "cpu") == "onnx"
    assert choose_backend("bf16", "cpu") == "torch"
    assert choose_backend("auto", "cuda") == "torch"
    assert bf16_for_batches("auto", "cpu") is has_native_bf16()
    assert bf16_for_batches("fp32", "cpu") is False
    monkeypatch.setenv("NEARSPACE_BACKEND", "onnx")
    assert bf16_for_batches("auto", "cpu") is False and describe_choice().startswith("onnx fp32 (")
    monkeypatch.setenv("NEARSPACE_BACKEND", "torch")
    assert choose_backend() == "torch" and describe_choice().startswith("torch")
    monkeypatch.setenv("NEARSPACE_BACKEND", "tensorflow")
    with pytest.raises(InputError, match="backend must be one of"):
        choose_backend()


def _passages(n: int) -> list[str]:
    texts = []
    with require_data("beir", "scifact", "corpus.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            texts.append(f"{record['title']} {record['text']}")
            if len(texts) == n:
                break
    return texts


@pytest.mark.skipif(not has_native_bf16(), reason="the bf16 batch path is chosen only on CPUs with native bf16")
def test_auto_serves_queries_on_onnx_and_big_batches_on_bf16_with_agreeing_vectors(monkeypatch):
    from nearspace.encoders.auto import AutoCpuEncoder

    monkeypatch.delenv("NEARSPACE_BACKEND", raising=False)
    encoder = load_encoder(precision="auto", device="cpu")
    assert isinstance(encoder, AutoCpuEncoder) and encoder.name == "all-MiniLM-L6-v2"
    assert encoder.bf16_min_texts >= 64  # a one-query process never reaches it
    encoder = AutoCpuEncoder(encoder.onnx, bf16_min_texts=48)  # the same switch, on fewer passages
    texts = _passages(encoder.bf16_min_texts)
    small = encoder.encode(texts[:8])
    assert encoder._bulk is None  # queries and small batches never load torch
    big = encoder.encode(texts)
    assert encoder._bulk is not None and encoder._bulk.precision == "bf16"
    onnx = encoder.onnx.encode(texts)
    cosines = np.sum(big * onnx, axis=1)
    assert cosines.mean() >= 0.9999 and cosines.min() >= 0.999, (cosines.mean(), cosines.min())
    np.testing.assert_allclose(small, onnx[:8], atol=1e-5)


def test_cache_is_trusted_on_size_and_mtime_and_a_copy_is_hashed_once(tmp_path):
    from nearspace.encoders.onnx import OnnxEncoder

    OnnxEncoder()  # makes sure the user cache holds the graph
    model_dir = bundled_model_path()
    source_graph, source_meta = graph_files(model_dir, cache_dir())
    assert json.loads(source_meta.read_text())["mtime_ns"] == source_graph.stat().st_mtime_ns
    graph, sidecar = graph_files(model_dir, tmp_path)
    shutil.copy(source_graph, graph)  # new mtime: the full SHA-256 decides, then it is recorded
    shutil.copy(source_meta, sidecar)
    assert _valid(graph, sidecar) is not None
    assert json.loads(sidecar.read_text())["mtime_ns"] == graph.stat().st_mtime_ns
    with open(graph, "r+b") as handle:  # any write moves the mtime, so damage is always hashed
        handle.seek(1024)
        handle.write(b"\0" * 64)
    assert _valid(graph, sidecar) is None
