"""The LangChain and LlamaIndex adapters on a Milvus-backed store (milvus-lite): they use only
the public Store/Collection API, so langchain-tests' standard vector-store suite passes
unmodified on Milvus as on SQLite, and a LlamaIndex index adds, filters, restricts to nodes
and deletes by document there too. Skips with the reason when milvus-lite cannot start."""
from __future__ import annotations

import uuid

import pytest

pytest.importorskip("langchain_core", reason="install nearspace[langchain]")
pytest.importorskip("langchain_tests", reason="langchain-tests is in nearspace[integrations-test]")

from langchain_core.documents import Document  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from nearspace.integrations.langchain import NearspaceVectorStore  # noqa: E402

from tests.conftest import SEED_QUERY  # noqa: E402


def _milvus_lite(path):
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"milvus-lite cannot start: the 'milvus' extra is not installed ({exc})")
    from nearspace import open_store

    return open_store(f"milvus-lite:{path}")  # installed but failing to start is a failure, not a skip


@pytest.fixture(scope="module")
def milvus_store(tmp_path_factory):
    """One milvus-lite file for the module (starting it is the slow part); tests use fresh collections."""
    store = _milvus_lite(tmp_path_factory.mktemp("milvus") / "adapters.db")
    yield store
    store.close()


class TestNearspaceVectorStoreOnMilvus(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, milvus_store):
        """An empty collection in the milvus-lite store, with the suite's own fake embeddings."""
        name = f"lc_{uuid.uuid4().hex[:12]}"
        yield NearspaceVectorStore(store=milvus_store, collection_name=name, embedding=self.get_embeddings())
        milvus_store.drop_collection(name)


def test_langchain_on_milvus_matches_sqlite(milvus_store, tmp_path, example_docs):
    """Own encoder, where filter, MMR and the hybrid retriever give on Milvus what they give on SQLite."""
    from nearspace import open_store

    docs = [Document(id=d["id"], page_content=d["text"], metadata=d["metadata"]) for d in example_docs]
    with open_store(tmp_path / "lc.db") as sqlite_store:
        on = {"sqlite": NearspaceVectorStore(store=sqlite_store, collection_name="examples"),
              "milvus": NearspaceVectorStore(store=milvus_store, collection_name="examples")}
        for vs in on.values():
            vs.add_documents(docs)
        dense = {k: [d.id for d in vs.similarity_search(SEED_QUERY, k=5)] for k, vs in on.items()}
        assert dense["milvus"] == dense["sqlite"]
        where = {"topic": "machine-learning", "year": {"$gte": 2016}}
        filtered = {k: [d.id for d in vs.similarity_search(SEED_QUERY, k=5, filter=where)] for k, vs in on.items()}
        assert filtered["milvus"] == filtered["sqlite"] and filtered["sqlite"]
        mmr = {k: [d.id for d in vs.max_marginal_relevance_search(SEED_QUERY, k=4, fetch_k=12)] for k, vs in on.items()}
        assert mmr["milvus"] == mmr["sqlite"]
        hybrid = {k: vs.as_retriever(search_type="hybrid", search_kwargs={"k": 3}).invoke(SEED_QUERY)
                  for k, vs in on.items()}
        assert hybrid["milvus"][0].id == hybrid["sqlite"][0].id == dense["sqlite"][0]
        assert [d.id for d in on["milvus"].get_by_ids([docs[0].id, "missing"])] == [docs[0].id]
        # the public calls the adapters rely on agree between the engines
        colls = {k: vs.collection for k, vs in on.items()}
        assert sorted(colls["milvus"].ids(where=where)) == sorted(colls["sqlite"].ids(where=where))
        assert sorted(colls["milvus"].ids()) == sorted(colls["sqlite"].ids())
        hits = colls["milvus"].search(SEED_QUERY, k=3)
        assert "<table>" in hits._repr_html_() and repr(hits).startswith("3 results for")
        on["milvus"].delete([docs[0].id])
        assert on["milvus"].get_by_ids([docs[0].id]) == []
    milvus_store.drop_collection("examples")


def test_llamaindex_on_milvus(milvus_store, example_docs, encoder):
    pytest.importorskip("llama_index.core", reason="install nearspace[llamaindex]")
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters, VectorStoreQuery

    from nearspace.integrations.llamaindex import NearspaceVectorStore as LlamaStore

    picked = example_docs[:12]
    vectors = encoder.encode([d["text"] for d in picked])
    # two source documents: the first six nodes come from doc-a, the next six from doc-b
    nodes = [TextNode(id_=d["id"], text=d["text"], metadata={"topic": d["metadata"]["topic"]}, embedding=v.tolist(),
                      relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-a" if i < 6 else "doc-b")})
             for i, (d, v) in enumerate(zip(picked, vectors))]
    store = LlamaStore(store=milvus_store, collection_name="llama")
    store.add(nodes)
    query = encoder.encode([SEED_QUERY])[0].tolist()
    got = store.query(VectorStoreQuery(query_embedding=query, similarity_top_k=3))
    expected = [picked[i]["id"] for i in (vectors @ encoder.encode([SEED_QUERY])[0]).argsort()[::-1][:3]]
    assert got.ids == expected
    topic = picked[5]["metadata"]["topic"]
    only = store.query(VectorStoreQuery(query_embedding=query, similarity_top_k=12,
                                        filters=MetadataFilters(filters=[ExactMatchFilter(key="topic", value=topic)])))
    assert only.ids and all(n.metadata["topic"] == topic for n in only.nodes)
    among = store.query(VectorStoreQuery(query_embedding=query, similarity_top_k=2, node_ids=[n.node_id for n in nodes[6:]]))
    assert len(among.ids) == 2 and set(among.ids) <= {n.node_id for n in nodes[6:]}
    # a new handle on the same collection finds the same, and deletes one document's nodes
    again = LlamaStore(store=milvus_store, collection_name="llama")
    assert again.query(VectorStoreQuery(query_embedding=query, similarity_top_k=3)).ids == expected
    again.delete("doc-a")
    rest = again.query(VectorStoreQuery(query_embedding=query, similarity_top_k=12))
    assert sorted(rest.ids) == sorted(n.node_id for n in nodes[6:])
    milvus_store.drop_collection("llama")
