"""Validation at the boundary: one set of rules for the library, every reader and the server.

Documents, metadata, filters, query texts, caller-given vectors and table cells are checked here
before anything is encoded or written, against the limits in ``nearspace.limits``
(docs/limits.md). Each failure is an ``InputError`` (``LimitError`` for a broken limit) whose
message names the item and the field. The server's request models call the same functions, so a
value the library refuses is refused over HTTP too, with the same words.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Sequence

import numpy as np

from nearspace.errors import InputError, LimitError
from nearspace.limits import INT_MAX, INT_MIN, MAX_ID_CHARS, MAX_TEXT_CHARS, check_json_value, check_text
from nearspace.types import Document, Metadata, Where

__all__ = ["validate_document", "make_documents", "check_metadata", "check_where", "check_query",
           "unit_vectors", "parse_cell", "check_json_value", "check_text"]


def check_metadata(metadata: Any, what: str) -> Metadata:
    """A JSON object of finite numbers, 64-bit integers, valid text and bounded nesting."""
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise InputError(f"{what} must be an object, got {type(metadata).__name__}")
    check_json_value(metadata, what)
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} is not JSON-serialisable: {exc}") from exc
    return metadata


def validate_document(doc_id: Any, text: Any, metadata: Any, title: Any = "", *, where: str,
                      allow_empty: bool = False) -> Document:
    """One document checked against the stated limits (nearspace.limits) before any encoding."""
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise InputError(f"{where}: id must be a non-empty string, got {doc_id!r:.80}")
    if len(doc_id) > MAX_ID_CHARS:
        raise InputError(f"{where}: id is {len(doc_id):,} characters long; the limit is {MAX_ID_CHARS:,}")
    check_text(doc_id, f"{where}: id")
    if not isinstance(text, str):
        raise InputError(f"{where} (id {doc_id!r}): text must be a string, got {type(text).__name__}")
    title = "" if title is None else title
    if not isinstance(title, str):
        raise InputError(f"{where} (id {doc_id!r}): title must be a string, got {type(title).__name__}")
    if len(text) + len(title) > MAX_TEXT_CHARS:
        raise InputError(f"{where} (id {doc_id!r}): title and text hold {len(text) + len(title):,} characters; "
                         f"the limit is {MAX_TEXT_CHARS:,} per document (split it, or index it as a file)")
    check_text(text, f"{where} (id {doc_id!r}): text")
    check_text(title, f"{where} (id {doc_id!r}): title")
    if not text.strip() and not title.strip() and not allow_empty:  # allowed when a vector is given
        raise InputError(f"{where} (id {doc_id!r}): text is empty")
    if "\x00" in text or "\x00" in title:
        raise InputError(f"{where} (id {doc_id!r}): text contains NUL bytes")
    metadata = check_metadata(metadata, f"{where} (id {doc_id!r}): metadata")
    return Document(doc_id, text, metadata, title)


def make_documents(ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict] | None,
                   titles: Sequence[str] | None, *, allow_repeats: bool, allow_empty: bool = False) -> list[Document]:
    """Validate parallel lists at the API boundary and build Documents (a repeated id keeps its
    last occurrence, at its own position, when ``allow_repeats``)."""
    if isinstance(ids, str) or isinstance(texts, str):
        raise InputError("ids and texts must be lists, not single strings")
    ids, texts = list(ids), list(texts)
    n = len(ids)
    if len(texts) != n:
        raise InputError(f"got {n} ids but {len(texts)} texts")
    metadatas = list(metadatas) if metadatas is not None else [{}] * n
    titles = list(titles) if titles is not None else [""] * n
    if len(metadatas) != n or len(titles) != n:
        raise InputError(f"ids, texts, metadatas and titles must have the same length ({n})")
    docs: dict[str, Document] = {}
    for i, (doc_id, text, meta, title) in enumerate(zip(ids, texts, metadatas, titles)):
        doc = validate_document(doc_id, text, meta, title, where=f"item #{i}", allow_empty=allow_empty)
        if doc.id in docs and not allow_repeats:
            raise InputError(f"id {doc_id!r} appears more than once in the batch")
        docs.pop(doc.id, None)
        docs[doc.id] = doc
    return list(docs.values())


def check_query(query: Any, what: str = "query") -> str:
    """A query text: a string of valid Unicode, within the document size limit."""
    if not isinstance(query, str):
        raise InputError(f"{what} must be a string, got {type(query).__name__}")
    if len(query) > MAX_TEXT_CHARS:
        raise LimitError(f"{what} is {len(query):,} characters long; the limit is {MAX_TEXT_CHARS:,}")
    check_text(query, what)
    if "\x00" in query:
        raise InputError(f"{what} contains NUL characters")
    return query


def check_where(where: Any, what: str = "where") -> Where | None:
    """A metadata filter's shape and values (its operators are checked as it is compiled, by
    ``store.filters.compile_where``): an object of valid text, finite numbers, 64-bit integers."""
    if where is None:
        return None
    if not isinstance(where, dict):
        raise InputError(f"{what} must be an object such as {{\"topic\": \"ml\"}}, got {type(where).__name__}")
    check_json_value(where, f"{what} filter")
    return where


def unit_vectors(vectors: Any, n: int, dim: int, *, where: str) -> np.ndarray:
    """Validate caller-given vectors and scale them to unit length (search is cosine).

    Zero, NaN and infinite vectors are refused: they have no direction to compare.
    """
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"vectors for {where} must be numbers: {exc}") from None
    if array.ndim != 2 or array.shape != (n, dim):
        raise InputError(f"vectors must have shape ({n}, {dim}) for {where}, got {array.shape}")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise InputError(f"vector {int(np.argmin(finite))} for {where} contains NaN or infinite values")
    norms = np.linalg.norm(array, axis=1)
    if (norms == 0).any():
        raise InputError(f"vector {int(np.argmin(norms))} for {where} is all zeros; it has no direction "
                         "to compare by cosine")
    return (array / norms[:, None]).astype(np.float32)


#: a cell that is a JSON number (no leading zeros, no ``_``, no ``nan``/``inf``) becomes a number
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def parse_cell(value: str | None) -> Any:
    """A table cell (CSV, TSV) as a metadata value: the cell's text, stripped, unless it is
    written as a JSON number, which becomes an int (within 64 bits) or a finite float.

    So ``7`` and ``2.5`` are numbers, while ``007`` (a code), ``1_000``, ``nan``, ``inf``,
    ``1e999`` (not finite) and ``+5`` stay the strings they were: a value is never changed
    in a way the user cannot undo, and nothing non-finite reaches JSON output.
    """
    if value is None:
        return None
    text = value.strip()
    match = _JSON_NUMBER.fullmatch(text)
    if not match:
        return text
    if match.group(1) is None and match.group(2) is None:
        number = int(text)
        return number if INT_MIN <= number <= INT_MAX else text
    real = float(text)
    return real if math.isfinite(real) else text
