"""A ``sqlite3`` connection whose failures are nearspace errors.

Every statement the store runs goes through :class:`SafeConnection` (``sqlite3.connect(...,
factory=SafeConnection)``): disk full, read-only file system, a lock held past the timeout,
permission, corruption, a closed store, a statement over SQLite's limits and an integer outside
64 bits become the one-line errors of :mod:`nearspace.errors` at the point they happen, so the
Python API, the CLI and the server report them the same way. ``IntegrityError`` passes through
unchanged (callers use it to detect a concurrent create). Rows streamed by iterating a cursor
are not wrapped (that is the hot path of loading vectors); SQLite reports almost every fault
at the first step, which ``execute`` covers.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from nearspace.errors import translate


def _raise(exc: BaseException, where: str, path: str | None = None) -> None:
    mapped = translate(exc, where, path)
    if mapped is exc:
        raise exc
    raise mapped from exc


class SafeCursor(sqlite3.Cursor):
    """A cursor whose execute/fetch failures are translated (see the module docstring)."""

    def _where(self) -> str:
        return getattr(self.connection, "where", "the store")

    def _path(self) -> str | None:
        return getattr(self.connection, "path", None)

    def execute(self, sql: str, parameters: Any = (), /) -> "SafeCursor":  # type: ignore[override]
        try:
            return super().execute(sql, parameters)
        except (sqlite3.Error, OverflowError) as exc:
            _raise(exc, self._where(), self._path())
            raise  # unreachable: keeps type checkers content

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> "SafeCursor":  # type: ignore[override]
        try:
            return super().executemany(sql, seq_of_parameters)
        except (sqlite3.Error, OverflowError) as exc:
            _raise(exc, self._where(), self._path())
            raise

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            _raise(exc, self._where(), self._path())

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            _raise(exc, self._where(), self._path())
            raise

    def fetchmany(self, size: int = 1) -> list[Any]:  # type: ignore[override]
        try:
            return super().fetchmany(size)
        except sqlite3.Error as exc:
            _raise(exc, self._where(), self._path())
            raise


class SafeConnection(sqlite3.Connection):
    """``sqlite3.Connection`` that raises nearspace errors; ``where`` names the store in messages."""

    where = "the store"
    path: str | None = None
    #: the owning Database's lock; statements from another thread wait while a transaction runs
    lock: Any = None
    #: the owning Database's background WAL checkpointer (told after each committed write)
    checkpointer: Any = None

    def cursor(self, factory: Any = SafeCursor) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().cursor(factory)
        except sqlite3.Error as exc:
            _raise(exc, self.where, self.path)
            raise

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        if self.lock is not None:
            with self.lock:
                return self._execute(sql, parameters)
        return self._execute(sql, parameters)

    def _execute(self, sql: str, parameters: Any) -> sqlite3.Cursor:
        try:
            return self.cursor().execute(sql, parameters)
        except (sqlite3.Error, OverflowError) as exc:
            _raise(exc, self.where, self.path)
            raise

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        if self.lock is not None:
            with self.lock:
                return self._executemany(sql, seq_of_parameters)
        return self._executemany(sql, seq_of_parameters)

    def _executemany(self, sql: str, seq_of_parameters: Any) -> sqlite3.Cursor:
        try:
            return self.cursor().executemany(sql, seq_of_parameters)
        except (sqlite3.Error, OverflowError) as exc:
            _raise(exc, self.where, self.path)
            raise

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            _raise(exc, self.where, self.path)


def connect(path: Any, **kwargs: Any) -> SafeConnection:
    """``sqlite3.connect`` returning a :class:`SafeConnection` (open errors translated too)."""
    import os

    if os.environ.get("NEARSPACE_LOCK_TIMEOUT"):  # seconds to wait for another writer's lock
        try:
            kwargs["timeout"] = float(os.environ["NEARSPACE_LOCK_TIMEOUT"])
        except ValueError:
            from nearspace.errors import InputError

            raise InputError(f"NEARSPACE_LOCK_TIMEOUT must be a number of seconds, "
                             f"got {os.environ['NEARSPACE_LOCK_TIMEOUT']!r}") from None
    try:
        conn = sqlite3.connect(path, factory=SafeConnection, **kwargs)
    except sqlite3.Error as exc:
        _raise(exc, f"store {path}", str(path))
        raise
    conn.where = f"store {path}"
    conn.path = str(path)
    return conn  # type: ignore[return-value]
