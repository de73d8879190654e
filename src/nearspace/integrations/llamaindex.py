"""LlamaIndex adapters: ``NearspaceVectorStore`` (a ``BasePydanticVectorStore`` on a nearspace
collection) and ``NearspaceEmbedding`` (a ``BaseEmbedding`` over the bundled model).

    >>> from llama_index.core import StorageContext, VectorStoreIndex
    >>> vs = NearspaceVectorStore(store=nearspace.open_store("li.db"), collection_name="docs")
    >>> index = VectorStoreIndex.from_documents(docs, embed_model=NearspaceEmbedding(),
    ...                                         storage_context=StorageContext.from_defaults(vector_store=vs))

Nodes keep their text in the collection (``stores_text=True``); their LlamaIndex fields
travel in the metadata (``_node_content``, ``ref_doc_id``) beside the node's own metadata, so
``MetadataFilters`` compile to nearspace ``where`` filters on indexed SQL. The vectors are
the ones LlamaIndex computed; the collection records the encoder name given (the bundled
model's name by default, matching ``NearspaceEmbedding``). Requires ``nearspace[llamaindex]``.
"""
from __future__ import annotations

from typing import Any, List

import numpy as np

from nearspace.integrations import require

require("llama_index.core", "llamaindex")

from llama_index.core.bridge.pydantic import Field, PrivateAttr  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.schema import BaseNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    BasePydanticVectorStore, FilterCondition, FilterOperator, MetadataFilter, MetadataFilters,
    VectorStoreQuery, VectorStoreQueryMode, VectorStoreQueryResult)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict  # noqa: E402

from nearspace.encoders import DEFAULT_ENCODER  # noqa: E402
from nearspace.encoders.base import normalize_rows  # noqa: E402
from nearspace.encoders.registry import recorded_encoder  # noqa: E402
from nearspace.integrations._common import as_store  # noqa: E402

_OPS = {FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte",
        FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte", FilterOperator.IN: "$in", FilterOperator.NIN: "$nin",
        FilterOperator.ANY: "$in", FilterOperator.CONTAINS: "$eq"}  # list values are indexed per element


def to_where(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as a nearspace ``where``; operators nearspace cannot
    express (text match, ALL, IS_EMPTY, NOT) are refused rather than ignored."""
    if filters is None or not filters.filters:
        return None
    parts = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            sub = to_where(item)
            if sub:
                parts.append(sub)
            continue
        assert isinstance(item, MetadataFilter)
        op = _OPS.get(FilterOperator(item.operator))
        if op is None:
            raise ValueError(f"filter operator {item.operator!r} is not supported by nearspace "
                             f"(supported: {', '.join(o.value for o in _OPS)})")
        parts.append({item.key: {op: item.value}})
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition == FilterCondition.NOT:
        raise ValueError("filter condition NOT is not supported by nearspace")
    if len(parts) == 1:
        return parts[0]
    return {"$and" if condition == FilterCondition.AND else "$or": parts}


class NearspaceVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on one nearspace collection (created on the first ``add``),
    through the public ``Collection`` API only: a SQLite or a Milvus store."""

    stores_text: bool = True
    flat_metadata: bool = False
    collection_name: str = Field(default="llamaindex")
    encoder_name: str = Field(default=DEFAULT_ENCODER,
                              description="Recorded as the collection's encoder: the model behind the vectors.")

    _store: Any = PrivateAttr()
    _collection: Any = PrivateAttr(default=None)

    def __init__(self, store: Any, collection_name: str = "llamaindex", encoder_name: str = DEFAULT_ENCODER,
                 **kwargs: Any) -> None:
        super().__init__(collection_name=collection_name, encoder_name=encoder_name, **kwargs)
        self._store = as_store(store)
        if collection_name in self._store.list_collections():
            self._collection = self._store.get_collection(collection_name)

    @classmethod
    def class_name(cls) -> str:
        return "NearspaceVectorStore"

    @property
    def client(self) -> Any:
        """The nearspace collection (None until the first add creates it)."""
        return self._collection

    def add(self, nodes: List[BaseNode], **add_kwargs: Any) -> List[str]:
        if not nodes:
            return []
        vectors = np.array([node.get_embedding() for node in nodes], dtype=np.float32)
        if self._collection is None:
            recorded = recorded_encoder(self.encoder_name, vectors.shape[1],
                                        "the LlamaIndex vector store stores the embeddings LlamaIndex computed")
            self._collection = self._store.collection(self.collection_name, encoder=recorded)
        metadatas = [node_to_metadata_dict(node, remove_text=True, flat_metadata=False) for node in nodes]
        self._collection.upsert(ids=[n.node_id for n in nodes], texts=[n.get_content() for n in nodes],
                                metadatas=metadatas, vectors=vectors)
        return [n.node_id for n in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node that came from document ``ref_doc_id``."""
        if self._collection is None:
            return
        ids = self._collection.ids(where={"ref_doc_id": ref_doc_id})
        if ids:
            self._collection.delete(ids)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise ValueError(f"query mode {query.mode!r} is not supported; use the default (dense) mode")
        empty = VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        if self._collection is None or query.query_embedding is None or self._collection.count() == 0:
            return empty
        where = to_where(query.filters)
        clauses = [where] if where else []
        if query.doc_ids:
            clauses.append({"ref_doc_id": {"$in": list(query.doc_ids)}})
        where = (clauses[0] if len(clauses) == 1 else {"$and": clauses}) if clauses else None
        vector = np.asarray(query.query_embedding, dtype=np.float64)
        if query.node_ids:
            hits = self._among_nodes(list(query.node_ids), vector, query.similarity_top_k, where)
        else:
            hits = [(h.id, h.text, h.metadata, h.score)
                    for h in self._collection.search(vector=vector, k=query.similarity_top_k, where=where)]
        return VectorStoreQueryResult(nodes=[metadata_dict_to_node(meta, text=text) for _, text, meta, _ in hits],
                                      similarities=[float(score) for *_, score in hits],
                                      ids=[doc_id for doc_id, *_ in hits])

    def _among_nodes(self, node_ids: list[str], vector: np.ndarray, k: int,
                     where: dict[str, Any] | None) -> list[tuple[str, str, dict, float]]:
        """A query restricted to given nodes: their stored vectors scored exactly (the list is
        the caller's, so small), after the metadata filter."""
        if where:
            allowed = set(self._collection.ids(where=where))
            node_ids = [i for i in node_ids if i in allowed]
        vectors = self._collection.vectors_of(node_ids)
        ids = [i for i in dict.fromkeys(node_ids) if i in vectors]
        if not ids:
            return []
        query = normalize_rows(vector.astype(np.float32).reshape(1, -1))[0]
        scores = np.stack([vectors[i] for i in ids]) @ query
        order = np.argsort(-scores, kind="stable")[:k]
        docs = self._collection.get([ids[i] for i in order])
        return [(d.id, d.text, d.metadata, float(scores[i])) for i, d in zip(order, docs) if d is not None]


class NearspaceEmbedding(BaseEmbedding):
    """LlamaIndex embeddings over a nearspace encoder (the bundled model by default)."""

    model_name: str = Field(default=DEFAULT_ENCODER)
    precision: str = Field(default="auto")
    _encoder: Any = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "NearspaceEmbedding"

    def _model(self):
        if self._encoder is None:
            from nearspace.encoders import load_encoder

            self._encoder = load_encoder(self.model_name, precision=self.precision)
        return self._encoder

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        if not texts:
            return []
        # documents and queries apart: a model trained with prompts gets each role's own
        return self._model().encode_documents(list(texts), show_progress=False).astype(float).tolist()

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._model().encode_queries([query], show_progress=False)[0].astype(float).tolist()

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> List[float]:
        return self._get_text_embedding(text)


__all__ = ["NearspaceEmbedding", "NearspaceVectorStore", "to_where"]
