"""Readers for .jsonl, .txt and .md files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from nearspace.errors import InputError, LimitError
from nearspace.jsonl import decode_line, iter_jsonl, parse_json_line, parse_json_object, read_bytes  # noqa: F401 (re-exported)
from nearspace.types import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
PARQUET_SUFFIXES = {".parquet"}  # id/text/title/metadata columns (nearspace export writes them)


@dataclass
class IngestReport:
    """What a walk over the inputs found: documents, plus files it skipped and why."""

    documents: list[Document] = field(default_factory=list)
    files: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0


def read_jsonl(path: str | Path, skipped: list[str] | None = None) -> list[Document]:
    """Documents from JSON Lines: ``id`` or ``_id``, ``text``, optional ``title`` and ``metadata``.

    See :func:`read_jsonl_bytes` for ``skipped``."""
    return read_jsonl_bytes(read_bytes(path), str(path), skipped)


def read_jsonl_bytes(raw: bytes, name: str, skipped: list[str] | None = None) -> list[Document]:
    """Documents from JSONL bytes; with a ``skipped`` list, a record that is valid JSON but not
    a usable document (empty, no id, bad metadata) is reported there and left out instead of
    stopping the read. Malformed JSON and over-limit lines always stop it."""
    from nearspace.validation import validate_document

    docs: list[Document] = []
    for lineno, record in iter_jsonl(raw, name):
        where = f"{name}:{lineno}"
        try:
            docs.append(_record_document(record, where, validate_document))
        except LimitError:
            raise
        except InputError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
    return docs


def read_utf8(path: Path) -> str:
    """A small text file's content, or one clear error (unreadable, not UTF-8 at byte N)."""
    raw = read_bytes(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


def _record_document(record: Any, where: str, validate_document) -> Document:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    doc_id = record.get("id", record.get("_id"))
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if doc_id is None:
        raise InputError(f"{where}: missing 'id' (or '_id')")
    if "text" not in record:
        raise InputError(f"{where}: missing 'text'")
    title = record.get("title") or ""
    text = record["text"]
    if isinstance(text, str) and not text.strip() and isinstance(title, str) and title.strip():
        text, title = title, ""  # a title-only record (BEIR has them): the title is its text
    return validate_document(doc_id, text, record.get("metadata"), title, where=where)


def read_text_file(path: str | Path, doc_id: str | None = None) -> Document:
    """One document per file; a Markdown file's first ``#`` heading becomes its title."""
    from nearspace.validation import validate_document

    path = Path(path)
    text = decode_line(read_bytes(path), str(path))
    title = ""
    if path.suffix.lower() in (".md", ".markdown"):
        for line in text.splitlines():
            if line.startswith("# "):
                title = line[2:].strip()
                break
    return validate_document(doc_id or path.name, text, {"source": str(path)}, title, where=str(path))


def collect_documents(paths: Iterable[str | Path]) -> IngestReport:
    """Read every input (files, or folders searched recursively) into one validated list.

    Raises InputError on the first bad file or line, so nothing is written from a bad run.
    Within the inputs a repeated id keeps its last occurrence (upsert semantics).
    """
    report = IngestReport()
    by_id: dict[str, Document] = {}
    for raw_path in paths:
        path = Path(raw_path)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
            for file in files:
                suffix = file.suffix.lower()
                if suffix in TEXT_SUFFIXES:
                    _keep(by_id, [read_text_file(file, str(file.relative_to(path)))], report)
                elif suffix in JSONL_SUFFIXES:
                    _keep(by_id, read_jsonl(file), report)
                else:
                    report.skipped.append((str(file), f"unsupported file type {suffix or '(none)'}"))
                    continue
                report.files += 1
        else:
            suffix = path.suffix.lower()
            if suffix in JSONL_SUFFIXES:
                _keep(by_id, read_jsonl(path), report)
            elif suffix in PARQUET_SUFFIXES:
                from nearspace.integrations.arrow import read_documents

                _keep(by_id, read_documents(path), report)
            elif suffix in TEXT_SUFFIXES:
                _keep(by_id, [read_text_file(path)], report)
            else:
                raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; "
                                 "use .jsonl, .parquet, .txt or .md (or a folder of them)")
            report.files += 1
    report.documents = list(by_id.values())
    return report


def _keep(by_id: dict[str, Document], docs: list[Document], report: IngestReport) -> None:
    for doc in docs:
        if doc.id in by_id:
            report.duplicates += 1
            del by_id[doc.id]
        by_id[doc.id] = doc


def chunk_long_records(docs: list[Document], chunker, *, split: bool = True) -> tuple[list[Document], dict[str, int]]:
    """Records longer than the model's window, chunked as files are (or refused).

    A record that fits is kept as is. A longer one becomes chunks ``<id>#0``, ``<id>#1``, ...
    carrying the record's metadata plus ``parent``, ``chunk``, ``start`` and ``end`` (character
    offsets into its text); nothing is cut off silently. With ``split=False`` such a record is
    an InputError instead. Returns the documents and ``{parent id: number of chunks}`` for
    every record id seen (0 for a record kept whole), so stale chunks can be removed.
    """
    out: list[Document] = []
    parts: dict[str, int] = {}
    window = chunker.window - 2  # [CLS] and [SEP]
    # a word piece covers at least one character, so short records need no tokenizing
    long = [d for d in docs if len(d.title) + len(d.text) + 1 > window]
    counts = dict(zip((d.id for d in long), chunker.count([f"{d.title} {d.text}" if d.title else d.text
                                                           for d in long])))
    for doc in docs:
        if counts.get(doc.id, 0) <= window:
            out.append(doc)
            parts[doc.id] = 0
            continue
        if not split:
            raise InputError(f"record {doc.id!r} holds {counts[doc.id]:,} word pieces, more than the model reads "
                             f"({window}); use --chunk-records to index it in chunks")
        pieces = chunker.chunk(doc.text, doc.title)
        for k, piece in enumerate(pieces):
            meta = {**doc.metadata, "parent": doc.id, "chunk": k, "start": piece.start, "end": piece.end}
            out.append(Document(f"{doc.id}#{k}", piece.text, meta, doc.title))
        parts[doc.id] = len(pieces)
    return out, parts


def stale_chunk_ids(data, parts: dict[str, int]) -> list[str]:
    """Stored ids left over from an earlier shape of these records (more chunks, or whole/chunked)."""
    stale: list[str] = []
    for parent, n in parts.items():
        # '#' + 1 == '$': the range covers exactly the ids starting with "<parent>#" (indexed lookup)
        found = data.ids_with_prefix(f"{parent}#")
        for doc_id in found:
            suffix = doc_id[len(parent) + 1:]
            if suffix.isdigit() and int(suffix) >= n:
                stale.append(doc_id)
        if n:
            stale.append(parent)  # stored whole before, chunked now
    return stale
