"""Request and response bodies; they are also the OpenAPI schema at ``/openapi.json``.

Request models that carry a configurable limit (batch size, ``k``) are built per app by
``request_models`` so the published schema states the limits this server enforces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nearspace.store.sqlite.database import _NAME_RE

#: values allowed in one ``where`` filter: SQLite caps a compound SELECT at 500 terms
MAX_FILTER_VALUES = 256
#: JSON Schema patterns for what ``check_text`` accepts (validation itself stays in Python,
#: so the messages are ours): some non-whitespace, no NUL
NON_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"
NO_NUL = r"^[^\x00]*$"
#: collection names the store accepts (kept in step with nearspace.store.sqlite.database)
COLLECTION_NAME = _NAME_RE.pattern


# -- errors --------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    message: str = Field(description="What was wrong, in one line.")
    type: str = Field(description="Error class, e.g. invalid_request_error, authentication_error, not_found_error.")
    param: str | None = Field(None, description="The offending field, when there is one.")
    code: str | None = Field(None, description="Machine-readable code, e.g. model_not_found, request_too_large.")


class ErrorResponse(BaseModel):
    """Every error: OpenAI's shape, so OpenAI clients raise their usual exceptions."""

    error: ErrorDetail


# -- input checks shared by the request models ---------------------------------------------------
def check_json(value: Any, where: str) -> None:
    """The library's own check (``nearspace.validation.check_json_value``): lone surrogates,
    integers outside 64 bits, NaN/Infinity and nesting past the limit are refused with the same
    message as in Python. Raises ValueError, which pydantic turns into a 422."""
    from nearspace.errors import NearspaceError
    from nearspace.validation import check_json_value

    try:
        check_json_value(value, where)
    except NearspaceError as exc:
        raise ValueError(str(exc)) from None


def check_text(value: str, what: str) -> str:
    check_json(value, what)
    if not value.strip():
        raise ValueError(f"{what} is empty or only whitespace")
    if "\x00" in value:
        raise ValueError(f"{what} contains NUL characters")
    return value


SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}
BOUND: dict[str, Any] = {"type": ["string", "number"]}
#: the filter language of ``nearspace.store.filters`` as JSON Schema (range bounds on one key
#: must also be all numbers or all strings, which JSON Schema cannot say)
WHERE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'Metadata filter, e.g. {"topic": "ml", "year": {"$gte": 2020}}: a key maps to a value '
                   "(equality) or to operators; $and/$or take lists of filters. Empty: no filter.",
    "properties": {op: {"type": "array", "minItems": 1,
                        "items": {"allOf": [{"$ref": "#/components/schemas/Where"}, {"minProperties": 1}]}}
                   for op in ("$and", "$or")},
    "propertyNames": {"pattern": r"^(?:|[^$][\s\S]*|\$and|\$or)$"},
    "additionalProperties": {"anyOf": [
        SCALAR,
        {"type": "object", "minProperties": 1, "additionalProperties": False,
         "properties": {"$eq": SCALAR, "$ne": SCALAR,
                        "$in": {"type": "array", "minItems": 1, "items": SCALAR},
                        "$nin": {"type": "array", "minItems": 1, "items": SCALAR},
                        "$gt": BOUND, "$gte": BOUND, "$lt": BOUND, "$lte": BOUND}}]},
}


def _count_values(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_values(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_values(v) for v in value)
    return 1


# -- documents -----------------------------------------------------------------------------------
class DocumentIn(BaseModel):
    id: str = Field(min_length=1, max_length=1024, description="Unique within the collection.",
                    json_schema_extra={"pattern": NON_BLANK})
    text: str = Field(min_length=1, description="The text to embed and index (with the title, if any).",
                      json_schema_extra={"pattern": NON_BLANK})
    title: str = Field("", description="Optional title, embedded and indexed with the text.",
                       json_schema_extra={"pattern": NO_NUL})
    metadata: dict[str, Any] = Field(default_factory=dict,
                                     description="Any JSON object; filterable with `where` in search.")
    vector: list[float] | None = Field(
        None, description="A precomputed embedding (for example from /v1/embeddings) with the collection's "
                          "dimension; when absent the server embeds the text. All documents of a batch "
                          "carry one, or none does. Stored L2-normalised.",
        json_schema_extra={"anyOf": [{"type": "array", "minItems": 1,
                                      "items": {"type": "number", "minimum": -3.4e38, "maximum": 3.4e38}},
                                     {"type": "null"}]})

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_text(value, "id")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return check_text(value, "text")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        check_json(value, "title")
        if "\x00" in value:
            raise ValueError("title contains NUL characters")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_json(value, "metadata")
        return value

    @field_validator("vector")
    @classmethod
    def _vector(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not value:
            raise ValueError("vector is empty")
        if value is not None and not all(math.isfinite(x) and abs(x) <= 3.4e38 for x in value):
            raise ValueError("vector values must be finite float32 numbers")
        return value


class DocumentOut(BaseModel):
    id: str
    text: str
    title: str
    metadata: dict[str, Any]


class WriteResponse(BaseModel):
    collection: str
    added: int = Field(description="New ids.")
    updated: int = Field(description="Ids whose text or title changed (re-embedded).")
    metadata: int = Field(description="Ids whose metadata alone changed (not re-embedded).")
    unchanged: int = Field(description="Identical documents, skipped.")
    count: int = Field(description="Documents in the collection after the write.")


class DeleteResponse(BaseModel):
    collection: str
    id: str
    deleted: bool
    count: int = Field(description="Documents in the collection after the delete.")


class CollectionInfo(BaseModel):
    name: str
    count: int
    encoder: str
    dim: int
    model: dict[str, Any] | None = Field(None, description="The collection's stamp: its model spec (kind, name, "
                                                             "dim, where it loads from, prompts) and fingerprint.")


class CollectionsResponse(BaseModel):
    collections: list[CollectionInfo]


# -- search --------------------------------------------------------------------------------------
class SearchHit(BaseModel):
    id: str
    score: float = Field(description="The mode's score: cosine (dense), BM25 (keyword) or fused (hybrid).")
    text: str
    title: str
    metadata: dict[str, Any]
    ranks: dict[str, int | None] = Field(description="Where each mode that ran placed this document (null: not in its list).")
    scores: dict[str, float | None] = Field(description="Each mode's own score for this document.")


class SearchResponse(BaseModel):
    results: list[SearchHit]


# -- ask (passages with citations) ---------------------------------------------------------------
class PassagePart(BaseModel):
    start: int = Field(description="Character offset in the passage text where this part starts.")
    end: int
    citation: str


class Passage(BaseModel):
    text: str
    source: str
    citation: str = Field(description="Where the passage comes from: file:lines, file#page=n, or the document id.")
    score: float
    ids: list[str] = Field(description="The documents (chunks) merged into this passage.")
    parts: list[PassagePart] = Field(default_factory=list,
                                     description="Which part of the text comes from which page or lines.")


class AnswerSentence(BaseModel):
    text: str
    source: str
    citation: str
    score: float


class AskResponse(BaseModel):
    question: str
    passages: list[Passage]
    answer_sentences: list[AnswerSentence] = Field(description="An extractive answer: the passages' sentences "
                                                               "closest to the question.")
    tokens: int = Field(description="Word pieces in the passages, within the budget.")
    generated: str | None = Field(None, description="Always null over HTTP (the server does not call a language model).")


# -- map ----------------------------------------------------------------------------------------
class MapPoint(BaseModel):
    id: str
    x: float
    y: float
    label: str | None = Field(description="The point's cluster (\"n: distinctive terms\"), or null.")


class LegendEntry(BaseModel):
    name: str
    color: str
    count: int


class MapResponse(BaseModel):
    collection: str
    method: Literal["pca", "umap"]
    title: str
    points: list[MapPoint]
    legend: list[LegendEntry] = Field(description="Clusters with their colours and sizes.")


# -- embeddings (OpenAI) ---------------------------------------------------------------------------
class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: Union[list[float], str] = Field(
        description="float: a list of numbers; base64: little-endian float32 bytes, base64-encoded.")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "nearspace"
    dimensions: int = Field(description="Length of the vectors this model returns.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    auth: bool = Field(description="Whether the API endpoints require a bearer key.")


# -- request models carrying this server's limits ---------------------------------------------
@dataclass(frozen=True)
class RequestModels:
    embeddings: type[BaseModel]
    write: type[BaseModel]
    search: type[BaseModel]
    ask: type[BaseModel]
    rerank: type[BaseModel]


def request_models(max_batch: int, max_k: int, dim: int | None = None) -> RequestModels:
    """Request models stating this server's limits (and, when known, the model's dimension)."""
    dimensions_schema: dict[str, Any] = {"anyOf": [{"type": "integer", "const": dim} if dim else
                                                   {"type": "integer", "minimum": 1}, {"type": "null"}]}

    class EmbeddingsRequest(BaseModel):
        """OpenAI's embeddings request (token-array inputs are not supported)."""

        model_config = ConfigDict(title="EmbeddingsRequest")
        input: Union[str, list[str]] = Field(
            description=f"A text, or a list of 1 to {max_batch} texts.",
            json_schema_extra={"anyOf": [{"type": "string", "minLength": 1},
                                         {"type": "array", "items": {"type": "string", "minLength": 1},
                                          "minItems": 1, "maxItems": max_batch}]})
        model: str = Field(description="Encoder name, as listed by GET /v1/models.",
                           json_schema_extra={"examples": ["all-MiniLM-L6-v2"]})
        encoding_format: Literal["float", "base64"] = "float"
        dimensions: int | None = Field(None, ge=1, description="Must equal the model's dimension if given.",
                                       json_schema_extra=dimensions_schema)
        user: str | None = None

        @field_validator("input")
        @classmethod
        def _input(cls, value: str | list[str]) -> str | list[str]:
            texts = [value] if isinstance(value, str) else value
            if not texts:
                raise ValueError("input is an empty list; give at least one text")
            if len(texts) > max_batch:
                raise ValueError(f"input has {len(texts)} texts; this server takes at most {max_batch} per request")
            for i, text in enumerate(texts):
                check_json(text, f"input[{i}]")
                if not text:
                    raise ValueError(f"input[{i}] is an empty string")
            return value

    class WriteRequest(BaseModel):
        model_config = ConfigDict(title="WriteRequest")
        documents: list[DocumentIn] = Field(min_length=1, max_length=max_batch,
                                            description=f"1 to {max_batch} documents, written in one transaction.")
        mode: Literal["upsert", "add"] = Field(
            "upsert", description="upsert: insert or replace by id; add: refuse (409) ids already stored.")

        @model_validator(mode="after")
        def _vectors(self) -> "WriteRequest":
            carried = {doc.vector is not None for doc in self.documents}
            if len(carried) > 1:
                raise ValueError("either every document carries a vector or none does")
            return self

    class SearchRequest(BaseModel):
        model_config = ConfigDict(title="SearchRequest")
        query: str = Field(min_length=1, description="What to look for.", json_schema_extra={"pattern": NON_BLANK})
        k: int = Field(10, ge=1, le=max_k, description=f"Number of results (1 to {max_k}).")
        mode: Literal["dense", "keyword", "hybrid"] = "hybrid"
        where: dict[str, Any] | None = Field(
            None, json_schema_extra={"anyOf": [{"$ref": "#/components/schemas/Where"}, {"type": "null"}]})
        rerank: bool = Field(False, description="Rerank with the server's reranker (`serve --rerank`).")
        rerank_k: int | None = Field(None, ge=1, le=1000, description="Candidates the reranker reads "
                                                                      "(default max(k, 50)).")

        @field_validator("query")
        @classmethod
        def _query(cls, value: str) -> str:
            return check_text(value, "query")

        @field_validator("where")
        @classmethod
        def _where(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
            if value is not None:
                check_json(value, "where")
                if _count_values(value) > MAX_FILTER_VALUES:
                    raise ValueError(f"where has more than {MAX_FILTER_VALUES} values")
            return value

    class AskRequest(BaseModel):
        model_config = ConfigDict(title="AskRequest")
        question: str = Field(min_length=1, json_schema_extra={"pattern": NON_BLANK})
        k: int = Field(5, ge=1, le=max_k, description="Most passages to return.")
        budget: int = Field(1000, ge=16, le=1_000_000, description="Most word pieces in all passages together.")
        where: dict[str, Any] | None = Field(
            None, json_schema_extra={"anyOf": [{"$ref": "#/components/schemas/Where"}, {"type": "null"}]})
        rerank: bool = Field(False, description="Rerank the candidates with the server's reranker.")
        rerank_k: int | None = Field(None, ge=1, le=1000)

        @field_validator("question")
        @classmethod
        def _question(cls, value: str) -> str:
            return check_text(value, "question")

        _where = field_validator("where")(SearchRequest._where.__func__)  # type: ignore[attr-defined]

    class RerankRequest(BaseModel):
        """The `/v1/rerank` shape of Cohere, Jina, vLLM and TEI."""
        model_config = ConfigDict(title="RerankRequest")
        model: str = Field(description="The reranker's name (GET /health shows it).")
        query: str = Field(min_length=1, json_schema_extra={"pattern": NON_BLANK})
        documents: list[str] = Field(min_length=1, max_length=max_batch)
        top_n: int | None = Field(None, ge=1)
        return_documents: bool = False

        @field_validator("query")
        @classmethod
        def _query(cls, value: str) -> str:
            return check_text(value, "query")

        @field_validator("documents")
        @classmethod
        def _documents(cls, value: list[str]) -> list[str]:
            return [check_text(v, f"documents[{i}]") for i, v in enumerate(value)]

    return RequestModels(EmbeddingsRequest, WriteRequest, SearchRequest, AskRequest, RerankRequest)


__all__ = ["ErrorResponse", "ErrorDetail", "DocumentIn", "DocumentOut", "WriteResponse", "DeleteResponse",
           "CollectionInfo", "CollectionsResponse", "SearchHit", "SearchResponse", "Embedding", "Usage",
           "EmbeddingsResponse", "Model", "ModelList", "Health", "AskResponse", "MapResponse", "RequestModels", "request_models",
           "WHERE_SCHEMA", "COLLECTION_NAME"]
