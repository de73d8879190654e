"""A Milvus-backed store: the same ``Store``/``Collection`` API, with Milvus holding everything.

``open_store("milvus://HOST:PORT")`` reaches a Milvus server (standalone or cluster) and
``open_store("milvus-lite:PATH.db")`` a local milvus-lite file. Each nearspace collection is
one Milvus collection whose rows hold the id, title, text (title and text together in one
analysed field feeding Milvus's BM25 function), the metadata as given, two derived JSON
fields used only by filters, the content hash and the unit vector (COSINE). The encoder's
name and dimension, the tuned fusion and which metadata keys hold lists live in the Milvus
collection's properties; learned artifacts (the query adapter) in a ``nearspace_artifacts``
collection. Nothing is kept on the local disk.

Writing reuses ``nearspace.api.Collection``'s upsert path unchanged (hash comparison, only
new or changed text encoded, metadata-only changes keep the stored vector); this module
supplies the ``CollectionData`` side of it. Searching runs Milvus's dense and BM25 searches
with the filter pushed down, then fuses the two lists with nearspace's own fusion, so a
tuned fusion means the same thing on both engines.

Filters are translated, not approximated: ``{"k": v}`` and ``$in``/``$ne``/``$nin`` look in
a per-document list of every value a (dotted) key holds, so list-valued metadata matches
on any element as in SQLite; range comparisons run on keys that hold single values. A
range over a key that holds lists in some document cannot be expressed in Milvus and is
refused with an ``InputError``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from nearspace.api import DEFAULT_COLLECTION, Collection, Store, _fusion_spec, record_spec
from nearspace.encoders import DEFAULT_ENCODER, Encoder, load_encoder
from nearspace.encoders.registry import canonical_name
from nearspace.errors import CollectionNotFound, EncoderMismatch, InputError, StoreError
from nearspace.types import EncoderSpec, SearchResult, SearchResults
from nearspace.store.database import content_hash, keyword_query
from nearspace.types import Document
from nearspace.store.filters import _COMPARE, _OPS, _check_size, _short, flatten_metadata

import threading

#: milvus-lite files open in this process -> stores using them (the last close releases the file)
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()
PREFIX = "ns_"
ARTIFACTS = "nearspace_artifacts"
#: keys of folder-indexing records in the artifacts collection: <collection><_FILES><sha1(path)>:<part>
_FILES = "\x1f@files\x1f"
#: Milvus VARCHAR fields hold at most this many bytes
MAX_VARCHAR = 65535
#: Milvus returns at most this many hits per search
MAX_TOPK = 16384
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
# close to SQLite's FTS5 'porter unicode61' tokeniser: lower case, Porter/English stemming, stop words
ANALYZER = {"tokenizer": "standard",
            "filter": ["lowercase", {"type": "stemmer", "language": "english"},
                       {"type": "stop", "stop_words": ["_english_"]}]}
_OUT = ["id", "title", "content", "meta", "hash"]


def parse_uri(spec: str) -> str | None:
    """The pymilvus URI for a ``milvus://``/``milvus-lite:`` store spelling, else None.

    ``milvus:/host:port`` (a ``Path`` collapses ``//``) is accepted too, so the CLI's
    ``--store`` works whichever way the shell hands it over.
    """
    spec = str(spec)
    if spec.startswith("milvus-lite:"):
        path = spec[len("milvus-lite:"):]
        if not path.endswith(".db"):
            raise InputError(f"a milvus-lite store path must end in .db (milvus-lite's rule), got {path!r}")
        from pathlib import Path

        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return str(Path(path).expanduser())
    match = re.match(r"^milvus(s?):/+(.+)$", spec)
    if match:
        return f"{'https' if match.group(1) else 'http'}://{match.group(2)}"
    return None


def _is_lite(uri: str) -> bool:
    """A milvus-lite file (served in this process), not a ``scheme://`` server address."""
    return not re.match(r"^[a-z]+://", uri)


def lite_acquire(uri: str) -> None:
    """Count one more user of a milvus-lite file in this process (see :func:`lite_release`)."""
    with _LITE_LOCK:
        _LITE_USERS[uri] = _LITE_USERS.get(uri, 0) + 1


def lite_release(uri: str) -> None:
    """One user of a milvus-lite file is done; the last one lets the file go.

    milvus-lite serves the file from a server this process started and holds its lock until
    released: the last user in this process releases it, so another process may open it.
    """
    with _LITE_LOCK:
        _LITE_USERS[uri] -= 1
        last = _LITE_USERS[uri] == 0
    if last:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def like_prefix(prefix: str) -> str:
    """A Milvus ``LIKE "..."`` pattern body matching keys that start with ``prefix``.

    ``%`` and ``_`` are escaped for LIKE; the string literal takes JSON escapes except ``\\uXXXX``
    (Milvus's parser rejects it), so the key separator \\x1f is passed as the raw character.
    """
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return json.dumps(escaped, ensure_ascii=False)[1:-1].replace("\\u001f", "\x1f") + "%"


def _milvus_name(name: str) -> str:
    # injective: '_' -> '__', '-' -> '_0', '.' -> '_1' (Milvus names allow letters, digits and '_')
    return PREFIX + name.replace("_", "__").replace("-", "_0").replace(".", "_1")


def _client_error(exc: Exception, where: str) -> StoreError:
    return StoreError(f"Milvus refused {where}: {getattr(exc, 'message', None) or exc}")


class MilvusStore(Store):
    """Named collections in a Milvus server or a milvus-lite file."""

    def __init__(self, uri: str, *, encoder: Encoder | str | None = None, precision: str = "auto",
                 token: str | None = None) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise StoreError("Milvus stores need the 'milvus' extra: pip install 'nearspace[milvus]'") from None
        import logging

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # errors reach the caller as StoreError
        import os

        self.uri = uri
        self.path = uri
        try:
            self.client = MilvusClient(uri=uri, token=token or os.environ.get("NEARSPACE_MILVUS_TOKEN", ""))
        except Exception as exc:  # noqa: BLE001 - connection failures come in many types
            raise StoreError(f"cannot open Milvus store {uri}: {getattr(exc, 'message', None) or exc}") from None
        self._lite = _is_lite(uri)
        self._closed = False
        if self._lite:
            lite_acquire(uri)
        self.db = _MilvusDB(self)
        self.ann_dir = None
        self._encoder = encoder
        self.precision = precision
        self.exact_threshold = 0
        self._loaded: set[str] = set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing after a lost server is harmless
            pass
        if self._lite:
            lite_release(self.uri)

    # -- collections --------------------------------------------------------------------
    def _props(self, name: str) -> dict[str, str] | None:
        mname = _milvus_name(name)
        if not self.client.has_collection(mname):
            return None
        props = dict(self.client.describe_collection(mname).get("properties") or {})
        if mname not in self._loaded:  # a reopened milvus-lite collection starts released
            self.client.load_collection(mname)
            self._loaded.add(mname)
        return props

    def collection(self, name: str = DEFAULT_COLLECTION, *, encoder: Encoder | str | None = None,
                   create: bool = True, dim: int | None = None, metric: str | None = None,
                   index: str | None = None) -> "MilvusCollection":
        """As ``Store.collection``; ``dim`` makes a collection of your own vectors (no model). The
        engine picks its vector index (AUTOINDEX), so ``index`` accepts only ``auto``."""
        if index not in (None, "auto"):
            raise InputError(f"on Milvus the engine chooses the vector index (AUTOINDEX); index={index!r} "
                             "is for SQLite stores")
        if dim is not None or metric is not None:
            return self._vector_collection(name, dim, metric or "cosine", create=create)
        resolved = self._resolve_encoder(encoder)
        props = self._props(name)
        if props is None:
            if not create:
                known = ", ".join(self.list_collections()) or "none yet"
                raise CollectionNotFound(f"unknown collection {name!r} in {self.uri} (collections: {known})")
            resolved = resolved or load_encoder(DEFAULT_ENCODER, precision=self.precision)
            data = self.db.create(name, canonical_name(resolved.name), resolved.dim)
            record_spec(data, resolved.spec)
        else:
            data = MilvusCollectionData(self, name, props)
            if resolved is not None:
                data.check(canonical_name(resolved.name), resolved.dim)
        return MilvusCollection(self, data, resolved)

    def _vector_collection(self, name: str, dim: int | None, metric: str, *, create: bool) -> "MilvusCollection":
        from nearspace.api import VECTORS_ONLY

        if metric != "cosine":
            raise InputError(f"metric must be 'cosine' (vectors are compared by cosine), got {metric!r}")
        props = self._props(name)
        if props is None:
            if not create:
                known = ", ".join(self.list_collections()) or "none yet"
                raise CollectionNotFound(f"unknown collection {name!r} in {self.uri} (collections: {known})")
            if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
                raise InputError(f"dim must be a positive integer, got {dim!r}")
            data = self.db.create(name, VECTORS_ONLY, dim)
            record_spec(data, EncoderSpec(kind="none", name=VECTORS_ONLY, dim=dim))
        else:
            data = MilvusCollectionData(self, name, props)
            if dim is not None and data.dim != dim:
                raise InputError(f"collection {name!r} holds vectors of dimension {data.dim}, not {dim}")
        return MilvusCollection(self, data, None)

    def list_collections(self) -> list[str]:
        names = []
        for mname in self.client.list_collections():
            if mname.startswith(PREFIX):
                props = self.client.describe_collection(mname).get("properties") or {}
                if "nearspace.name" in props:
                    names.append(props["nearspace.name"])
        return sorted(names)

    def drop_collection(self, name: str) -> None:
        data = self.db.collection(name)
        for art in list(data.artifact_names()):
            data.delete_artifact(art)
        data.untrack_all()
        self.client.drop_collection(_milvus_name(name))
        self._loaded.discard(_milvus_name(name))

    def compact(self) -> None:
        for name in self.list_collections():
            self.client.compact(_milvus_name(name))

    def info(self) -> dict[str, Any]:
        collections = []
        for name in self.list_collections():
            data = self.db.collection(name)
            collections.append({"name": name, "count": data.count(), "encoder": data.encoder,
                                "dim": data.dim, "config": data.config(), "ann_bytes": 0})
        from nearspace.encoders.registry import choose_backend

        return {"path": self.uri, "engine": "milvus", "encoder_backend": choose_backend(self.precision),
                "bytes": 0, "sqlite_bytes": 0, "collections": collections}


class _MilvusDB:
    """What callers reach through ``store.db``: the path and collection data by name."""

    def __init__(self, store: MilvusStore) -> None:
        self.store = store
        self.path = store.uri

    def collection_names(self) -> list[str]:
        return self.store.list_collections()

    def transaction(self):
        """Milvus has no multi-request transactions: callers' blocks run as they are (each write
        is idempotent on re-run, see ``MilvusCollectionData.write``)."""
        from contextlib import nullcontext

        return nullcontext()

    def collection(self, name: str, *, encoder: str | None = None, dim: int | None = None,
                   create: bool = False) -> "MilvusCollectionData":
        props = self.store._props(name)
        if props is None:
            if create and encoder and dim:
                return self.create(name, encoder, dim)
            known = ", ".join(self.store.list_collections()) or "none yet"
            raise CollectionNotFound(f"unknown collection {name!r} in {self.path} (collections: {known})")
        data = MilvusCollectionData(self.store, name, props)
        data.check(encoder, dim)
        return data

    def create(self, name: str, encoder: str, dim: int) -> "MilvusCollectionData":
        if not _NAME_RE.match(name):
            raise InputError(f"invalid collection name {name!r}: use letters, digits, '_', '-', '.' (max 64)")
        from pymilvus import DataType, Function, FunctionType

        client, mname = self.store.client, _milvus_name(name)
        schema = client.create_schema(auto_id=False, description=f"nearspace collection {name}")
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=4096)
        schema.add_field("title", DataType.VARCHAR, max_length=MAX_VARCHAR)
        # title + newline + text: BM25 reads both as SQLite's FTS5 index does; text is recovered by slicing
        schema.add_field("content", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                         analyzer_params=ANALYZER)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("flat", DataType.JSON)   # dotted key -> every scalar it holds (filters: equality)
        schema.add_field("scal", DataType.JSON)   # dotted key -> its single scalar (filters: ranges)
        schema.add_field("hash", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["content"], output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        props = {"nearspace.name": name, "nearspace.encoder": encoder, "nearspace.dim": str(int(dim)),
                 "nearspace.config": "{}", "nearspace.list_keys": "[]", "nearspace.created": str(time.time())}
        try:
            client.create_collection(mname, schema=schema, index_params=index, consistency_level="Strong",
                                     properties=props)
        except Exception as exc:  # noqa: BLE001
            if client.has_collection(mname):  # another process created it first
                return self.collection(name, encoder=encoder, dim=dim)
            raise _client_error(exc, f"creating collection {name!r}") from None
        self.store._loaded.add(mname)
        return MilvusCollectionData(self.store, name, props)


class MilvusCollectionData:
    """The ``CollectionData`` side of a Milvus collection (no encoder involved)."""

    def __init__(self, store: MilvusStore, name: str, props: Mapping[str, str]) -> None:
        self.store, self.name, self.mname = store, name, _milvus_name(name)
        self.client = store.client
        self.db = store.db
        self.cid = name
        self.encoder = props["nearspace.encoder"]
        self.dim = int(props["nearspace.dim"])
        self._list_keys = set(json.loads(props.get("nearspace.list_keys", "[]")))

    def check(self, encoder: str | None, dim: int | None) -> None:
        if encoder is not None and encoder != self.encoder:
            raise EncoderMismatch(f"collection {self.name!r} was built with encoder {self.encoder!r} "
                                  f"(dim {self.dim}); refusing encoder {encoder!r}")
        if dim is not None and dim != self.dim:
            raise EncoderMismatch(f"collection {self.name!r} holds {self.dim}-dimensional vectors; "
                                  f"refusing an encoder of dimension {dim}")

    # -- properties: config and list-valued keys ------------------------------------------
    def _props(self) -> dict[str, str]:
        return dict(self.client.describe_collection(self.mname).get("properties") or {})

    def config(self) -> dict[str, Any]:
        return json.loads(self._props().get("nearspace.config", "{}"))

    def set_config(self, **values: Any) -> dict[str, Any]:
        config = self.config()
        config.update(values)
        self.client.alter_collection_properties(self.mname, properties={"nearspace.config": json.dumps(config)})
        return config

    def list_keys(self) -> set[str]:
        self._list_keys = set(json.loads(self._props().get("nearspace.list_keys", "[]")))
        return self._list_keys

    def _note_list_keys(self, keys: set[str]) -> None:
        if keys - self._list_keys:
            known = self.list_keys() | keys
            self.client.alter_collection_properties(
                self.mname, properties={"nearspace.list_keys": json.dumps(sorted(known))})
            self._list_keys = known

    # -- artifacts (query adapter) -----------------------------------------------------
    def _artifacts(self, create: bool = False) -> bool:
        client = self.client
        if client.has_collection(ARTIFACTS):
            if ARTIFACTS not in self.store._loaded:
                client.load_collection(ARTIFACTS)
                self.store._loaded.add(ARTIFACTS)
            return True
        if not create:
            return False
        from pymilvus import DataType

        schema = client.create_schema(auto_id=False, description="nearspace artifacts (base64 chunks)")
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field("value", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus requires one vector field
        index = client.prepare_index_params()
        index.add_index("v", index_type="AUTOINDEX", metric_type="L2")
        client.create_collection(ARTIFACTS, schema=schema, index_params=index, consistency_level="Strong")
        self.store._loaded.add(ARTIFACTS)
        return True

    def _art_key(self, name: str, part: str) -> str:
        return f"{self.name}\x1f{name}\x1f{part}"

    def put_artifact(self, name: str, value: bytes, meta: dict[str, Any]) -> None:
        self._artifacts(create=True)
        encoded = base64.b64encode(value).decode()
        step = MAX_VARCHAR - 1
        chunks = [encoded[i:i + step] for i in range(0, len(encoded), step)] or [""]
        rows = [{"key": self._art_key(name, str(i)), "value": c, "v": [0.0, 0.0]} for i, c in enumerate(chunks)]
        self.client.upsert(ARTIFACTS, rows)
        # the header goes last: a reader sees the new version only once all its chunks are there
        header = {"version": time.time_ns(), "chunks": len(chunks), "meta": meta}
        self.client.upsert(ARTIFACTS, [{"key": self._art_key(name, "head"), "value": json.dumps(header),
                                        "v": [0.0, 0.0]}])

    def _header(self, name: str) -> dict[str, Any] | None:
        if not self._artifacts():
            return None
        got = self.client.get(ARTIFACTS, ids=[self._art_key(name, "head")], output_fields=["value"])
        return json.loads(got[0]["value"]) if got else None

    def artifact_version(self, name: str) -> int | None:
        head = self._header(name)
        return int(head["version"]) if head else None

    def get_artifact(self, name: str) -> tuple[bytes, dict[str, Any]] | None:
        head = self._header(name)
        if head is None:
            return None
        keys = [self._art_key(name, str(i)) for i in range(head["chunks"])]
        got = {r["key"]: r["value"] for r in self.client.get(ARTIFACTS, ids=keys, output_fields=["value"])}
        return base64.b64decode("".join(got[k] for k in keys)), head["meta"]

    def delete_artifact(self, name: str) -> bool:
        head = self._header(name)
        if head is None:
            return False
        keys = [self._art_key(name, "head")] + [self._art_key(name, str(i)) for i in range(head["chunks"])]
        self.client.delete(ARTIFACTS, ids=keys)
        return True

    def artifact_names(self) -> Iterator[str]:
        if not self._artifacts():
            return
        prefix = f"{self.name}\x1f"
        for row in self.client.query(ARTIFACTS, filter=f'key like "{like_prefix(prefix)}"', output_fields=["key"]):
            name, art, part = row["key"].split("\x1f")
            if name == self.name and part == "head":
                yield art

    # -- reads -------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.client.query(self.mname, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def last_seq(self) -> int:
        # Milvus keeps no change log we can read: a fresh value means "recompute" to callers that cache
        return time.time_ns()

    def _fetch(self, ids: Sequence[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in self.client.get(self.mname, ids=chunk, output_fields=fields):
                out[row["id"]] = row
        return out

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return {i: r["hash"] for i, r in self._fetch(ids, ["id", "hash"]).items()}

    def get(self, ids: Sequence[str]) -> list[Document | None]:
        found = self._fetch(ids, _OUT)
        return [_document(found[i]) if i in found else None for i in ids]

    def vectors_for_ids(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return {i: np.asarray(r["vector"], dtype=np.float32) for i, r in self._fetch(ids, ["id", "vector"]).items()}

    def rows_for_ids(self, ids: Sequence[str]) -> dict[str, int]:
        """For ``ask``: positions in the small matrix the collection's ``index`` now holds."""
        index = self.store_collection_index
        vectors = self.vectors_for_ids(ids)
        order = [i for i in dict.fromkeys(ids) if i in vectors]
        index.rows = np.arange(len(order), dtype=np.int64)
        index.matrix = np.stack([vectors[i] for i in order]) if order else np.zeros((0, self.dim), np.float32)
        return {i: p for p, i in enumerate(order)}

    def ids(self) -> Iterator[str]:
        for batch in self.iterate(["id"]):
            for row in batch:
                yield row["id"]

    def iterate(self, fields: list[str], batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every row, in batches (pymilvus's query iterator: no offset+limit ceiling)."""
        iterator = self.client.query_iterator(self.mname, batch_size=batch_size, filter="", output_fields=fields)
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    return
                yield list(batch)
        finally:
            iterator.close()

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """``(ids, matrix)`` of every stored vector (ids stand where SQLite has doc_rows)."""
        ids, parts = [], []
        for batch in self.iterate(["id", "vector"]):
            ids += [r["id"] for r in batch]
            parts.append(np.asarray([r["vector"] for r in batch], dtype=np.float32))
        return ids, np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def view_parts(self) -> tuple[list[str], list[Document], np.ndarray, int]:
        """``(ids, documents, matrix, seq)`` of every row in one pass, for ``analyze.data.load_collection``
        (Milvus has no read transaction to join: one iterator reads each row's fields together)."""
        seq = self.last_seq()
        ids: list[str] = []
        docs: list[Document] = []
        parts = []
        for batch in self.iterate(_OUT + ["vector"]):
            ids += [r["id"] for r in batch]
            docs += [_document(r) for r in batch]
            parts.append(np.asarray([r["vector"] for r in batch], dtype=np.float32))
        return ids, docs, np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32), seq

    def ids_with_prefix(self, prefix: str) -> list[str]:
        return [r["id"] for r in self.client.query(self.mname, filter=f'id like "{like_prefix(prefix)}"',
                                                   output_fields=["id"]) if r["id"].startswith(prefix)]

    # -- writes ------------------------------------------------------------------------
    def write(self, docs: Sequence[Document], vectors: np.ndarray, *, replace: bool, also=None,
              encoded: Sequence[bool] | np.ndarray | None = None) -> dict[str, int]:
        """Upsert a batch; the contract of ``CollectionData.write`` (Milvus writes are per
        request, not transactions: a batch interrupted half-way is completed by re-running)."""
        from nearspace.store.database import NeedVectors, _needing_vectors

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(docs), self.dim):
            raise InputError(f"expected {len(docs)} vectors of dimension {self.dim}, got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise InputError("vectors contain NaN or infinite values")
        existing = self._fetch([d.id for d in docs], ["id", "hash", "meta"])
        if encoded is not None:
            missing = _needing_vectors(docs, {i: (None, r["hash"]) for i, r in existing.items()}, encoded)
            if missing:
                raise NeedVectors(missing)
        if not replace:
            clash = [d.id for d in docs if d.id in existing]
            if clash:
                raise InputError(f"{len(clash)} id(s) already stored in {self.name!r}, e.g. {clash[0]!r}; "
                                 "use upsert to replace them")
        counts = {"added": 0, "updated": 0, "metadata": 0, "unchanged": 0}
        rows: list[dict[str, Any]] = []
        keep_vector: list[int] = []
        list_keys: set[str] = set()
        for doc, vector in zip(docs, vectors):
            digest = content_hash(doc.title, doc.text)
            old = existing.get(doc.id)
            if old is not None and old["hash"] == digest:
                if _canon(old["meta"]) == _canon(doc.metadata):
                    counts["unchanged"] += 1
                    continue
                counts["metadata"] += 1
                keep_vector.append(len(rows))  # metadata only: the stored vector is kept, never re-encoded
            else:
                counts["updated" if old is not None else "added"] += 1
            rows.append(self._row(doc, digest, vector, list_keys))
        if keep_vector:
            stored = self.vectors_for_ids([rows[i]["id"] for i in keep_vector])
            for i in keep_vector:
                rows[i]["vector"] = stored[rows[i]["id"]].tolist()
        self._note_list_keys(list_keys)  # before the rows: a reader never sees a list the filter can't handle
        if rows:
            try:
                self.client.upsert(self.mname, rows)
            except Exception as exc:  # noqa: BLE001
                raise _client_error(exc, f"writing {len(rows)} document(s) to {self.name!r}") from None
        if also is not None:
            # folder bookkeeping after the chunks, not in one transaction (Milvus has none): a run
            # stopped in between finds the file untracked (or tracked as before) and redoes it,
            # and the hash check above means nothing already written is encoded again
            also()
        return counts

    def _row(self, doc: Document, digest: str, vector: np.ndarray, list_keys: set[str]) -> dict[str, Any]:
        content = f"{doc.title}\n{doc.text}" if doc.title else doc.text
        for what, value in (("id", doc.id), ("title and text", content)):
            size = len(value.encode())
            if size > (4096 if what == "id" else MAX_VARCHAR):
                raise InputError(f"document {doc.id[:80]!r}: its {what} take {size:,} bytes; a Milvus VARCHAR field "
                                 f"holds at most {4096 if what == 'id' else MAX_VARCHAR:,} (chunk it, e.g. index it as a file)")
        flat, scal = _filter_fields(doc.metadata, list_keys)
        return {"id": doc.id, "title": doc.title, "content": content, "meta": doc.metadata, "flat": flat,
                "scal": scal, "hash": digest, "vector": vector.tolist()}

    # -- file bookkeeping for folder indexing (rows of the artifacts collection) -------------
    def _file_prefix(self) -> str:
        return f"{self.name}{_FILES}"

    def _file_rows(self, prefix: str) -> Iterator[dict[str, Any]]:
        iterator = self.client.query_iterator(ARTIFACTS, batch_size=1000, filter=f'key like "{like_prefix(prefix)}"',
                                              output_fields=["key", "value"])
        try:
            while batch := iterator.next():
                yield from (r for r in batch if r["key"].startswith(prefix))  # '_' in LIKE is a wildcard
        finally:
            iterator.close()

    def tracked_files(self) -> dict[str, tuple[str, int, int, list[str]]]:
        """path -> (hash, size, mtime_ns, doc_ids) for files indexed into this collection."""
        if not self._artifacts():
            return {}
        parts: dict[str, dict[int, str]] = {}
        for row in self._file_rows(self._file_prefix()):
            key, _, index = row["key"].rpartition(":")
            parts.setdefault(key, {})[int(index)] = row["value"]
        out = {}
        for pieces in parts.values():
            try:  # a record cut short by an interrupted write counts as untracked: the file is redone
                record = json.loads("".join(pieces[i] for i in range(len(pieces))))
            except (KeyError, ValueError):
                continue
            out[record["path"]] = (record["hash"], record["size"], record["mtime_ns"], record["ids"])
        return out

    def _file_key(self, path: str) -> str:
        return self._file_prefix() + hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()

    def track_file(self, path: str, digest: str, size: int, mtime_ns: int, doc_ids: Sequence[str]) -> None:
        """Record a file (after its chunks are written)."""
        self._artifacts(create=True)
        key = self._file_key(path)
        encoded = json.dumps({"path": path, "hash": digest, "size": size, "mtime_ns": mtime_ns, "ids": list(doc_ids)})
        step = MAX_VARCHAR - 1  # ASCII JSON: characters are bytes
        chunks = [encoded[i:i + step] for i in range(0, len(encoded), step)]
        self.client.upsert(ARTIFACTS, [{"key": f"{key}:{i}", "value": c, "v": [0.0, 0.0]} for i, c in enumerate(chunks)])
        extra = [r["key"] for r in self._file_rows(key + ":") if int(r["key"].rpartition(":")[2]) >= len(chunks)]
        if extra:  # parts left from a longer earlier record
            self.client.delete(ARTIFACTS, ids=extra)

    def untrack_file(self, path: str) -> None:
        if self._artifacts():
            keys = [r["key"] for r in self._file_rows(self._file_key(path) + ":")]
            if keys:
                self.client.delete(ARTIFACTS, ids=keys)

    def untrack_all(self) -> None:
        if self._artifacts():
            keys = [r["key"] for r in self._file_rows(self._file_prefix())]
            for start in range(0, len(keys), 1000):
                self.client.delete(ARTIFACTS, ids=keys[start:start + 1000])

    def delete_in_transaction(self, ids: Sequence[str]) -> int:
        """As ``delete`` (Milvus has no transaction to join)."""
        return self.delete(ids)

    def vectors_for_rows(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors at positions handed out by ``rows_for_ids`` (a folder rename reuses them)."""
        order = np.sort(np.asarray(list(rows), dtype=np.int64))
        return order, self.store_collection_index.matrix[order]

    def delete(self, ids: Sequence[str]) -> int:
        existing = list(self._fetch(list(ids), ["id"]))
        if existing:
            self.client.delete(self.mname, ids=existing)
        return len(existing)

    # -- search ------------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, limit: int, expr: str) -> list[tuple[str, float]]:
        hits = self.client.search(self.mname, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                  anns_field="vector", limit=limit, filter=expr, output_fields=[],
                                  search_params={"metric_type": "COSINE"})
        return [(h["id"], float(h["distance"])) for h in hits[0]]

    def keyword_search(self, query: str, limit: int, expr: str) -> list[tuple[str, float]]:
        # the same terms SQLite's keyword search keeps (stop words and single characters dropped)
        terms = keyword_query(query).replace('"', "").split(" OR ")
        text = " ".join(t for t in terms if t)
        if not text:
            return []
        hits = self.client.search(self.mname, data=[text], anns_field="sparse", limit=limit, filter=expr,
                                  output_fields=[], search_params={"metric_type": "BM25"})
        # milvus-lite reports BM25 as a negative distance, a server as the positive score: both rank best first
        return [(h["id"], abs(float(h["distance"]))) for h in hits[0]]


def _canon(meta: Any) -> str:
    return json.dumps(meta or {}, sort_keys=True, ensure_ascii=False)


def _number(value: Any) -> Any:
    # SQLite's filter index keeps numbers and booleans as REAL: true == 1, 3 == 3.0
    return float(value) if isinstance(value, (bool, int, float)) else value


def _filter_fields(metadata: dict[str, Any], list_keys: set[str]) -> tuple[dict[str, list], dict[str, Any]]:
    """``flat``: dotted key -> every scalar it holds; ``scal``: keys holding one plain value."""
    flat: dict[str, list] = {}
    for key, value in flatten_metadata(metadata):
        flat.setdefault(key, []).append(_number(value))
    listed = set(_list_paths(metadata))
    list_keys |= listed | {k for k, v in flat.items() if len(v) > 1}
    scal = {k: v[0] for k, v in flat.items() if len(v) == 1 and k not in listed}
    return flat, scal


def _list_paths(metadata: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in metadata.items():
        if isinstance(value, dict):
            yield from _list_paths(value, f"{prefix}{key}.")
        elif isinstance(value, (list, tuple)):
            yield f"{prefix}{key}"


def _document(row: dict[str, Any]) -> Document:
    title = row.get("title") or ""
    content = row["content"]
    return Document(row["id"], content[len(title) + 1:] if title else content, row.get("meta") or {}, title)


# -- filters ------------------------------------------------------------------------------
def _literal(value: Any, key: str, op: str) -> str:
    if value is None or isinstance(value, (dict, list, tuple)):
        raise InputError(f"filter {key!r}: {op} needs a string, number or boolean, got {_short(value)}")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"filter {key!r}: {op} values must be finite numbers, got {value!r}")
    return repr(number)


def _key(key: str) -> str:
    if "\\" in key or '"' in key:
        raise InputError(f"filter key {key!r}: Milvus filter paths cannot contain quotes or backslashes")
    return json.dumps(key, ensure_ascii=False)


def compile_filter(where: dict[str, Any], list_keys: set[str], _depth: int = 0) -> str:
    """A nearspace filter as a Milvus boolean expression (same matches as SQLite's compile_where)."""
    if not isinstance(where, dict) or not where:
        raise InputError(f"a filter must be a non-empty object, got {_short(where)}")
    if _depth == 0:
        _check_size(where)
    clauses = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise InputError(f"filter {key} needs a non-empty list of filters")
            glue = " and " if key == "$and" else " or "
            clauses.append("(" + glue.join(compile_filter(sub, list_keys, _depth + 1) for sub in cond) + ")")
        elif key.startswith("$"):
            raise InputError(f"unknown filter operator {key!r} at top level; use $and or $or")
        elif isinstance(cond, dict):
            if not cond:
                raise InputError(f"filter {key!r}: empty condition")
            ranged = {op: v for op, v in cond.items() if op in _COMPARE}
            if len(ranged) > 1:
                kinds = {isinstance(v, str) for v in ranged.values()}
                if len(kinds) > 1:
                    raise InputError(f"filter {key!r}: range bounds must all be numbers or all be strings, "
                                     f"got {_short(ranged)}")
            for op, value in cond.items():
                clauses.append(_leaf(key, op, value, list_keys))
        else:
            clauses.append(_leaf(key, "$eq", cond, list_keys))
    return clauses[0] if len(clauses) == 1 else "(" + " and ".join(clauses) + ")"


def _leaf(key: str, op: str, value: Any, list_keys: set[str]) -> str:
    path = f"flat[{_key(key)}]"
    if op in ("$eq", "$ne"):
        expr = f"json_contains({path}, {_literal(value, key, op)})"
        return expr if op == "$eq" else f"(not {expr})"
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)) or not value:
            raise InputError(f"filter {key!r}: {op} needs a non-empty list, got {_short(value)}")
        items = ", ".join(dict.fromkeys(_literal(v, key, op) for v in value))
        expr = f"json_contains_any({path}, [{items}])"
        return expr if op == "$in" else f"(not {expr})"
    if op in _COMPARE:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InputError(f"filter {key!r}: {op} compares numbers or strings, got {_short(value)}")
        if key in list_keys:
            raise InputError(f"filter {key!r}: {op} on a key that holds lists (or several values) in some "
                             "documents cannot be expressed in Milvus (SQLite matches any element); "
                             "use $eq/$in on it, or a SQLite store")
        return f"scal[{_key(key)}] {_COMPARE[op]} {_literal(value, key, op)}"
    raise InputError(f"filter {key!r}: unknown operator {op!r}; use one of {sorted(_OPS)}")


# -- the collection -------------------------------------------------------------------------
class _SmallIndex:
    """Stands where ``VectorIndex`` does for ``ask`` and MMR: the few vectors they look at."""

    def __init__(self, dim: int) -> None:
        self.rows = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, dim), dtype=np.float32)

    def refresh(self) -> None:
        return None

    def vectors_for(self, rows: Any, *, missing_as_zero: bool = False) -> np.ndarray:
        """As ``VectorIndex.vectors_for``, over the rows ``rows_for_ids`` fetched last."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        held = (rows >= 0) & (rows < len(self.matrix))
        if not held.all() and not missing_as_zero:
            raise KeyError(int(rows[np.argmin(held)]))
        out = np.zeros((len(rows), self.matrix.shape[1]), dtype=np.float32)
        out[held] = self.matrix[rows[held]]
        return out

    def save(self) -> bool:
        return False


class MilvusCollection(Collection):
    """``nearspace.api.Collection`` whose documents, vectors and keyword index live in Milvus."""

    def __init__(self, store: MilvusStore, data: MilvusCollectionData, encoder: Encoder | None) -> None:
        self.store = store
        self.data = data
        self._encoder = encoder
        self._spec = None  # read from the collection's properties on first use (Collection.spec)
        self.index = _SmallIndex(data.dim)
        data.store_collection_index = self.index  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"MilvusCollection(name={self.name!r}, uri={self.store.uri!r}, encoder={self.data.encoder!r})"

    def ids(self, where: dict[str, Any] | None = None) -> list[str]:
        """As ``Collection.ids``: the filter runs inside Milvus ([12/13]: LlamaIndex deletes by document)."""
        if not where:
            return list(self.data.ids())
        expr = compile_filter(where, self.data.list_keys())
        out: list[str] = []
        try:
            iterator = self.store.client.query_iterator(self.data.mname, batch_size=1000, filter=expr,
                                                        output_fields=["id"])
            try:
                while batch := iterator.next():
                    out += [row["id"] for row in batch]
            finally:
                iterator.close()
        except Exception as exc:  # noqa: BLE001
            raise _client_error(exc, f"the filter on {self.name!r}") from None
        return out

    def flush(self) -> bool:
        """Ask Milvus to seal what was written (it is durable either way)."""
        self.store.client.flush(self.data.mname)
        return False

    def search(self, query: str | None = None, k: int = 10, mode: str = "hybrid", where: dict[str, Any] | None = None,
               weights: Mapping[str, float] | None = None, diversity: float | None = None,
               fusion: Mapping[str, Any] | str | None = None, use_adapter: bool = True, *,
               vector: Any = None) -> list[SearchResult]:
        """As ``Collection.search``; the filter runs inside Milvus, fusion as locally."""
        from nearspace.search.engine import HYBRID_CANDIDATES, MODES
        from nearspace.search.fusion import DEFAULT_FUSION, RRF_K, fuse

        qvec = None
        if vector is not None:  # search by a vector you have: dense only, as locally
            from nearspace.validation import unit_vectors

            if query is not None:
                raise InputError("pass either a query or a vector, not both")
            qvec = unit_vectors(np.asarray(vector, dtype=np.float64).reshape(1, -1), 1, self.data.dim,
                                where=f"the query vector of {self.name!r}")[0]
            query, mode = "<vector>", "dense"
        elif query is None:
            raise InputError("search needs a query text or vector=")
        elif self.vectors_only and mode != "keyword":
            raise InputError(f"collection {self.name!r} holds your own vectors without a model: search it with "
                             "vector=..., or mode='keyword' over whatever texts were stored")
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty")
        if mode not in MODES:
            raise InputError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        if diversity is not None and not 0.0 <= diversity <= 1.0:
            raise InputError(f"diversity must be between 0 and 1, got {diversity!r}")
        spec = _fusion_spec(fusion) if fusion is not None else dict(self.data.config().get("fusion") or {})
        spec = dict(spec or DEFAULT_FUSION)  # the same default as SQLite's search engine
        if weights is not None:
            spec["weights"] = dict(weights)
        expr = compile_filter(where, self.data.list_keys()) if where else ""
        pool = k if not diversity else max(4 * k, 50)
        depth = pool if mode != "hybrid" else max(pool, HYBRID_CANDIDATES)
        if depth > MAX_TOPK:
            raise InputError(f"a Milvus search returns at most {MAX_TOPK:,} hits; asked for {depth:,}")
        lists: dict[str, list[tuple[str, float]]] = {}
        try:
            if mode in ("dense", "hybrid"):
                if qvec is None:
                    qvec = (self._embed_query if use_adapter else self._embed_query_plain)(query)
                lists["dense"] = self.data.dense_search(qvec, depth, expr)
            if mode in ("keyword", "hybrid"):
                lists["keyword"] = self.data.keyword_search(query, depth, expr)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _client_error(exc, f"the search in {self.name!r}") from None
        if mode == "hybrid":
            try:
                extra = {}
                try:  # the query-adaptive fusion also reads the query's length, as the SQLite engine passes it
                    from nearspace.search.fusion import query_terms

                    extra["n_terms"] = query_terms(query)
                except ImportError:
                    pass
                fused = fuse(lists, method=spec.get("method", "rrf"), weights=spec.get("weights"),
                             rrf_k=int(spec.get("rrf_k", RRF_K)), norm=spec.get("norm", "minmax"), **extra)[:pool]
            except ValueError as exc:
                raise InputError(str(exc)) from None
        else:
            fused = lists[mode][:pool]
        if diversity and fused:
            from nearspace.search.mmr import maximal_marginal_relevance

            ids = [i for i, _ in fused]
            positions = self.data.rows_for_ids(ids)
            picked = maximal_marginal_relevance([(positions[i], s) for i, s in fused], self.index,
                                                k=k, diversity=diversity)
            fused = [(ids[p], s) for p, s in picked]
        fused = fused[:k]
        ranks = {m: {i: r for r, (i, _) in enumerate(hits, start=1)} for m, hits in lists.items()}
        raw = {m: dict(hits) for m, hits in lists.items()}
        docs = self.data.get([i for i, _ in fused])
        return SearchResults([SearchResult(id=doc.id, score=float(score), text=doc.text, metadata=doc.metadata,
                                           title=doc.title, ranks={m: ranks[m].get(doc.id) for m in lists},
                                           scores={m: raw[m].get(doc.id) for m in lists})
                              for (_, score), doc in zip(fused, docs) if doc is not None], query=query, mode=mode)
