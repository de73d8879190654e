"""File parsers: turn one file into sections of text that keep their structure.

A section is a run of text under one heading path (Markdown, HTML and .docx headings) or
on one PDF page. Offsets and line numbers are relative to the text the parser extracted
(for .txt and .md that is the file itself).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


class ParseError(Exception):
    """The file cannot be turned into text (corrupt, encrypted, binary, not UTF-8...)."""


@dataclass
class Section:
    text: str
    headings: list[str] = field(default_factory=list)
    page: int | None = None
    offset: int = 0  # character offset of ``text`` in the extracted document
    line: int = 1  # line number of ``text``'s first character


@dataclass
class ParsedFile:
    kind: str
    sections: list[Section]
    full_text: str
    #: for text extracted from markup (HTML): ``source_lines[i]`` is the (first, last) line of the
    #: *file* that line ``i + 1`` of ``full_text`` came from, so citations point into the file itself
    source_lines: list[tuple[int, int]] | None = None
    #: the encoding the file was read with (text and Markdown: UTF-8, else Windows-1252 or Latin-1)
    encoding: str = "utf-8"

    def file_line(self, extracted_line: int, *, end: bool = False) -> int:
        """The file's line for a line of ``full_text`` (the same number for plain text); with
        ``end``, the file line where that extracted line ends (a paragraph wrapped in the file)."""
        if not self.source_lines:
            return extracted_line
        first, last = self.source_lines[min(max(extracted_line, 1), len(self.source_lines)) - 1]
        return last if end else first


PARSED_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
                   ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def decode_text(raw: bytes, where: str) -> tuple[str, str]:
    """A text file's content and the encoding it was read with: UTF-8 (a BOM dropped), else
    Windows-1252, else Latin-1 (every byte is a Latin-1 character) -- older Western tools write
    those. Binary content (NUL bytes) is refused."""
    if b"\x00" in raw[:8192]:
        raise ParseError("binary content (NUL bytes), not text")
    try:
        return raw.decode("utf-8").lstrip("\ufeff"), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ParseError("not valid UTF-8, Windows-1252 or Latin-1")  # pragma: no cover - latin-1 decodes anything


def parse_file(path: Path, raw: bytes) -> ParsedFile:
    kind = PARSED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'}")
    if not raw.strip():
        raise ParseError("empty file")
    if kind == "text":
        text, encoding = decode_text(raw, str(path))
        return ParsedFile(kind, [Section(text)], text, encoding=encoding)
    if kind == "markdown":
        text, encoding = decode_text(raw, str(path))
        return ParsedFile(kind, markdown_sections(text), text, encoding=encoding)
    if kind == "html":
        return _html(raw)
    if kind == "pdf":
        return _pdf(raw)
    return _docx(raw)


def markdown_sections(text: str) -> list[Section]:
    """Split Markdown at ATX headings; each section knows its heading path."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    offset, body_start, body_line = 0, 0, 1
    in_fence = False
    lines = text.splitlines(keepends=True)

    def close(end: int) -> None:
        body = text[body_start:end]
        if body.strip():
            sections.append(Section(body, [h for _, h in stack], None, body_start, body_line))

    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line.rstrip("\r\n"))
        if match:
            close(offset)
            level = len(match.group(1))
            stack = [(lv, h) for lv, h in stack if lv < level] + [(level, match.group(2).strip())]
            body_start, body_line = offset + len(line), number + 1
        offset += len(line)
    close(len(text))
    return sections


def _html(raw: bytes) -> ParsedFile:
    try:
        import trafilatura
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ParseError(f"HTML support needs trafilatura: {exc}") from None
    try:
        html = raw.decode("utf-8")
    except UnicodeDecodeError:
        html = raw.decode("latin-1")  # HTML declares its own charset; trafilatura copes with either
    # main content only (navigation, footers, cookie banners dropped), headings kept as Markdown
    text = trafilatura.extract(html, output_format="markdown", include_comments=False,
                               include_tables=True, favor_recall=True) or ""
    if not text.strip():
        raise ParseError("no main text found in the HTML")
    return ParsedFile("html", markdown_sections(text), text, html_source_lines(text, html))


_MARKUP = re.compile(r"<[^>]*>")
_MD_DECORATION = re.compile(r"^\s*(#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*|\|)|[*_`|]+")


def html_source_lines(text: str, html: str) -> list[tuple[int, int]]:
    """For each line of the text extracted from ``html``, the (first, last) lines of ``html`` it
    came from.

    Each extracted line's first and last words (Markdown decoration stripped) are looked for in
    the file's text with tags removed and entities decoded, moving forwards through the file; a
    line that cannot be found (text the extractor rewrote) takes the place of the one before it."""
    import html as html_lib

    # the file's visible text, with the file line of every character
    plain_chars: list[str] = []
    plain_lines: list[int] = []
    for number, raw_line in enumerate(html.split("\n"), start=1):
        visible = html_lib.unescape(_MARKUP.sub(" ", raw_line))
        plain_chars.append(visible + " ")
        plain_lines.extend([number] * (len(visible) + 1))
    plain = _squash("".join(plain_chars))
    # squashing whitespace shifts offsets: map them back with a second, squashed index
    squashed_lines: list[int] = []
    previous_space = False
    for ch, line in zip("".join(plain_chars), plain_lines):
        space = ch.isspace()
        if space and previous_space:
            continue
        squashed_lines.append(line)
        previous_space = space
    lowered = plain.lower()
    out: list[tuple[int, int]] = []
    cursor, place = 0, (1, 1)
    for line in text.split("\n"):
        clean = _squash(_MD_DECORATION.sub(" ", line)).strip().lower()
        head, tail = clean[:40], clean[-40:]
        if head:
            found = lowered.find(head, cursor)
            if found < 0:
                found = lowered.find(head)  # out of order (a table rebuilt): anywhere in the file
            if 0 <= found < len(squashed_lines):
                ends = lowered.find(tail, found)
                stop = ends + len(tail) - 1 if ends >= 0 else found + len(head) - 1
                stop = min(stop, len(squashed_lines) - 1)
                place = (squashed_lines[found], squashed_lines[stop])
                cursor = found + len(head)
        out.append(place)
    return out


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _pdf(raw: bytes) -> ParsedFile:
    import io
    import logging

    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover
        raise ParseError(f"PDF support needs pypdf: {exc}") from None
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise ParseError("encrypted PDF (needs a password)")
            except ParseError:
                raise
            except Exception:
                raise ParseError("encrypted PDF (needs a password)") from None
        sections, parts, offset, line = [], [], 0, 1
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                sections.append(Section(text, [], number, offset, line))
            parts.append(text)
            offset += len(text) + 2
            line += text.count("\n") + 2
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise ParseError(f"corrupt PDF ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not sections:
        raise ParseError("PDF has no extractable text (scanned images need OCR)")
    return ParsedFile("pdf", sections, "\n\n".join(parts))


def _docx(raw: bytes) -> ParsedFile:
    import io
    import zipfile

    try:
        import docx
    except ImportError as exc:  # pragma: no cover
        raise ParseError(f".docx support needs python-docx: {exc}") from None
    try:
        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ParseError(f"corrupt .docx ({type(exc).__name__})") from None
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        text = paragraph.text.strip()
        if not text:
            continue
        if style.startswith("Heading") and style[7:].strip().isdigit():
            lines.append("#" * min(6, int(style[7:])) + " " + text)
        elif style == "Title":
            lines.append("# " + text)
        else:
            lines.append(text)
    text = "\n\n".join(lines)
    if not text.strip():
        raise ParseError("the .docx holds no text")
    return ParsedFile("docx", markdown_sections(text), text)
