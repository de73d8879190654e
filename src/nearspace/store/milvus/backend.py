"""The Milvus engine behind the backend contract (``store/base.py``).

``open_store("milvus://HOST:PORT")`` reaches a Milvus server (standalone or cluster) and
``open_store("milvus-lite:PATH.db")`` a local milvus-lite file. Each nearspace collection is
one Milvus collection whose rows hold the id, title, text (title and text together in one
analysed field feeding Milvus's BM25 function), the metadata as given, two derived JSON
fields used only by filters (``store/milvus/filters.py``), the content hash and the unit
vector (COSINE). The encoder's name and dimension, the config (encoder spec, tuned fusion),
which metadata keys hold lists and a write version live in the Milvus collection's
properties; learned artifacts and folder-indexing records in a ``nearspace_artifacts``
collection. Nothing is kept on the local disk.

``nearspace.api.Collection`` drives this backend exactly as it drives SQLite: the same upsert
path (hash comparison, only new or changed text encoded, metadata-only changes keep the
stored vector) and the same search (``search/engine.py``), which asks this module for dense
and BM25 candidates with the filter pushed down and fuses them itself, so a tuned fusion
means the same thing on both engines.

Where Milvus differs by nature: there are no multi-request transactions (``transaction()``
runs its block as is; every write is idempotent on re-run, and folder bookkeeping is written
after the chunks it describes), a search returns at most 16,384 hits, and a collection
cannot be renamed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from nearspace.errors import CollectionNotFound, InputError, StoreError
from nearspace.store.base import FileRecord, Hit, Selection, StoredRow, check_against_stored, check_batch
from nearspace.store.milvus.client import (PREFIX, client_error, is_lite, like_prefix, lite_acquire,
                                           lite_release, milvus_name)
from nearspace.store.milvus.filters import compile_filter, filter_fields
from nearspace.store.sqlite.database import keyword_query
from nearspace.types import Document, content_hash

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


class MilvusStore:
    """The ``StoreBackend`` of a Milvus server or a milvus-lite file."""

    #: the engine picks its own vector index (AUTOINDEX)
    index_kinds = ("auto",)

    def __init__(self, uri: str, *, token: str | None = None) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise StoreError("Milvus stores need the 'milvus' extra: pip install 'nearspace[milvus]'") from None
        import logging
        import os

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # errors reach the caller as StoreError
        self.uri = self.location = uri
        try:
            self.client = MilvusClient(uri=uri, token=token or os.environ.get("NEARSPACE_MILVUS_TOKEN", ""))
        except Exception as exc:  # noqa: BLE001 - connection failures come in many types
            raise StoreError(f"cannot open Milvus store {uri}: {getattr(exc, 'message', None) or exc}") from None
        self._lite = is_lite(uri)
        self._closed = False
        if self._lite:
            lite_acquire(uri)
        self._loaded: set[str] = set()

    def __repr__(self) -> str:
        return f"MilvusStore({self.uri!r})"

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
        mname = milvus_name(name)
        if not self.client.has_collection(mname):
            return None
        props = dict(self.client.describe_collection(mname).get("properties") or {})
        if mname not in self._loaded:  # a reopened milvus-lite collection starts released
            self.client.load_collection(mname)
            self._loaded.add(mname)
        return props

    def collection_names(self) -> list[str]:
        names = []
        for mname in self.client.list_collections():
            if mname.startswith(PREFIX):
                props = self.client.describe_collection(mname).get("properties") or {}
                if "nearspace.name" in props:
                    names.append(props["nearspace.name"])
        return sorted(names)

    def open_collection(self, name: str) -> "MilvusCollection":
        props = self._props(name)
        if props is None:
            known = ", ".join(self.collection_names()) or "none yet"
            raise CollectionNotFound(f"unknown collection {name!r} in {self.uri} (collections: {known})")
        return MilvusCollection(self, name, props)

    def create_collection(self, name: str, encoder: str, dim: int) -> "MilvusCollection":
        if not _NAME_RE.match(name):
            raise InputError(f"invalid collection name {name!r}: use letters, digits, '_', '-', '.' (max 64)")
        if not encoder or not isinstance(dim, int) or dim <= 0:
            raise InputError("creating a collection needs an encoder name and a positive dimension")
        from pymilvus import DataType, Function, FunctionType

        client, mname = self.client, milvus_name(name)
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
                return self.open_collection(name)
            raise client_error(exc, f"creating collection {name!r}") from None
        self._loaded.add(mname)
        return MilvusCollection(self, name, props)

    def drop_collection(self, name: str) -> None:
        coll = self.open_collection(name)
        for art in list(coll.artifact_names()):
            coll.delete_artifact(art)
        coll.untrack_all()
        self.client.drop_collection(milvus_name(name))
        self._loaded.discard(milvus_name(name))

    def rename_collection(self, old: str, new: str, *, replace: bool = False) -> None:
        raise InputError(f"a Milvus store cannot rename collections ({old!r} -> {new!r}): its artifacts and file "
                         "records are keyed by name; copy it instead (nearspace copy)")

    def compact(self) -> None:
        for name in self.collection_names():
            self.client.compact(milvus_name(name))

    def info(self) -> dict[str, Any]:
        collections = []
        for name in self.collection_names():
            coll = self.open_collection(name)
            collections.append({"name": name, "count": coll.count(), "encoder": coll.encoder,
                                "dim": coll.dim, "config": coll.config(), "ann_bytes": 0})
        return {"path": self.uri, "engine": "milvus", "bytes": 0, "sqlite_bytes": 0, "collections": collections}


class MilvusCollection:
    """The ``CollectionBackend`` of one Milvus collection (no encoder involved)."""

    max_candidates: int | None = MAX_TOPK

    def __init__(self, store: MilvusStore, name: str, props: Mapping[str, str]) -> None:
        self.store, self.name, self.mname = store, name, milvus_name(name)
        self.client = store.client
        self.encoder = props["nearspace.encoder"]
        self.dim = int(props["nearspace.dim"])
        self._list_keys = set(json.loads(props.get("nearspace.list_keys", "[]")))

    def __repr__(self) -> str:
        return f"MilvusCollection({self.name!r}, {self.store.uri!r})"

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

    def version(self) -> int:
        """The write version kept in the collection's properties: set (to a fresh nanosecond
        stamp) after every write or delete, so it stays equal until the collection changes."""
        return int(self._props().get("nearspace.version", "0"))

    def _bump_version(self) -> None:
        self.client.alter_collection_properties(self.mname, properties={"nearspace.version": str(time.time_ns())})

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

    def rows(self, *, batch_size: int = 1000) -> Iterator[list[StoredRow]]:
        """Every row with its vector (Milvus has no read transaction: one iterator reads each
        row's fields together)."""
        for batch in self.iterate(_OUT + ["vector"], batch_size=batch_size):
            yield [StoredRow(_document(r), np.asarray(r["vector"], dtype=np.float32)) for r in batch]

    def ids_with_prefix(self, prefix: str) -> list[str]:
        return [r["id"] for r in self.client.query(self.mname, filter=f'id like "{like_prefix(prefix)}"',
                                                   output_fields=["id"]) if r["id"].startswith(prefix)]

    # -- writes ------------------------------------------------------------------------
    def write(self, docs: Sequence[Document], vectors: np.ndarray, *, replace: bool,
              encoded: Sequence[bool] | np.ndarray | None = None,
              also: Callable[[], None] | None = None) -> dict[str, int]:
        """Upsert a batch; the contract of ``CollectionData.write`` (Milvus writes are per
        request, not transactions: a batch interrupted half-way is completed by re-running)."""
        vectors = check_batch(self.name, self.dim, docs, vectors)
        existing = self._fetch([d.id for d in docs], ["id", "hash", "meta"])
        check_against_stored(self.name, docs, {i: r["hash"] for i, r in existing.items()}, encoded, replace=replace)
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
                raise client_error(exc, f"writing {len(rows)} document(s) to {self.name!r}") from None
            self._bump_version()
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
        flat, scal = filter_fields(doc.metadata, list_keys)
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

    def tracked_files(self) -> dict[str, FileRecord]:
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

    def delete(self, ids: Sequence[str]) -> int:
        existing = list(self._fetch(list(ids), ["id"]))
        if existing:
            self.client.delete(self.mname, ids=existing)
            self._bump_version()
        return len(existing)

    def delete_in_transaction(self, ids: Sequence[str]) -> int:
        """As ``delete`` (Milvus has no transaction to join)."""
        return self.delete(ids)

    def transaction(self) -> AbstractContextManager[Any]:
        """Milvus has no multi-request transactions: the block runs as it is (each write is
        idempotent on re-run, see ``write``)."""
        return nullcontext()

    # -- search candidates ------------------------------------------------------------------
    def select(self, where: dict[str, Any]) -> Selection:
        return Selection(compile_filter(where, self.list_keys()))

    def selected_ids(self, selection: Selection) -> list[str]:
        out: list[str] = []
        try:
            iterator = self.client.query_iterator(self.mname, batch_size=1000, filter=selection.handle,
                                                  output_fields=["id"])
            try:
                while batch := iterator.next():
                    out += [row["id"] for row in batch]
            finally:
                iterator.close()
        except Exception as exc:  # noqa: BLE001
            raise client_error(exc, f"the filter on {self.name!r}") from None
        return out

    def dense_candidates(self, vector: np.ndarray, limit: int, selection: Selection | None = None) -> list[Hit]:
        try:
            hits = self.client.search(self.mname, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                      anns_field="vector", limit=limit, output_fields=[],
                                      filter=selection.handle if selection else "",
                                      search_params={"metric_type": "COSINE"})
        except Exception as exc:  # noqa: BLE001
            raise client_error(exc, f"the search in {self.name!r}") from None
        return [(h["id"], float(h["distance"])) for h in hits[0]]

    def keyword_candidates(self, query: str, limit: int, selection: Selection | None = None) -> list[Hit]:
        # the same terms SQLite's keyword search keeps (stop words and single characters dropped)
        terms = keyword_query(query).replace('"', "").split(" OR ")
        text = " ".join(t for t in terms if t)
        if not text:
            return []
        try:
            hits = self.client.search(self.mname, data=[text], anns_field="sparse", limit=limit, output_fields=[],
                                      filter=selection.handle if selection else "",
                                      search_params={"metric_type": "BM25"})
        except Exception as exc:  # noqa: BLE001
            raise client_error(exc, f"the keyword search in {self.name!r}") from None
        # milvus-lite reports BM25 as a negative distance, a server as the positive score: both rank best first
        return [(h["id"], abs(float(h["distance"]))) for h in hits[0]]

    def has_words(self) -> bool:
        return bool(self.client.query(self.mname, filter='content != ""', output_fields=["id"], limit=1))

    def flush(self) -> bool:
        """Ask Milvus to seal what was written (it is durable either way); no graph is saved here."""
        self.client.flush(self.mname)
        return False


def _canon(meta: Any) -> str:
    return json.dumps(meta or {}, sort_keys=True, ensure_ascii=False)


def _document(row: dict[str, Any]) -> Document:
    title = row.get("title") or ""
    content = row["content"]
    return Document(row["id"], content[len(title) + 1:] if title else content, row.get("meta") or {}, title)
