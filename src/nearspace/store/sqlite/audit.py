"""Consistency checks of a store's tables, read-only, for crash, kill and backup tests.

Each committed batch writes its documents, their metadata index entries and their change-log
rows in one transaction, so a store that a crash left behind must satisfy, per collection:

* every stored hash is the hash of the stored title and text;
* the metadata index holds entries only for stored documents, and exactly the entries the
  stored metadata implies;
* where the change log is whole (nothing pruned), the rows it says are live are exactly the
  stored rows: a batch whose documents landed without their log rows (or the reverse) shows.

These replace the FTS5 ``integrity-check`` oracle that schema v3 stores had.
"""
from __future__ import annotations

import json
import sqlite3

from nearspace.store.filters import flatten_metadata, index_columns


def audit(conn: sqlite3.Connection) -> list[str]:
    """Problems found in the store open on ``conn`` (empty when consistent)."""
    problems: list[str] = []
    from nearspace.store.sqlite.database import content_hash

    for cid, name in conn.execute("SELECT id, name FROM collections ORDER BY id").fetchall():
        docs = conn.execute("SELECT doc_row, doc_id, title, text, metadata, hash FROM docs "
                            "WHERE collection_id = ?", (cid,)).fetchall()
        rows = {row for row, *_ in docs}
        expected_meta = 0
        for row, doc_id, title, text, metadata, digest in docs:
            if content_hash(title, text) != digest:
                problems.append(f"{name}: {doc_id!r}: stored hash is not the hash of its text")
            expected_meta += sum(1 for _ in _entries(json.loads(metadata)))
        meta_rows = {r for (r,) in conn.execute("SELECT DISTINCT doc FROM meta_index WHERE collection_id = ?", (cid,))}
        if meta_rows - rows:
            problems.append(f"{name}: {len(meta_rows - rows)} metadata index entries for rows not stored")
        meta_count = conn.execute("SELECT count(*) FROM meta_index WHERE collection_id = ?", (cid,)).fetchone()[0]
        if meta_count != expected_meta:
            problems.append(f"{name}: metadata index holds {meta_count} entries, stored metadata implies {expected_meta}")
        live = _live_rows(conn, cid)
        if live is not None and live != rows:
            problems.append(f"{name}: change log says {len(live)} rows are live, {len(rows)} are stored "
                            f"({len(live - rows)} missing, {len(rows - live)} never logged)")
    return problems


def _entries(metadata: dict) -> list[tuple]:
    return [index_columns(value) for _key, value in flatten_metadata(metadata)]


def _live_rows(conn: sqlite3.Connection, cid: int) -> set[int] | None:
    """Rows whose last logged change is an add; None when the log was pruned (it no longer
    starts with the collection's first write, so it cannot vouch for older rows)."""
    first = conn.execute("SELECT min(doc_row) FROM docs WHERE collection_id = ?", (cid,)).fetchone()[0]
    ops = conn.execute("SELECT doc, op FROM changes WHERE collection_id = ? ORDER BY seq", (cid,)).fetchall()
    if first is not None and (not ops or ops[0][0] > first):
        return None  # the oldest stored row was written before the oldest kept change
    live: dict[int, bool] = {}
    for doc, op in ops:
        live[doc] = op == "add"
    return {doc for doc, alive in live.items() if alive}
