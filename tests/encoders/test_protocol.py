"""Encoder protocol v2: specs stored with collections, factories per kind, plugins, prompts.

A tiny deterministic hashing encoder stands in for a plugin's model (its vectors are real and
searchable); the bundled model checks the prompts and the stored spec end to end.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nearspace
from nearspace.encoders import as_encoder, encoder_from_spec, encoder_kinds, register_encoder
from nearspace.encoders.registry import _FACTORIES
from nearspace.errors import EncoderUnavailable, InputError
from nearspace.types import EncoderSpec

HASH_ENCODER = '''
import hashlib
import numpy as np

class HashEncoder:
    """Protocol v1: name, dim, encode. Words hash into 32 buckets."""
    def __init__(self, name="hash-32", dim=32):
        self.name, self.dim = name, dim
    def encode(self, texts, *, batch_size=64, show_progress=None):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.sha1(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1)

def factory(spec, *, precision="auto", device=None):
    return HashEncoder(spec.name, spec.dim)
'''


@pytest.fixture()
def hash_module(tmp_path, monkeypatch):
    """The plugin's module, importable, with an installed distribution declaring its entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "hash_plugin.py").write_text(HASH_ENCODER)
    dist = site / "hash_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hash-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nearspace.encoders]\nhash = hash_plugin:factory\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    _FACTORIES.pop("hash", None)
    sys.modules.pop("hash_plugin", None)


DOCS = {"a": "the tide rises with the moon", "b": "bicycles need oiled chains", "c": "tea leaves steep in hot water"}


def test_a_plugin_kind_is_found_by_entry_point_and_its_collection_reopens_in_a_new_process(hash_module, tmp_path):
    assert "hash" in encoder_kinds()
    path = tmp_path / "s.db"
    with nearspace.open_store(path) as store:
        coll = store.collection("notes", encoder=EncoderSpec(kind="hash", name="hash-32", dim=32))
        coll.upsert(list(DOCS), list(DOCS.values()))
        assert coll.spec == EncoderSpec(kind="hash", name="hash-32", dim=32)
        assert coll.search("moon tide", k=1, mode="dense")[0].id == "a"
    # a fresh interpreter: nothing registered by hand, no encoder passed; the stored spec and the
    # entry point find the model again
    script = textwrap.dedent(f"""
        import json, nearspace
        coll = nearspace.open_store({str(path)!r}).collection("notes")
        hits = coll.search("chains for bicycles", k=1, mode="dense")
        print(json.dumps({{"top": hits[0].id, "spec": coll.spec.to_dict(), "type": type(coll.encoder).__name__}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hash_module), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"top": "b", "spec": {"kind": "hash", "name": "hash-32", "dim": 32}, "type": "AdaptedEncoder"}


def test_register_encoder_makes_a_kind_loadable_and_refuses_silent_replacement(hash_module):
    import hash_plugin

    register_encoder("hash", hash_plugin.factory)
    encoder = encoder_from_spec({"kind": "hash", "name": "hash-8", "dim": 8})
    assert encoder.dim == 8 and encoder.spec.kind == "hash" and encoder.count_tokens(["two words"]) == [2]
    with pytest.raises(InputError, match="already registered"):
        register_encoder("hash", lambda spec, **kw: None)
    with pytest.raises(InputError, match="callable"):
        register_encoder("other", "not a factory")
    with pytest.raises(EncoderUnavailable, match="no encoder of kind 'nope'"):
        encoder_from_spec(EncoderSpec(kind="nope", name="x", dim=3))


def test_an_unregistered_custom_encoder_is_recorded_and_named_when_it_cannot_be_loaded(hash_module, tmp_path):
    import hash_plugin

    path = tmp_path / "s.db"
    with nearspace.open_store(path) as store:
        coll = store.collection("mine", encoder=hash_plugin.HashEncoder("my-hash", 16))
        coll.upsert(["a"], ["the tide"])
        assert coll.spec.kind == "custom" and coll.spec.name == "my-hash"
    with nearspace.open_store(path) as store:
        coll = store.collection("mine")
        with pytest.raises(EncoderUnavailable, match="'my-hash' .*kind 'custom'.*pass encoder="):
            coll.search("tide", mode="dense")
        assert coll.search("tide", mode="keyword")[0].id == "a"  # keyword search needs no model
        again = store.collection("mine", encoder=hash_plugin.HashEncoder("my-hash", 16))
        assert again.search("tide", k=1, mode="dense")[0].id == "a"


def test_prompts_apply_to_queries_and_documents_apart(tmp_path, encoder):
    spec = EncoderSpec(kind="minilm", name="all-MiniLM-L6-v2", dim=384,
                       query_prompt="query: ", document_prompt="passage: ")
    path = tmp_path / "p.db"
    with nearspace.open_store(path) as store:
        coll = store.collection("e5style", encoder=spec)
        coll.upsert(["a"], ["The tide rises twice a day."])
    with nearspace.open_store(path) as store:  # reopened from the stored spec, prompts included
        coll = store.collection("e5style")
        assert coll.spec == EncoderSpec(**{**spec.to_dict(), "max_seq_length": 256})  # the window is recorded
        stored = coll.vectors_of(["a"])["a"]
        np.testing.assert_allclose(stored, encoder.encode(["passage: The tide rises twice a day."])[0], atol=2e-3)
        np.testing.assert_allclose(coll.embed_queries(["tides"])[0], encoder.encode(["query: tides"])[0], atol=2e-3)
        assert not np.allclose(coll.embed_queries(["tides"])[0], encoder.encode(["tides"])[0], atol=1e-3)


def test_the_bundled_model_speaks_protocol_v2(encoder):
    assert isinstance(encoder, nearspace.encoders.Encoder)
    assert encoder.spec.kind == "minilm" and encoder.spec.dim == 384 and encoder.max_seq_length == 256
    text = "Tides are caused mainly by the Moon."
    spans = encoder.token_spans(text)
    assert len(spans) == encoder.count_tokens([text])[0] and text[spans[0][0]:spans[0][1]].lower() == "tides"
    np.testing.assert_array_equal(encoder.encode_documents([text]), encoder.encode([text]))


def test_no_model_is_a_spec(store):
    coll = store.collection("own", dim=8)
    assert coll.spec == EncoderSpec(kind="none", name="none:own-vectors", dim=8) and coll.vectors_only
    with pytest.raises(InputError, match="own vectors"):
        coll.encoder


def test_a_collection_written_before_specs_reopens_from_its_encoder_name(store):
    coll = store.collection("old")
    coll.upsert(["a"], ["the tide rises"])
    coll.backend.set_config(encoder_spec=None)  # as a v3 store recorded it: a name only
    reopened = store.collection("old")
    assert reopened.spec.kind == "minilm" and reopened.search("tide", k=1)[0].id == "a"


def test_a_v1_object_is_adapted_without_changing_its_vectors(hash_module):
    import hash_plugin

    raw = hash_plugin.HashEncoder()
    adapted = as_encoder(raw)
    assert adapted is not raw and adapted.spec.kind == "custom"
    np.testing.assert_array_equal(adapted.encode_documents(["a b"]), raw.encode(["a b"]))
    assert as_encoder(adapted) is adapted
    with pytest.raises(InputError, match="needs name, dim and encode"):
        as_encoder(object())
