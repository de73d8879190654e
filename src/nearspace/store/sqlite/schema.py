"""The store's schema version and its migrations.

The version lives in SQLite's header (``PRAGMA user_version``), mirrored in
``store_info.schema_version`` for people reading the file with other tools. Stores written
before versioning carry ``user_version = 0`` and ``store_info.schema_version = '1'``.

On every open, :func:`ensure` runs in one ``BEGIN IMMEDIATE`` transaction: a new file gets
today's tables; an older store is migrated step by step and stamped, all or nothing (a failed
step leaves the file exactly as it was); a store written by a newer nearspace is refused
before anything is written; a SQLite file that is not a nearspace store is refused too.
Each applied step is logged in the ``migrations`` table.
"""
from __future__ import annotations

import sqlite3
import time
from typing import Callable, Iterable

from nearspace.errors import StoreError, StoreTooNew

#: the schema this code writes; bump it and add a step to MIGRATIONS when the layout changes
CURRENT_VERSION = 4


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Version 2 starts the migration log (version 1 had no place to record upgrades)."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations(from_version INTEGER NOT NULL, "
                 "to_version INTEGER NOT NULL, applied REAL NOT NULL, software TEXT NOT NULL)")


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """Version 3 tags every change-log row with its write transaction's random token, so a
    saved index can prove the history it covers is the one SQLite holds (after a restore or a
    lost commit, sequence numbers are reused but tokens are not)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(changes)")}
    if columns and "txn" not in columns:
        conn.execute("ALTER TABLE changes ADD COLUMN txn INTEGER NOT NULL DEFAULT 0")


def _v3_to_v4(conn: sqlite3.Connection) -> None:
    """Version 4 drops the FTS5 keyword tables (``fts_<collection id>``). They were written on
    every write (37% of upsert time and 17% of the file on SciFact) and read by no search since
    nearspace's own BM25 (``store/sqlite/keywords.py``) became the keyword engine; that index is derived
    from ``docs`` and the change log, so nothing is lost."""
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'fts_[0-9]*' "
        "AND sql LIKE 'CREATE VIRTUAL TABLE%'")]
    for name in names:
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')


#: from_version -> the step that turns it into from_version + 1 (runs inside the open transaction)
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def stored_version(conn: sqlite3.Connection) -> int:
    """The schema version of the open file; 0 for an empty file."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version:
        return int(version)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    if "store_info" not in tables:
        return -1  # a SQLite file, but somebody else's
    row = conn.execute("SELECT value FROM store_info WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row and str(row[0]).isdigit() else 1


def refuse_newer(conn: sqlite3.Connection, where: str = "the store") -> None:
    """Refuse a store from a newer nearspace before anything (even the journal mode) is changed."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > CURRENT_VERSION:
        raise StoreTooNew(f"{where} was written by a newer nearspace (schema version {found}; this "
                          f"version reads up to {CURRENT_VERSION}); it was not changed")


def ensure(conn: sqlite3.Connection, create_statements: Iterable[str], *, where: str = "the store") -> int:
    """Create, migrate or accept the store's schema in one transaction; returns the version found.

    ``create_statements`` are today's ``CREATE ... IF NOT EXISTS`` statements; they run after
    any migration so tables new in this version exist too.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = stored_version(conn)
        if found == -1:
            raise StoreError(f"{where} is a SQLite file but not a nearspace store (no store_info table); "
                             "refusing to add tables to it")
        if found > CURRENT_VERSION:
            raise StoreTooNew(f"{where} was written by a newer nearspace (schema version {found}; this "
                              f"version reads up to {CURRENT_VERSION}); it was not changed")
        if 0 < found < CURRENT_VERSION:
            for version in range(found, CURRENT_VERSION):
                MIGRATIONS[version](conn)
                conn.execute("INSERT INTO migrations VALUES (?, ?, ?, ?)",
                             (version, version + 1, time.time(), _software()))
        for statement in create_statements:
            conn.execute(statement)
        if found != CURRENT_VERSION:  # stamp once; an up-to-date store is not rewritten on every open
            _v1_to_v2(conn)  # idempotent: new stores get the log table as well
            conn.execute("INSERT OR REPLACE INTO store_info VALUES ('schema_version', ?)", (str(CURRENT_VERSION),))
            conn.execute(f"PRAGMA user_version = {CURRENT_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except Exception:  # the original failure (e.g. disk full) says more than a failed rollback
            pass
        raise
    return found


def _software() -> str:
    try:
        from importlib.metadata import version

        return f"nearspace {version('nearspace')}"
    except Exception:  # a source tree without metadata
        return "nearspace"
