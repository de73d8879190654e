"""LangChain: the host library's own standard suites (langchain-tests, unmodified) run against
NearspaceVectorStore and NearspaceEmbeddings, plus nearspace-specific behaviour (where filters,
hybrid search, MMR, retriever, reopening) on the example corpus with the bundled model."""
from __future__ import annotations

import pytest

pytest.importorskip("langchain_core", reason="install nearspace[langchain]")
pytest.importorskip("langchain_tests", reason="langchain-tests is in nearspace[test]")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, VectorStoreIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402

from nearspace import open_store  # noqa: E402
from nearspace.errors import EncoderMismatch  # noqa: E402
from nearspace.integrations.langchain import NearspaceEmbeddings, NearspaceVectorStore  # noqa: E402

from tests.conftest import SEED_QUERY  # noqa: E402


class TestNearspaceVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path):
        """An empty store on a fresh SQLite file, embedding with the suite's own fake embeddings."""
        with open_store(tmp_path / "lc.db") as store:
            yield NearspaceVectorStore(store=store, collection_name="standard", embedding=self.get_embeddings())


class TestNearspaceEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self):
        return NearspaceEmbeddings


class TestNearspaceEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self):
        return NearspaceEmbeddings


# -- nearspace behaviour beyond the standard suites ----------------------------------------------

@pytest.fixture(scope="module")
def own_encoder_store(tmp_path_factory, example_docs):
    """The example corpus through the LangChain API, embedded by the collection's own encoder."""
    with open_store(tmp_path_factory.mktemp("lc") / "own.db") as store:
        vs = NearspaceVectorStore(store=store, collection_name="examples")
        vs.add_documents([Document(id=d["id"], page_content=d["text"], metadata=d["metadata"])
                          for d in example_docs])
        yield vs


def test_own_encoder_search_matches_nearspace_dense(own_encoder_store):
    got = own_encoder_store.similarity_search_with_score(SEED_QUERY, k=5)
    direct = own_encoder_store.collection.search(SEED_QUERY, k=5, mode="dense")
    assert [d.id for d, _ in got] == [h.id for h in direct]
    assert [s for _, s in got] == pytest.approx([h.score for h in direct])
    assert all(-1.0 <= s <= 1.0 for _, s in got)


def test_filter_uses_nearspace_where(own_encoder_store, example_docs):
    topic = example_docs[0]["metadata"]["topic"]
    docs = own_encoder_store.similarity_search(SEED_QUERY, k=50, filter={"topic": topic})
    expected = {d["id"] for d in example_docs if d["metadata"].get("topic") == topic}
    assert docs and {d.id for d in docs} == expected


def test_hybrid_and_keyword_search_types(own_encoder_store):
    hybrid = own_encoder_store.similarity_search(SEED_QUERY, k=5, search_type="hybrid")
    direct = own_encoder_store.collection.search(SEED_QUERY, k=5, mode="hybrid")
    assert [d.id for d in hybrid] == [h.id for h in direct]
    retriever = own_encoder_store.as_retriever(search_type="keyword", search_kwargs={"k": 3})
    assert [d.id for d in retriever.invoke("dropout")] == \
        [h.id for h in own_encoder_store.collection.search("dropout", k=3, mode="keyword")]


def test_mmr_diversifies(own_encoder_store):
    plain = own_encoder_store.similarity_search(SEED_QUERY, k=4)
    mmr = own_encoder_store.max_marginal_relevance_search(SEED_QUERY, k=4, fetch_k=20, lambda_mult=0.2)
    assert len(mmr) == 4 and mmr[0].id == plain[0].id
    assert [d.id for d in mmr] != [d.id for d in plain]
    retriever = own_encoder_store.as_retriever(search_type="mmr", search_kwargs={"k": 4, "lambda_mult": 0.2})
    assert [d.id for d in retriever.invoke(SEED_QUERY)] == [d.id for d in mmr]


def test_relevance_scores_in_unit_interval(own_encoder_store):
    scored = own_encoder_store.similarity_search_with_relevance_scores(SEED_QUERY, k=3)
    assert all(0.0 <= s <= 1.0 for _, s in scored)
    assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)


async def _async_roundtrip(vs):
    ids = await vs.aadd_texts(["alpha beta", "gamma delta"], metadatas=[{"n": 1}, {"n": 2}], ids=["a", "b"])
    found = await vs.asimilarity_search("alpha beta", k=1, filter={"n": 1})
    await vs.adelete(["a"])
    return ids, found, await vs.aget_by_ids(["a", "b"])


@pytest.mark.asyncio
async def test_from_texts_reopen_and_refuse_other_model(tmp_path):
    path = tmp_path / "ft.db"
    emb = DeterministicFakeEmbedding(size=8)
    vs = NearspaceVectorStore.from_texts(["one", "two"], emb, [{"k": 1}, {"k": 2}], ids=["1", "2"], store=str(path))
    ids, found, left = await _async_roundtrip(vs)
    assert ids == ["a", "b"] and [d.id for d in found] == ["a"] and [d.id for d in left] == ["b"]
    vs.collection.store.close()
    with open_store(path) as store:  # durable: a new process-level handle sees the same documents
        again = NearspaceVectorStore(store=store, embedding=emb)
        assert sorted(d.id for d in again.get_by_ids(["1", "2", "b"])) == ["1", "2", "b"]
        with pytest.raises(EncoderMismatch):
            NearspaceVectorStore(store=store, embedding=NearspaceEmbeddings())


def test_bad_input_is_one_clear_error(tmp_path):
    with open_store(tmp_path / "bad.db") as store:
        vs = NearspaceVectorStore(store=store, embedding=DeterministicFakeEmbedding(size=4))
        with pytest.raises(ValueError, match="needs embedding=None"):
            vs.similarity_search("x", search_type="hybrid")
        with pytest.raises(ValueError, match="pass the ids"):
            vs.delete()
