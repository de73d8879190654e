"""Reading interaction logs and item side data (CSV/TSV/Parquet/JSONL, MovieLens files).

Every value is checked before anything is fitted or stored; a bad value raises one
``InputError`` naming the file, the row (the file's line number, header included, for
text files; the 1-based record for Parquet) and the column.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from nearspace.errors import InputError
from nearspace.validation import parse_cell

# header aliases, compared after lower-casing and dropping "_", "-", " " and "."
USER_NAMES = ("user", "userid", "uid", "users", "customer", "customerid", "visitorid", "reviewerid", "member",
              "memberid", "account", "accountid")
ITEM_NAMES = ("item", "itemid", "iid", "items", "movie", "movieid", "product", "productid", "asin", "track",
              "trackid", "song", "songid", "book", "bookid", "isbn", "artist", "artistid", "article", "articleid",
              "sku")
RATING_NAMES = ("rating", "ratings", "stars", "score")
WEIGHT_NAMES = ("weight", "count", "plays", "playcount", "clicks", "quantity", "qty", "value", "strength",
                "confidence")
TIME_NAMES = ("timestamp", "time", "ts", "datetime", "date", "unixtime", "unixreviewtime", "eventtime",
              "createdat", "created")
_MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
DUPLICATE_POLICIES = ("auto", "error", "sum", "last", "max")

MOVIELENS_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                    "Thriller", "War", "Western")


@dataclass
class Interactions:
    """A deduplicated interaction log as integer codes over sorted-by-first-seen id lists."""

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray            # int32 code per interaction
    items: np.ndarray            # int32 code per interaction
    weights: np.ndarray          # float32 (1.0 when the file has no rating/weight column)
    timestamps: np.ndarray | None  # float64 seconds since the epoch, or None
    value_kind: str | None = None  # "rating", "weight" or None (plain log)
    source: str = ""
    merged: int = 0              # duplicate rows folded by the duplicates policy

    def __len__(self) -> int:
        return int(self.users.size)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def matrix(self, mask: np.ndarray | None = None):
        """users x items CSR of weights (all rows, or those selected by ``mask``)."""
        import scipy.sparse as sp

        users, items, weights = self.users, self.items, self.weights
        if mask is not None:
            users, items, weights = users[mask], items[mask], weights[mask]
        m = sp.csr_matrix((weights.astype(np.float32), (users, items)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        return m

    def summary(self) -> dict[str, Any]:
        return {"interactions": len(self), "users": self.n_users, "items": self.n_items,
                "value": self.value_kind, "timestamps": self.timestamps is not None, "merged_duplicates": self.merged}


@dataclass
class ItemData:
    """Item side data: the text that gets embedded and the metadata that filters use."""

    ids: list[str]
    titles: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)


# -- low-level reading --------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", str(name).strip().lower())


def _read_text(path: Path, encoding: str | None) -> str:
    raw = path.read_bytes()
    if encoding:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(f"{path.name}: cannot decode as {encoding}: {exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # MovieLens files are latin-1; every byte decodes


def _sniff(line: str) -> str:
    for delim in ("\t", "::", ",", "|", ";"):
        if delim in line:
            return delim
    return " "


def _split_lines(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each non-blank line."""
    if len(delimiter) == 1 and delimiter != " ":
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, [f.strip() for f in fields]
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            parts = line.split(delimiter) if delimiter != " " else line.split()
            yield number, [p.strip() for p in parts]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _known(names: Sequence[str]) -> bool:
    known = set(USER_NAMES + ITEM_NAMES + RATING_NAMES + WEIGHT_NAMES + TIME_NAMES) | {"id", "title", "genres"}
    return any(_norm(n) in known for n in names)


def read_records(path: str | Path, *, delimiter: str | None = None, header: bool | None = None,
                 encoding: str | None = None) -> tuple[list[str] | None, Iterator[tuple[int, list[Any]]], str]:
    """``(column names or None, rows as (row number, values), format)`` for any supported file.

    Headerless text files return ``None`` names: their columns are positional.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the interactions file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
            raise InputError("reading Parquet needs pyarrow (pip install pyarrow)") from exc
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for bad files
            raise InputError(f"{path.name}: not a readable Parquet file ({exc})") from exc
        names = list(table.column_names)
        columns = [table.column(n).to_pylist() for n in names]
        rows = ((i + 1, [c[i] for c in columns]) for i in range(table.num_rows))
        return names, rows, "parquet"
    text = _read_text(path, encoding)
    if suffix in (".jsonl", ".ndjson") or (suffix == ".json" and text.lstrip().startswith("{")):
        return _jsonl(path, text)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise InputError(f"{path.name} is empty")
    delim = delimiter or ("\t" if suffix == ".tsv" else "," if suffix == ".csv" else _sniff(first))
    rows = _split_lines(text, delim)
    try:
        line1, fields1 = next(rows)
    except StopIteration:
        raise InputError(f"{path.name} is empty") from None
    if header is None:
        # a header names known columns, or is text where the data below it is numeric
        header = _known(fields1)
        if not header and not any(_is_number(f) for f in fields1):
            lines = _split_lines(text, delim)
            next(lines)
            second = next(lines, None)
            header = second is not None and any(_is_number(f) for f in second[1])
    if header:
        return fields1, rows, "text"

    def with_first() -> Iterator[tuple[int, list[Any]]]:
        yield line1, fields1
        yield from rows

    return None, with_first(), "text"


def _jsonl(path: Path, text: str) -> tuple[list[str], Iterator[tuple[int, list[Any]]], str]:
    records: list[tuple[int, dict]] = []
    names: list[str] = []
    seen: set[str] = set()
    from nearspace.jsonl import iter_jsonl

    for number, rec in iter_jsonl(text.encode("utf-8"), path.name, objects=True,
                                  where=lambda n: f"{path.name} row {n}"):
        for key in rec:
            if key not in seen:
                seen.add(key)
                names.append(key)
        records.append((number, rec))
    if not records:
        raise InputError(f"{path.name} is empty")
    return names, ((n, [r.get(k) for k in names]) for n, r in records), "jsonl"


def _pick(names: list[str], aliases: Sequence[str]) -> int | None:
    normalized = [_norm(n) for n in names]
    for alias in aliases:
        if alias in normalized:
            return normalized.index(alias)
    return None


def _locate(names: list[str], wanted: str | None, role: str, path: Path) -> int:
    if wanted is None:
        raise AssertionError
    if wanted in names:
        return names.index(wanted)
    normalized = [_norm(n) for n in names]
    if _norm(wanted) in normalized:
        return normalized.index(_norm(wanted))
    raise InputError(f"{path.name}: no column {wanted!r} for the {role} (columns: {', '.join(map(str, names))})")


# -- interactions -------------------------------------------------------------------------
def load_interactions(path: str | Path, *, user: str | None = None, item: str | None = None,
                      rating: str | None = None, weight: str | None = None, timestamp: str | None = None,
                      columns: Sequence[str] | None = None, delimiter: str | None = None,
                      header: bool | None = None, duplicates: str = "auto",
                      encoding: str | None = None) -> Interactions:
    """Load a user-item interaction log.

    Columns are found by header name (``user``/``user_id``/``userId``..., ``item``/``movieId``...,
    ``rating`` or ``weight``/``count``..., ``timestamp``/``date``...) or named explicitly. A file
    without a header (MovieLens ``u.data``) is read positionally as user, item[, rating[, timestamp]]
    unless ``columns`` names its columns in order (e.g. ``["user", "item", "timestamp"]``).

    ``duplicates``: what a repeated (user, item) pair means. ``auto`` sums repeats in a plain
    log (each row is one event) and refuses them when the file has ratings (ambiguous);
    ``error``, ``sum``, ``last`` (latest row wins) and ``max`` choose explicitly.
    Ratings and weights must be present, finite and >= 0.
    """
    path = Path(path)
    if duplicates not in DUPLICATE_POLICIES:
        raise InputError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    if rating is not None and weight is not None:
        raise InputError("give a rating column or a weight column, not both")
    names, rows, _fmt = read_records(path, delimiter=delimiter, header=header, encoding=encoding)
    positional = names is None
    if columns is not None:
        columns = [c.strip() for c in columns]
        if not positional:
            raise InputError(f"{path.name} has a header ({', '.join(map(str, names))}); "
                             "name its columns with user/item/rating/weight/timestamp instead of columns")
        names = list(columns)

    value_kind: str | None = None
    if names is None:
        # MovieLens order: user, item, rating, timestamp; extra columns are ignored
        rows = _peek_width(rows, path)
        width = rows.width  # type: ignore[attr-defined]
        if width < 2:
            raise InputError(f"{path.name}: one column per row; an interaction log needs a user and an item column")
        names = ["user", "item", "rating", "timestamp"][:width] + [f"column{i + 1}" for i in range(4, width)]
    idx_user = _locate(names, user, "user", path) if user else _pick(names, USER_NAMES)
    idx_item = _locate(names, item, "item", path) if item else _pick(names, ITEM_NAMES)
    if rating:
        idx_value, value_kind = _locate(names, rating, "rating", path), "rating"
    elif weight:
        idx_value, value_kind = _locate(names, weight, "weight", path), "weight"
    else:
        idx_value = _pick(names, RATING_NAMES)
        value_kind = "rating" if idx_value is not None else None
        if idx_value is None:
            idx_value = _pick(names, WEIGHT_NAMES)
            value_kind = "weight" if idx_value is not None else None
    idx_time = _locate(names, timestamp, "timestamp", path) if timestamp else _pick(names, TIME_NAMES)
    missing = [role for role, idx in (("user", idx_user), ("item", idx_item)) if idx is None]
    if missing:
        raise InputError(f"{path.name}: no {' or '.join(missing)} column among its columns "
                         f"({', '.join(map(str, names))}); expected e.g. user/user_id/userId and item/item_id/movieId, "
                         "or name them (--user-col/--item-col, or --columns for a file without a header)")
    label = {idx_user: names[idx_user], idx_item: names[idx_item]}
    if duplicates == "auto":  # repeated events count in a plain log; repeated ratings are ambiguous
        duplicates = "sum" if idx_value is None else "error"

    user_code: dict[str, int] = {}
    item_code: dict[str, int] = {}
    pairs: dict[tuple[int, int], int] = {}   # (user, item) -> position in the output arrays
    first_row: list[int] = []
    us: list[int] = []
    its: list[int] = []
    ws: list[float] = []
    ts: list[float] = []
    merged = 0
    width = len(names)
    for number, values in rows:
        if len(values) < width and not (_fmt == "jsonl" or _fmt == "parquet"):
            raise InputError(f"{path.name} row {number}: expected {width} columns "
                             f"({', '.join(map(str, names))}), got {len(values)}")
        u = _ident(values[idx_user], path, number, label[idx_user], "user")
        i = _ident(values[idx_item], path, number, label[idx_item], "item")
        w = 1.0 if idx_value is None else _value(values[idx_value], path, number, names[idx_value], value_kind)
        t = 0.0 if idx_time is None else _time(values[idx_time], path, number, names[idx_time])
        uc = user_code.setdefault(u, len(user_code))
        ic = item_code.setdefault(i, len(item_code))
        at = pairs.get((uc, ic))
        if at is None:
            pairs[(uc, ic)] = len(us)
            first_row.append(number)
            us.append(uc)
            its.append(ic)
            ws.append(w)
            ts.append(t)
            continue
        merged += 1
        if duplicates == "error":
            column = names[idx_value] if idx_value is not None else f"{names[idx_user]}/{names[idx_item]}"
            raise InputError(f"{path.name} row {number}, column {column!r}: user {u!r} and item {i!r} already "
                             f"appear at row {first_row[at]}; pass duplicates='sum', 'last' or 'max' "
                             "(CLI: --duplicates) to say how repeats combine")
        if duplicates == "sum":
            ws[at] += w
        elif duplicates == "max":
            ws[at] = max(ws[at], w)
        elif duplicates == "last":
            if idx_time is None or t >= ts[at]:
                ws[at] = w
        ts[at] = max(ts[at], t)
    if not us:
        raise InputError(f"{path.name}: no interactions (only a header?)")
    return Interactions(
        user_ids=list(user_code), item_ids=list(item_code),
        users=np.asarray(us, dtype=np.int32), items=np.asarray(its, dtype=np.int32),
        weights=np.asarray(ws, dtype=np.float32),
        timestamps=np.asarray(ts, dtype=np.float64) if idx_time is not None else None,
        value_kind=value_kind, source=str(path), merged=merged)


class _Peeked:
    def __init__(self, first: tuple[int, list[Any]], rest: Iterator[tuple[int, list[Any]]]) -> None:
        self.first, self.rest, self.width = first, rest, len(first[1])

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        yield self.first
        yield from self.rest


def _peek_width(rows: Iterator[tuple[int, list[Any]]], path: Path) -> _Peeked:
    try:
        first = next(iter(rows))
    except StopIteration:
        raise InputError(f"{path.name} is empty") from None
    return _Peeked(first, rows)


def _ident(value: Any, path: Path, row: int, column: str, role: str) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Parquet/JSON numbers: 1.0 and 1 are the same id
    text = "" if value is None else str(value).strip()
    if text.lower() in _MISSING:
        raise InputError(f"{path.name} row {row}, column {column!r}: missing {role} id")
    return text


def _value(value: Any, path: Path, row: int, column: str, kind: str | None) -> float:
    what = kind or "value"
    if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING):
        raise InputError(f"{path.name} row {row}, column {column!r}: missing {what}")
    if isinstance(value, bool):
        value = float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path.name} row {row}, column {column!r}: {what} {value!r} is not a number") from None
    if math.isnan(number):
        raise InputError(f"{path.name} row {row}, column {column!r}: missing {what} (NaN)")
    if math.isinf(number):
        raise InputError(f"{path.name} row {row}, column {column!r}: {what} is infinite")
    if number < 0:
        raise InputError(f"{path.name} row {row}, column {column!r}: negative {what} {value!r} "
                         f"({what}s must be >= 0)")
    return number


def _time(value: Any, path: Path, row: int, column: str) -> float:
    if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING):
        raise InputError(f"{path.name} row {row}, column {column!r}: missing timestamp")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InputError(f"{path.name} row {row}, column {column!r}: timestamp is not finite")
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{path.name} row {row}, column {column!r}: cannot read timestamp {text!r} "
                         "(expected seconds since the epoch or an ISO 8601 date)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


# -- item side data -----------------------------------------------------------------------
TITLE_NAMES = ("title", "name", "movietitle", "itemname", "productname")
TEXT_NAMES = ("description", "text", "overview", "plot", "summary", "body", "content", "synopsis")
GENRE_NAMES = ("genres", "genre", "categories", "category", "tags")
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def load_items(path: str | Path, *, id_col: str | None = None, title_col: str | None = None,
               text_col: str | None = None, genres_col: str | None = None,
               encoding: str | None = None) -> ItemData:
    """Load item side data: MovieLens ``u.item`` (pipe-separated, latin-1, 19 genre flags) or
    ``movies.dat``/``movies.csv``, or any CSV/TSV/JSONL/Parquet with an id column and some of
    title, description/text and genres; other columns become metadata.

    The embedded text is ``"<title> Genres: a, b. <description>"``; metadata holds ``genres``
    (a list, so ``genres=Comedy`` filters match) and ``year`` when one is found.
    """
    path = Path(path)
    names, rows, fmt = read_records(path, encoding=encoding,
                                    header=False if path.name in ("u.item", "movies.dat") else None)
    rows = list(rows)
    if not rows:
        raise InputError(f"{path.name}: no items")
    if names is None and _looks_like_uitem(rows):
        return _movielens_items(path, rows)
    if names is None and len(rows[0][1]) == 3 and "|" in (rows[0][1][2] or ""):
        names = ["item", "title", "genres"]  # MovieLens 1M movies.dat: id::title::genres
    if names is None:
        raise InputError(f"{path.name}: item side data needs a header naming its columns "
                         "(an id column plus title, description or genres), or MovieLens u.item format")
    idx_id = _locate(names, id_col, "item id", path) if id_col else _pick(names, ITEM_NAMES + ("id",))
    if idx_id is None:
        raise InputError(f"{path.name}: no item id column among its columns ({', '.join(map(str, names))}); "
                         "expected e.g. item, item_id, movieId or id")
    idx_title = _locate(names, title_col, "title", path) if title_col else _pick(names, TITLE_NAMES)
    idx_text = _locate(names, text_col, "text", path) if text_col else _pick(names, TEXT_NAMES)
    idx_genres = _locate(names, genres_col, "genres", path) if genres_col else _pick(names, GENRE_NAMES)
    if idx_title is None and idx_text is None and idx_genres is None:
        raise InputError(f"{path.name}: no title, description/text or genres column to embed "
                         f"(columns: {', '.join(map(str, names))})")
    used = {i for i in (idx_id, idx_title, idx_text, idx_genres) if i is not None}
    out = ItemData([], [], [], [], source=str(path))
    seen: dict[str, int] = {}
    for number, values in rows:
        values = list(values) + [None] * (len(names) - len(values))
        item = _ident(values[idx_id], path, number, names[idx_id], "item")
        if item in seen:
            raise InputError(f"{path.name} row {number}, column {names[idx_id]!r}: item {item!r} already "
                             f"described at row {seen[item]}")
        seen[item] = number
        title = _text(values[idx_title]) if idx_title is not None else ""
        body = _text(values[idx_text]) if idx_text is not None else ""
        genres = _genres(values[idx_genres]) if idx_genres is not None else []
        meta: dict[str, Any] = {}
        for j, name in enumerate(names):
            if j not in used and _scalar(values[j]) is not None:
                meta[str(name)] = _scalar(values[j])
        _add(out, item, title, body, genres, meta)
    return out


def _looks_like_uitem(rows: list[tuple[int, list[Any]]]) -> bool:
    fields = rows[0][1]
    return len(fields) >= 6 and all(f in ("0", "1") for f in fields[-19:]) and len(fields) - 19 >= 2


def _movielens_items(path: Path, rows: list[tuple[int, list[Any]]]) -> ItemData:
    genre_file = path.with_name("u.genre")
    genres_names = list(MOVIELENS_GENRES)
    if genre_file.exists():
        listed = [line.split("|")[0] for line in _read_text(genre_file, None).splitlines() if "|" in line]
        if listed:
            genres_names = listed
    out = ItemData([], [], [], [], source=str(path))
    seen: dict[str, int] = {}
    for number, fields in rows:
        if len(fields) < 2 + len(genres_names):
            raise InputError(f"{path.name} row {number}: expected {5 + len(genres_names)} '|'-separated fields "
                             f"(id, title, release date, video date, URL, {len(genres_names)} genre flags), "
                             f"got {len(fields)}")
        item = _ident(fields[0], path, number, "movie id", "item")
        if item in seen:
            raise InputError(f"{path.name} row {number}, column 'movie id': item {item!r} already described "
                             f"at row {seen[item]}")
        seen[item] = number
        flags = fields[-len(genres_names):]
        genres = [g for g, flag in zip(genres_names, flags) if flag == "1" and g != "unknown"]
        meta: dict[str, Any] = {}
        release = fields[2] if len(fields) > 2 else ""
        if release:
            meta["release_date"] = release
            match = re.search(r"(\d{4})$", release)
            if match:
                meta["year"] = int(match.group(1))
        _add(out, item, fields[1], "", genres, meta)
    return out


def _add(out: ItemData, item: str, title: str, body: str, genres: list[str], meta: dict[str, Any]) -> None:
    meta = dict(meta)
    match = _YEAR.search(title) if title else None
    if match and "year" not in meta:
        meta["year"] = int(match.group(1))
    if genres:
        meta["genres"] = genres
    # embedded as "<title> Genres: a, b. <description>" (the store prefixes the title)
    text = " ".join(p for p in (f"Genres: {', '.join(genres)}." if genres else "", body) if p)
    out.ids.append(item)
    out.titles.append(title)
    out.texts.append(text if text or title else item)
    out.metadatas.append(meta)


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def _genres(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if not text or text.lower() in ("(no genres listed)",) or text.lower() in _MISSING:
        return []
    for sep in ("|", ";", ","):
        if sep in text:
            return [g.strip() for g in text.split(sep) if g.strip()]
    return [text]


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list, tuple)):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (int, bool)):
        return value
    text = str(value).strip()
    return parse_cell(text) if text else None  # JSON-number cells become numbers; 007, nan, inf stay text
