"""Reranking as a search stage: it reorders (a reranker of negated dense scores reverses the
dense order), a tiny random cross-encoder loads through the real CrossEncoder code, and the
stage runs the same on SQLite and milvus-lite."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from nearspace.errors import InputError
from tests.conftest import SEED_QUERY
from tests.store.test_milvus import BACKENDS, load_examples, open_backend


class NegatedDense:
    """Scores each passage by minus its cosine to the query: the dense order, reversed."""

    name = "negated-dense"

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.calls = 0

    def score(self, query, passages):
        self.calls += 1
        q = self.encoder.encode_queries([query])[0]
        return -(self.encoder.encode_documents(list(passages)) @ q)


@pytest.fixture(params=BACKENDS)
def examples_any(request, tmp_path, encoder, example_docs, example_vectors):
    store = open_backend(request.param, tmp_path, encoder)
    yield load_examples(store, example_docs, example_vectors)
    store.close()


def test_a_reranker_reorders_rather_than_decorates(examples_any, encoder):
    dense = examples_any.search(SEED_QUERY, k=10, mode="dense")
    flipped = examples_any.search(SEED_QUERY, k=10, mode="dense", rerank=NegatedDense(encoder), rerank_k=10)
    assert [h.id for h in flipped] == [h.id for h in reversed(dense)]
    assert all(h.ranks["rerank"] == i for i, h in enumerate(flipped, start=1))
    assert flipped[0].scores["dense"] == pytest.approx(dense[-1].score, abs=1e-5)
    assert flipped[0].score == pytest.approx(-dense[-1].score, abs=1e-4)  # the reranker's score is the score


def test_rerank_k_bounds_the_pool_and_the_cut_is_k(examples_any, encoder):
    negated = NegatedDense(encoder)
    top3 = examples_any.search(SEED_QUERY, k=3, mode="dense", rerank=negated, rerank_k=20)
    dense20 = examples_any.search(SEED_QUERY, k=20, mode="dense")
    assert [h.id for h in top3] == [h.id for h in reversed(dense20)][:3]  # the 20 read, the worst 3 kept
    with pytest.raises(InputError, match="rerank_k"):
        examples_any.search(SEED_QUERY, rerank=negated, rerank_k=0)
    with pytest.raises(InputError, match="reranker reads the query"):
        examples_any.search(vector=np.ones(384), rerank=negated)
    with pytest.raises(InputError, match="name and score"):
        examples_any.search(SEED_QUERY, rerank=object())
    with pytest.raises(InputError, match="unknown reranker"):
        examples_any.search(SEED_QUERY, rerank="no-such-reranker")


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A 2-layer random BERT with a one-logit head, saved as a CrossEncoder folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from nearspace.encoders.sentence import bundled_model_path

    folder = tmp_path_factory.mktemp("ce") / "tiny-ce"
    folder.mkdir()
    vocab = len((bundled_model_path() / "vocab.txt").read_text().splitlines())
    torch.manual_seed(1)
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled_model_path() / name, folder / name)
    return folder


def test_a_cross_encoder_folder_scores_the_pairs_it_is_given(examples, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    from nearspace.rerank import load_reranker
    from nearspace.types import embedding_text

    reranker = load_reranker(f"ce:{tiny_cross_encoder}")
    hits = examples.search(SEED_QUERY, k=5, rerank=reranker, rerank_k=15)
    first = examples.search(SEED_QUERY, k=15)
    reference = CrossEncoder(str(tiny_cross_encoder), device="cpu")
    docs = examples.get([h.id for h in first])
    expected = reference.predict([(SEED_QUERY, embedding_text(d)) for d in docs])
    best = [first[i].id for i in np.argsort(-expected, kind="stable")[:5]]
    assert [h.id for h in hits] == best
    np.testing.assert_allclose([h.score for h in hits], np.sort(expected)[::-1][:5], atol=1e-5)


def test_ask_takes_a_reranker(examples, encoder):
    negated = NegatedDense(encoder)
    plain = examples.ask(SEED_QUERY, k=3)
    flipped = examples.ask(SEED_QUERY, k=3, rerank=negated)
    assert negated.calls == 1 and plain.passages and flipped.passages
    assert [p.ids for p in flipped.passages] != [p.ids for p in plain.passages]
