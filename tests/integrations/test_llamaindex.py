"""LlamaIndex: a VectorStoreIndex built and queried end to end on the example corpus with the
bundled model (retriever only, no LLM), metadata filters, delete by ref doc id, reopening."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_index.core", reason="install nearspace[llamaindex]")

from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402
from llama_index.core.schema import MetadataMode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition, FilterOperator, MetadataFilter, MetadataFilters, VectorStoreQuery)

from nearspace import open_store  # noqa: E402
from nearspace.integrations.llamaindex import NearspaceEmbedding, NearspaceVectorStore  # noqa: E402

from tests.conftest import SEED_QUERY  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory, example_docs):
    path = tmp_path_factory.mktemp("li") / "li.db"
    store = open_store(path)
    vs = NearspaceVectorStore(store=store, collection_name="examples")
    docs = [Document(id_=d["id"], text=f"{d['title']}. {d['text']}", metadata=d["metadata"]) for d in example_docs]
    # a whitespace tokenizer keeps LlamaIndex off tiktoken's download; 512 words: one node per document
    splitter = SentenceSplitter(chunk_size=512, chunk_overlap=0, tokenizer=str.split)
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=vs),
                                            embed_model=NearspaceEmbedding(), transformations=[splitter])
    yield index, vs, docs, path
    store.close()


def test_retriever_ranks_like_the_bundled_model(built, encoder):
    index, vs, docs, _ = built
    hits = index.as_retriever(similarity_top_k=5).retrieve(SEED_QUERY)
    # LlamaIndex embeds a node's metadata with its text; one node per document here
    matrix = encoder.encode([d.get_content(metadata_mode=MetadataMode.EMBED) for d in docs])
    order = np.argsort(-(matrix @ encoder.encode([SEED_QUERY])[0]))[:5]
    assert [h.node.ref_doc_id for h in hits] == [docs[i].doc_id for i in order]
    assert hits[0].node.metadata == docs[order[0]].metadata and hits[0].node.get_content() == docs[order[0]].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_metadata_filters_compile_to_where(built, example_docs):
    index, *_ = built
    topic = example_docs[0]["metadata"]["topic"]
    filters = MetadataFilters(filters=[MetadataFilter(key="topic", value=topic),
                                       MetadataFilter(key="year", operator=FilterOperator.GTE, value=0)],
                              condition=FilterCondition.AND)
    hits = index.as_retriever(similarity_top_k=20, filters=filters).retrieve(SEED_QUERY)
    assert {h.node.ref_doc_id for h in hits} == {d["id"] for d in example_docs if d["metadata"]["topic"] == topic}
    either = MetadataFilters(filters=[MetadataFilter(key="topic", operator=FilterOperator.IN, value=["music", "sports"])])
    got = index.as_retriever(similarity_top_k=20, filters=either).retrieve("a song")
    assert got and {h.node.metadata["topic"] for h in got} <= {"music", "sports"}
    with pytest.raises(ValueError, match="not supported"):
        index.as_retriever(filters=MetadataFilters(filters=[MetadataFilter(
            key="topic", operator=FilterOperator.TEXT_MATCH, value="mus")])).retrieve("x")


def test_delete_by_ref_doc_id_and_reopen(built):
    index, vs, docs, path = built
    victim = docs[0].doc_id
    assert victim in [h.node.ref_doc_id for h in index.as_retriever(similarity_top_k=3).retrieve(docs[0].text)]
    index.delete_ref_doc(victim)
    assert victim not in [h.node.ref_doc_id for h in index.as_retriever(similarity_top_k=60).retrieve(docs[0].text)]
    with open_store(path) as store:  # durable and reopenable by a new handle
        again = NearspaceVectorStore(store=store, collection_name="examples")
        q = VectorStoreQuery(query_embedding=NearspaceEmbedding().get_query_embedding(docs[1].text), similarity_top_k=1)
        result = again.query(q)
        assert result.nodes[0].ref_doc_id == docs[1].doc_id and again.client.count() == len(docs) - 1
