"""Your own vectors from files: ids + vectors + metadata into a vectors-only collection.

Owns the two file shapes ``nearspace index`` reads vectors from:

* Parquet with an ``id`` column and a list column of vectors (``vector``, else ``embedding``
  / ``embeddings``, or ``--vector-column``); ``text``, ``title`` and ``metadata`` (JSON text
  or a struct) are optional, and every other scalar column becomes a metadata field. Rows
  are read by ``nearspace.integrations.arrow.read_parquet`` (the same reader as the export
  round trip).
* A ``.npy`` matrix (one row per item, memory-mapped) with an id file (one id per line, in
  row order) and optionally a JSON Lines metadata file (one object per line, same order).

Everything is checked before the first write (row/id/metadata counts, the dimension against
the collection, NaN/infinite/all-zero vectors, repeated ids, id and metadata limits), so a
bad file is one line of error and leaves the store as it was. The vectors are then written
in committed batches through ``Collection.upsert``; no model is ever loaded.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from nearspace.errors import InputError, StoreError
from nearspace.ingest.readers import parse_json_object, read_utf8
from nearspace.types import Document

if TYPE_CHECKING:  # pragma: no cover
    from nearspace.api import Collection, Store

#: rows checked (finite, non-zero) per step: bounded memory on a memory-mapped matrix
CHECK_ROWS = 65_536
#: rows per committed batch when writing vectors (no encoding: bigger commits are cheaper)
VECTOR_BATCH = 4096
#: vector columns tried in order when none is named
VECTOR_COLUMNS = ("vector", "embedding", "embeddings")
#: Parquet columns that are not metadata fields
_RESERVED = {"id", "_id", "text", "title", "metadata"}


@dataclass
class VectorInput:
    """Row-aligned, validated documents read from a vector file and their vectors (``vectors``
    may be a read-only memory map)."""

    source: str
    docs: list[Document]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.docs)

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.docs]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


# -- reading ---------------------------------------------------------------------------------
def parquet_vector_column(path: str | Path, vector_column: str | None = None) -> str | None:
    """The column holding vectors in a Parquet file (read from the schema alone), or None
    when it has none, or when it is a nearspace export (whose encoder decides how to read it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    if vector_column is not None:
        if vector_column not in schema.names:
            raise InputError(f"{path}: no column {vector_column!r} (has: {', '.join(schema.names)})")
        _check_vector_type(path, vector_column, schema.field(vector_column).type)
        return vector_column
    info = json.loads((schema.metadata or {}).get(b"nearspace", b"{}") or b"{}")
    if info.get("encoder"):
        return None
    for name in VECTOR_COLUMNS:
        if name in schema.names and _is_list(schema.field(name).type):
            _check_vector_type(path, name, schema.field(name).type)
            return name
    return None


def _check_vector_type(path, name: str, kind) -> None:
    import pyarrow as pa

    if not _is_list(kind) or not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise InputError(f"{path}: column {name!r} must hold lists of numbers (one vector per row), "
                         f"not {kind}")


def _is_list(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def read_parquet_vectors(path: str | Path, vector_column: str = "vector") -> VectorInput:
    """Items of a Parquet file of your own vectors (see the module docstring)."""
    import pyarrow.parquet as pq

    from nearspace.validation import validate_document
    from nearspace.integrations.arrow import read_parquet

    path = Path(path)
    docs, vectors, _info = read_parquet(path, allow_empty=True, vector_column=vector_column)
    assert vectors is not None  # the column exists: read_parquet read it
    schema = pq.read_schema(path)
    extra = [f.name for f in schema if f.name not in _RESERVED and f.name != vector_column
             and not _is_list(f.type)]
    if extra:  # plain columns (category, price, ...) are metadata fields, as a user means them
        metadatas = [dict(d.metadata) for d in docs]
        columns = pq.read_table(path, columns=extra)
        for name in extra:
            for meta, value in zip(metadatas, columns.column(name).to_pylist()):
                if value is not None:
                    meta.setdefault(name, value)
        # limits and JSON checks again, naming the row
        docs = [validate_document(d.id, d.text, meta, d.title, where=f"{path} row {i}", allow_empty=True)
                for i, (d, meta) in enumerate(zip(docs, metadatas))]
    return VectorInput(str(path), docs, vectors)


def read_npy_vectors(path: str | Path, ids_path: str | Path, metadata_path: str | Path | None = None) -> VectorInput:
    """A ``.npy`` matrix (memory-mapped) with its id file and optional metadata JSON Lines."""
    from nearspace.validation import validate_document

    path, ids_path = Path(path), Path(ids_path)
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InputError(f"{path}: not a readable .npy matrix ({reason})") from None
    if matrix.ndim != 2:
        raise InputError(f"{path}: expected a 2-D matrix (one row per item), got shape {matrix.shape}")
    if not (np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)):
        raise InputError(f"{path}: vectors must be real numbers, got dtype {matrix.dtype}")
    ids = _read_lines(ids_path)
    if len(ids) != matrix.shape[0]:
        raise InputError(f"{ids_path} has {len(ids):,} ids but {path} has {matrix.shape[0]:,} rows; "
                         "they must match, one id per row in the same order")
    metadatas: list[dict[str, Any]] = [{} for _ in ids]
    if metadata_path is not None:
        metadatas = _read_metadata(Path(metadata_path), ids)
    docs = [validate_document(doc_id, "", meta, where=f"{ids_path} line {i + 1}", allow_empty=True)
            for i, (doc_id, meta) in enumerate(zip(ids, metadatas))]
    return VectorInput(str(path), docs, matrix)


def _read_lines(path: Path) -> list[str]:
    lines = _read_lines_raw(path)  # a trailing blank line is not an id
    ids = [line.strip() for line in lines]
    blank = next((i for i, x in enumerate(ids) if not x), None)
    if blank is not None:
        raise InputError(f"{path}:{blank + 1}: empty id (one id per line, no blank lines)")
    return ids


def _read_metadata(path: Path, ids: Sequence[str]) -> list[dict[str, Any]]:
    """One JSON object per line in id order; an ``id`` key, when present, must name that row's id."""
    out: list[dict[str, Any]] = []
    for lineno, line in enumerate(_read_lines_raw(path), start=1):
        record = parse_json_object(line, f"{path}:{lineno}")
        if "id" in record:
            got = record.pop("id")
            if lineno <= len(ids) and str(got) != ids[lineno - 1]:
                raise InputError(f"{path}:{lineno}: id {got!r} does not match line {lineno} of the id file "
                                 f"({ids[lineno - 1]!r}); metadata lines must be in the same order")
        out.append(record)
    if len(out) != len(ids):
        raise InputError(f"{path} has {len(out):,} metadata lines but there are {len(ids):,} ids; they must match")
    return out


def _read_lines_raw(path: Path) -> list[str]:
    text = read_utf8(path)
    # lines end at "\n" only: JSON allows U+2028/U+0085 raw inside strings (nearspace.jsonl)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


# -- checking and writing --------------------------------------------------------------------
def check_vectors(items: VectorInput) -> None:
    """Refuse repeated ids and NaN/infinite/all-zero rows, naming the first bad row and its id;
    reads a memory-mapped matrix in bounded steps."""
    if len(items) == 0:
        raise InputError(f"{items.source}: no rows")
    if items.dim < 1:
        raise InputError(f"{items.source}: vectors have no components")
    ids = items.ids
    repeated = [doc_id for doc_id, n in Counter(ids).items() if n > 1]
    if repeated:
        raise InputError(f"{items.source}: {len(repeated):,} id(s) appear more than once, e.g. {repeated[0]!r}; "
                         "each row needs its own id")
    for start in range(0, len(items), CHECK_ROWS):
        block = np.asarray(items.vectors[start:start + CHECK_ROWS], dtype=np.float64)
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = start + int(np.argmin(finite))
            raise InputError(f"{items.source} row {row} (id {ids[row]!r}): the vector contains NaN or "
                             "infinite values")
        zero = ~np.any(block != 0, axis=1)
        if zero.any():
            row = start + int(np.argmax(zero))
            raise InputError(f"{items.source} row {row} (id {ids[row]!r}): the vector is all zeros; it has "
                             "no direction to compare by cosine")


def target_collection(store: "Store", name: str, dim: int, source: str) -> "Collection":
    """The vectors-only collection ``name``, created with ``dim`` when it does not exist."""
    if name in store.list_collections():
        existing = store.get_collection(name)
        if not existing.vectors_only:
            raise InputError(f"collection {name!r} holds vectors of the model {existing.encoder_name!r}; vectors "
                             f"from {source} go into a collection of your own vectors: pass --collection NEW")
        if existing.dim != dim:
            raise InputError(f"{source}: vectors have dimension {dim} but collection {name!r} holds "
                             f"dimension {existing.dim}")
        return existing
    return store.collection(name, dim=dim, metric="cosine")


def index_vectors(store: "Store", collection: str, items: VectorInput, *, batch_size: int = VECTOR_BATCH,
                  show_progress: bool | None = None,
                  progress_factory: Callable[[], Any] | None = None) -> dict[str, int]:
    """Check ``items`` completely, then upsert them into the vectors-only ``collection``
    (created with their dimension when absent). Returns added/updated/metadata/unchanged counts."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    check_vectors(items)
    target = target_collection(store, collection, items.dim, items.source)
    totals = {"added": 0, "updated": 0, "metadata": 0, "unchanged": 0}
    if show_progress is None:
        show_progress = len(items) >= 4 * batch_size
    progress = task = None
    if show_progress:
        from nearspace.progress import progress_bar

        progress = (progress_factory or progress_bar)()
        progress.start()
        task = progress.add_task(f"vectors into {target.name}", total=len(items))
    try:
        for start in range(0, len(items), batch_size):
            end = min(start + batch_size, len(items))
            try:
                # validated when read, ids distinct: written as they are (no second validation)
                counts = target.write_documents(items.docs[start:end], vectors=np.asarray(items.vectors[start:end]),
                                                batch_size=batch_size, show_progress=False)
            except StoreError as exc:  # say how much of the file was committed before the fault
                raise exc.with_progress(start, len(items)) from exc.__cause__
            for key, value in counts.items():
                totals[key] += value
            if progress is not None:
                progress.advance(task, end - start)
    finally:
        if progress is not None:
            progress.stop()
    if show_progress and progress_factory is None:  # the graph build can take longer than the writes
        from rich.console import Console

        with Console(stderr=True).status(f"building the vector index of {target.name}"):
            target.flush()
    else:
        target.flush()
    return totals
