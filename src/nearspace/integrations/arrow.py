"""Arrow and Parquet: a collection as a table, written to and read back from Parquet losslessly.

Columns: ``id``, ``title``, ``text`` (strings), ``metadata`` (the stored JSON text, so every
value and type survives exactly; ``json.loads`` it), ``vector`` (``fixed_size_list<float32, dim>``,
the stored unit vectors bit for bit). The schema metadata key ``nearspace`` records the
collection, encoder and dimension, so ``nearspace index file.parquet`` can reuse the vectors
when they were made by the same encoder instead of encoding again. Such a file loads in
pandas, Polars, DuckDB and Hugging Face ``datasets`` as is. pyarrow is a base dependency;
``to_pandas`` needs pandas (``nearspace[parquet]``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from nearspace.errors import InputError
from nearspace.types import Document

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from nearspace.api import Collection, Store

SCHEMA_KEY = b"nearspace"
FORMAT_VERSION = 1
EXPORT_BATCH = 10_000


def schema(dim: int, info: dict[str, Any] | None = None) -> "pa.Schema":
    import pyarrow as pa

    fields = [pa.field("id", pa.string(), nullable=False), pa.field("title", pa.string()),
              pa.field("text", pa.string()), pa.field("metadata", pa.string()),
              pa.field("vector", pa.list_(pa.float32(), dim))]
    meta = {SCHEMA_KEY: json.dumps({"format": FORMAT_VERSION, **(info or {})}).encode()}
    return pa.schema(fields, metadata=meta)


def _batches(collection: "Collection", batch: int = EXPORT_BATCH) -> Iterator["pa.RecordBatch"]:
    """Record batches in storage order from the backend's row iterator (SQLite reads them all in
    one snapshot: a consistent export even while another process writes)."""
    import pyarrow as pa

    dim = collection.dim
    sch = schema(dim, _info(collection))
    for rows in collection.backend.rows(batch_size=batch):
        docs = [r.document for r in rows]
        flat = np.concatenate([np.asarray(r.vector, dtype=np.float32) for r in rows])
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)
        yield pa.RecordBatch.from_arrays(
            [pa.array([d.id for d in docs], pa.string()), pa.array([d.title for d in docs], pa.string()),
             pa.array([d.text for d in docs], pa.string()),
             # the metadata column is the JSON SQLite stores: sorted keys, non-ASCII kept
             pa.array([json.dumps(d.metadata, ensure_ascii=False, sort_keys=True) for d in docs], pa.string()),
             vectors], schema=sch)


def _info(collection: "Collection") -> dict[str, Any]:
    return {"collection": collection.name, "encoder": collection.backend.encoder, "dim": collection.backend.dim}


def to_arrow(collection: "Collection") -> "pa.Table":
    """The whole collection as one Arrow table (see the module docstring for the columns)."""
    import pyarrow as pa

    sch = schema(collection.backend.dim, _info(collection))
    return pa.Table.from_batches(list(_batches(collection)), schema=sch)


def to_pandas(collection: "Collection"):
    """A DataFrame with ``metadata`` parsed into dicts and ``vector`` as float32 arrays."""
    try:
        import pandas  # noqa: F401
    except ImportError as exc:
        raise ImportError("to_pandas needs pandas; install it with: pip install 'nearspace[parquet]'") from exc
    frame = to_arrow(collection).to_pandas()
    frame["metadata"] = [json.loads(m) for m in frame["metadata"]]
    frame["vector"] = [np.asarray(v, dtype=np.float32) for v in frame["vector"]]
    return frame


def export_parquet(collection: "Collection", path: str | Path) -> int:
    """Write the collection to ``path`` (temp file, fsync, rename: a reader never sees half a
    file); returns the number of rows written."""
    import pyarrow.parquet as pq

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    written = 0
    try:
        with pq.ParquetWriter(tmp, schema(collection.backend.dim, _info(collection)), compression="zstd") as writer:
            for batch in _batches(collection):
                writer.write_batch(batch)
                written += batch.num_rows
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return written


# -- reading ---------------------------------------------------------------------------------
def read_parquet(path: str | Path, *, allow_empty: bool | None = None,
                 vector_column: str = "vector") -> tuple[list[Document], np.ndarray | None, dict[str, Any]]:
    """Documents from a Parquet file, its vectors when it has a ``vector`` column (or
    ``vector_column``), and the ``nearspace`` schema metadata (empty for files written by other tools).

    Needs ``id`` (or ``_id``) and ``text`` columns (``text`` may be absent when the file has
    vectors); ``title`` and ``metadata`` (a JSON object as text, or a struct) are optional.
    Every row is validated like a JSONL record; an empty text is allowed (``allow_empty``,
    default: when the file has vectors) for vector-only rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nearspace.validation import validate_document

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    raw_info = (table.schema.metadata or {}).get(SCHEMA_KEY)
    info = json.loads(raw_info) if raw_info else {}
    names = table.column_names
    id_col = "id" if "id" in names else "_id" if "_id" in names else None
    if id_col is None or ("text" not in names and vector_column not in names):
        raise InputError(f"{path}: a Parquet file to index needs 'id' and 'text' columns (has: {', '.join(names)})")
    # integer ids (common in files from other tools) become strings, as in JSONL records
    ids = [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in table.column(id_col).to_pylist()]
    texts = table.column("text").to_pylist() if "text" in names else [""] * len(ids)  # vectors-only rows
    titles = table.column("title").to_pylist() if "title" in names else [""] * len(ids)
    metas = table.column("metadata").to_pylist() if "metadata" in names else [None] * len(ids)
    if allow_empty is None:
        allow_empty = vector_column in names
    docs = []
    for i, (doc_id, text, title, meta) in enumerate(zip(ids, texts, titles, metas)):
        where = f"{path} row {i}"
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError as exc:
                raise InputError(f"{where}: metadata is not valid JSON ({exc})") from None
        text = "" if text is None and allow_empty else text
        docs.append(validate_document(doc_id, text, meta, title or "", where=where, allow_empty=allow_empty))
    vectors = None
    if vector_column in names:
        column = table.column(vector_column).combine_chunks()
        if column.null_count:
            raise InputError(f"{path}: the vector column has {column.null_count} empty row(s)")
        width = column.type.list_size if pa.types.is_fixed_size_list(column.type) else None
        if width is None:  # a variable-size list from another tool: every row must agree
            lengths = np.asarray(column.value_lengths())
            if len(lengths) and (lengths != lengths[0]).any():
                raise InputError(f"{path}: vectors have differing lengths ({lengths.min()}..{lengths.max()})")
            width = int(lengths[0]) if len(lengths) else 0
        vectors = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
        vectors = vectors.reshape(len(docs), width) if len(docs) else np.zeros((0, width), np.float32)
    return docs, vectors, info


def read_documents(path: str | Path) -> list[Document]:
    """Just the documents (the ingest readers' view of a Parquet file)."""
    return read_parquet(path, allow_empty=False)[0]


def index_parquet(store: "Store", collection: str, path: str | Path, *, batch_size: int = 256,
                  echo: Callable[[str], Any] = print) -> dict[str, int] | None:
    """Upsert a Parquet file's rows with its own vectors when they fit the collection (same
    encoder name and dimension, or the collection does not exist yet); returns the counts, or
    None when the file has no usable vectors and its texts must be encoded instead."""
    from nearspace.validation import unit_vectors
    from nearspace.encoders.registry import canonical_name, recorded_encoder

    docs, vectors, info = read_parquet(path)
    file_encoder, file_dim = info.get("encoder"), info.get("dim")
    if vectors is None or not file_encoder:
        return None
    if vectors.shape[1] != file_dim:
        raise InputError(f"{path}: the file says dim {file_dim} but its vectors have {vectors.shape[1]}")
    if collection in store.list_collections():
        data = store.backend.open_collection(collection)
        if canonical_name(file_encoder) != data.encoder or file_dim != data.dim:
            echo(f"{path}: vectors were made by {file_encoder!r} (dim {file_dim}); collection {collection!r} "
                 f"uses {data.encoder!r} (dim {data.dim}): encoding the texts instead")
            return None
    # the vectors come from the file: the collection is opened (or created) under the file's
    # encoder name without loading any model
    target = store.collection(collection, encoder=recorded_encoder(
        canonical_name(file_encoder), file_dim, "the collection's vectors came from a Parquet file"))
    # exported vectors are unit length already: keep their bits; anything else is validated and scaled
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1) if len(vectors) else np.zeros(0)
    if not (np.isfinite(vectors).all() and np.all(np.abs(norms - 1.0) < 1e-5)):
        vectors = unit_vectors(vectors, len(docs), file_dim, where=str(path))
    totals = {"added": 0, "updated": 0, "metadata": 0, "unchanged": 0}
    for start in range(0, len(docs), batch_size):
        counts = target.backend.write(docs[start:start + batch_size], vectors[start:start + batch_size], replace=True)
        for key, value in counts.items():
            totals[key] += value
    target.flush()
    return totals
