"""One JSON Lines reader for every JSONL input in the package (documents, labelled texts,
BEIR queries, interactions, classify inputs).

Records are split on ``b"\\n"`` only (a ``\\r`` before it is dropped): ``str.splitlines()``
also breaks on U+2028, U+2029 and U+0085, which JSON allows raw inside strings, and would cut
such a record in two. Each line is checked against the record size limit before it is
decoded or parsed, decoded as UTF-8 with the byte offset of a bad byte named, and parsed with
one set of error messages that name ``file:line``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

from nearspace.errors import InputError, LimitError
from nearspace.limits import MAX_RECORD_BYTES

__all__ = ["iter_jsonl", "read_jsonl_values", "parse_json_line", "parse_json_object", "decode_line"]


def decode_line(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None


def parse_json_line(line: str, where: str) -> Any:
    """One JSON value, or a one-line error naming ``where`` (file:line) and what is wrong."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise LimitError(f"{where}: the record is nested too deeply to parse") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (CPython's parse limit)
        raise LimitError(f"{where}: a number has thousands of digits; integers must fit in 64 bits "
                         f"(store such values as strings)" if "digits" in str(exc) else f"{where}: {exc}") from None


def parse_json_object(line: str, where: str) -> dict[str, Any]:
    """As :func:`parse_json_line`, and the value must be a JSON object."""
    record = parse_json_line(line, where)
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def iter_jsonl(raw: bytes, name: str, *, objects: bool = False,
               where: Callable[[int], str] | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of JSONL bytes; with ``objects``, every
    value must be a JSON object. ``where(lineno)`` words the place in errors (``name:lineno``)."""
    place = where or (lambda lineno: f"{name}:{lineno}")
    parse = parse_json_object if objects else parse_json_line
    for lineno, line_bytes in enumerate(raw.split(b"\n"), start=1):
        if len(line_bytes) > MAX_RECORD_BYTES:  # refused before parsing: memory stays bounded
            raise LimitError(f"{place(lineno)}: the record is {len(line_bytes):,} bytes; the limit is "
                             f"{MAX_RECORD_BYTES:,} per line (split it into several records, or index it as a file)")
        line = decode_line(line_bytes, place(lineno)).strip()
        if not line:
            continue
        yield lineno, parse(line, place(lineno))


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, or one clear error naming it (unreadable, missing, no permission)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_jsonl_values(path: str | Path, *, objects: bool = True) -> Iterator[tuple[int, Any]]:
    """:func:`iter_jsonl` over a file, with an unreadable file as one clear error."""
    return iter_jsonl(read_bytes(path), str(path), objects=objects)
