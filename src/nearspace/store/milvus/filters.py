"""nearspace filters as Milvus boolean expressions, and the JSON fields they run on.

Each row carries ``flat`` (dotted key -> every scalar it holds) and ``scal`` (keys holding one
plain value). ``{"k": v}`` and ``$in``/``$ne``/``$nin`` look in ``flat`` so list-valued
metadata matches on any element as in SQLite; range comparisons run on ``scal``. A range over
a key that holds lists in some document cannot be expressed in Milvus and is refused with an
``InputError``.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterator

from nearspace.errors import InputError
from nearspace.store.filters import _COMPARE, _OPS, _short, filter_terms, flatten_metadata


def _number(value: Any) -> Any:
    # SQLite's filter index keeps numbers and booleans as REAL: true == 1, 3 == 3.0
    return float(value) if isinstance(value, (bool, int, float)) else value


def filter_fields(metadata: dict[str, Any], list_keys: set[str]) -> tuple[dict[str, list], dict[str, Any]]:
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
    clauses = []
    for key, cond in filter_terms(where, _depth):
        if key in ("$and", "$or"):
            glue = " and " if key == "$and" else " or "
            clauses.append("(" + glue.join(compile_filter(sub, list_keys, _depth + 1) for sub in cond) + ")")
            continue
        ranged = {op: v for op, v in cond.items() if op in _COMPARE}
        if len(ranged) > 1 and len({isinstance(v, str) for v in ranged.values()}) > 1:
            raise InputError(f"filter {key!r}: range bounds must all be numbers or all be strings, "
                             f"got {_short(ranged)}")
        clauses.extend(_leaf(key, op, value, list_keys) for op, value in cond.items())
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
