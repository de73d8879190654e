"""Input limits, checked at the API boundary before anything is encoded or written.

Stated in docs/limits.md. Each check walks the value iteratively (no recursion), so a
100,000-deep structure is refused in linear time instead of overflowing the stack.
"""
from __future__ import annotations

import re
from typing import Any

from nearspace.errors import LimitError

#: deepest nesting of objects/lists in metadata (and in a JSONL record)
MAX_NESTING = 32
#: characters of title + text in one document (longer JSONL records are chunked or refused)
MAX_TEXT_CHARS = 4_000_000
#: bytes of one JSONL line, checked before it is parsed
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: characters of a document id
MAX_ID_CHARS = 1024
#: integers are stored in SQLite's signed 64-bit range
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: str, what: str) -> None:
    """Refuse lone surrogates (they cannot be written as UTF-8)."""
    match = _SURROGATE.search(value)
    if match:
        raise LimitError(f"{what} contains a lone surrogate {match.group()!r} at character {match.start()} "
                         "(not valid Unicode text)")


def check_json_value(value: Any, what: str, *, max_depth: int = MAX_NESTING) -> None:
    """Depth, integer range, finite floats and valid strings, for a JSON-like value."""
    # each item carries its path (``a.b[2]``) so a refusal names the field, not just the object
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        where = f"{what} field {path!r}" if path else what
        if isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise LimitError(f"{where} is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str):
                        check_text(key, f"{where} (a key)")
                    stack.append((child, depth + 1, f"{path}.{key}" if path else str(key)))
            else:
                stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                digits = len(str(abs(item))) if abs(item).bit_length() < 14000 else "thousands of"
                raise LimitError(f"{where} holds an integer of {digits} digits, too large for the 64-bit "
                                 f"range [-2^63, 2^63-1]; store it as a string")
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise LimitError(f"{where} holds a non-finite number ({item}); JSON has no NaN or infinity")
        elif isinstance(item, str):
            check_text(item, where)
