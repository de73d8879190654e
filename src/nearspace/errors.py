"""Error types: every user-facing failure is a NearspaceError with a one-line message.

This module also owns the translation of operating-system and SQLite failures (disk full,
read-only file system, a lock held too long, permission, a corrupt file, a statement too big
for SQLite) into those errors, so that neither the Python API, the CLI nor the server ever
shows a raw ``sqlite3`` / ``OSError`` traceback. Each store error carries a ``hint`` (what
to do) and may carry ``progress`` (how much of a write was committed before it failed).
"""
from __future__ import annotations

import errno
from typing import Any


class NearspaceError(Exception):
    """Base class for errors caused by bad input or bad state, shown to users as one line."""


class InputError(NearspaceError):
    """The caller passed something invalid (empty text, bad JSON, wrong dimension, ...)."""


class LimitError(InputError):
    """The input is over a stated limit (nesting depth, number range, record size, filter values)."""


class StoreError(NearspaceError):
    """The store cannot be opened or written (path is a directory, unwritable, corrupt)."""

    #: short name of what happened, used by the server as the error ``code``
    code = "store_error"
    #: what the user can do about it
    hint = ""

    def __init__(self, message: str, *, progress: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: (documents committed, documents asked for) when the error interrupted a write
        self.progress = progress

    def __str__(self) -> str:
        text = self.message
        if self.progress is not None:
            done, total = self.progress
            text = f"{text} after {done:,} of {total:,} documents were stored"
        if self.hint and self.hint not in text:
            text = f"{text}; {self.hint}"
        return text

    def with_progress(self, done: int, total: int) -> "StoreError":
        """The same error, saying how many documents of the write were committed."""
        clone = type(self)(self.message, progress=(done, total))
        clone.__cause__ = self.__cause__
        return clone


class DiskFull(StoreError):
    code = "disk_full"
    hint = "free space (or raise the file-size limit) and re-run: committed batches are kept, so it resumes"


class ReadOnlyStore(StoreError):
    code = "read_only"
    hint = "the file system or file is read-only; copy the store somewhere writable (nearspace backup) or remount"


class StoreLocked(StoreError):
    code = "store_locked"
    hint = "another process holds the write lock; wait for it to finish (or stop it) and retry"


class PermissionDenied(StoreError):
    code = "permission_denied"
    hint = "check the owner and mode of the store file and its folder"


class CorruptStore(StoreError):
    code = "corrupt_store"
    hint = "restore it from a backup (nearspace restore BACKUP STORE)"


class StoreClosed(StoreError):
    code = "store_closed"
    hint = "open the store again (nearspace.open_store)"


class StoreTooNew(StoreError):
    code = "store_too_new"
    hint = "upgrade nearspace (pip install -U nearspace) to open it"


class CollectionNotFound(NearspaceError):
    """A named collection does not exist in the store."""


class EncoderMismatch(NearspaceError):
    """A collection was built with a different encoder or dimension than the one offered."""


class EncoderUnavailable(NearspaceError):
    """The encoder's weights or library cannot be loaded (offline, package missing)."""


# -- translation of OS and SQLite failures ---------------------------------------------------------
_TOO_BIG = ("too many sql variables", "too many terms in compound select", "expression tree is too large",
            "parser stack overflow", "string or blob too big", "too many columns")


def _read_only_fs(path: str) -> bool:
    import os

    try:
        return bool(os.statvfs(os.path.dirname(os.path.abspath(path)) or ".").f_flag & os.ST_RDONLY)
    except OSError:
        return False


def translate(exc: BaseException, where: str = "the store", path: str | None = None) -> BaseException:
    """The nearspace error for an OS/SQLite/overflow failure, or ``exc`` itself when it is not one.

    ``sqlite3.IntegrityError`` is returned unchanged: callers use it to detect races.
    """
    import sqlite3

    if isinstance(exc, NearspaceError):
        return exc
    if isinstance(exc, sqlite3.IntegrityError):
        return exc
    message = str(exc)
    low = message.lower()
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in low:
        return StoreClosed(f"{where} is closed")
    if isinstance(exc, OverflowError) or "too large to convert" in low:
        return LimitError(f"a number is outside the 64-bit range SQLite stores ({message})")
    if isinstance(exc, RecursionError):
        return LimitError("the input is nested too deeply")
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary == sqlite3.SQLITE_FULL or "database or disk is full" in low:
            return DiskFull(f"disk full writing {where}")
        if primary == sqlite3.SQLITE_READONLY or "readonly database" in low:
            fs = path is not None and _read_only_fs(path)
            return ReadOnlyStore(f"cannot write {where}: " + ("its file system is mounted read-only" if fs
                                                              else "the file is read-only"))
        if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "database is locked" in low:
            return StoreLocked(f"{where} stayed locked beyond the timeout")
        if primary == sqlite3.SQLITE_PERM or primary == sqlite3.SQLITE_AUTH:
            return PermissionDenied(f"permission denied on {where}")
        if primary == sqlite3.SQLITE_CANTOPEN or "unable to open" in low:
            if path is not None and _read_only_fs(path):
                return ReadOnlyStore(f"cannot open {where}: its file system is mounted read-only")
            return PermissionDenied(f"cannot open {where} (missing folder or no permission)")
        if primary == sqlite3.SQLITE_NOTADB or "not a database" in low:
            return CorruptStore(f"{where}: the file exists but is not a SQLite database (or its header is corrupt)")
        if primary == sqlite3.SQLITE_CORRUPT or "malformed" in low:
            return CorruptStore(f"{where} is corrupt or not a nearspace store ({message})")
        if primary == sqlite3.SQLITE_TOOBIG or any(marker in low for marker in _TOO_BIG):
            return LimitError(f"the request is too large for one SQLite statement ({message}); "
                              "use fewer filter values or smaller documents")
        if primary == sqlite3.SQLITE_IOERR or "disk i/o error" in low:
            return StoreError(f"input/output error on {where} ({message}); the disk may be full, "
                              "over a file-size limit, or failing")
        if isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError, sqlite3.ProgrammingError)):
            return StoreError(f"{where}: {message}")
        return exc
    if isinstance(exc, OSError):
        return translate_os(exc, where)
    return exc


def translate_os(exc: OSError, where: str = "the store") -> BaseException:
    """The nearspace error for a failed file operation (by errno)."""
    target = exc.filename or where
    number = exc.errno
    if number in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return DiskFull(f"disk full writing {target}" if number != errno.EFBIG
                        else f"file-size limit reached writing {target}")
    if number == errno.EROFS:
        return ReadOnlyStore(f"cannot write {target}: read-only file system")
    if number in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"permission denied on {target}")
    if number == errno.EIO:
        return StoreError(f"input/output error on {target}; the disk may be failing")
    return exc


def http_status(exc: NearspaceError) -> tuple[int, dict[str, Any]]:
    """HTTP status and extra headers for a nearspace error (used by the server)."""
    if isinstance(exc, CollectionNotFound):
        return 404, {}
    if isinstance(exc, EncoderMismatch):
        return 409, {}
    if isinstance(exc, StoreLocked):
        return 503, {"Retry-After": "5"}
    if isinstance(exc, (StoreError, EncoderUnavailable)):
        return 503, {}
    if isinstance(exc, LimitError):
        return 422, {}
    if isinstance(exc, InputError):
        return 422, {}
    return 400, {}
