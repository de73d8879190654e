"""The types every layer shares: documents, search results, filters, write counts, encoder specs.

This module sits at the bottom of the package: at import time it loads nothing of nearspace but
``errors`` (the display methods of results load the standard-library renderer of
``integrations.notebook`` when Jupyter or a terminal calls them). Validation of these shapes
lives in ``nearspace.validation``; both are used alike by the library, every reader and the
server.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, TypedDict

from nearspace.errors import InputError

#: a document's metadata: any JSON object (numbers finite, integers 64-bit, nesting bounded)
Metadata = dict[str, Any]
#: a metadata filter: ``{"topic": "ml", "year": {"$gte": 2020}}``, ``$and``/``$or`` of filters
Where = dict[str, Any]


@dataclass
class Document:
    """A stored document as returned by ``get`` and search."""

    id: str
    text: str
    metadata: Metadata = field(default_factory=dict)
    title: str = ""


def embedding_text(doc: Document) -> str:
    """What an encoder sees of a document: its title and text."""
    return f"{doc.title} {doc.text}" if doc.title else doc.text


class WriteCounts(TypedDict):
    """What one write did: ``added`` (new id), ``updated`` (content changed: new vector),
    ``metadata`` (only metadata changed), ``unchanged`` (identical, skipped)."""

    added: int
    updated: int
    metadata: int
    unchanged: int


def zero_counts() -> WriteCounts:
    return {"added": 0, "updated": 0, "metadata": 0, "unchanged": 0}


@dataclass
class SearchResult:
    """One hit: ``ranks`` and ``scores`` say where each mode placed it (None: not found by it)."""

    id: str
    score: float
    text: str
    metadata: Metadata = field(default_factory=dict)
    title: str = ""
    ranks: dict[str, int | None] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        from nearspace.integrations.notebook import results_html

        return results_html([self])


class SearchResults(list):
    """The hits of one search, best first: a plain ``list`` of ``SearchResult`` (index it,
    slice it, compare it with a list, serialise it) that also remembers the query and mode
    and renders as a table in Jupyter (``_repr_html_``) and as one line per hit in a terminal."""

    def __init__(self, hits: Iterable[SearchResult] = (), *, query: str | None = None,
                 mode: str | None = None) -> None:
        super().__init__(hits)
        self.query = query
        self.mode = mode

    def __repr__(self) -> str:
        from nearspace.integrations.notebook import results_text

        return results_text(self, query=self.query, mode=self.mode)

    def _repr_html_(self) -> str:
        from nearspace.integrations.notebook import results_html

        return results_html(self, query=self.query, mode=self.mode)


@dataclass(frozen=True)
class EncoderSpec:
    """What a collection needs to load its encoder again, stored with the collection.

    ``kind`` picks the factory (``register_encoder``): ``minilm`` (the bundled model),
    ``onehot``, ``tfidf``, ``none`` (your own vectors: no model), or a plugin's kind. ``name``
    is the model's name as recorded with the collection (the vectors belong to it); ``dim`` its
    dimension. ``options`` are the factory's keyword arguments (JSON values), and the prompts are
    prepended to queries and documents by ``encode_queries``/``encode_documents`` (e5's
    ``"query: "``/``"passage: "``, bge's query instruction).
    """

    kind: str
    name: str
    dim: int
    options: Mapping[str, Any] = field(default_factory=dict)
    query_prompt: str = ""
    document_prompt: str = ""
    max_seq_length: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind.strip():
            raise InputError(f"encoder spec: kind must be a non-empty string, got {self.kind!r:.80}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"encoder spec: name must be a non-empty string, got {self.name!r:.80}")
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim < 1:
            raise InputError(f"encoder spec: dim must be a positive integer, got {self.dim!r:.80}")
        if not isinstance(self.options, Mapping):
            raise InputError(f"encoder spec: options must be a mapping, got {type(self.options).__name__}")
        for prompt in ("query_prompt", "document_prompt"):
            if not isinstance(getattr(self, prompt), str):
                raise InputError(f"encoder spec: {prompt} must be a string")
        try:
            json.dumps(dict(self.options), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"encoder spec: options must be JSON values: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "dim": self.dim}
        if self.options:
            out["options"] = dict(self.options)
        if self.query_prompt:
            out["query_prompt"] = self.query_prompt
        if self.document_prompt:
            out["document_prompt"] = self.document_prompt
        if self.max_seq_length is not None:
            out["max_seq_length"] = self.max_seq_length
        return out

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "EncoderSpec":
        if not isinstance(value, Mapping):
            raise InputError(f"encoder spec must be an object, got {type(value).__name__}")
        known = {"kind", "name", "dim", "options", "query_prompt", "document_prompt", "max_seq_length"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(f"encoder spec: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        missing = [key for key in ("kind", "name", "dim") if key not in value]
        if missing:
            raise InputError(f"encoder spec: missing {', '.join(missing)}")
        return cls(kind=value["kind"], name=value["name"], dim=value["dim"], options=dict(value.get("options") or {}),
                   query_prompt=value.get("query_prompt", ""), document_prompt=value.get("document_prompt", ""),
                   max_seq_length=value.get("max_seq_length"))

    @property
    def has_model(self) -> bool:
        """False for ``kind="none"``: a collection of your own vectors, searched by vector."""
        return self.kind != "none"


def content_hash(title: str, text: str) -> str:
    """The hash every backend stores per document: equal hashes mean the vector still holds."""
    return hashlib.sha256(f"{title}\x1f{text}".encode()).hexdigest()
