"""Model strings (``st:``, ``onnx:``, a folder): real loading code on models the tests build.

A tiny randomly initialised BERT is saved as a sentence-transformers folder (with prompts in
its config); the bundled MiniLM is also loaded through the generic ``st:`` and ``onnx:`` paths,
whose vectors must equal the built-in ones.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nearspace.encoders import load_encoder
from nearspace.errors import EncoderMismatch, EncoderUnavailable
from tests.conftest import ROOT

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def bundled():
    from nearspace.encoders.sentence import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    """A 2-layer, 32-wide random BERT as a sentence-transformers folder with e5-style prompts."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("tiny")
    raw = root / "raw"
    raw.mkdir()
    vocab = len((bundled() / "vocab.txt").read_text().splitlines())
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(raw)
    for name in TOKENIZER_FILES:
        shutil.copy(bundled() / name, raw / name)
    model = SentenceTransformer(modules=[models.Transformer(str(raw), max_seq_length=64),
                                         models.Pooling(32, pooling_mode="mean")], device="cpu")
    model.prompts = {"query": "query: ", "document": "passage: "}
    out = root / "tiny-e5"
    model.save(str(out))
    return out


def test_a_folder_model_loads_with_its_prompts_on_both_roles(tiny_st):
    enc = load_encoder(f"st:{tiny_st}")
    assert (enc.dim, enc.spec.kind, enc.spec.options["model"]) == (32, "sentence-transformers", str(tiny_st))
    assert (enc.query_prompt, enc.document_prompt) == ("query: ", "passage: ")
    text = ["the gradient shrinks"]
    np.testing.assert_allclose(enc.encode_queries(text), enc.encode(["query: the gradient shrinks"]), atol=1e-6)
    np.testing.assert_allclose(enc.encode_documents(text), enc.encode(["passage: the gradient shrinks"]), atol=1e-6)
    assert not np.allclose(enc.encode_queries(text), enc.encode_documents(text), atol=1e-4)
    assert load_encoder(str(tiny_st)).spec == enc.spec  # a bare folder path is the same model string


def test_a_collection_stamps_its_model_reopens_with_it_and_refuses_another(tiny_st, tmp_path):
    from nearspace import open_store

    path = tmp_path / "s.db"
    with open_store(path, encoder=f"st:{tiny_st}") as store:
        coll = store.collection("tiny")
        coll.upsert(["a", "b"], ["Dropout silences units.", "Cats sleep all day."])
        assert coll.spec.query_prompt == "query: " and coll.dim == 32
    code = ("import sys, nearspace; c = nearspace.open_store(sys.argv[1]).get_collection('tiny'); "
            "print(c.encoder.spec.kind, c.dim, len(c.search('units', k=2, mode='dense')))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["sentence-transformers", "32", "2"]
    with open_store(path) as store, pytest.raises(EncoderMismatch, match="tiny-e5.*all-MiniLM|dimension"):
        store.collection("tiny", encoder="all-MiniLM-L6-v2")


def test_a_hub_name_offline_says_how_to_point_at_a_folder():
    with pytest.raises(EncoderUnavailable, match="hf download BAAI/bge-small-en-v1.5 --local-dir"):
        load_encoder("st:BAAI/bge-small-en-v1.5")


def test_the_bundled_model_through_the_generic_st_path_equals_the_built_in_one(encoder):
    texts = ["Dropout randomly silences units during training.", "How do I reduce overfitting?"]
    generic = load_encoder(f"st:{bundled()}", precision="fp32")
    builtin_torch = load_encoder(precision="fp32", backend="torch")
    np.testing.assert_allclose(generic.encode(texts), builtin_torch.encode(texts), atol=1e-6)
    assert generic.dim == 384 and generic.query_prompt == generic.document_prompt == ""


def _onnx_folder(tmp_path, pooling: dict | None):
    """The bundled model's verified ONNX graph in a plain folder (model.onnx + tokenizer.json)."""
    from nearspace.encoders.onnx import OnnxEncoder

    graph = OnnxEncoder().graph_path
    folder = tmp_path / "onnx-minilm"
    folder.mkdir()
    shutil.copy(graph, folder / "model.onnx")
    shutil.copy(bundled() / "tokenizer.json", folder / "tokenizer.json")
    shutil.copy(bundled() / "sentence_bert_config.json", folder / "sentence_bert_config.json")
    if pooling is not None:
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


def test_an_onnx_folder_equals_the_built_in_onnx_path(tmp_path):
    from nearspace.encoders.onnx import OnnxEncoder

    folder = _onnx_folder(tmp_path, {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True})
    texts = ["Dropout randomly silences units during training.", "short", "How do I reduce overfitting?"]
    generic = load_encoder(f"onnx:{folder}")
    assert generic.spec.kind == "onnx" and generic.dim == 384
    np.testing.assert_allclose(generic.encode(texts), OnnxEncoder().encode(texts), atol=1e-6)


def test_an_onnx_folder_with_cls_pooling_pools_the_first_token(tmp_path):
    from sentence_transformers import SentenceTransformer, models

    folder = _onnx_folder(tmp_path, {"word_embedding_dimension": 384, "pooling_mode_cls_token": True,
                                     "pooling_mode_mean_tokens": False})
    texts = ["Dropout randomly silences units during training.", "short"]
    ours = load_encoder(f"onnx:{folder}").encode(texts)
    transformer = models.Transformer(str(bundled()), max_seq_length=256)
    reference = SentenceTransformer(modules=[transformer, models.Pooling(384, pooling_mode="cls"),
                                             models.Normalize()], device="cpu")
    np.testing.assert_allclose(ours, reference.encode(texts), atol=1e-5)


def test_an_incomplete_onnx_folder_is_named(tmp_path):
    with pytest.raises(EncoderUnavailable, match="needs model.onnx"):
        load_encoder(f"onnx:{tmp_path}")


def test_the_cli_takes_a_model_string_and_lists_what_each_collection_uses(tiny_st, tmp_path):
    from tests.cli.test_cli import run
    from tests.conftest import EXAMPLES

    store = str(tmp_path / "cli.db")
    run("--store", store, "index", str(EXAMPLES), "--model", f"st:{tiny_st}", "-c", "tiny")
    run("--store", store, "index", str(EXAMPLES), "-c", "plain")
    listed = json.loads(run("--store", store, "models", "--json").stdout)
    by_name = {c["collection"]: c for c in listed["collections"]}
    assert by_name["tiny"]["kind"] == "sentence-transformers" and by_name["tiny"]["query_prompt"] == "query: "
    assert by_name["plain"]["kind"] == "minilm" and "openai:" in listed["model_strings"]
    assert len(by_name["tiny"]["fingerprint"]) == 16 and by_name["tiny"]["fingerprint"] != by_name["plain"]["fingerprint"]
    hits = json.loads(run("--store", store, "search", "overfitting", "-c", "tiny", "--json").stdout)
    assert len(hits) == 10  # reopened with its own model, no --model needed
    refused = run("--store", store, "index", str(EXAMPLES), "-c", "tiny", "--model", "all-MiniLM-L6-v2", check=False)
    assert refused.returncode == 1 and "refusing" in refused.stderr


def test_the_stamp_refuses_other_weights_under_the_same_name(tiny_st, tmp_path):
    """A folder whose weights changed (same name, same dimension) is another model: its probe
    vector differs from the stamp's, so the collection refuses it instead of mixing two spaces."""
    import torch
    from transformers import BertModel

    from nearspace import open_store

    folder = tmp_path / "model"
    shutil.copytree(tiny_st, folder)
    path = tmp_path / "s.db"
    with open_store(path, encoder=f"st:{folder}") as store:
        store.collection("c").upsert(["a"], ["Dropout silences units."])
    with open_store(path) as store:  # unchanged weights: accepted
        assert store.get_collection("c").search("units", k=1, mode="dense")[0].id == "a"
    inner = BertModel.from_pretrained(folder)
    torch.manual_seed(5)
    for parameter in inner.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    inner.save_pretrained(folder)
    with open_store(path) as store, pytest.raises(EncoderMismatch, match="gives other vectors"):
        store.get_collection("c").search("units", k=1, mode="dense")


def test_prompts_reach_every_integration(tiny_st):
    """LangChain, LlamaIndex and scikit-learn embed documents and queries with the model's own prompts."""
    enc = load_encoder(f"st:{tiny_st}")
    docs, query = ["Dropout silences units."], "what is dropout"
    want_docs, want_query = enc.encode_documents(docs), enc.encode_queries([query])[0]
    from nearspace.integrations.sklearn import TextEmbedder

    np.testing.assert_allclose(TextEmbedder(model=f"st:{tiny_st}").fit(docs).transform(docs), want_docs, atol=1e-6)
    np.testing.assert_allclose(TextEmbedder(model=f"st:{tiny_st}", role="query").fit([query]).transform([query])[0],
                               want_query, atol=1e-6)
    pytest.importorskip("langchain_core", reason="install nearspace[langchain]")
    from nearspace.integrations.langchain import NearspaceEmbeddings

    lc = NearspaceEmbeddings(model=f"st:{tiny_st}")
    np.testing.assert_allclose(lc.embed_documents(docs), want_docs, atol=1e-6)
    np.testing.assert_allclose(lc.embed_query(query), want_query, atol=1e-6)
    pytest.importorskip("llama_index.core", reason="install nearspace[llamaindex]")
    from nearspace.integrations.llamaindex import NearspaceEmbedding

    li = NearspaceEmbedding(model_name=f"st:{tiny_st}")
    np.testing.assert_allclose(li.get_text_embedding(docs[0]), want_docs[0], atol=1e-6)
    np.testing.assert_allclose(li.get_query_embedding(query), want_query, atol=1e-6)
