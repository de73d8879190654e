"""Incremental indexing of folders: parse, chunk, embed only what changed.

Each file's chunks and its bookkeeping row (content hash, size, mtime, chunk ids) are
committed in the same SQLite transaction, so an interrupted run loses nothing and the
next run resumes where it stopped. Unchanged files are recognised by size and mtime (and
by content hash when those moved); a file whose content reappears under a new path is a
rename and keeps its vectors; files that vanished lose their chunks.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from nearspace.ingest.chunking import Chunker
from nearspace.ingest.parsers import PARSED_SUFFIXES, ParseError, decode_text, parse_file
from nearspace.types import Document
from nearspace.validation import parse_cell, validate_document

RECORD_SUFFIXES = {".jsonl", ".ndjson", ".csv", ".tsv"}
IGNORE_FILE = ".nearspaceignore"
MAX_FILE_BYTES = 50 * 1024 * 1024
#: chunks per committed batch (a batch holds whole files only)
BATCH_CHUNKS = 256


@dataclass
class IngestSummary:
    files_seen: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    renamed: int = 0
    deleted: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_encoded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: files read as Windows-1252 or Latin-1 because they were not UTF-8: (path, encoding)
    decoded: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Pending:
    path: str
    digest: str
    size: int
    mtime_ns: int
    docs: list[Document]
    reuse: dict[str, np.ndarray] = field(default_factory=dict)  # id -> vector (renames)
    renamed_from: tuple[str, list[str]] | None = None


def walk(root: Path) -> Iterator[tuple[Path, str]]:
    """Files under ``root`` as (absolute path, path relative to root's parent).

    Follows symlinks but never loops (directories are visited once by device and inode),
    skips dot-directories and whatever ``.nearspaceignore`` (gitignore syntax) excludes.
    """
    import pathspec

    if root.is_file():
        yield root, root.name
        return
    ignore_file = root / IGNORE_FILE
    spec = pathspec.GitIgnoreSpec.from_lines(ignore_file.read_text().splitlines()) if ignore_file.exists() \
        else pathspec.GitIgnoreSpec.from_lines([])
    seen: set[tuple[int, int]] = set()
    for directory, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(directory)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        rel_dir = Path(directory).relative_to(root)
        keep = []
        for name in sorted(dirnames):
            rel = (rel_dir / name).as_posix()
            if not name.startswith(".") and not spec.match_file(rel + "/"):
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            if name == IGNORE_FILE or spec.match_file(rel):
                continue
            yield Path(directory) / name, Path(root.name, rel).as_posix()


class FolderIndexer:
    """Index files and folders into a collection, incrementally."""

    def __init__(self, collection, *, chunk_tokens: int = 200, overlap_tokens: int = 40,
                 max_bytes: int = MAX_FILE_BYTES, text_column: str | None = None,
                 metadata_columns: Sequence[str] | None = None, encode=None) -> None:
        self.collection = collection
        self.encode = encode  # replaces the collection's encoder for changed chunks (Ray)
        self.data = collection.backend
        self.chunk_tokens, self.overlap_tokens = chunk_tokens, overlap_tokens
        self.max_bytes = max_bytes
        self.text_column = text_column
        self.metadata_columns = list(metadata_columns) if metadata_columns else None
        self._chunker: Chunker | None = None
        self._summary: IngestSummary | None = None

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            encoder = self.collection.encoder
            self._chunker = Chunker(encoder, max_tokens=self.chunk_tokens, overlap_tokens=self.overlap_tokens)
        return self._chunker

    # -- the run ----------------------------------------------------------------------------
    def index(self, roots: Sequence[str | Path], *, show_progress: bool = True) -> IngestSummary:
        started = time.perf_counter()
        summary = self._summary = IngestSummary()
        tracked = self.data.tracked_files()
        found: list[tuple[Path, str]] = []
        scopes = []
        for root in roots:
            root = Path(root)
            if not root.exists():
                summary.failed.append((str(root), "no such file or folder"))
                continue
            scopes.append(root.name if root.is_dir() else None)
            found.extend(walk(root))
        seen_paths = {rel for _, rel in found}
        # files indexed before under these roots that are gone now: deleted, or renamed
        vanished = {p: t for p, t in tracked.items() if p not in seen_paths and any(
            s is not None and (p == s or p.startswith(s + "/")) for s in scopes)}
        vanished_by_hash: dict[str, list[str]] = {}
        for path, (digest, *_rest) in vanished.items():
            vanished_by_hash.setdefault(digest, []).append(path)

        progress = task = None
        if show_progress:
            from nearspace.progress import progress_bar

            progress = progress_bar()
            progress.start()
            task = progress.add_task("files", total=len(found))
        pending: list[_Pending] = []
        pending_chunks = 0
        try:
            for path, rel in found:
                summary.files_seen += 1
                item = self._examine(path, rel, tracked, vanished, vanished_by_hash, summary)
                if item is not None:
                    pending.append(item)
                    pending_chunks += len(item.docs)
                    if pending_chunks >= BATCH_CHUNKS:
                        self._commit(pending, tracked, summary)
                        pending, pending_chunks = [], 0
                if progress is not None:
                    progress.update(task, advance=1, description=f"files ({summary.chunks_written} chunks)")
            self._commit(pending, tracked, summary)
            for path in list(vanished):  # whatever was not claimed by a rename is deleted
                self._forget(path, vanished[path][3], summary)
        finally:
            if progress is not None:
                progress.stop()
        self.collection.flush()
        summary.seconds = time.perf_counter() - started
        return summary

    def _examine(self, path: Path, rel: str, tracked, vanished, vanished_by_hash,
                 summary: IngestSummary) -> _Pending | None:
        suffix = path.suffix.lower()
        if suffix not in PARSED_SUFFIXES and suffix not in RECORD_SUFFIXES:
            summary.skipped.append((rel, f"unsupported file type {suffix or '(none)'}"))
            return None
        try:
            st = path.stat()
            if st.st_size > self.max_bytes:
                summary.skipped.append((rel, f"larger than {self.max_bytes // (1024 * 1024)} MB "
                                             f"({st.st_size / (1024 * 1024):.0f} MB)"))
                return None
            old = tracked.get(rel)
            if old is not None and old[1] == st.st_size and old[2] == st.st_mtime_ns:
                summary.unchanged += 1
                return None
            raw = path.read_bytes()
        except OSError as exc:
            summary.failed.append((rel, exc.strerror or str(exc)))
            return None
        digest = hashlib.sha256(raw).hexdigest()
        if old is not None and old[0] == digest:  # touched, not changed
            return _Pending(rel, digest, st.st_size, st.st_mtime_ns, [], {})
        if old is None and vanished_by_hash.get(digest):
            source = vanished_by_hash[digest].pop()
            old_ids = vanished.pop(source)[3]
            return self._renamed(rel, source, old_ids, digest, st, summary)
        try:
            from nearspace.ingest.timeout import time_limit

            with time_limit():  # a hostile file that would hang the parser becomes this file's failure
                docs = self._documents(path, rel, raw)
        except ParseError as exc:
            summary.failed.append((rel, str(exc)))
            return None
        except Exception as exc:  # a parser library failing on a hostile file must not end the run
            summary.failed.append((rel, f"{type(exc).__name__}: {str(exc)[:100]}"))
            return None
        if not docs:
            summary.skipped.append((rel, "no text"))
            return None
        if old is None:
            summary.added += 1
        else:
            summary.changed += 1
        return _Pending(rel, digest, st.st_size, st.st_mtime_ns, docs)

    def _renamed(self, rel: str, source: str, old_ids: list[str], digest: str, st,
                 summary: IngestSummary) -> _Pending:
        old_docs = self.data.get(old_ids)
        stored = self.data.vectors_for_ids(old_ids)
        docs, reuse = [], {}
        for old_id, doc in zip(old_ids, old_docs):
            if doc is None or old_id not in stored:
                continue
            new_id = rel + old_id[len(source):] if old_id.startswith(source) else old_id
            metadata = {**doc.metadata, "source": rel}
            docs.append(Document(new_id, doc.text, metadata, doc.title))
            reuse[new_id] = stored[old_id]
        summary.renamed += 1
        return _Pending(rel, digest, st.st_size, st.st_mtime_ns, docs, reuse, (source, old_ids))

    # -- turning a file into documents ------------------------------------------------------
    def _documents(self, path: Path, rel: str, raw: bytes) -> list[Document]:
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            from nearspace.errors import InputError
            from nearspace.ingest.readers import chunk_long_records, read_jsonl_bytes

            try:
                records = read_jsonl_bytes(raw, rel)
                # the pipeline's one chunking rule: a long record is chunked here as on the command line
                return chunk_long_records(records, self.chunker)[0]
            except InputError as exc:
                raise ParseError(str(exc).removeprefix(f"{rel}:")) from None
        if suffix in (".csv", ".tsv"):
            return self._csv(rel, raw, "\t" if suffix == ".tsv" else ",")
        parsed = parse_file(path, raw)
        self._decoded(rel, parsed.encoding)
        docs: list[Document] = []
        line_starts = _line_starts(parsed.full_text)
        for section in parsed.sections:
            title = " > ".join(section.headings)
            for chunk in self.chunker.chunk(section.text, title):
                start = section.offset + chunk.start
                end = section.offset + chunk.end
                # lines of the file itself (for HTML, mapped back from the extracted text)
                metadata = {"source": rel, "kind": parsed.kind, "chunk": len(docs), "start": start, "end": end,
                            "line_start": parsed.file_line(_line_of(line_starts, start)),
                            "line_end": parsed.file_line(_line_of(line_starts, max(start, end - 1)), end=True)}
                if section.headings:
                    metadata["headings"] = section.headings
                if section.page is not None:
                    metadata["page"] = section.page
                docs.append(Document(f"{rel}#{len(docs)}", chunk.text, metadata, title))
        return docs

    def _decoded(self, rel: str, encoding: str) -> None:
        """Note a file read in another encoding than UTF-8 (the summary says which)."""
        if encoding != "utf-8" and self._summary is not None:
            self._summary.decoded.append((rel, encoding))

    def _csv(self, rel: str, raw: bytes, delimiter: str) -> list[Document]:
        text, encoding = decode_text(raw, rel)
        self._decoded(rel, encoding)
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        rows = list(reader)
        if not rows or not reader.fieldnames:
            raise ParseError("no rows")
        columns = reader.fieldnames
        text_columns = self._text_columns(columns, rows)
        meta_columns = self.metadata_columns or [c for c in columns if c not in text_columns and c != "id"]
        missing = [c for c in meta_columns if c not in columns]
        if missing:
            raise ParseError(f"no column {missing[0]!r} (columns: {', '.join(columns)})")
        docs = []
        for number, row in enumerate(rows, start=2):
            # every text column is embedded (a question/answer table: both), in the file's column order
            body = "\n".join(v for v in ((row.get(c) or "").strip() for c in text_columns) if v)
            if not body:
                continue
            doc_id = (row.get("id") or "").strip() or f"{rel}:{number}"
            metadata = {"source": rel, "row": number, **{c: parse_cell(row.get(c)) for c in meta_columns}}
            # the same checks as every other reader (ids, text, metadata), naming the row
            docs.append(validate_document(doc_id, body, metadata, where=f"{rel} row {number}"))
        return docs

    def _text_columns(self, columns: list[str], rows: list[dict]) -> list[str]:
        """The columns embedded as text: ``text_column`` (comma-separated names) when given, else
        every column but ``id`` and the metadata columns whose cells are mostly prose (more than
        one word), else the longest column."""
        if self.text_column:
            wanted = [c.strip() for c in self.text_column.split(",") if c.strip()]
            unknown = [c for c in wanted if c not in columns]
            if unknown:
                raise ParseError(f"no column {unknown[0]!r} (columns: {', '.join(columns)})")
            return wanted
        candidates = [c for c in columns if c != "id" and c not in (self.metadata_columns or [])]

        def prose(column: str) -> bool:
            cells = [(r.get(column) or "").strip() for r in rows]
            cells = [c for c in cells if c]
            return bool(cells) and sum(" " in c for c in cells) * 2 > len(cells)

        chosen = [c for c in candidates if prose(c)]
        if chosen:
            return chosen
        return [max(candidates or columns, key=lambda c: sum(len(r.get(c) or "") for r in rows))]

    # -- writing ------------------------------------------------------------------------------
    def _commit(self, pending: list[_Pending], tracked, summary: IngestSummary) -> None:
        if not pending:
            return
        docs = [d for item in pending for d in item.docs]
        vectors = np.zeros((len(docs), self.data.dim), dtype=np.float32)
        encoded = np.zeros(len(docs), dtype=bool)
        reused = {k: v for item in pending for k, v in item.reuse.items()}
        to_encode = [i for i, d in enumerate(docs) if d.id not in reused]
        for i, d in enumerate(docs):
            if d.id in reused:
                vectors[i] = reused[d.id]
                encoded[i] = True
        if to_encode:
            encoded_docs = [docs[i] for i in to_encode]
            vectors[to_encode], encoded[to_encode] = self.collection._encode_changed(encoded_docs, self.encode)
            summary.chunks_encoded += len(to_encode)

        def bookkeeping() -> None:
            for item in pending:
                new_ids = [d.id for d in item.docs]
                old = tracked.get(item.path)
                if not item.docs and old is not None:  # touched only: keep its chunks
                    new_ids = old[3]
                stale = [i for i in (old[3] if old else []) if i not in set(new_ids)]
                if item.renamed_from is not None:
                    source, old_ids = item.renamed_from
                    stale += [i for i in old_ids if i not in set(new_ids)]
                    self.data.untrack_file(source)
                summary.chunks_deleted += self.data.delete_in_transaction(stale) if stale else 0
                self.data.track_file(item.path, item.digest, item.size, item.mtime_ns, new_ids)
                tracked[item.path] = (item.digest, item.size, item.mtime_ns, new_ids)

        # hashes are checked again inside the transaction (another writer may have changed them)
        self.collection._write_batch(docs, vectors, encoded, replace=True, also=bookkeeping, encode=self.encode)
        summary.chunks_written += len(docs)

    def _forget(self, path: str, ids: list[str], summary: IngestSummary) -> None:
        with self.data.transaction():
            summary.chunks_deleted += self.data.delete_in_transaction(ids)
            self.data.untrack_file(path)
        summary.deleted += 1


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _line_of(starts: list[int], offset: int) -> int:
    import bisect

    return bisect.bisect_right(starts, offset)
