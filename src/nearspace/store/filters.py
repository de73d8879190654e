"""Metadata filters: a small Mongo-style language compiled to indexed SQL.

``{"topic": "ml"}``, ``{"year": {"$gte": 2000, "$lt": 2010}}``, ``{"tag": {"$in": [...]}}``,
``{"$and": [...]}``, ``{"$or": [...]}``, ``$ne``/``$nin``. Every leaf becomes a lookup
on the ``meta_index`` table's (collection, key, value) indexes, never a scan of JSON.
List values are indexed element by element, so ``{"tag": "x"}`` matches ``tags`` lists
containing ``"x"``. Nested objects are flattened with dots (``{"a": {"b": 1}}`` -> ``a.b``).
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from nearspace.errors import InputError

_COMPARE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_OPS = {"$eq", "$ne", "$in", "$nin", *_COMPARE}


def flatten_metadata(metadata: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (key, scalar) pairs to index: nested dicts dotted, lists expanded."""
    for key, value in metadata.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten_metadata(value, full + ".")
        elif isinstance(value, (list, tuple)):
            for item in value:
                if item is None or isinstance(item, (dict, list, tuple)):
                    continue
                yield full, item
        elif value is not None:
            yield full, value


def index_columns(value: Any) -> tuple[float | None, str | None]:
    """Where a scalar lives in meta_index: numbers (and bools) in ``num``, text in ``str``."""
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, (int, float)):
        return float(value), None
    return None, str(value)


def _leaf(key: str, op: str, value: Any, cid: int) -> tuple[str, list[Any]]:
    base = "SELECT doc FROM meta_index WHERE collection_id = ? AND key = ?"
    if op in ("$eq", "$ne"):
        _check_scalar(key, op, value)
        num, text = index_columns(value)
        sql = f"{base} AND num = ?" if text is None else f"{base} AND str = ?"
        params = [cid, key, num if text is None else text]
        if op == "$ne":
            return f"SELECT doc_row FROM docs WHERE collection_id = ? EXCEPT {sql}", [cid, *params]
        return sql, params
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)) or not value:
            raise InputError(f"filter {key!r}: {op} needs a non-empty list, got {_short(value)}")
        # the values travel as two JSON arrays (numbers, strings), two SQL parameters in all:
        # a list of any length stays under SQLite's variable and compound-select limits
        nums, texts = [], []
        for item in value:
            _check_scalar(key, op, item)
            num, text = index_columns(item)
            if text is None:
                if num != num or num in (float("inf"), float("-inf")):
                    raise InputError(f"filter {key!r}: {op} values must be finite numbers, got {item!r}")
                nums.append(num)
            else:
                texts.append(text)
        parts, params = [], []
        if nums:
            parts.append(f"{base} AND num IN (SELECT value FROM json_each(?))")
            params += [cid, key, json.dumps(sorted(set(nums)))]
        if texts:
            parts.append(f"{base} AND str IN (SELECT value FROM json_each(?))")
            params += [cid, key, json.dumps(sorted(set(texts)), ensure_ascii=False)]
        sql = " UNION ".join(parts)
        if op == "$nin":
            return f"SELECT doc_row FROM docs WHERE collection_id = ? EXCEPT SELECT * FROM ({sql})", [cid, *params]
        return sql, params
    if op in _COMPARE:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InputError(f"filter {key!r}: {op} compares numbers or strings, got {_short(value)}")
        column = "str" if isinstance(value, str) else "num"
        return f"{base} AND {column} {_COMPARE[op]} ?", [cid, key, value]
    raise InputError(f"filter {key!r}: unknown operator {op!r}; use one of {sorted(_OPS)}")


def _range(key: str, bounds: dict[str, Any], cid: int) -> tuple[str, list[Any]]:
    kinds = {isinstance(v, str) for v in bounds.values()}
    if len(kinds) > 1 or any(isinstance(v, bool) or not isinstance(v, (int, float, str)) for v in bounds.values()):
        raise InputError(f"filter {key!r}: range bounds must all be numbers or all be strings, got {_short(bounds)}")
    column = "str" if kinds == {True} else "num"
    conditions = " AND ".join(f"{column} {_COMPARE[op]} ?" for op in bounds)
    return (f"SELECT doc FROM meta_index WHERE collection_id = ? AND key = ? AND {conditions}",
            [cid, key, *bounds.values()])


def _check_scalar(key: str, op: str, value: Any) -> None:
    if value is None or isinstance(value, (dict, list, tuple)):
        raise InputError(f"filter {key!r}: {op} needs a string, number or boolean, got {_short(value)}")


#: deepest $and/$or nesting a filter may use (deeper ones are refused, not compiled)
MAX_FILTER_DEPTH = 16
#: most leaf conditions in one filter (SQLite joins at most 500 terms in a compound select)
MAX_FILTER_TERMS = 200


def filter_terms(where: Any, _depth: int = 0) -> Iterator[tuple[str, Any]]:
    """One level of a filter, structure checked, for every engine's compiler: ``("$and", subs)``
    / ``("$or", subs)`` for a boolean over sub-filters, ``(key, {op: value, ...})`` for a field
    (a bare value is ``{"$eq": value}``). Engine-specific value checks stay with each compiler."""
    if not isinstance(where, dict) or not where:
        raise InputError(f"a filter must be a non-empty object, got {_short(where)}")
    if _depth == 0:
        _check_size(where)
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise InputError(f"filter {key} needs a non-empty list of filters")
            yield key, cond
        elif key.startswith("$"):
            raise InputError(f"unknown filter operator {key!r} at top level; use $and or $or")
        elif isinstance(cond, dict):
            if not cond:
                raise InputError(f"filter {key!r}: empty condition")
            yield key, cond
        else:
            yield key, {"$eq": cond}


def compile_where(where: dict[str, Any], cid: int, _depth: int = 0) -> tuple[str, list[Any]]:
    """Compile a filter to ``(sql, params)`` where sql selects the matching doc_rows."""
    clauses: list[tuple[str, list[Any]]] = []
    for key, cond in filter_terms(where, _depth):
        if key in ("$and", "$or"):
            subs = [compile_where(sub, cid, _depth + 1) for sub in cond]
            glue = " INTERSECT " if key == "$and" else " UNION "
            clauses.append((glue.join(f"SELECT * FROM ({s})" for s, _ in subs),
                            [p for _, ps in subs for p in ps]))
            continue
        ranged = {op: v for op, v in cond.items() if op in _COMPARE}
        if len(ranged) > 1:  # one bounded index range, not an intersection of open-ended scans
            clauses.append(_range(key, ranged, cid))
        for op, value in cond.items():
            if op not in ranged or len(ranged) == 1:
                clauses.append(_leaf(key, op, value, cid))
    if len(clauses) == 1:
        return clauses[0]
    return (" INTERSECT ".join(f"SELECT * FROM ({s})" for s, _ in clauses),
            [p for _, ps in clauses for p in ps])


def _short(value: Any) -> str:
    """A bounded description of a value (repr of a deeply nested one would itself overflow)."""
    if isinstance(value, (dict, list, tuple)):
        return f"a {type(value).__name__} of {len(value)} item(s)" if value else repr(type(value)())
    return repr(value)[:200]


def _check_size(where: Any) -> None:
    """Refuse filters deeper or wider than SQLite can compile, before building any SQL."""
    from nearspace.errors import LimitError

    stack, terms = [(where, 0)], 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise LimitError(f"the filter is nested more than {MAX_FILTER_DEPTH} levels deep")
        if isinstance(node, dict):
            for key, cond in node.items():
                if key in ("$and", "$or") and isinstance(cond, list):
                    stack.extend((sub, depth + 1) for sub in cond)
                else:
                    terms += len(cond) if isinstance(cond, dict) else 1
                    if isinstance(cond, dict):  # a condition's value may itself be nested junk
                        stack.extend((v, depth + 1) for v in cond.values() if isinstance(v, dict))
    if terms > MAX_FILTER_TERMS:
        raise LimitError(f"the filter has {terms} conditions; the limit is {MAX_FILTER_TERMS} "
                         "(use $in with a list for many values of one key)")


def parse_cli_filter(expr: str) -> dict[str, Any]:
    """Parse ``key=value``, ``key!=value``, ``key>=3``, ``key<2000``, ``key=a|b`` (any of)."""
    import json
    import re

    match = re.fullmatch(r"\s*([^=!<>\s]+)\s*(!=|>=|<=|=|>|<)\s*(.*)", expr)
    if not match:
        raise InputError(f"cannot parse filter {expr!r}; expected key=value, key!=value, key>=n, key<n ...")
    key, op, raw = match.groups()
    if not raw or raw[0] in "=<>!":
        raise InputError(f"cannot parse filter {expr!r}: missing or malformed value after {op!r}")

    def value_of(text: str) -> Any:
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        return parsed if isinstance(parsed, (int, float, bool, str)) else text

    if op == "=" and "|" in raw:
        return {key: {"$in": [value_of(v) for v in raw.split("|")]}}
    ops = {"=": "$eq", "!=": "$ne", ">=": "$gte", "<=": "$lte", ">": "$gt", "<": "$lt"}
    return {key: {ops[op]: value_of(raw)}}
