"""The Python API: ``Store`` (one SQLite file of named collections) and ``Collection``.

    >>> store = nearspace.open_store("my.db")
    >>> docs = store.collection("notes")
    >>> docs.upsert(ids=["a"], texts=["Dropout randomly silences units during training."])
    >>> docs.search("regularisation", k=5, mode="hybrid")
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from nearspace.encoders import DEFAULT_ENCODER, Encoder, load_encoder
from nearspace.encoders.base import as_encoder
from nearspace.encoders.registry import NO_MODEL_NAME, canonical_name, encoder_from_spec, known_spec
from nearspace.errors import EncoderMismatch, InputError, StoreError
from nearspace.store.base import CollectionBackend, StoreBackend
from nearspace.store.registry import open_backend
from nearspace.types import Document, EncoderSpec, SearchResult, content_hash, embedding_text
from nearspace.validation import check_query, check_where, make_documents, unit_vectors

DEFAULT_COLLECTION = "default"
#: encoder name recorded for a collection created from a dimension alone (your own vectors);
#: its spec is ``EncoderSpec(kind="none", ...)``
VECTORS_ONLY = NO_MODEL_NAME
DEFAULT_BATCH = 256


def open_store(path: str | Path, *, encoder: Encoder | str | None = None, precision: str = "auto") -> "Store":
    """Open (or create) the store at ``path``: a SQLite file, or ``milvus://HOST:PORT`` /
    ``milvus-lite:PATH.db`` for a Milvus-backed store with the same API (extra ``milvus``).
    The scheme picks the backend (``nearspace.store.registry.open_backend``)."""
    return Store(path, encoder=encoder, precision=precision)


class Store:
    """Named collections in one backend: a SQLite file (derived ANN files in ``<path>.ann/``)
    or a Milvus server. Encoders are resolved here; storage is the backend's."""

    def __init__(self, path: str | Path, *, encoder: Encoder | str | None = None,
                 precision: str = "auto", exact_threshold: int | None = None,
                 backend: StoreBackend | None = None) -> None:
        self.backend = backend if backend is not None else open_backend(path, exact_threshold=exact_threshold)
        self.path = getattr(self.backend, "path", self.backend.location)
        self.uri = self.backend.location
        self._encoder = encoder
        self.precision = precision

    # SQLite stores only: the file and the derived-index folder, for tools that work on them
    @property
    def db(self):
        return self._sqlite("db")

    @property
    def ann_dir(self) -> Path:
        return self._sqlite("ann_dir")

    def _sqlite(self, what: str):
        try:
            return getattr(self.backend, what)
        except AttributeError:
            raise InputError(f"store {self.uri} is not a SQLite store: it has no {what}") from None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    def close(self) -> None:
        self.backend.close()

    def _resolve_encoder(self, encoder: Encoder | EncoderSpec | str | None) -> Encoder | None:
        """A name, a spec or an encoder object (protocol v1 or v2) as a protocol-v2 encoder."""
        chosen = encoder if encoder is not None else self._encoder
        if chosen is None:
            return None
        if isinstance(chosen, str):
            return load_encoder(chosen, precision=self.precision)
        if isinstance(chosen, (EncoderSpec, Mapping)):
            return encoder_from_spec(chosen, precision=self.precision)
        return as_encoder(chosen)

    def collection(self, name: str = DEFAULT_COLLECTION, *, encoder: Encoder | str | None = None,
                   create: bool = True, dim: int | None = None, metric: str | None = None,
                   index: str | None = None, ef_search: int | None = None) -> "Collection":
        """Open collection ``name``, creating it (with the default encoder) if ``create``.

        An existing collection refuses an encoder whose name or dimension differs from
        the one it was built with. ``dim`` (with ``metric``, cosine) instead of an encoder
        makes a collection of your own vectors: no model is ever loaded for it. ``index``
        chooses the vector index and is stored with the collection: ``auto`` (exact below
        20,000 vectors, HNSW above), ``exact``, ``hnsw``, ``int8`` or ``binary`` (quantised
        scans with float rescoring); a Milvus store's engine picks its own (``auto`` only).
        ``ef_search``, also stored, fixes the HNSW search breadth (more: higher recall, slower
        queries); unset, it grows with the collection (96 up to 250k vectors, 312 at 1M).
        """
        from nearspace.store.sqlite.vectors import check_ef_search, check_index_kind

        if index is not None:
            check_index_kind(index)
            kinds = getattr(self.backend, "index_kinds", None)
            if kinds is not None and index not in kinds:
                raise InputError(f"store {self.uri} chooses its own vector index; index={index!r} is not one of "
                                 f"{', '.join(kinds)} (the other kinds are for SQLite stores)")
        if ef_search is not None:
            ef_search = check_ef_search(ef_search)
        if dim is not None or metric is not None:
            coll = self._vector_collection(name, dim, metric or "cosine", create=create)
            return coll._choose_index(index, ef_search)
        resolved = self._resolve_encoder(encoder)
        if not create or name in self.backend.collection_names():
            backend = self.backend.open_collection(name)
        else:
            resolved = resolved or load_encoder(DEFAULT_ENCODER, precision=self.precision)
            backend = self.backend.create_collection(name, canonical_name(resolved.name), resolved.dim)
            if "encoder_spec" not in backend.config():  # not when another process created it first
                record_spec(backend, resolved.spec)
                stamp_probe(backend, resolved)
        if resolved is not None:
            check_encoder(backend, canonical_name(resolved.name), resolved.dim)
        return Collection(self, backend, resolved)._choose_index(index, ef_search)

    def _vector_collection(self, name: str, dim: int | None, metric: str, *, create: bool) -> "Collection":
        if metric != "cosine":
            raise InputError(f"metric must be 'cosine' (vectors are compared by cosine), got {metric!r}")
        if not create or name in self.backend.collection_names():
            backend = self.backend.open_collection(name)
            if dim is not None and backend.dim != dim:
                raise InputError(f"collection {name!r} holds vectors of dimension {backend.dim}, not {dim}")
        else:
            if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
                raise InputError(f"dim must be a positive integer, got {dim!r}")
            backend = self.backend.create_collection(name, VECTORS_ONLY, dim)
            if "encoder_spec" not in backend.config():
                record_spec(backend, EncoderSpec(kind="none", name=VECTORS_ONLY, dim=dim))
        return Collection(self, backend, None)

    def get_collection(self, name: str = DEFAULT_COLLECTION) -> "Collection":
        """Open an existing collection (CollectionNotFound if it does not exist)."""
        return self.collection(name, create=False)

    def list_collections(self) -> list[str]:
        return self.backend.collection_names()

    def drop_collection(self, name: str) -> None:
        self.backend.drop_collection(name)

    def compact(self) -> None:
        """Give the space of deleted rows back (SQLite: VACUUM, vector files rewritten with live
        rows, HNSW graphs with many deleted nodes rebuilt; Milvus: the engine's compaction)."""
        self.backend.compact()

    def info(self) -> dict[str, Any]:
        from nearspace.encoders.registry import choose_backend, describe_choice

        return {**self.backend.info(), "encoder_backend": choose_backend(self.precision),
                "encoder_choice": describe_choice(self.precision)}


def check_encoder(backend: CollectionBackend, encoder: str, dim: int) -> None:
    """Refuse an encoder other than the one a collection was built with (name or dimension)."""
    if encoder != backend.encoder:
        raise EncoderMismatch(f"collection {backend.name!r} was built with encoder {backend.encoder!r} "
                              f"(dim {backend.dim}); refusing encoder {encoder!r}")
    if dim != backend.dim:
        raise EncoderMismatch(f"collection {backend.name!r} holds {backend.dim}-dimensional vectors; "
                              f"refusing an encoder of dimension {dim}")


def record_spec(data: Any, spec: EncoderSpec) -> None:
    """Store the encoder spec with a new collection (its config), so it reopens with no encoder.

    An object without a kind of its own (protocol v1) named like a known model (a wrapper of
    the bundled one, say) is recorded as that model's kind."""
    if spec.kind == "custom":
        known = known_spec(spec.name, spec.dim)
        if known is not None and known.kind not in ("none", "onehot", "tfidf"):
            spec = EncoderSpec(**{**spec.to_dict(), "kind": known.kind,
                                  "max_seq_length": spec.max_seq_length or known.max_seq_length})
    data.set_config(encoder_spec=spec.to_dict())


#: the text whose vector fingerprints a collection's model (the stamp's probe)
PROBE_TEXT = "nearspace probe: a quick brown fox jumps over the lazy dog near the river bank."
PROBE_ARTIFACT = "encoder_probe"
#: a model whose probe vector is less similar than this to the stamp's is another model
#: (bf16 or ONNX against fp32 torch of the same weights: 0.9999 and above)
PROBE_MIN_COSINE = 0.99


def stamp_probe(backend: CollectionBackend, encoder: Encoder) -> None:
    """Fingerprint the model of a new collection: its vector for :data:`PROBE_TEXT` (an artifact,
    with its SHA-256), so that a model of the same name and dimension but other weights -- or an
    endpoint now serving another model -- is refused later instead of mixing two spaces."""
    import hashlib

    try:
        vector = np.asarray(encoder.encode_documents([PROBE_TEXT], show_progress=False)[0], dtype=np.float32)
    except Exception:  # noqa: BLE001 - a stand-in that encodes nothing (vectors from a file): no probe
        return
    if vector.shape != (backend.dim,) or not np.isfinite(vector).all():
        return
    backend.put_artifact(PROBE_ARTIFACT, vector.tobytes(), {"text": PROBE_TEXT, "model": encoder.name,
                                                            "sha256": hashlib.sha256(vector.tobytes()).hexdigest()})


def check_probe(backend: CollectionBackend, encoder: Encoder) -> None:
    """Refuse ``encoder`` when its probe vector is not the stamped model's (see :func:`stamp_probe`)."""
    stored = backend.get_artifact(PROBE_ARTIFACT)
    if stored is None:
        return
    value, meta = stored
    expected = np.frombuffer(value, dtype=np.float32)
    if expected.shape != (backend.dim,):
        return
    got = np.asarray(encoder.encode_documents([meta.get("text", PROBE_TEXT)], show_progress=False)[0],
                     dtype=np.float64)
    cosine = float(got @ expected / ((np.linalg.norm(got) * np.linalg.norm(expected)) or 1.0))
    if cosine < PROBE_MIN_COSINE:
        raise EncoderMismatch(f"collection {backend.name!r} was built with model {meta.get('model', backend.encoder)!r}; "
                              f"encoder {encoder.name!r} gives other vectors (cosine {cosine:.3f} on the stamp's probe "
                              "text): refusing to mix two embedding spaces (re-index into a new collection instead)")


def model_stamp(backend: CollectionBackend) -> dict[str, Any]:
    """A collection's stamp as ``nearspace models`` and the server show it: its encoder spec plus
    the first 16 hex digits of its probe fingerprint (None for a collection without one)."""
    probe = backend.get_artifact(PROBE_ARTIFACT)
    return {**stored_spec(backend).to_dict(), "fingerprint": probe[1].get("sha256", "")[:16] if probe else None}


def stored_spec(data: Any) -> EncoderSpec:
    """The spec stored with a collection, or the one its encoder name implies (older stores)."""
    raw = data.config().get("encoder_spec")
    if raw:
        return EncoderSpec.from_dict(raw)
    # a name no built-in kind knows (a custom encoder of an old store) stays custom: said on load
    return known_spec(data.encoder, data.dim) or EncoderSpec(kind="custom", name=data.encoder, dim=data.dim)


class Collection:
    """Documents with vectors, metadata and a keyword index; searchable three ways."""

    def __init__(self, store: Store, backend: CollectionBackend, encoder: Encoder | None) -> None:
        self.store = store
        self.backend = backend
        self._encoder = encoder
        self._spec: EncoderSpec | None = None
        self._probe_checked = False

    @property
    def name(self) -> str:
        return self.backend.name

    def _choose_index(self, kind: str | None, ef_search: int | None = None) -> "Collection":
        """Record the vector index kind and HNSW breadth with the collection (kept until changed)."""
        config = self.backend.config() if kind is not None or ef_search is not None else {}
        if kind is not None and config.get("index", "auto") != kind:
            self.backend.set_config(index=kind)
        if ef_search is not None and config.get("ef_search") != ef_search:
            # stored, not pinned on this object: every open Collection reads it at its next search
            self.backend.set_config(ef_search=ef_search)
        return self

    @property
    def spec(self) -> EncoderSpec:
        """The encoder spec stored with the collection (derived from its encoder's name for a
        collection written before specs were stored): enough to load the encoder again."""
        if self._spec is None:  # fixed for the collection's life: read once
            self._spec = stored_spec(self.backend)
        return self._spec

    @property
    def encoder(self) -> Encoder:
        """The collection's encoder, loaded from its spec on first use (keyword search never loads it)."""
        if self._encoder is None:
            spec = self.spec
            if not spec.has_model:
                raise InputError(f"collection {self.name!r} holds your own vectors and has no model to encode "
                                 "text: pass vectors= to upsert, and search(vector=...)")
            from nearspace.errors import EncoderUnavailable

            try:
                self._encoder = encoder_from_spec(spec, precision=self.store.precision)
            except EncoderUnavailable as exc:
                raise EncoderUnavailable(f"collection {self.name!r} was built with encoder {spec.name!r} "
                                         f"(kind {spec.kind!r}), which cannot be loaded here: {exc}; or pass "
                                         f"encoder= when opening it") from exc
            if self._encoder.dim != self.backend.dim:
                raise EncoderMismatch(f"encoder {self.backend.encoder!r} now has dimension {self._encoder.dim}, "
                                      f"collection {self.name!r} holds {self.backend.dim}")
        if not self._probe_checked:  # once per handle: one short encode
            check_probe(self.backend, self._encoder)
            self._probe_checked = True
        return self._encoder

    @property
    def vectors_only(self) -> bool:
        """True for a collection created from a dimension alone (no model)."""
        return not self.spec.has_model

    @property
    def dim(self) -> int:
        """The dimension of the stored vectors."""
        return self.backend.dim

    @property
    def encoder_name(self) -> str:
        """The encoder recorded with the collection (the model behind its vectors)."""
        return self.backend.encoder

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return (f"Collection(name={self.name!r}, count={self.count()}, encoder={self.backend.encoder!r}, "
                f"store={self.store.uri!r})")

    # -- writing --------------------------------------------------------------------------
    def add(self, ids: Sequence[str], texts: Sequence[str], *, metadatas: Sequence[dict] | None = None,
            titles: Sequence[str] | None = None, vectors: np.ndarray | None = None,
            batch_size: int = DEFAULT_BATCH, show_progress: bool | None = None) -> dict[str, int]:
        """Add new documents. Any id already stored (or repeated) is an error; nothing is written."""
        docs = make_documents(ids, texts, metadatas, titles, allow_repeats=False)
        clash = self.backend.hashes([d.id for d in docs])
        if clash:
            raise InputError(f"{len(clash)} id(s) already stored in {self.name!r}, e.g. "
                             f"{next(iter(clash))!r}; use upsert() to replace them")
        return self._write(docs, vectors, replace=False, batch_size=batch_size, show_progress=show_progress)

    def upsert(self, ids: Sequence[str], texts: Sequence[str] | None = None, *, metadatas: Sequence[dict] | None = None,
               titles: Sequence[str] | None = None, vectors: np.ndarray | None = None,
               batch_size: int = DEFAULT_BATCH, show_progress: bool | None = None) -> dict[str, int]:
        """Insert or replace documents by id.

        Semantics: a new id is added; an id whose title+text changed gets a new vector;
        an id whose text is unchanged but metadata differs only has its metadata replaced
        (no re-encoding); identical documents are skipped. Within one call, a repeated id
        keeps its last occurrence.
        """
        if texts is None:
            if vectors is None:
                raise InputError("upsert needs texts, or vectors (items may then have no text)")
            ids = [ids] if isinstance(ids, str) else list(ids)
            texts = [""] * len(ids)
        docs = make_documents(ids, texts, metadatas, titles, allow_repeats=True, allow_empty=vectors is not None)
        return self._write(docs, vectors, replace=True, batch_size=batch_size, show_progress=show_progress)

    def write_documents(self, docs: Iterable[Document], *, batch_size: int = DEFAULT_BATCH,
                        show_progress: bool | None = None, total: int | None = None,
                        vectors: np.ndarray | None = None) -> dict[str, int]:
        """Upsert pre-validated ``Document`` objects (the ingest path), with their own
        ``vectors`` (row-aligned, distinct ids) or encoded."""
        return self._write(list(docs), vectors, replace=True, batch_size=batch_size, show_progress=show_progress)

    def _write(self, docs: list[Document], vectors: np.ndarray | None, *, replace: bool,
               batch_size: int, show_progress: bool | None, encoded: np.ndarray | None = None,
               also_for: Callable[[list[Document]], Callable[[], None] | None] | None = None,
               encode: Callable[[list[str]], np.ndarray] | None = None) -> dict[str, int]:
        """Write ``docs`` batch by batch. ``vectors`` are the caller's (validated here), or with
        ``encoded`` a prepared matrix whose unmarked rows are placeholders for documents believed
        unchanged (re-checked inside each write). ``also_for(batch)`` may return bookkeeping to
        run inside that batch's transaction; ``encode`` replaces the encoder for changed texts."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if vectors is not None and encoded is None:
            vectors = unit_vectors(vectors, len(docs), self.backend.dim, where=f"collection {self.name!r}")
        totals = {"added": 0, "updated": 0, "metadata": 0, "unchanged": 0}
        if vectors is None and len(docs) > batch_size:
            # longest first across the whole input, so each encoded batch pads little;
            # the order is deterministic, so an interrupted run resumes batch for batch
            docs = sorted(docs, key=lambda d: -(len(d.title) + len(d.text)))
        if show_progress is None:
            show_progress = len(docs) >= 2 * batch_size
        progress = task = None
        if show_progress:
            from nearspace.progress import progress_bar

            progress = progress_bar()
            progress.start()
            task = progress.add_task(f"indexing into {self.name}", total=len(docs))
        try:
            for start in range(0, len(docs), batch_size):
                batch = docs[start:start + batch_size]
                if vectors is not None:
                    batch_vectors = vectors[start:start + batch_size]
                    batch_encoded = encoded[start:start + batch_size].copy() if encoded is not None else None
                else:
                    batch_vectors, batch_encoded = self._encode_changed(batch, encode)
                try:
                    counts = self._write_batch(batch, batch_vectors, batch_encoded, replace=replace,
                                               also=also_for(batch) if also_for is not None else None,
                                               encode=encode)
                except StoreError as exc:  # say how much of this call was committed before the fault
                    raise exc.with_progress(start, len(docs)) from exc.__cause__
                for key, value in counts.items():
                    totals[key] += value
                if progress is not None:
                    progress.advance(task, len(batch))
        finally:
            if progress is not None:
                progress.stop()
        return totals

    def _encode_changed(self, batch: list[Document], encode: Callable[[list[str]], np.ndarray] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for the batch, encoding only documents whose content is new or changed;
        returns ``(vectors, encoded)`` where ``encoded`` marks the rows that are real."""
        stored = self.backend.hashes([d.id for d in batch])
        need = [i for i, d in enumerate(batch) if stored.get(d.id) != content_hash(d.title, d.text)]
        out = np.zeros((len(batch), self.backend.dim), dtype=np.float32)
        encoded = np.zeros(len(batch), dtype=bool)
        self._encode_into(batch, need, out, encoded, encode)
        return out, encoded

    def _encode_into(self, batch: list[Document], positions: list[int], out: np.ndarray,
                     encoded: np.ndarray, encode: Callable[[list[str]], np.ndarray] | None = None) -> None:
        if positions:
            texts = [embedding_text(batch[i]) for i in positions]
            out[positions] = encode(texts) if encode is not None else \
                self.encoder.encode_documents(texts, show_progress=False)
            encoded[positions] = True

    def _write_batch(self, batch: list[Document], vectors: np.ndarray, encoded: np.ndarray | None,
                     *, replace: bool, also=None, encode=None) -> dict[str, int]:
        """One committed batch. The hashes are checked again inside the write transaction; a
        document another process changed after we read its hash is encoded and the batch
        retried, so a placeholder vector is never stored."""
        from nearspace.store.base import NeedVectors

        for _attempt in range(20):
            try:
                return self.backend.write(batch, vectors, replace=replace, encoded=encoded, also=also)
            except NeedVectors as need:
                assert encoded is not None
                self._encode_into(batch, need.positions, vectors, encoded, encode)
        # 20 rounds of other writers changing the same ids: encode everything and stop racing
        assert encoded is not None
        self._encode_into(batch, [i for i in range(len(batch)) if not encoded[i]], vectors, encoded, encode)
        return self.backend.write(batch, vectors, replace=replace, encoded=encoded, also=also)

    def index(self, paths: Sequence[str | Path] | str | Path, *, chunk_tokens: int = 200, overlap_tokens: int = 40,
              chunk_records: bool = True, max_bytes: int = 50 * 1024 * 1024, text_column: str | None = None,
              metadata_columns: Sequence[str] | None = None, batch_size: int = DEFAULT_BATCH,
              show_progress: bool | None = None, encode: Callable[[list[str]], np.ndarray] | None = None):
        """Index files and folders (the ingest pipeline, ``nearspace.ingest.pipeline``).

        ``.jsonl``/``.parquet`` files are records (each validated before anything is written);
        folders and other files (``.txt``, ``.md``, ``.html``, ``.pdf``, ``.docx``, ``.csv``, and
        ``.jsonl`` inside folders) are parsed and tracked: a re-run encodes only changed files,
        follows renames and drops deleted files. Anything longer than the model's window is
        chunked (``chunk_tokens`` word pieces, ``overlap_tokens`` shared) into ``<id>#0``, ``<id>#1``
        ...; with ``chunk_records=False`` a long record is refused instead. ``encode`` replaces
        the encode step (texts -> unit vectors), e.g. to encode on a cluster. Returns an
        ``IndexSummary``.
        """
        from nearspace.ingest.pipeline import index_paths

        if isinstance(paths, (str, Path)):
            paths = [paths]
        return index_paths(self, list(paths), chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens,
                           chunk_records=chunk_records, max_bytes=max_bytes, text_column=text_column,
                           metadata_columns=metadata_columns, batch_size=batch_size,
                           show_progress=show_progress, encode=encode)

    def delete(self, ids: Sequence[str] | str) -> int:
        """Delete by id; returns how many of them were stored."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        return self.backend.delete(ids)

    # -- reading --------------------------------------------------------------------------
    def count(self) -> int:
        return self.backend.count()

    def get(self, ids: Sequence[str] | str) -> list[Document | None] | Document | None:
        """Documents by id (None where missing); a single id returns a single document."""
        if isinstance(ids, str):
            return self.backend.get([ids])[0]
        return self.backend.get(list(ids))

    def search(self, query: str | None = None, k: int = 10, mode: str = "hybrid", where: dict[str, Any] | None = None,
               weights: Mapping[str, float] | None = None, diversity: float | None = None,
               fusion: Mapping[str, Any] | str | None = None, use_adapter: bool = True, *,
               vector: Any = None, rerank: Any = None, rerank_k: int | None = None) -> list[SearchResult]:
        """Search by meaning (``dense``), by words (``keyword``, BM25) or both (``hybrid``).

        Hybrid fuses the two rankings with reciprocal rank fusion (k=60) unless the
        collection stores a tuned fusion (``nearspace tune``) or ``fusion`` is given, e.g.
        ``{"method": "convex", "norm": "zscore", "weights": {"dense": 0.7, "keyword": 0.3}}``;
        ``weights`` alone tilts whichever method is in force. ``where`` is a metadata filter,
        e.g. ``{"topic": "ml", "year": {"$gte": 2020}}``. ``diversity`` (0..1) re-ranks with
        maximal marginal relevance. A trained query adapter (``nearspace adapt``) is applied
        unless ``use_adapter=False``. ``rerank`` (``ce:FOLDER``, ``rerank:MODEL@URL`` or a reranker
        object) rescores the top ``rerank_k`` (default max(k, 50)) first-stage candidates; the
        results then carry the reranker's score, and ``ranks``/``scores`` keep every stage's.
        Each result carries ``ranks`` per mode.
        """
        from nearspace.search.engine import search

        where = check_where(where)
        if vector is not None:  # search by a vector you have: dense only, same result type
            if query is not None:
                raise InputError("pass either a query or a vector, not both")
            if rerank is not None:
                raise InputError("a reranker reads the query text: search by a query to rerank, not by a vector")
            qvec = unit_vectors(np.asarray(vector, dtype=np.float64).reshape(1, -1), 1, self.backend.dim,
                                where=f"the query vector of {self.name!r}")[0]
            return search(self.backend, lambda _text: qvec, "<vector>", k=k, mode="dense",
                          where=where, weights=None, fusion={}, diversity=diversity)
        if query is None:
            raise InputError("search needs a query text or vector=")
        check_query(query)
        if self.vectors_only and mode != "keyword":
            raise InputError(f"collection {self.name!r} holds your own vectors without a model: search it with "
                             "vector=..., or mode='keyword' over whatever texts were stored")
        chosen = _fusion_spec(fusion) if fusion is not None else dict(self.backend.config().get("fusion") or {})
        embed = self._embed_query if use_adapter else self._embed_query_plain
        found = search(self.backend, embed, query, k=k, mode=mode, where=where,
                       weights=weights, fusion=chosen, diversity=diversity, rerank=rerank, rerank_k=rerank_k)
        if self.vectors_only and not found and not self.has_words():
            raise InputError(f"collection {self.name!r} holds your own vectors without text: there is nothing to "
                             "search by keyword; search it with vector=...")
        return found

    def has_words(self) -> bool:
        """Whether any stored title or text holds a word keyword search can match."""
        return self.backend.has_words()

    def ask(self, question: str, *, k: int = 5, budget: int = 1000, where: dict[str, Any] | None = None,
            generate: bool = False, rerank: Any = None, rerank_k: int | None = None):
        """Context for a language model: passages with citations plus an extractive answer.

        See ``nearspace.rag.ask``; ``generate=True`` also asks the chat endpoint named by
        ``NEARSPACE_LLM_URL``.
        """
        from nearspace.rag.ask import ask

        return ask(self, question, k=k, budget=budget, where=where, generate=generate, rerank=rerank,
                   rerank_k=rerank_k)

    def embed_queries(self, queries: Sequence[str], *, use_adapter: bool = True) -> np.ndarray:
        """Query vectors as search uses them (adapter applied when one is stored)."""
        vectors = self.encoder.encode_queries(list(queries), show_progress=False)
        adapter = self.adapter() if use_adapter else None
        return adapter.transform(vectors) if adapter is not None else vectors

    def adapter(self):
        """The stored query adapter, or None (cached per change of the stored artifact)."""
        from nearspace.learn.adapter import load_adapter

        return load_adapter(self.backend)

    def _embed_query(self, query: str) -> np.ndarray:
        return self.embed_queries([query])[0]

    def _embed_query_plain(self, query: str) -> np.ndarray:
        return self.encoder.encode_queries([query], show_progress=False)[0]

    def vector_of(self, doc_id: str) -> np.ndarray:
        """The stored (unit) vector of ``doc_id``; InputError if it is not stored."""
        found = self.vectors_of([doc_id])
        if doc_id not in found:
            raise InputError(f"id {doc_id!r} is not stored in {self.name!r}")
        return found[doc_id]

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored (unit) vectors of those ``ids`` that are stored, by id."""
        return self.backend.vectors_for_ids(list(ids))

    def vector_matrix(self) -> tuple[list[str], np.ndarray]:
        """``(ids, matrix)`` of every stored vector, read in one pass of the backend's rows."""
        from nearspace.store.base import vector_matrix

        return vector_matrix(self.backend)

    def ids(self, where: dict[str, Any] | None = None) -> list[str]:
        """Ids of the stored documents matching the metadata filter ``where`` (all when None)."""
        if not check_where(where):
            return list(self.backend.ids())
        return self.backend.selected_ids(self.backend.select(where))

    def flush(self) -> bool:
        """Save the derived indexes so the next process opens fast (SQLite: the keyword postings,
        which a cold CLI search then reads instead of re-tokenising, and the ANN graph; Milvus:
        the engine seals what was written). Returns False when there was no graph to save."""
        return self.backend.flush()

    def to_arrow(self):
        """The collection as a ``pyarrow.Table``: id, title, text, metadata (JSON text) and
        vector (fixed-size float32 list); see ``nearspace.integrations.arrow``."""
        from nearspace.integrations.arrow import to_arrow

        return to_arrow(self)

    def to_pandas(self):
        """The collection as a pandas DataFrame (metadata parsed, vectors as float32 arrays)."""
        from nearspace.integrations.arrow import to_pandas

        return to_pandas(self)


def _fusion_spec(fusion: Any) -> dict[str, Any]:
    """``"rrf"`` / ``"convex"`` are shorthand for ``{"method": ...}``; anything else must be a mapping."""
    if isinstance(fusion, str):
        return {"method": fusion}
    if not isinstance(fusion, Mapping):
        raise InputError(f"fusion must be 'rrf', 'convex' or a mapping such as {{'method': 'convex', "
                         f"'norm': 'zscore', 'weights': {{'dense': 0.6, 'keyword': 0.4}}}}, got {fusion!r:.80}")
    return dict(fusion)
