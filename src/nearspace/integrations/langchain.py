"""LangChain adapters: ``NearspaceVectorStore`` (a LangChain ``VectorStore`` on a nearspace
collection) and ``NearspaceEmbeddings`` (LangChain ``Embeddings`` over the bundled model).

    >>> from nearspace.integrations.langchain import NearspaceVectorStore
    >>> vs = NearspaceVectorStore(store=nearspace.open_store("lc.db"), collection_name="docs",
    ...                           embedding=any_langchain_embeddings)

With a foreign ``embedding`` the collection stores that object's vectors (documents through
``embed_documents``, queries through ``embed_query``) under the encoder name
``langchain:<ClassName>``, so reopening it with another model is refused. With
``embedding=None`` the collection's own encoder (the bundled model by default) embeds both
sides and ``search_type="hybrid"`` (dense + BM25 fused) is available too.

Scores from ``similarity_search_with_score`` are cosine similarities (higher is closer);
relevance scores map them to ``(1 + cosine) / 2`` in [0, 1]. Requires ``nearspace[langchain]``.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from nearspace.integrations import require

require("langchain_core", "langchain")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever  # noqa: E402
from langchain_core.vectorstores.utils import maximal_marginal_relevance  # noqa: E402

from nearspace.api import Store  # noqa: E402
from nearspace.integrations._common import ForeignEncoder, as_store, stored_dim  # noqa: E402
from nearspace.types import SearchResult  # noqa: E402

DEFAULT_COLLECTION = "langchain"
SEARCH_TYPES = ("similarity", "hybrid", "keyword")


def _document(hit: SearchResult) -> Document:
    return Document(id=hit.id, page_content=hit.text, metadata=hit.metadata)


class NearspaceVectorStore(VectorStore):
    """A LangChain vector store backed by one nearspace collection, through the public
    ``Collection`` API only, so any engine works: a SQLite store or a Milvus one
    (``nearspace.open_store("milvus-lite:PATH")``)."""

    def __init__(self, store: Store | str, collection_name: str = DEFAULT_COLLECTION,
                 embedding: Embeddings | None = None, *, search_type: str = "similarity") -> None:
        if search_type not in SEARCH_TYPES:
            raise ValueError(f"search_type must be one of {', '.join(SEARCH_TYPES)}, got {search_type!r}")
        if embedding is not None and search_type != "similarity":
            raise ValueError(f"search_type={search_type!r} needs embedding=None (the collection's own "
                             "encoder embeds both the query and the keyword index's documents)")
        self._embedding = embedding
        self.search_type = search_type
        store = as_store(store)
        encoder = None
        if embedding is not None:
            # an existing collection knows its dimension; a new one costs one probe call
            dim = stored_dim(store, collection_name) or len(embedding.embed_query("dimension probe"))
            encoder = ForeignEncoder(f"langchain:{type(embedding).__name__}", dim, embedding.embed_documents)
        self.collection = store.collection(collection_name, encoder=encoder)

    # -- the VectorStore contract ---------------------------------------------------------
    @property
    def embeddings(self) -> Embeddings | None:
        return self._embedding

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        """Upsert texts; missing ids become UUIDs. An id already stored is replaced."""
        texts = list(texts)
        ids = list(ids) if ids is not None else [None] * len(texts)
        if len(ids) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(ids)} ids")
        ids = [i if i else str(uuid.uuid4()) for i in ids]
        metadatas = [dict(m or {}) for m in metadatas] if metadatas is not None else None
        vectors = None
        if self._embedding is not None and texts:
            vectors = np.array(self._embedding.embed_documents(texts), dtype=np.float32)
        if texts:
            self.collection.upsert(ids=ids, texts=texts, metadatas=metadatas, vectors=vectors)
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            raise ValueError("pass the ids to delete (deleting a whole collection: Store.drop_collection)")
        self.collection.delete(list(ids))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        found = self.collection.get(list(ids))
        return [Document(id=d.id, page_content=d.text, metadata=d.metadata) for d in found if d is not None]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None,
                                     search_type: str | None = None, **kwargs: Any) -> list[tuple[Document, float]]:
        """``filter`` is a nearspace ``where`` (e.g. ``{"year": {"$gte": 2020}}``). With the
        collection's own encoder, ``search_type`` may be ``hybrid`` or ``keyword``."""
        search_type = search_type or self.search_type
        if self._embedding is not None:
            if search_type != "similarity":
                raise ValueError(f"search_type={search_type!r} needs embedding=None")
            return self.similarity_search_with_score_by_vector(self._embedding.embed_query(query), k, filter=filter)
        mode = {"similarity": "dense", "hybrid": "hybrid", "keyword": "keyword"}.get(search_type)
        if mode is None:
            raise ValueError(f"search_type must be one of {', '.join(SEARCH_TYPES)}, got {search_type!r}")
        if self.collection.count() == 0:
            return []
        hits = self.collection.search(query, k=k, mode=mode, where=filter)
        return [(_document(h), h.score) for h in hits]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def similarity_search_with_score_by_vector(self, embedding: Sequence[float], k: int = 4,
                                               filter: dict | None = None, **kwargs: Any
                                               ) -> list[tuple[Document, float]]:
        return [(_document(hit), float(hit.score)) for hit in self._vector_hits(embedding, k, filter)]

    def _vector_hits(self, embedding: Sequence[float], k: int, where: dict | None) -> list[SearchResult]:
        """Dense hits for a query vector through ``Collection.search(vector=...)`` (any engine)."""
        query = np.asarray(embedding, dtype=np.float64).reshape(-1)
        if query.shape[0] != self.collection.dim:
            raise ValueError(f"query vector has {query.shape[0]} dimensions; the collection holds "
                             f"{self.collection.dim}")
        if self.collection.count() == 0:
            return []
        return self.collection.search(vector=query, k=k, where=where)

    def _query_vector(self, query: str) -> list[float]:
        if self._embedding is not None:
            return self._embedding.embed_query(query)
        return self.collection.embed_queries([query])[0].tolist()

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      **kwargs: Any) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(self._query_vector(query), k, fetch_k, lambda_mult,
                                                            **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: dict | None = None,
                                                **kwargs: Any) -> list[Document]:
        hits = self._vector_hits(embedding, max(fetch_k, k), filter)
        vectors = self.collection.vectors_of([hit.id for hit in hits]) if hits else {}
        hits = [hit for hit in hits if hit.id in vectors]  # deleted since the search: skipped
        if not hits:
            return []
        chosen = maximal_marginal_relevance(np.asarray(embedding, dtype=np.float32),
                                            [vectors[hit.id] for hit in hits], lambda_mult=lambda_mult, k=k)
        return [_document(hits[i]) for i in chosen]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self.search_type != "similarity":
            raise NotImplementedError("relevance scores are defined for cosine (search_type='similarity') only")
        return lambda cosine: (1.0 + cosine) / 2.0

    def as_retriever(self, **kwargs: Any) -> VectorStoreRetriever:
        """As the base class, plus ``search_type="hybrid"``/``"keyword"`` (embedding=None only)."""
        if kwargs.get("search_type") in ("hybrid", "keyword"):
            search_kwargs = dict(kwargs.get("search_kwargs") or {})
            search_kwargs["search_type"] = kwargs["search_type"]
            kwargs = {**kwargs, "search_type": "similarity", "search_kwargs": search_kwargs}
        return super().as_retriever(**kwargs)

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None, metadatas: list[dict] | None = None, *,
                   ids: list[str] | None = None, store: Store | str | None = None,
                   collection_name: str = DEFAULT_COLLECTION, **kwargs: Any) -> "NearspaceVectorStore":
        """Build (or extend) collection ``collection_name`` in ``store`` (a Store or a path) from texts."""
        if store is None:
            raise ValueError("from_texts needs store= (a nearspace Store or the path of its SQLite file)")
        vs = cls(store=store, collection_name=collection_name, embedding=embedding, **kwargs)
        vs.add_texts(texts, metadatas, ids=ids)
        return vs


class NearspaceEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a nearspace encoder (the bundled all-MiniLM-L6-v2 by
    default); the model loads on first use. Vectors are unit length."""

    def __init__(self, model: str | None = None, *, precision: str = "auto") -> None:
        self.model = model
        self.precision = precision
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            from nearspace.encoders import DEFAULT_ENCODER, load_encoder

            self._encoder = load_encoder(self.model or DEFAULT_ENCODER, precision=self.precision)
        return self._encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        # the model's document prompt (e5's "passage: ") applies here, its query prompt below
        return self.encoder.encode_documents(list(texts), show_progress=False).astype(float).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.encode_queries([text], show_progress=False)[0].astype(float).tolist()
