import os

import numpy as np
import pytest

from nearspace.encoders import load_encoder
from nearspace.encoders.cpu import has_native_bf16
from nearspace.encoders.sentence import SentenceEncoder, resolve_precision


def test_reproduces_published_sentence_transformers_example(encoder):
    # the sentence-transformers quickstart publishes these cosine similarities for all-MiniLM-L6-v2
    vectors = encoder.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    sims = vectors @ vectors.T
    assert sims[0, 1] == pytest.approx(0.6660, abs=2e-3)
    assert sims[0, 2] == pytest.approx(0.1046, abs=2e-3)


def test_vectors_are_unit_float32_rows(encoder):
    vectors = encoder.encode(["alpha", "a much longer sentence about the solar system and planets"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.dim == 384 and encoder.name == "all-MiniLM-L6-v2"


def test_order_of_inputs_is_kept(encoder):
    texts = ["short", "a considerably longer text that sorts first when batching by length", "mid length text"]
    together = encoder.encode(texts, batch_size=2)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    # bf16 (chosen on CPUs with native bf16) rounds differently with padding: compare by cosine
    tolerance = 1e-4 if encoder.precision == "fp32" else 2e-3
    sims = together @ alone.T
    assert (np.abs(np.diag(sims) - 1.0) < tolerance).all(), np.diag(sims)
    assert (sims.argmax(axis=1) == np.arange(len(texts))).all()


def test_bad_input_is_rejected(encoder):
    with pytest.raises(TypeError, match="list of texts"):
        encoder.encode("not a list")
    with pytest.raises(TypeError, match="text #1"):
        encoder.encode(["ok", 3])
    assert encoder.encode([]).shape == (0, 384)


def test_auto_precision_follows_cpu_features():
    expected = "bf16" if has_native_bf16() else "fp32"
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda") == "fp32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int4", "cpu")


def test_bf16_stays_close_to_fp32(encoder):
    texts = ["Dropout randomly disables units while training.", "The Moon orbits the Earth every 27 days."]
    bf16 = SentenceEncoder(precision="bf16")
    fp32 = load_encoder(precision="fp32")
    low, full = bf16.encode(texts), fp32.encode(texts)
    cos = (low * full).sum(axis=1)
    assert bf16.precision == "bf16"
    assert np.abs(low - full).max() > 1e-5  # the matmuls really ran in bf16
    assert cos.min() > 0.9999, cos


def test_loads_offline_and_restores_environment(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    SentenceEncoder(precision="fp32")
    assert "HF_HUB_OFFLINE" not in os.environ


def test_unknown_encoder_name_is_clear():
    from nearspace.errors import EncoderUnavailable

    with pytest.raises(EncoderUnavailable, match="unknown encoder 'nope'"):
        load_encoder("nope")
